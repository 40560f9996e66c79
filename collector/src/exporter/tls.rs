//! Client TLS/credential helpers shared by the OTLP exporters.

use base64::Engine as _;

use collector_config::extension::basicauth::BasicClientAuth;
use collector_config::shared::TlsConfig;

/// Reads the CA PEM from `ca_pem` or `ca_file`.
pub fn ca_pem(tls: &TlsConfig) -> Result<Option<Vec<u8>>, String> {
    if let Some(p) = &tls.ca_pem {
        return Ok(Some(p.as_bytes().to_vec()));
    }
    match &tls.ca_file {
        Some(f) => std::fs::read(f).map(Some).map_err(|e| format!("tls.ca_file: cannot read {f}: {e}")),
        None => Ok(None),
    }
}

/// Whether the bundled public roots (Mozilla's, our "system pool") are trusted besides the
/// configured CA. As upstream's `configtls`: a `ca_file`/`ca_pem` *replaces* the public roots, so
/// a private CA can be pinned, unless `include_system_ca_certs_pool: true` adds them back.
pub fn trust_public_roots(tls: &TlsConfig) -> bool {
    (tls.ca_file.is_none() && tls.ca_pem.is_none()) || tls.include_system_ca_certs_pool
}

/// PEM certificate and private key.
pub type CertAndKey = (Vec<u8>, Vec<u8>);

/// Reads the client certificate and key if both are configured.
pub fn client_identity(tls: &TlsConfig) -> Result<Option<CertAndKey>, String> {
    let read = |inline: &Option<String>, file: &Option<String>, field: &str| -> Result<Option<Vec<u8>>, String> {
        if let Some(p) = inline {
            return Ok(Some(p.as_bytes().to_vec()));
        }
        file.as_ref().map(|f| std::fs::read(f).map_err(|e| format!("tls.{field}: cannot read {f}: {e}"))).transpose()
    };
    match (read(&tls.cert_pem, &tls.cert_file, "cert_file")?, read(&tls.key_pem, &tls.key_file, "key_file")?) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        _ => Err("tls: cert_file and key_file must be set together".into()),
    }
}

/// `Authorization: Basic ...` header value for basicauth client credentials.
pub fn basic_auth_header(c: &BasicClientAuth) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header() {
        let h = basic_auth_header(&BasicClientAuth { username: "user".into(), password: "pass".into() });
        assert_eq!(h, "Basic dXNlcjpwYXNz");
    }

    #[test]
    fn a_configured_ca_replaces_the_public_roots_unless_told_otherwise() {
        assert!(trust_public_roots(&TlsConfig::default()), "no CA configured: public roots");
        let pinned = TlsConfig { ca_file: Some("/etc/ca.pem".into()), ..TlsConfig::default() };
        assert!(!trust_public_roots(&pinned), "ca_file pins the private CA");
        let inline = TlsConfig { ca_pem: Some("-----BEGIN CERTIFICATE-----".into()), ..TlsConfig::default() };
        assert!(!trust_public_roots(&inline));
        let both = TlsConfig { include_system_ca_certs_pool: true, ..pinned };
        assert!(trust_public_roots(&both), "include_system_ca_certs_pool adds them back");
    }
}
