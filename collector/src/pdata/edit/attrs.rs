//! An attribute list as views into the received bytes, and the attribute actions (insert, update,
//! upsert, delete) applied to it with exactly the semantics of the decoded path
//! (`processor::actions::apply`): the first attribute with a key is the one read and replaced,
//! new attributes go to the end, deletes remove every match. The `metricstransform` processor's
//! `update_label` (rename a label and map its value) is one more action on the same list.
//!
//! Values are never decoded: a value is the bytes of an encoded `AnyValue`, either borrowed from
//! the request or from the action's pre-encoded literal.

use std::collections::HashMap;

use regex::Regex;

use super::fields::{Field, Fields, LEN, Unsupported, close, len_field_size, open, put_len_field};

/// `KeyValue.key`.
const KEY: u32 = 1;
/// `KeyValue.value`.
const VALUE: u32 = 2;
/// `AnyValue.string_value`; the value oneof's fields are 1 to 8.
const STRING_VALUE: u32 = 1;
const LAST_VALUE_VARIANT: u32 = 8;

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
    /// `metricstransform`'s `update_label`: the first attribute with the key is renamed to
    /// `new_key` (an attribute already called so is removed; an empty or equal `new_key` keeps
    /// the name), then its original value, read as a string (non-string values read as ""), is
    /// replaced by `values`' encoded `AnyValue` for it, if any.
    RenameLabel {
        /// The new key.
        new_key: String,
        /// Value → the encoding of the `AnyValue` that replaces it.
        values: HashMap<String, Vec<u8>>,
    },
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
    /// Received: the `KeyValue`'s bytes, and whether an action replaced its key or its value.
    Received { kv: &'a [u8], key_replaced: bool, value_replaced: bool },
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
            origin: Origin::Received { kv: field.payload, key_replaced: false, value_replaced: false },
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
        match self.attrs.iter().position(|a| a.key == key.as_bytes()) {
            Some(i) => self.replace_value(i, value),
            None => {
                self.attrs.push(Attr { key: key.as_bytes(), value: Some(value), origin: Origin::Added });
                self.added += 1;
            }
        }
    }

    fn replace_value(&mut self, i: usize, value: &'a [u8]) {
        let a = &mut self.attrs[i];
        a.value = Some(value);
        if let Origin::Received { value_replaced, .. } = &mut a.origin {
            *value_replaced = true;
            self.rewritten = true;
        }
    }

    /// See [`OpKind::RenameLabel`]; the decoded path is `metricstransform::update_label`.
    fn rename_label(&mut self, key: &'a str, new_key: &'a str, values: &'a HashMap<String, Vec<u8>>) {
        let Some(mut at) = self.attrs.iter().position(|a| a.key == key.as_bytes()) else { return };
        if !new_key.is_empty() && new_key != key {
            if let Some(existing) = self.attrs.iter().position(|a| a.key == new_key.as_bytes()) {
                match self.attrs.remove(existing).origin {
                    Origin::Added => self.added -= 1,
                    Origin::Received { .. } => self.rewritten = true,
                }
                if existing < at {
                    at -= 1;
                }
            }
            let a = &mut self.attrs[at];
            a.key = new_key.as_bytes();
            if let Origin::Received { key_replaced, .. } = &mut a.origin {
                *key_replaced = true;
                self.rewritten = true;
            }
        }
        if let Some(new_value) = values.get(string_value(self.attrs[at].value)) {
            self.replace_value(at, new_value);
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
                OpKind::RenameLabel { new_key, values } => self.rename_label(&op.key, new_key, values),
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
                Origin::Received { kv, key_replaced, value_replaced } => {
                    if !self.rewritten {
                        continue;
                    }
                    if !key_replaced && !value_replaced {
                        put_len_field(out, tag, kv);
                        continue;
                    }
                    let o = open(out, tag, kv.len());
                    // Every field but the replaced ones, as received (the key, `key_strindex`,
                    // unknown fields), then the new key and value.
                    for f in Fields::new(kv).flatten() {
                        let replaced = (f.tag == KEY && key_replaced) || (f.tag == VALUE && value_replaced);
                        if !replaced {
                            out.extend_from_slice(&kv[f.span]);
                        }
                    }
                    if key_replaced {
                        put_len_field(out, KEY, a.key);
                    }
                    if let Some(v) = a.value.filter(|_| value_replaced) {
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

/// An encoded `AnyValue` as a string the way upstream's `Value.Str()` reads a label: the string
/// when the value is one, else "". Of several oneof fields the last is the one decoding keeps.
fn string_value(value: Option<&[u8]>) -> &str {
    let mut text = "";
    for f in Fields::new(value.unwrap_or_default()).flatten() {
        match f.tag {
            // Validated on receipt, so UTF-8.
            STRING_VALUE if f.wire_type == LEN => text = std::str::from_utf8(f.payload).unwrap_or_default(),
            1..=LAST_VALUE_VARIANT => text = "",
            _ => {}
        }
    }
    text
}
