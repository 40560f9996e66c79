//! An attribute list as views into the received bytes, and the attribute actions (insert, update,
//! upsert, delete) applied to it with exactly the semantics of the decoded path
//! (`processor::actions::apply`): the first attribute with a key is the one read and replaced,
//! new attributes go to the end, deletes remove every match.
//!
//! Values are never decoded: a value is the bytes of an encoded `AnyValue`, either borrowed from
//! the request or from the action's pre-encoded literal.

use regex::Regex;

use super::fields::{Field, Fields, LEN, Unsupported, close, len_field_size, open, put_len_field};

/// `KeyValue.key`.
const KEY: u32 = 1;
/// `KeyValue.value`.
const VALUE: u32 = 2;

/// Where a new value comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A literal, as the encoding of an `AnyValue`.
    Literal(Vec<u8>),
    /// The value of another attribute of the same list.
    FromAttribute(String),
}

/// What one action does.
#[derive(Debug, Clone)]
pub enum OpKind {
    /// Adds the key when absent.
    Insert(Source),
    /// Replaces the value when present.
    Update(Source),
    /// Replaces or adds.
    Upsert(Source),
    /// Removes every attribute with the key, or whose key the pattern matches.
    Delete(Option<Regex>),
}

/// One attribute action on an encoded attribute list.
#[derive(Debug, Clone)]
pub struct AttrOp {
    /// The attribute key.
    pub key: String,
    /// What to do.
    pub kind: OpKind,
}

/// A list of attribute actions the encoded form can apply, in order.
#[derive(Debug, Clone, Default)]
pub struct AttrEdit {
    /// The actions.
    pub ops: Vec<AttrOp>,
}

/// Where an attribute of the list came from.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    /// Received: the `KeyValue`'s bytes, and whether an action replaced its value.
    Received { kv: &'a [u8], value_replaced: bool },
    /// Added by an action.
    Added,
}

/// One attribute.
#[derive(Debug, Clone, Copy)]
struct Attr<'a> {
    key: &'a [u8],
    /// The encoded `AnyValue`; `None` when the `KeyValue` has no value field.
    value: Option<&'a [u8]>,
    origin: Origin<'a>,
}

/// The attribute list of one message (a resource, span or log record).
#[derive(Debug, Default)]
pub struct AttrList<'a> {
    attrs: Vec<Attr<'a>>,
    /// A received attribute was changed or removed: the list must be written out whole.
    rewritten: bool,
    /// Attributes were added (written after the received ones).
    added: usize,
}

impl<'a> AttrList<'a> {
    /// Empties the list for the next message, keeping its allocation.
    pub fn clear(&mut self) {
        self.attrs.clear();
        self.rewritten = false;
        self.added = 0;
    }

    /// Adds a received `KeyValue` field. A `KeyValue` with its key or value repeated (which
    /// protobuf merges) is left to the decoded path.
    pub fn push_received(&mut self, field: &Field<'a>) -> Result<(), Unsupported> {
        if field.wire_type != LEN {
            return Err(Unsupported);
        }
        let (mut key, mut value) = (None, None);
        for f in Fields::new(field.payload) {
            let f = f?;
            match (f.tag, f.wire_type) {
                (KEY, LEN) if key.is_none() => key = Some(f.payload),
                (VALUE, LEN) if value.is_none() => value = Some(f.payload),
                (KEY | VALUE, _) => return Err(Unsupported),
                _ => {}
            }
        }
        self.attrs.push(Attr {
            key: key.unwrap_or_default(),
            value,
            origin: Origin::Received { kv: field.payload, value_replaced: false },
        });
        Ok(())
    }

    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.rewritten || self.added > 0
    }

    /// Whether received attributes were changed or removed (not only added to).
    pub fn rewritten(&self) -> bool {
        self.rewritten
    }

    /// The value of the first attribute with `key`, as the decoded path's `get` reads it.
    pub fn get(&self, key: &str) -> Option<&'a [u8]> {
        self.attrs.iter().find(|a| a.key == key.as_bytes()).and_then(|a| a.value)
    }

    fn resolve(&self, source: &'a Source) -> Option<&'a [u8]> {
        match source {
            Source::Literal(v) => Some(v),
            Source::FromAttribute(k) => self.get(k),
        }
    }

    fn set(&mut self, key: &'a str, value: &'a [u8]) {
        match self.attrs.iter_mut().find(|a| a.key == key.as_bytes()) {
            Some(a) => {
                a.value = Some(value);
                if let Origin::Received { value_replaced, .. } = &mut a.origin {
                    *value_replaced = true;
                    self.rewritten = true;
                }
            }
            None => {
                self.attrs.push(Attr { key: key.as_bytes(), value: Some(value), origin: Origin::Added });
                self.added += 1;
            }
        }
    }

    /// Applies the actions in order.
    pub fn apply(&mut self, edit: &'a AttrEdit) {
        for op in &edit.ops {
            let present = self.attrs.iter().any(|a| a.key == op.key.as_bytes());
            match &op.kind {
                OpKind::Insert(s) if !present => {
                    if let Some(v) = self.resolve(s) {
                        self.set(&op.key, v);
                    }
                }
                OpKind::Update(s) if present => {
                    if let Some(v) = self.resolve(s) {
                        self.set(&op.key, v);
                    }
                }
                OpKind::Upsert(s) => {
                    if let Some(v) = self.resolve(s) {
                        self.set(&op.key, v);
                    }
                }
                OpKind::Insert(_) | OpKind::Update(_) => {}
                OpKind::Delete(pattern) => {
                    let before = self.attrs.len();
                    let mut added_removed = 0;
                    self.attrs.retain(|a| {
                        let matched = a.key == op.key.as_bytes()
                            || pattern
                                .as_ref()
                                .is_some_and(|p| std::str::from_utf8(a.key).is_ok_and(|k| p.is_match(k)));
                        if matched && matches!(a.origin, Origin::Added) {
                            added_removed += 1;
                        }
                        !matched
                    });
                    let removed = before - self.attrs.len();
                    self.added -= added_removed;
                    if removed > added_removed {
                        self.rewritten = true;
                    }
                }
            }
        }
    }

    /// Writes attribute fields numbered `tag`: all of them when received ones changed, else only
    /// the added ones (the received fields were copied with the rest of the message).
    pub fn write(&self, out: &mut Vec<u8>, tag: u32) {
        for a in &self.attrs {
            match a.origin {
                Origin::Received { kv, value_replaced } => {
                    if !self.rewritten {
                        continue;
                    }
                    if !value_replaced {
                        put_len_field(out, tag, kv);
                        continue;
                    }
                    let o = open(out, tag, kv.len());
                    // Every field but the value, as received (the key, `key_strindex`, unknown
                    // fields), then the new value.
                    for f in Fields::new(kv).flatten() {
                        if f.tag != VALUE {
                            out.extend_from_slice(&kv[f.span]);
                        }
                    }
                    if let Some(v) = a.value {
                        put_len_field(out, VALUE, v);
                    }
                    close(out, o);
                }
                Origin::Added => {
                    let Some(v) = a.value else { continue };
                    let len = len_field_size(KEY, a.key.len()) + len_field_size(VALUE, v.len());
                    let o = open(out, tag, len);
                    put_len_field(out, KEY, a.key);
                    put_len_field(out, VALUE, v);
                    close(out, o);
                }
            }
        }
    }
}
