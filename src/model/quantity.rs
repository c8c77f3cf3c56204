//! Kubernetes quantities: CPU in millicores and memory in bytes, read from and written as the
//! strings manifests use (`250m`, `2`, `512Mi`, `4Gi`). Pure.

/// CPU in millicores from a quantity (`250m`, `0.5`, `2`); `None` when it is not one.
pub fn cpu_millis(quantity: &str) -> Option<f64> {
    let q = quantity.trim();
    match q.strip_suffix('m') {
        Some(millis) => millis.parse::<f64>().ok(),
        None => q.parse::<f64>().ok().map(|cores| cores * 1000.0),
    }
    .filter(|v| v.is_finite() && *v >= 0.0)
}

/// Memory in bytes from a quantity (`512Mi`, `4Gi`, `128M`, `1e9`); `None` when it is not one.
pub fn memory_bytes(quantity: &str) -> Option<f64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let q = quantity.trim();
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| q.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((q, 1.0));
    number
        .parse::<f64>()
        .ok()
        .map(|n| n * factor)
        .filter(|v| v.is_finite() && *v >= 0.0)
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
