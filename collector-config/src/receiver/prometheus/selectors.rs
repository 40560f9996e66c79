//! `kubernetes_sd_configs[].selectors`, pure: the label and field selectors Prometheus passes to the
//! API server with its list and watch, checked here the way the API server would check them, so a
//! selector the server would refuse (a pod field it cannot select by, a malformed term) fails at
//! `validate` naming its path instead of leaving discovery retrying a refused watch forever.
//!
//! The shape is upstream's (`selectors: [{role: pod, label: "...", field: "..."}]`, at most one entry
//! per role); only pod discovery is implemented, so only `role: pod` selectors are accepted.

/// Fields the API server can select pods by (`metadata.*` for every object, the rest from the pod
/// registry's selectable fields). Anything else is refused by the server with `400 field label not
/// supported`.
pub const POD_SELECTABLE_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

/// Checks a field selector (`spec.nodeName=node-1,status.phase!=Failed`): comma-separated
/// `field=value`, `field==value` or `field!=value` terms over [`POD_SELECTABLE_FIELDS`]. The value may
/// be empty (`spec.nodeName=` selects unscheduled pods), as the API server allows.
pub fn check_pod_field_selector(selector: &str) -> Result<(), String> {
    if selector.trim().is_empty() {
        return Ok(());
    }
    for term in selector.split(',') {
        let term = term.trim();
        // `!=` before `==` before `=`, so that `a!=b` is not read as the field `a!`.
        let (field, value) = ["!=", "==", "="]
            .iter()
            .find_map(|op| term.split_once(op))
            .ok_or_else(|| format!("{term:?} is not field=value, field==value or field!=value"))?;
        let field = field.trim();
        if !POD_SELECTABLE_FIELDS.contains(&field) {
            return Err(format!(
                "{field:?} is not a field the API server can select pods by (one of {})",
                POD_SELECTABLE_FIELDS.join(", ")
            ));
        }
        if value.contains(['=', '!']) {
            return Err(format!("{term:?} has more than one operator"));
        }
    }
    Ok(())
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 bytes: a label value (or the name part
/// of a key). Empty is a valid value, never a valid name.
fn is_label_name_part(s: &str, allow_empty: bool) -> bool {
    if s.is_empty() {
        return allow_empty;
    }
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.len() <= 63
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name.
fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|p| {
                    !p.is_empty()
                        && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                        && p.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                        && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                })
                && is_label_name_part(name, false)
        }
        None => is_label_name_part(key, false),
    }
}

/// Splits at commas outside parentheses (`a in (x,y),b` has two terms).
fn top_level_terms(selector: &str) -> Result<Vec<&str>, String> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!("unbalanced or nested parentheses in {selector:?}"));
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced parentheses in {selector:?}"));
    }
    terms.push(&selector[start..]);
    Ok(terms)
}

/// Checks a label selector in the API server's syntax: comma-separated `key`, `!key`, `key=value`,
/// `key==value`, `key!=value`, `key in (v1,v2)` and `key notin (v1,v2)` terms.
pub fn check_label_selector(selector: &str) -> Result<(), String> {
    if selector.trim().is_empty() {
        return Ok(());
    }
    for term in top_level_terms(selector)? {
        let term = term.trim();
        let bad_key = |key: &str| format!("{key:?} is not a valid label key");
        let bad_value = |value: &str| format!("{value:?} is not a valid label value");
        if let Some(open) = term.find('(') {
            let head = term[..open].trim();
            let (key, op) = head
                .rsplit_once(char::is_whitespace)
                .ok_or_else(|| format!("{term:?}: expected `key in (...)` or `key notin (...)`"))?;
            if op != "in" && op != "notin" {
                return Err(format!("{term:?}: unknown operator {op:?} (in or notin)"));
            }
            let key = key.trim();
            if !is_label_key(key) {
                return Err(bad_key(key));
            }
            let values = term[open + 1..].strip_suffix(')').ok_or_else(|| format!("{term:?}: text after `)`"))?;
            for v in values.split(',').map(str::trim) {
                if !is_label_name_part(v, true) {
                    return Err(bad_value(v));
                }
            }
            continue;
        }
        if let Some(key) = term.strip_prefix('!') {
            if !is_label_key(key.trim()) {
                return Err(bad_key(key.trim()));
            }
            continue;
        }
        match ["!=", "==", "="].iter().find_map(|op| term.split_once(op)) {
            Some((key, value)) => {
                if !is_label_key(key.trim()) {
                    return Err(bad_key(key.trim()));
                }
                if !is_label_name_part(value.trim(), true) {
                    return Err(bad_value(value.trim()));
                }
            }
            None if is_label_key(term) => {}
            None => return Err(bad_key(term)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_selectors_over_selectable_pod_fields_pass() {
        for ok in [
            "spec.nodeName=node-1",
            "spec.nodeName==node-1",
            "spec.nodeName=",
            "spec.nodeName=node-1,status.phase!=Failed",
            "metadata.name!=x",
            "",
        ] {
            assert_eq!(check_pod_field_selector(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn unknown_fields_and_malformed_terms_are_refused() {
        let e = check_pod_field_selector("spec.nodeNmae=x").expect_err("typo");
        assert!(e.starts_with("\"spec.nodeNmae\" is not a field the API server can select pods by"), "{e}");
        assert!(e.contains("spec.nodeName"), "lists the valid fields: {e}");
        assert!(check_pod_field_selector("spec.nodeName").expect_err("no operator").contains("field=value"));
        assert!(check_pod_field_selector("status.hostIP=1.2.3.4").is_err(), "not selectable on pods");
        assert!(check_pod_field_selector("spec.nodeName=a=b").is_err());
    }

    #[test]
    fn label_selectors_in_the_api_servers_syntax() {
        for ok in [
            "app=reviews",
            "app==reviews,tier!=db",
            "app.kubernetes.io/name=reviews",
            "env in (prod, staging),!canary",
            "tier notin (db),app",
            "app=",
            "",
        ] {
            assert_eq!(check_label_selector(ok), Ok(()), "{ok}");
        }
        for bad in ["app=(x", "-app=x", "app in prod", "app within (x)", "app=a b", "a in (x),b in ((y))", "Bad_/x=y"] {
            assert!(check_label_selector(bad).is_err(), "{bad}");
        }
    }
}
