//! Kubernetes quantities: CPU in millicores and memory in bytes, read from and written as the
//! strings manifests use (`250m`, `2`, `512Mi`, `4Gi`). Pure.

/// A quantity's value in base units (cores, bytes), read as apimachinery's `ParseQuantity`
/// reads it: an optional sign, digits with an optional fraction (`1.`, `.5`), and a suffix, one
/// of the binary (`Ki` … `Ei`), the decimal (`n`, `u`, `m`, none, `k`, `M`, `G`, `T`, `P`, `E`)
/// or an exponent (`e3`, `E-3`, `e+6`). The value is rounded away from zero to a whole nano, and a
/// binary one saturates at the largest 64-bit integer, as the API server does. `None` when it is not a
/// quantity, surrounding white space included.
pub fn parse(quantity: &str) -> Option<f64> {
    let bytes = quantity.as_bytes();
    let (negative, start) = match bytes.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let digits = |from: usize| {
        from + bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut end = digits(start);
    let whole = end > start;
    let mut fraction = false;
    if bytes.get(end) == Some(&b'.') {
        let after = digits(end + 1);
        fraction = after > end + 1;
        end = after;
    }
    if !whole && !fraction {
        return None;
    }
    let mantissa: f64 = quantity[start..end].parse().ok()?;
    let (factor, binary) = suffix_factor(&quantity[end..])?;
    let value = mantissa * factor;
    // Up to a whole nano; a value that is a whole nano but for the float's last bits stays.
    let scaled = value * 1e9;
    let whole = scaled.round();
    let nanos = if (scaled - whole).abs() <= scaled.abs() * 1e-12 {
        whole / 1e9
    } else {
        scaled.ceil() / 1e9
    };
    // Only binary quantities are capped, as apimachinery caps them.
    let saturated = if binary {
        nanos.min(i64::MAX as f64)
    } else {
        nanos
    };
    Some(if negative { -saturated } else { saturated })
}

/// The factor of a quantity's suffix and whether it is binary; `None` when it is none of the
/// three kinds.
fn suffix_factor(suffix: &str) -> Option<(f64, bool)> {
    const DECIMAL: &[(&str, i32)] = &[
        ("n", -9),
        ("u", -6),
        ("m", -3),
        ("", 0),
        ("k", 3),
        ("M", 6),
        ("G", 9),
        ("T", 12),
        ("P", 15),
        ("E", 18),
    ];
    const BINARY: &[(&str, i32)] = &[
        ("Ki", 10),
        ("Mi", 20),
        ("Gi", 30),
        ("Ti", 40),
        ("Pi", 50),
        ("Ei", 60),
    ];
    if let Some((_, power)) = DECIMAL.iter().find(|(s, _)| *s == suffix) {
        return Some((10f64.powi(*power), false));
    }
    if let Some((_, power)) = BINARY.iter().find(|(s, _)| *s == suffix) {
        return Some((2f64.powi(*power), true));
    }
    let exponent = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))?;
    let unsigned = exponent
        .strip_prefix('-')
        .or_else(|| exponent.strip_prefix('+'))
        .unwrap_or(exponent);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((10f64.powi(exponent.parse().ok()?), false))
}

/// CPU in millicores from a quantity (`250m`, `0.5`, `2`, `4285658n`); `None` when it is not
/// one, or is negative.
pub fn cpu_millis(quantity: &str) -> Option<f64> {
    parse(quantity)
        .map(|cores| cores * 1000.0)
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// Memory in bytes from a quantity (`512Mi`, `4Gi`, `128M`, `1e9`); `None` when it is not one,
/// or is negative.
pub fn memory_bytes(quantity: &str) -> Option<f64> {
    parse(quantity).filter(|v| v.is_finite() && *v >= 0.0)
}

/// Memory as a quantity rounded up to a whole MiB, or GiB when it is a whole number of them.
pub fn format_memory(bytes: f64) -> String {
    let mib = (bytes / 1048576.0).ceil().max(1.0) as u64;
    if mib.is_multiple_of(1024) {
        format!("{}Gi", mib / 1024)
    } else {
        format!("{mib}Mi")
    }
}

/// CPU as a quantity rounded up to 10 millicores (`250m`), or whole cores (`2`).
pub fn format_cpu(millis: f64) -> String {
    let millis = ((millis / 10.0).ceil() * 10.0).max(10.0) as u64;
    if millis.is_multiple_of(1000) {
        format!("{}", millis / 1000)
    } else {
        format!("{millis}m")
    }
}

/// Storage rounded up to a whole GiB.
pub fn format_storage(bytes: f64) -> String {
    format!("{}Gi", (bytes / 1073741824.0).ceil().max(1.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The valid and invalid inputs of apimachinery's own `TestQuantityParse`, with the value
    /// each stands for.
    const APIMACHINERY: &[(&str, f64)] = &[
        ("0", 0.0),
        ("0n", 0.0),
        ("0u", 0.0),
        ("0m", 0.0),
        ("0Ki", 0.0),
        ("0k", 0.0),
        ("0Mi", 0.0),
        ("0M", 0.0),
        ("0Gi", 0.0),
        ("0G", 0.0),
        ("0Ti", 0.0),
        ("0T", 0.0),
        ("1", 1.0),
        ("1Ki", 1024.0),
        ("8Ki", 8.0 * 1024.0),
        ("7Mi", 7.0 * 1048576.0),
        ("6Gi", 6.0 * 1073741824.0),
        ("5Ti", 5.0 * 1099511627776.0),
        ("4Pi", 4.0 * 1125899906842624.0),
        ("3Ei", 3.0 * 1152921504606846976.0),
        ("10Ti", 10.0 * 1099511627776.0),
        ("100Ti", 100.0 * 1099511627776.0),
        ("5n", 5e-9),
        ("4u", 4e-6),
        ("3m", 3e-3),
        ("9", 9.0),
        ("8k", 8e3),
        ("50k", 5e4),
        ("7M", 7e6),
        ("6G", 6e9),
        ("5T", 5e12),
        ("40T", 4e13),
        ("300T", 3e14),
        ("2P", 2e15),
        ("1E", 1e18),
        ("1E-3", 1e-3),
        ("1e3", 1e3),
        ("1E6", 1e6),
        ("1e9", 1e9),
        ("1E12", 1e12),
        ("1e15", 1e15),
        ("1E18", 1e18),
        ("1e14", 1e14),
        ("1e13", 1e13),
        ("100.035k", 100035.0),
        ("0.001", 1e-3),
        ("0.0005k", 0.5),
        ("0.005", 5e-3),
        ("0.05", 5e-2),
        ("0.5", 0.5),
        ("0.00050k", 0.5),
        ("0.00500", 5e-3),
        ("0.05000", 5e-2),
        ("0.50000", 0.5),
        ("0.5e0", 0.5),
        ("0.5e-1", 5e-2),
        ("0.5e-2", 5e-3),
        ("10.035M", 10035e3),
        ("1.2e3", 12e2),
        ("1.3E+6", 13e5),
        ("1.40e9", 14e8),
        ("1.53E12", 153e10),
        ("1.6e15", 16e14),
        ("1.7E18", 17e17),
        ("9.01", 9.01),
        ("8.1k", 81e2),
        ("7.123456M", 7123456.0),
        ("6.987654321G", 6987654321.0),
        ("5.444T", 5444e9),
        ("40.1T", 401e11),
        ("300.2T", 3002e11),
        ("2.5P", 25e14),
        ("1.01E", 101e16),
        ("3.001n", 4e-9),
        ("1.1E-9", 2e-9),
        ("0.0000000001", 1e-9),
        ("0.0000000005", 1e-9),
        ("0.00000000050", 1e-9),
        ("0.5e-9", 1e-9),
        ("0.9n", 1e-9),
        ("0.00000012345", 124e-9),
        ("0.00000012354", 124e-9),
        ("9Ei", 9223372036854775807.0),
        ("9223372036854775807Ki", 9223372036854775807.0),
        ("12E", 12e18),
        ("100.035Ki", 102435.84),
        ("0.5Mi", 0.5 * 1048576.0),
        ("0.05Gi", 53687091.2),
        ("0.025Ti", 27487790694.4),
        ("0.000000000001Ki", 2e-9),
        (".001", 1e-3),
        (".0001k", 0.1),
        ("1.", 1.0),
        ("1.G", 1e9),
    ];

    const NOT_QUANTITIES: &[&str] = &[
        "", "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-", " 1",
        "1 ", ".", "-", "1e", "1E+",
    ];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-9)
    }

    #[test]
    fn every_quantity_of_apimachinery_s_table_reads_as_the_api_server_reads_it() {
        for (text, value) in APIMACHINERY {
            let got = parse(text).unwrap_or_else(|| panic!("{text} did not parse"));
            assert!(close(got, *value), "{text}: {got} != {value}");
            let negative = parse(&format!("-{text}")).unwrap();
            assert!(close(negative, -value), "-{text}: {negative}");
            let positive = parse(&format!("+{text}")).unwrap();
            assert!(close(positive, *value), "+{text}: {positive}");
        }
        for text in NOT_QUANTITIES {
            assert_eq!(parse(text), None, "{text:?} parsed");
        }
    }

    #[test]
    fn metrics_server_nanocores_and_negative_requests() {
        assert!(close(cpu_millis("4285658n").unwrap(), 4.285658));
        assert!(close(cpu_millis("250000u").unwrap(), 250.0));
        assert_eq!(cpu_millis("-1"), None);
        assert_eq!(memory_bytes("-1Mi"), None);
        assert!(close(memory_bytes("123456Ki").unwrap(), 123456.0 * 1024.0));
    }

    #[test]
    fn reads_and_writes_quantities() {
        assert_eq!(cpu_millis("250m"), Some(250.0));
        assert_eq!(cpu_millis("2"), Some(2000.0));
        assert_eq!(cpu_millis("0.5"), Some(500.0));
        assert_eq!(cpu_millis("x"), None);
        assert_eq!(memory_bytes("512Mi"), Some(536870912.0));
        assert_eq!(memory_bytes("1G"), Some(1e9));
        assert_eq!(memory_bytes("1024"), Some(1024.0));
        assert_eq!(format_memory(536870912.0 * 1.5), "768Mi");
        assert_eq!(format_memory(1073741824.0 * 2.0), "2Gi");
        assert_eq!(format_memory(1.0), "1Mi");
        assert_eq!(format_cpu(123.0), "130m");
        assert_eq!(format_cpu(2000.0), "2");
        assert_eq!(format_storage(10.5 * 1073741824.0), "11Gi");
    }
}
