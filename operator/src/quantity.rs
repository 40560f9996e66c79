//! Kubernetes resource quantities (`512Mi`, `1G`) as numbers: container memory limits size the
//! memory limiter, queue volume sizes the persistent queue.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Parses a Kubernetes memory quantity into bytes (`512Mi`, `1G`, `1e9`, `1048576`).
pub fn quantity_bytes(q: &Quantity) -> Option<i64> {
    let s = q.0.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic() && c != 'e').unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "P" => 1e15,
        "Pi" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((value * mult) as i64)
}
