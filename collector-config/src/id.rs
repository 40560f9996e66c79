//! Component ids `type[/name]` and the component kinds (receiver, processor, ...) they belong to.

use std::fmt;

/// The section of the config a component is defined in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `receivers:` section.
    Receiver,
    /// `processors:` section.
    Processor,
    /// `exporters:` section.
    Exporter,
    /// `extensions:` section.
    Extension,
}

impl Kind {
    /// The YAML section name (`receivers`, ...).
    pub fn section(self) -> &'static str {
        match self {
            Kind::Receiver => "receivers",
            Kind::Processor => "processors",
            Kind::Exporter => "exporters",
            Kind::Extension => "extensions",
        }
    }
}

/// A component id such as `otlp` or `otlp/alloy`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    /// The type as written in the config (before alias resolution).
    pub ty: String,
    /// The optional instance name after the `/`.
    pub name: Option<String>,
}

impl ComponentId {
    /// Parses `type[/name]`; the type must be `[a-zA-Z][a-zA-Z0-9_]*` like upstream.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ty, name) = match s.split_once('/') {
            Some((t, n)) => (t.trim(), Some(n.trim())),
            None => (s.trim(), None),
        };
        let valid_type = ty.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && ty.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_type {
            return Err(format!("invalid component id {s:?}: type must match [a-zA-Z][a-zA-Z0-9_]*"));
        }
        if let Some(n) = name {
            if n.is_empty() {
                return Err(format!("invalid component id {s:?}: name after '/' must not be empty"));
            }
            if n.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("invalid component id {s:?}: name must not contain whitespace"));
            }
        }
        Ok(Self { ty: ty.to_owned(), name: name.map(str::to_owned) })
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.ty, n),
            None => f.write_str(&self.ty),
        }
    }
}

/// The telemetry signal a pipeline carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Metric data points.
    Metrics,
    /// Log records.
    Logs,
}

impl Signal {
    /// Parses a pipeline type (`traces`, `metrics`, `logs`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "traces" => Some(Signal::Traces),
            "metrics" => Some(Signal::Metrics),
            "logs" => Some(Signal::Logs),
            _ => None,
        }
    }

    /// The lowercase name used in ids and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids() {
        let id = ComponentId::parse("otlp/alloy").unwrap();
        assert_eq!(id.ty, "otlp");
        assert_eq!(id.name.as_deref(), Some("alloy"));
        assert_eq!(id.to_string(), "otlp/alloy");
        assert_eq!(ComponentId::parse("batch").unwrap().name, None);
        assert!(ComponentId::parse("otlp/").is_err());
        assert!(ComponentId::parse("9x").is_err());
        assert!(ComponentId::parse("").is_err());
    }
}
