//! The settings every HTTP server component shares with upstream's `confighttp.ServerConfig`
//! timeouts (`read_header_timeout`, `idle_timeout`, `read_timeout`), added to a component's config
//! struct by [`http_server_config!`] so the three fields, their docs and their meaning are written once.
//!
//! A macro and not a shared struct: upstream writes these beside the component's own fields, and
//! `#[serde(flatten)]` would switch off `deny_unknown_fields` (a misspelt field must be refused).

/// Defines a config struct with the given fields plus the three server timeouts, and its
/// `limits()` (the listener limits they select, see `limits::ServerLimits`).
#[macro_export]
macro_rules! http_server_config {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field : $ty, )*
            /// Time allowed to read a request's headers (default 1m; `0` disables).
            #[serde(deserialize_with = "crate::duration::de_opt_duration")]
            pub read_header_timeout: Option<std::time::Duration>,
            /// Time a keep-alive connection may wait for its next request (default 1m; `0` disables).
            #[serde(deserialize_with = "crate::duration::de_opt_duration")]
            pub idle_timeout: Option<std::time::Duration>,
            /// Time allowed to read a request body (default 1m; upstream: none; `0` disables).
            #[serde(deserialize_with = "crate::duration::de_opt_duration")]
            pub read_timeout: Option<std::time::Duration>,
        }

        impl $name {
            /// The listener limits these settings select.
            pub fn limits(&self) -> $crate::limits::ServerLimits {
                $crate::limits::ServerLimits::from_settings(self.read_header_timeout, self.idle_timeout, self.read_timeout)
            }
        }
    };
}
