//! How the processors render an OTLP value as text (hashing, extraction, conversion, span
//! renaming, matching), shared by the decoded path and the encoded one (`edit`).

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value as V};

/// String form of a value (used by hash, extract, convert, span renaming and matching).
pub fn any_to_string(v: &AnyValue) -> String {
    match &v.value {
        Some(V::StringValue(s)) => s.clone(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::DoubleValue(d)) => d.to_string(),
        Some(V::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(V::ArrayValue(a)) => format!("[{}]", a.values.iter().map(any_to_string).collect::<Vec<_>>().join(",")),
        Some(V::KvlistValue(kv)) => format!(
            "{{{}}}",
            kv.values
                .iter()
                .map(|k| format!("{}:{}", k.key, k.value.as_ref().map(any_to_string).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        ),
        // Dictionary-indexed strings only appear in profiles; they carry no text here.
        Some(V::StringValueStrindex(i)) => i.to_string(),
        None => String::new(),
    }
}
