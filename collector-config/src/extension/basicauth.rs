//! The `basicauth` extension's config: credentials exporters send (`client_auth`) or receivers
//! check (`htpasswd`).

use serde::Deserialize;

use crate::check::{Check, Validate};
use crate::shared::de_lenient_string;

/// `basicauth` extension.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuthConfig {
    /// Credentials added to outgoing requests of exporters that reference this extension.
    pub client_auth: Option<BasicClientAuth>,
    /// Server-side credentials for receivers (`file` or `inline` htpasswd).
    pub htpasswd: Option<Htpasswd>,
}

/// `basicauth.client_auth`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BasicClientAuth {
    /// User name (use `${env:USER}` to keep it out of the file).
    #[serde(deserialize_with = "de_lenient_string")]
    pub username: String,
    /// Password (use `${env:PASSWORD}`).
    #[serde(deserialize_with = "de_lenient_string")]
    pub password: String,
}

/// `basicauth.htpasswd`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Htpasswd {
    /// htpasswd file path.
    pub file: Option<String>,
    /// Inline `user:password` lines.
    pub inline: Option<String>,
}

impl Validate for BasicAuthConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        if self.client_auth.is_none() && self.htpasswd.is_none() {
            check.error(format!("{p}: one of client_auth or htpasswd is required"));
        }
    }
}
