//! Attribute actions (insert, update, upsert, delete, hash, extract, convert) over an OTLP
//! attribute list; shared by the `attributes` and `resource` processors. Pure functions.

use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value as V};
use regex::Regex;
use serde_yaml::Value;
use sha2::{Digest, Sha256};

use prost::Message as _;

use crate::pdata::edit;
pub use crate::pdata::value::any_to_string;
use collector_config::processor::actions::{ActionKind, AttributeAction, ConvertedType};

/// What one compiled action does.
#[derive(Debug, Clone)]
enum Op {
    Insert(Source),
    Update(Source),
    Upsert(Source),
    Delete,
    Hash,
    Extract(Regex),
    Convert(ConvertedType),
}

/// Where a new value comes from.
#[derive(Debug, Clone)]
enum Source {
    Literal(AnyValue),
    FromAttribute(String),
}

/// A compiled action, ready to apply.
#[derive(Debug, Clone)]
pub struct Action {
    key: String,
    key_regex: Option<Regex>,
    op: Op,
}

/// Compiles validated config actions. Config validation already rejected bad regexes and actions,
/// so failures here are reported as strings for completeness.
pub fn compile(actions: &[AttributeAction]) -> Result<Vec<Action>, String> {
    actions
        .iter()
        .map(|a| {
            // Validation refuses `from_context` and requires one source; refused here too for
            // configs that were not validated.
            let source = || match (&a.value, &a.from_attribute) {
                (Some(v), _) => Ok(Source::Literal(yaml_to_any(v))),
                (None, Some(f)) => Ok(Source::FromAttribute(f.clone())),
                (None, None) => Err(format!("action on {:?}: a value or from_attribute is required", a.key)),
            };
            let op = match a.action {
                Some(ActionKind::Insert) => Op::Insert(source()?),
                Some(ActionKind::Update) => Op::Update(source()?),
                Some(ActionKind::Upsert) => Op::Upsert(source()?),
                Some(ActionKind::Delete) => Op::Delete,
                Some(ActionKind::Hash) => Op::Hash,
                Some(ActionKind::Extract) => {
                    Op::Extract(Regex::new(a.pattern.as_deref().unwrap_or_default()).map_err(|e| e.to_string())?)
                }
                Some(ActionKind::Convert) => Op::Convert(
                    a.converted_type.ok_or_else(|| format!("convert of {:?}: converted_type is required", a.key))?,
                ),
                None => return Err(format!("action on {:?}: action is required", a.key)),
            };
            let key_regex = match (&op, &a.pattern) {
                (Op::Delete | Op::Hash, Some(p)) => Some(Regex::new(p).map_err(|e| e.to_string())?),
                _ => None,
            };
            Ok(Action { key: a.key.clone(), key_regex, op })
        })
        .collect()
}

/// The same actions for the encoded form (`pdata::edit`), when every one has an encoded
/// equivalent: insert, update, upsert and delete do; hash, extract and convert need decoded values.
pub fn wire_form(actions: &[Action]) -> Option<edit::AttrEdit> {
    let source = |s: &Source| match s {
        Source::Literal(v) => edit::Source::Literal(v.encode_to_vec()),
        Source::FromAttribute(k) => edit::Source::FromAttribute(k.clone()),
    };
    let ops = actions
        .iter()
        .map(|a| {
            let kind = match &a.op {
                Op::Insert(s) => edit::OpKind::Insert(source(s)),
                Op::Update(s) => edit::OpKind::Update(source(s)),
                Op::Upsert(s) => edit::OpKind::Upsert(source(s)),
                Op::Delete => edit::OpKind::Delete(a.key_regex.clone()),
                Op::Hash | Op::Extract(_) | Op::Convert(_) => return None,
            };
            Some(edit::AttrOp { key: a.key.clone(), kind })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(edit::AttrEdit { ops })
}

/// Converts a YAML config value into an OTLP value.
pub fn yaml_to_any(v: &Value) -> AnyValue {
    let value = match v {
        Value::Bool(b) => Some(V::BoolValue(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(V::IntValue(i)),
            None => Some(V::DoubleValue(n.as_f64().unwrap_or_default())),
        },
        Value::String(s) => Some(V::StringValue(s.clone())),
        Value::Sequence(seq) => Some(V::ArrayValue(ArrayValue { values: seq.iter().map(yaml_to_any).collect() })),
        Value::Mapping(m) => Some(V::KvlistValue(KeyValueList {
            values: m
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.as_str().unwrap_or_default().to_owned(),
                    value: Some(yaml_to_any(v)),
                    ..Default::default()
                })
                .collect(),
        })),
        Value::Tagged(t) => return yaml_to_any(&t.value),
        Value::Null => None,
    };
    AnyValue { value }
}

/// Looks an attribute up.
pub fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

fn set(attrs: &mut Vec<KeyValue>, key: &str, value: AnyValue) {
    match attrs.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = Some(value),
        None => attrs.push(KeyValue { key: key.to_owned(), value: Some(value), ..Default::default() }),
    }
}

fn resolve(attrs: &[KeyValue], s: &Source) -> Option<AnyValue> {
    match s {
        Source::Literal(v) => Some(v.clone()),
        Source::FromAttribute(k) => get(attrs, k).cloned(),
    }
}

fn hash_value(v: &AnyValue) -> AnyValue {
    let digest = Sha256::digest(any_to_string(v).as_bytes());
    AnyValue { value: Some(V::StringValue(digest.iter().map(|b| format!("{b:02x}")).collect())) }
}

/// Applies all actions in order to one attribute list.
pub fn apply(actions: &[Action], attrs: &mut Vec<KeyValue>) {
    for a in actions {
        let present = attrs.iter().any(|kv| kv.key == a.key);
        match &a.op {
            Op::Insert(s) if !present => {
                if let Some(v) = resolve(attrs, s) {
                    set(attrs, &a.key, v);
                }
            }
            Op::Update(s) if present => {
                if let Some(v) = resolve(attrs, s) {
                    set(attrs, &a.key, v);
                }
            }
            Op::Upsert(s) => {
                if let Some(v) = resolve(attrs, s) {
                    set(attrs, &a.key, v);
                }
            }
            Op::Insert(_) | Op::Update(_) => {}
            Op::Delete => {
                attrs.retain(|kv| !(kv.key == a.key || a.key_regex.as_ref().is_some_and(|r| r.is_match(&kv.key))))
            }
            Op::Hash => {
                for kv in attrs.iter_mut() {
                    if kv.key == a.key || a.key_regex.as_ref().is_some_and(|r| r.is_match(&kv.key)) {
                        kv.value = kv.value.as_ref().map(hash_value);
                    }
                }
            }
            Op::Extract(re) => {
                let Some(source) = get(attrs, &a.key).map(any_to_string) else { continue };
                if let Some(caps) = re.captures(&source) {
                    for name in re.capture_names().flatten() {
                        if let Some(m) = caps.name(name) {
                            set(attrs, name, AnyValue { value: Some(V::StringValue(m.as_str().to_owned())) });
                        }
                    }
                }
            }
            Op::Convert(ty) => {
                let Some(kv) = attrs.iter_mut().find(|kv| kv.key == a.key) else { continue };
                let Some(v) = kv.value.as_ref() else { continue };
                let s = any_to_string(v);
                let converted = match ty {
                    ConvertedType::Int => {
                        s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().map(|f| f as i64)).map(V::IntValue)
                    }
                    ConvertedType::Double => s.parse::<f64>().ok().map(V::DoubleValue),
                    ConvertedType::String => Some(V::StringValue(s)),
                };
                // Upstream leaves values that cannot be converted unchanged.
                if let Some(c) = converted {
                    kv.value = Some(AnyValue { value: Some(c) });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(V::StringValue(v.into())) }),
            ..Default::default()
        }
    }

    fn action(yaml: &str) -> Vec<Action> {
        let a: Vec<AttributeAction> = serde_yaml::from_str(yaml).unwrap();
        compile(&a).unwrap()
    }

    fn s(attrs: &[KeyValue], k: &str) -> Option<String> {
        get(attrs, k).map(any_to_string)
    }

    #[test]
    fn insert_update_upsert() {
        let acts = action(
            "[{key: a, value: new, action: insert}, {key: b, value: 2, action: update}, {key: c, value: true, action: upsert}, {key: x, value: y, action: update}]",
        );
        let mut attrs = vec![kv("a", "old"), kv("b", "old")];
        apply(&acts, &mut attrs);
        assert_eq!(s(&attrs, "a").as_deref(), Some("old"));
        assert_eq!(get(&attrs, "b").unwrap().value, Some(V::IntValue(2)));
        assert_eq!(s(&attrs, "c").as_deref(), Some("true"));
        assert!(get(&attrs, "x").is_none());
    }

    #[test]
    fn from_attribute_delete_hash() {
        let acts = action(
            "[{key: copy, from_attribute: src, action: insert}, {key: src, action: delete}, {key: email, action: hash}, {key: '', pattern: '^tmp\\.', action: delete}]",
        );
        let mut attrs = vec![kv("src", "v"), kv("email", "a@b.c"), kv("tmp.1", "x"), kv("tmp.2", "x")];
        apply(&acts, &mut attrs);
        assert_eq!(s(&attrs, "copy").as_deref(), Some("v"));
        assert!(get(&attrs, "src").is_none());
        assert_eq!(s(&attrs, "email").unwrap().len(), 64);
        assert_ne!(s(&attrs, "email").as_deref(), Some("a@b.c"));
        assert!(get(&attrs, "tmp.1").is_none() && get(&attrs, "tmp.2").is_none());
    }

    #[test]
    fn extract_and_convert() {
        let acts = action(
            "[{key: url, pattern: '^/users/(?P<user_id>\\d+)$', action: extract}, {key: user_id, action: convert, converted_type: int}]",
        );
        let mut attrs = vec![kv("url", "/users/42")];
        apply(&acts, &mut attrs);
        assert_eq!(get(&attrs, "user_id").unwrap().value, Some(V::IntValue(42)));
    }
}
