//! Changing telemetry without decoding it: attribute actions on resources (of traces, metrics and
//! logs), on spans or log records, span renames from attribute values, and the common
//! `metricstransform` transforms (metric renames, `add_label`, `update_label`; see [`metrics`]),
//! applied in one pass that copies the received protobuf and rewrites only the messages that
//! change.
//!
//! Why: the `resource`, `attributes` and `span` processors are in nearly every pipeline users run
//! (and in the one the operator renders). Decoding a request into `ExportTraceServiceRequest`
//! allocates every string of every span, and encoding it again for export walks it all twice
//! more; that made a pipeline with these processors slower than the Go collector. Here an
//! attribute list is a list of views into the received bytes, an inserted attribute is appended
//! to its span, a renamed span gets one new name field, and every span nothing happened to is
//! copied as bytes. Lengths of the enclosing messages are rewritten on the way out.
//!
//! The result decodes to exactly what decode → process → encode gives (the `edit_equivalence`
//! fuzz target and the processor tests compare the two); fields the decoded path would drop
//! (unknown fields, from newer protocol versions) are kept. Shapes that protobuf merges on decode
//! (a resource sent twice in one `ResourceSpans`, a `KeyValue` with two keys) and groups are left
//! to the decoded path: [`apply`] returns `None` and the processor decodes as before.

mod attrs;
pub mod fields;
pub mod metrics;
#[cfg(test)]
mod tests;

pub use attrs::{AttrEdit, AttrOp, OpKind, Source};
pub use metrics::{MetricRule, MetricsEdit, NamePattern};

use bytes::Bytes;
use prost::Message as _;

use self::attrs::AttrList;
use self::fields::{Fields, LEN, Unsupported, close, open, put_len_field};
use super::wire::Encoded;
use crate::config::id::Signal;

/// `Export{Trace,Logs}ServiceRequest.resource_{spans,logs}`.
const RESOURCE_GROUPS: u32 = 1;
/// `Resource{Spans,Logs}.resource`.
const RESOURCE: u32 = 1;
/// `Resource{Spans,Logs}.scope_{spans,logs}`.
const SCOPE_GROUPS: u32 = 2;
/// `Scope{Spans,Metrics,Logs}.{spans,metrics,log_records}`.
const ITEMS: u32 = 2;
/// `Resource.attributes`.
const RESOURCE_ATTRIBUTES: u32 = 1;
/// `Span.name`.
const SPAN_NAME: u32 = 5;
/// `Span.attributes`.
const SPAN_ATTRIBUTES: u32 = 9;
/// `LogRecord.attributes`.
const LOG_ATTRIBUTES: u32 = 6;
/// `AnyValue.string_value`.
const STRING_VALUE: u32 = 1;

/// Span renaming from attribute values (the `span` processor's `name.from_attributes`): when
/// every key is present, the name becomes their values joined by `separator`.
#[derive(Debug, Clone)]
pub struct Rename {
    /// The attribute keys, in order (not empty).
    pub keys: Vec<String>,
    /// Put between the values.
    pub separator: String,
}

/// The changes of one pass. Per item, attribute actions run before the rename, which therefore
/// sees their result (the order of an `attributes` processor before a `span` processor).
#[derive(Debug, Clone, Copy, Default)]
pub struct Edit<'e> {
    /// Actions on each resource's attributes.
    pub resource: Option<&'e AttrEdit>,
    /// Actions on each span's or log record's attributes.
    pub items: Option<&'e AttrEdit>,
    /// Span renaming (traces only).
    pub rename: Option<&'e Rename>,
    /// `metricstransform` transforms (metrics only).
    pub metrics: Option<&'e MetricsEdit>,
}

/// Applies `edit` to encoded traces, metrics or logs. `None` when the encoded form cannot do it
/// exactly (item edits on metrics, a rename on logs, or a shape protobuf merges on decode): decode
/// and process instead.
pub fn apply(data: &Encoded, edit: &Edit<'_>) -> Option<Encoded> {
    let item_attributes = match data.signal() {
        _ if edit.metrics.is_some() && data.signal() != Signal::Metrics => return None,
        Signal::Traces => SPAN_ATTRIBUTES,
        Signal::Logs if edit.rename.is_none() => LOG_ATTRIBUTES,
        // The resource part of a metrics request has the traces' shape: `ResourceMetrics` (1)
        // holds the `Resource` (1) and `ScopeMetrics` (2). Items are data points under five types.
        Signal::Metrics if edit.items.is_none() && edit.rename.is_none() => 0,
        _ => return None,
    };
    data.try_map_chunks(|bytes| edit_request(bytes, edit, item_attributes).ok())
}

/// Per-request state: the attribute list, name buffer and selected metric rules reused for every
/// item.
struct Walker<'a> {
    edit: Edit<'a>,
    item_attributes: u32,
    list: AttrList<'a>,
    name: Vec<u8>,
    rules: Vec<&'a MetricRule>,
    changed: bool,
}

fn edit_request<'a>(bytes: &'a Bytes, edit: &Edit<'a>, item_attributes: u32) -> Result<Bytes, Unsupported> {
    let buf: &[u8] = bytes;
    let mut w = Walker {
        edit: *edit,
        item_attributes,
        list: AttrList::default(),
        name: Vec::new(),
        rules: Vec::new(),
        changed: false,
    };
    // Room for a few added attributes per item without growing.
    let mut out = Vec::with_capacity(buf.len() + buf.len() / 4 + 64);
    let mut copied = 0;
    for f in Fields::new(buf) {
        let f = f?;
        if (f.tag, f.wire_type) == (RESOURCE_GROUPS, LEN) {
            out.extend_from_slice(&buf[copied..f.span.start]);
            let before = out.len();
            let o = open(&mut out, RESOURCE_GROUPS, f.payload.len());
            if w.resource_group(&mut out, f.payload)? {
                close(&mut out, o);
            } else {
                out.truncate(before);
            }
            copied = f.span.end;
        }
    }
    if !w.changed {
        return Ok(bytes.clone());
    }
    out.extend_from_slice(&buf[copied..]);
    Ok(Bytes::from(out))
}

impl<'a> Walker<'a> {
    fn touches_items(&self) -> bool {
        self.edit.items.is_some() || self.edit.rename.is_some()
    }

    /// One `ResourceSpans`/`ResourceMetrics`/`ResourceLogs`; false when it is to be dropped
    /// (metrics transforms drop resources left without scopes).
    fn resource_group(&mut self, out: &mut Vec<u8>, group: &'a [u8]) -> Result<bool, Unsupported> {
        let mut copied = 0;
        let mut resource_seen = false;
        let mut scopes_kept = 0;
        for f in Fields::new(group) {
            let f = f?;
            let is_resource = (f.tag, f.wire_type) == (RESOURCE, LEN) && self.edit.resource.is_some();
            let is_scope = (f.tag, f.wire_type) == (SCOPE_GROUPS, LEN) && self.touches_items();
            if let (Some(metrics), (SCOPE_GROUPS, LEN)) = (self.edit.metrics, (f.tag, f.wire_type)) {
                out.extend_from_slice(&group[copied..f.span.start]);
                copied = f.span.end;
                let before = out.len();
                let o = open(out, SCOPE_GROUPS, f.payload.len());
                if self.metric_scope(out, metrics, f.payload)? {
                    close(out, o);
                    scopes_kept += 1;
                } else {
                    out.truncate(before);
                    self.changed = true;
                }
                continue;
            }
            if !(is_resource || is_scope) {
                continue;
            }
            out.extend_from_slice(&group[copied..f.span.start]);
            copied = f.span.end;
            if is_resource {
                if resource_seen {
                    // Two resource fields are merged into one on decode.
                    return Err(Unsupported);
                }
                resource_seen = true;
                self.resource(out, f.payload)?;
            } else {
                let o = open(out, SCOPE_GROUPS, f.payload.len());
                self.scope_group(out, f.payload)?;
                close(out, o);
            }
        }
        out.extend_from_slice(&group[copied..]);
        if self.edit.metrics.is_some() && scopes_kept == 0 {
            self.changed = true;
            return Ok(false);
        }
        if self.edit.resource.is_some() && !resource_seen {
            // The decoded path creates the resource it edits, even when no action adds anything.
            self.changed = true;
            self.resource(out, &[])?;
        }
        Ok(true)
    }

    /// One `ScopeMetrics`: metrics no rule selects are copied in runs, selected ones rewritten.
    /// False when it holds no metric (the decoded path drops it).
    fn metric_scope(&mut self, out: &mut Vec<u8>, edit: &'a MetricsEdit, group: &'a [u8]) -> Result<bool, Unsupported> {
        let mut copied = 0;
        let mut metrics = 0;
        for f in Fields::new(group) {
            let f = f?;
            if (f.tag, f.wire_type) != (ITEMS, LEN) {
                continue;
            }
            metrics += 1;
            out.extend_from_slice(&group[copied..f.span.start]);
            let before = out.len();
            if self.metric(out, edit, f.payload)? {
                self.changed = true;
                copied = f.span.end;
            } else {
                // Unchanged: its bytes go out with the next run.
                out.truncate(before);
                copied = f.span.start;
            }
        }
        out.extend_from_slice(&group[copied..]);
        Ok(metrics > 0)
    }

    /// One `Metric`, written as field `ITEMS` with its new name and edited data points; false
    /// (and whatever was written to be discarded) when nothing about it changes.
    fn metric(&mut self, out: &mut Vec<u8>, edit: &'a MetricsEdit, metric: &'a [u8]) -> Result<bool, Unsupported> {
        let mut name: &[u8] = &[];
        let mut data_fields = 0;
        for f in Fields::new(metric) {
            let f = f?;
            if f.tag == metrics::METRIC_NAME {
                // A repeated string field: the last one wins, as on decode.
                name = f.payload;
            } else if metrics::point_attributes(f.tag).is_some() {
                data_fields += 1;
            }
        }
        let name = std::str::from_utf8(name).map_err(|_| Unsupported)?;
        self.rules.clear();
        let mut rules = std::mem::take(&mut self.rules);
        let new_name = edit.select(name, &mut rules).filter(|n| n != name);
        let edits_points = rules.iter().any(|r| !r.labels.ops.is_empty());
        let result = if new_name.is_none() && !edits_points {
            Ok(false)
        } else if edits_points && data_fields > 1 {
            // Two data fields are merged or replaced on decode: left to the decoded path.
            Err(Unsupported)
        } else {
            self.write_metric(out, metric, &rules, new_name.as_deref(), edits_points)
        };
        self.rules = rules;
        result
    }

    fn write_metric(
        &mut self,
        out: &mut Vec<u8>,
        metric: &'a [u8],
        rules: &[&'a MetricRule],
        new_name: Option<&str>,
        edits_points: bool,
    ) -> Result<bool, Unsupported> {
        let mut changed = new_name.is_some();
        let o = open(out, ITEMS, metric.len());
        let mut copied = 0;
        for f in Fields::new(metric) {
            let f = f?;
            let renamed = f.tag == metrics::METRIC_NAME && new_name.is_some();
            let points = metrics::point_attributes(f.tag).filter(|_| edits_points && f.wire_type == LEN);
            if !renamed && points.is_none() {
                continue;
            }
            out.extend_from_slice(&metric[copied..f.span.start]);
            copied = f.span.end;
            if let Some(attr_tag) = points {
                let d = open(out, f.tag, f.payload.len());
                changed |= self.data_points(out, rules, f.payload, attr_tag)?;
                close(out, d);
            }
        }
        out.extend_from_slice(&metric[copied..]);
        if let Some(name) = new_name {
            put_len_field(out, metrics::METRIC_NAME, name.as_bytes());
        }
        close(out, o);
        Ok(changed)
    }

    /// A `Gauge`/`Sum`/... message: each data point's attributes get the rules' label operations.
    /// Returns whether any point changed.
    fn data_points(
        &mut self,
        out: &mut Vec<u8>,
        rules: &[&'a MetricRule],
        container: &'a [u8],
        attr_tag: u32,
    ) -> Result<bool, Unsupported> {
        let mut changed = false;
        let mut copied = 0;
        for f in Fields::new(container) {
            let f = f?;
            if (f.tag, f.wire_type) != (metrics::DATA_POINTS, LEN) {
                continue;
            }
            let point = f.payload;
            self.list.clear();
            for pf in Fields::new(point) {
                let pf = pf?;
                if pf.tag == attr_tag {
                    self.list.push_received(&pf)?;
                }
            }
            for rule in rules {
                self.list.apply(&rule.labels);
            }
            if !self.list.changed() {
                continue;
            }
            changed = true;
            out.extend_from_slice(&container[copied..f.span.start]);
            copied = f.span.end;
            let o = open(out, metrics::DATA_POINTS, point.len());
            write_message(out, point, &self.list, attr_tag, None);
            close(out, o);
        }
        out.extend_from_slice(&container[copied..]);
        Ok(changed)
    }

    /// A resource: its attribute actions, written back as field `RESOURCE`.
    fn resource(&mut self, out: &mut Vec<u8>, resource: &'a [u8]) -> Result<(), Unsupported> {
        let Some(actions) = self.edit.resource else { return Ok(()) };
        self.list.clear();
        for f in Fields::new(resource) {
            let f = f?;
            if f.tag == RESOURCE_ATTRIBUTES {
                self.list.push_received(&f)?;
            }
        }
        self.list.apply(actions);
        self.changed |= self.list.changed();
        let o = open(out, RESOURCE, resource.len());
        write_message(out, resource, &self.list, RESOURCE_ATTRIBUTES, None);
        close(out, o);
        Ok(())
    }

    /// One `ScopeSpans`/`ScopeLogs`: unchanged items are copied in runs, changed ones rewritten.
    fn scope_group(&mut self, out: &mut Vec<u8>, group: &'a [u8]) -> Result<(), Unsupported> {
        let mut copied = 0;
        for f in Fields::new(group) {
            let f = f?;
            if (f.tag, f.wire_type) != (ITEMS, LEN) {
                continue;
            }
            let item = f.payload;
            let renamed = self.edit_item(item)?;
            if !renamed && !self.list.changed() {
                continue;
            }
            self.changed = true;
            out.extend_from_slice(&group[copied..f.span.start]);
            copied = f.span.end;
            let o = open(out, ITEMS, item.len());
            let name = renamed.then_some(self.name.as_slice());
            write_message(out, item, &self.list, self.item_attributes, name);
            close(out, o);
        }
        out.extend_from_slice(&group[copied..]);
        Ok(())
    }

    /// Reads one span's or log record's attributes (and a span's name), applies the actions and
    /// the rename. Returns whether the name changed; the new one is in `self.name`.
    fn edit_item(&mut self, item: &'a [u8]) -> Result<bool, Unsupported> {
        self.list.clear();
        let mut name: &[u8] = &[];
        for f in Fields::new(item) {
            let f = f?;
            if f.tag == self.item_attributes {
                self.list.push_received(&f)?;
            } else if f.tag == SPAN_NAME && self.edit.rename.is_some() {
                // A repeated string field: the last one wins, as on decode.
                name = f.payload;
            }
        }
        if let Some(actions) = self.edit.items {
            self.list.apply(actions);
        }
        let Some(rename) = self.edit.rename else { return Ok(false) };
        self.name.clear();
        for (i, key) in rename.keys.iter().enumerate() {
            let Some(value) = self.list.get(key) else { return Ok(false) };
            if i > 0 {
                self.name.extend_from_slice(rename.separator.as_bytes());
            }
            push_value_text(&mut self.name, value)?;
        }
        Ok(self.name != name)
    }
}

/// Writes a message whose attribute list (fields `attr_tag`) is `list`: as received plus added
/// attributes when only additions happened, else every other field as received followed by the
/// whole list. `new_name` replaces a span's name fields.
fn write_message(out: &mut Vec<u8>, msg: &[u8], list: &AttrList<'_>, attr_tag: u32, new_name: Option<&[u8]>) {
    if !list.rewritten() && new_name.is_none() {
        out.extend_from_slice(msg);
    } else {
        let mut copied = 0;
        // `msg` was walked without error before, so every field frames.
        for f in Fields::new(msg).flatten() {
            let dropped = (list.rewritten() && f.tag == attr_tag) || (new_name.is_some() && f.tag == SPAN_NAME);
            if dropped {
                out.extend_from_slice(&msg[copied..f.span.start]);
                copied = f.span.end;
            }
        }
        out.extend_from_slice(&msg[copied..]);
        if let Some(name) = new_name {
            put_len_field(out, SPAN_NAME, name);
        }
    }
    list.write(out, attr_tag);
}

/// Appends an encoded `AnyValue`'s text as the decoded path renders it (`value::any_to_string`).
/// Strings, by far the common case, are read in place; other values are decoded.
fn push_value_text(out: &mut Vec<u8>, value: &[u8]) -> Result<(), Unsupported> {
    let mut fields = Fields::new(value);
    if let (Some(Ok(f)), None) = (fields.next(), fields.next())
        && (f.tag, f.wire_type) == (STRING_VALUE, LEN)
    {
        out.extend_from_slice(f.payload);
        return Ok(());
    }
    let decoded = opentelemetry_proto::tonic::common::v1::AnyValue::decode(value).map_err(|_| Unsupported)?;
    out.extend_from_slice(super::value::any_to_string(&decoded).as_bytes());
    Ok(())
}
