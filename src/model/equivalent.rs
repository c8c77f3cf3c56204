//! Whether two versions of an object are the same object for Kubernetes: values spelled another
//! way (`1Gi` and `1024Mi`, `720m` and `720m0s`, `1` and `1.0`) are the same value where the
//! field holds a quantity or a duration, read with the parsers the API server uses
//! (apimachinery's `ParseQuantity`, Go's `time.ParseDuration`). Labels, annotations and the
//! data of ConfigMaps and Secrets are text, compared as written. Pure.

use serde_json::Value;

use super::quantity;

/// Maps whose values are quantities: resource requests and limits, quotas, capacity, limit
/// ranges, and the Helm values that mirror them.
const QUANTITY_MAPS: &[&str] = &[
    "limits",
    "requests",
    "hard",
    "capacity",
    "allocatable",
    "overhead",
];

/// A LimitRange's maps of quantities, under its `limits`.
const LIMIT_RANGE_MAPS: &[&str] = &[
    "max",
    "min",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
];

/// Fields that are one quantity.
const QUANTITY_FIELDS: &[&str] = &["sizeLimit"];

/// Whether a field holds a Go duration (`metav1.Duration`): Flux's `interval`, `timeout` and
/// `retryInterval`, Argo CD's backoff `duration` and `maxDuration`, cert-manager's `duration`
/// and `renewBefore`.
fn is_duration(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["interval", "timeout", "duration", "renewbefore"]
        .iter()
        .any(|end| key.ends_with(end))
}

/// Whether `a` and `b` are the same object for Kubernetes.
pub fn equivalent(a: &Value, b: &Value) -> bool {
    same(a, b, &[])
}

fn same(a: &Value, b: &Value, path: &[&str]) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(key, left)| {
                    y.get(key).is_some_and(|right| {
                        let mut inner = path.to_vec();
                        inner.push(key);
                        same(left, right, &inner)
                    })
                })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(l, r)| same(l, r, path))
        }
        _ if a == b => true,
        _ => leaf(a, b, path),
    }
}

/// Two leaves that differ as written: the same number, quantity or duration.
fn leaf(a: &Value, b: &Value, path: &[&str]) -> bool {
    if is_text(path) {
        return false;
    }
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return x == y;
    }
    let key = path.last().copied().unwrap_or("");
    let parent = path.len().checked_sub(2).map(|i| path[i]).unwrap_or("");
    let limit_range =
        LIMIT_RANGE_MAPS.contains(&parent) && path.len() >= 3 && path[path.len() - 3] == "limits";
    if QUANTITY_MAPS.contains(&parent) || limit_range || QUANTITY_FIELDS.contains(&key) {
        let read = |v: &Value| match v {
            Value::String(s) => quantity::parse(s),
            Value::Number(n) => quantity::parse(&n.to_string()),
            _ => None,
        };
        if let (Some(x), Some(y)) = (read(a), read(b)) {
            return x == y;
        }
    }
    if is_duration(key)
        && let (Some(x), Some(y)) = (a.as_str(), b.as_str())
        && let (Some(x), Some(y)) = (duration_nanos(x), duration_nanos(y))
    {
        return x == y;
    }
    false
}

/// Labels, annotations and the data of a ConfigMap or Secret: text whatever it looks like.
fn is_text(path: &[&str]) -> bool {
    matches!(path.first(), Some(&("data" | "stringData" | "binaryData")))
        || path
            .windows(2)
            .any(|w| w[0] == "metadata" && matches!(w[1], "labels" | "annotations"))
}

/// A Go duration (`time.ParseDuration`) in nanoseconds: an optional sign, then one or more
/// decimal numbers each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), or `0`.
pub fn duration_nanos(text: &str) -> Option<i128> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let whole_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let whole = &rest[..whole_end];
        rest = &rest[whole_end..];
        let fraction = match rest.strip_prefix('.') {
            Some(after) => {
                let end = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                rest = &after[end..];
                &after[..end]
            }
            None => "",
        };
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: i128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_end..];
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        // The fraction scaled to the unit, truncated as Go truncates it.
        let digits = &fraction[..fraction.len().min(18)];
        let scale = 10i128.pow(digits.len() as u32);
        let part: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        total = total.checked_add(whole.checked_mul(unit)?.checked_add(part * unit / scale)?)?;
    }
    // Go refuses what does not fit in an int64.
    if total > i64::MAX as i128 {
        return None;
    }
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_as_go_reads_them() {
        assert_eq!(duration_nanos("720m"), duration_nanos("720m0s"));
        assert_eq!(duration_nanos("12h"), duration_nanos("720m"));
        assert_eq!(duration_nanos("1h30m"), Some(5_400_000_000_000));
        assert_eq!(duration_nanos("1.5h"), duration_nanos("90m"));
        assert_eq!(duration_nanos("300ms"), Some(300_000_000));
        assert_eq!(duration_nanos("2µs"), duration_nanos("2us"));
        assert_eq!(duration_nanos("-1m"), Some(-60_000_000_000));
        assert_eq!(duration_nanos("0"), Some(0));
        for bad in ["", "10", "1d", "m", "1.m5", "h1", "5 m", "9999999999999h"] {
            assert_eq!(duration_nanos(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_quantity_or_a_duration_spelled_another_way_is_the_same_value() {
        let pod = |memory: Value, cpu: Value| {
            json!({"spec": {"containers": [{"name": "a",
                "resources": {"limits": {"memory": memory, "cpu": cpu}}}]}})
        };
        assert!(equivalent(
            &pod(json!("1Gi"), json!("1")),
            &pod(json!("1024Mi"), json!("1000m"))
        ));
        assert!(equivalent(
            &pod(json!("1Gi"), json!(1)),
            &pod(json!("1Gi"), json!("1"))
        ));
        assert!(!equivalent(
            &pod(json!("1Gi"), json!("1")),
            &pod(json!("1G"), json!("1"))
        ));
        let flux = |interval: &str| json!({"spec": {"interval": interval, "timeout": "5m"}});
        assert!(equivalent(&flux("720m"), &flux("720m0s")));
        assert!(equivalent(&flux("720m"), &flux("12h")));
        assert!(!equivalent(&flux("720m"), &flux("721m")));
        assert!(equivalent(
            &json!({"spec": {"replicas": 1}}),
            &json!({"spec": {"replicas": 1.0}})
        ));
    }

    #[test]
    fn text_stays_text_and_other_fields_are_compared_as_written() {
        let config = |timeout: &str| json!({"data": {"timeout": timeout}});
        assert!(!equivalent(&config("720m"), &config("720m0s")));
        let labels = |size: &str| json!({"metadata": {"labels": {"limits": size}}});
        assert!(!equivalent(&labels("1Gi"), &labels("1024Mi")));
        let annotated =
            |v: &str| json!({"metadata": {"annotations": {"x": {"requests": {"cpu": v}}}}});
        assert!(!equivalent(&annotated("1"), &annotated("1000m")));
        // A quantity-like string outside a quantity field is text.
        let image = |tag: &str| json!({"spec": {"tag": tag}});
        assert!(!equivalent(&image("1Gi"), &image("1024Mi")));
        assert!(!equivalent(&json!({"a": [1, 2]}), &json!({"a": [1, 2, 3]})));
        assert!(!equivalent(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        let range =
            |cpu: &str| json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": cpu}}]}});
        assert!(equivalent(&range("2"), &range("2000m")));
        let values = |max: &str| json!({"spec": {"values": {"autoscaling": {"max": {"n": max}}}}});
        assert!(!equivalent(&values("10"), &values("1e1")));
    }
}
