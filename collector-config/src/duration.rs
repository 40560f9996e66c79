//! Go-style duration strings (`200ms`, `1m30s`, `5s`) as used throughout the upstream collector config.

use std::time::Duration;

/// Parses a Go `time.ParseDuration` string such as `200ms`, `1h2m`, `1.5s` or `0`.
///
/// Returns a human-readable reason on failure so the caller can prefix the config path.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(format!("invalid duration {input:?}: negative durations are not allowed"));
    }
    let mut total = 0f64;
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(format!("invalid duration {input:?}"));
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("invalid duration {input:?}: missing unit (use e.g. 200ms, 5s, 1m)"))?;
        if num_len == 0 {
            return Err(format!("invalid duration {input:?}"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| format!("invalid duration {input:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("invalid duration {input:?}: missing unit (use e.g. 200ms, 5s, 1m)")),
            other => return Err(format!("invalid duration {input:?}: unknown unit {other:?}")),
        };
        total += value * nanos_per;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("invalid duration {input:?}: out of range"));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Serde adapter so config structs can declare `#[serde(with = "crate::duration::serde_duration")]`.
pub mod serde_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    /// Accepts a duration string or `0`. Bare integers are rejected: Go reads them as nanoseconds,
    /// which is almost never what was meant.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(0) => Ok(Duration::ZERO),
            Raw::Int(n) => {
                Err(serde::de::Error::custom(format!("invalid duration {n}: missing unit (use e.g. {n}ms or {n}s)")))
            }
            Raw::Str(s) => super::parse_duration(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Deserializes an optional duration field: absent or `null` is `None`, otherwise as
/// [`serde_duration`] (`0`, Go's "no timeout", is written bare in upstream configs; other bare
/// integers are refused).
pub(crate) fn de_opt_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    use serde::Deserialize;
    match Option::<serde_yaml::Value>::deserialize(d)? {
        None | Some(serde_yaml::Value::Null) => Ok(None),
        Some(v) => serde_duration::deserialize(v).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
    }

    #[test]
    fn rejects_bad_durations() {
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("ms").is_err());
    }
}
