//! `${env:VAR}` / `${VAR}` / `$$` expansion applied to every string scalar of the parsed YAML, as upstream does.

use serde_yaml::Value;

/// Expands environment references in one string using `lookup` for variable values.
///
/// `$$` is an escaped `$`. `${env:NAME:-default}` falls back to `default` when unset or empty.
/// Unsupported providers (`${file:...}`) are an error so configs don't silently lose values.
pub fn expand_str(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner_and_tail) = after.strip_prefix('{') {
            let end =
                inner_and_tail.find('}').ok_or_else(|| format!("unterminated variable reference in {input:?}"))?;
            let inner = &inner_and_tail[..end];
            let name_and_default = if let Some(n) = inner.strip_prefix("env:") {
                n
            } else if inner.contains(':')
                && !inner.contains(":-")
                && inner.split(':').next().is_some_and(|p| p.chars().all(|c| c.is_ascii_alphabetic()))
            {
                let provider = inner.split(':').next().unwrap_or_default();
                return Err(format!("unsupported config provider {provider:?} in ${{{inner}}}; only env is supported"));
            } else {
                inner
            };
            let (name, default) = match name_and_default.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (name_and_default, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid environment variable name {name:?} in {input:?}"));
            }
            let value = lookup(name).filter(|v| !v.is_empty() || default.is_none());
            match (value, default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                // Upstream expands unset variables to the empty string.
                (None, None) => {}
            }
            rest = &inner_and_tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Walks a YAML tree expanding every string scalar; `path` is used to name the failing field.
pub fn expand_value(
    value: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (String, String)> {
    match value {
        Value::String(s) => {
            if s.contains('$') {
                let expanded = expand_str(s, lookup).map_err(|e| (path.to_owned(), e))?;
                // A whole-value reference may stand for a number or bool (e.g. `limit_mib: ${env:LIMIT}`);
                // re-parse it as YAML scalar so typed fields still deserialize.
                *value = reparse_scalar(expanded);
            }
        }
        Value::Sequence(seq) => {
            for (i, v) in seq.iter_mut().enumerate() {
                expand_value(v, &format!("{path}[{i}]"), lookup)?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().map(str::to_owned).unwrap_or_else(|| format!("{k:?}"));
                let child = if path.is_empty() { key } else { format!("{path}.{key}") };
                expand_value(v, &child, lookup)?;
            }
        }
        Value::Tagged(t) => expand_value(&mut t.value, path, lookup)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

fn reparse_scalar(s: String) -> Value {
    match serde_yaml::from_str::<Value>(&s) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER" => Some("alice".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_both_syntaxes_and_escapes() {
        assert_eq!(expand_str("a ${env:USER} ${USER}", &env).as_deref(), Ok("a alice alice"));
        assert_eq!(expand_str("$$HOME", &env).as_deref(), Ok("$HOME"));
        assert_eq!(expand_str("${env:NOPE}x", &env).as_deref(), Ok("x"));
        assert_eq!(expand_str("${env:NOPE:-dflt}", &env).as_deref(), Ok("dflt"));
        assert_eq!(expand_str("${EMPTY:-dflt}", &env).as_deref(), Ok("dflt"));
        assert_eq!(expand_str("cost $5", &env).as_deref(), Ok("cost $5"));
    }

    #[test]
    fn rejects_unknown_provider_and_unterminated() {
        assert!(expand_str("${file:/etc/x}", &env).unwrap_err().contains("unsupported config provider"));
        assert!(expand_str("${env:USER", &env).unwrap_err().contains("unterminated"));
    }

    #[test]
    fn numbers_from_env_become_numbers() {
        let mut v: Value = serde_yaml::from_str("a: ${N}").unwrap();
        expand_value(&mut v, "", &|_| Some("42".into())).unwrap();
        assert_eq!(v["a"], Value::Number(42.into()));
    }
}
