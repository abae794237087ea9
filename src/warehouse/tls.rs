//! One TLS configuration (rustls with the ring provider) shared by both HTTP clients, the
//! query runner's `reqwest` and the `clickhouse` crate's hyper client. Roots come from the
//! platform verifier, which reads the system's CA bundle only when a TLS handshake first needs
//! it: plain `http://` connections, the common case, never pay for parsing it.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::error::{Result, WarehouseError};
use super::settings::TlsSettings;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for `tls`: system roots plus `ca_file`, or no verification at all
/// when the user asked for `insecure_skip_verify`.
pub fn client_config(tls: &TlsSettings) -> Result<ClientConfig> {
    // Also the process default, so any other rustls user (a plain `reqwest::Client::new()`)
    // finds a provider; a second install is refused and harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| WarehouseError::Settings(format!("TLS setup failed: {e}")))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
    } else {
        let mut extra = Vec::new();
        if let Some(path) = &tls.ca_file {
            extra = certificates(path, "CA certificates from")?;
        }
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider())
            .map_err(|e| WarehouseError::Settings(format!("TLS setup failed: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
    };
    match &tls.client_identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert_file, key_file)) => {
            let chain = certificates(cert_file, "the client certificate")?;
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
                WarehouseError::Settings(format!(
                    "cannot read the client key {}: {e}",
                    key_file.display()
                ))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                WarehouseError::Settings(format!(
                    "the client certificate {} does not go with the key {}: {e}",
                    cert_file.display(),
                    key_file.display()
                ))
            })
        }
    }
}

/// The PEM certificates in `path`; an unreadable file, or one without any, is an error that
/// says which file it was (`what` names it in the message).
fn certificates(path: &std::path::Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            WarehouseError::Settings(format!("cannot read {what} {}: {e}", path.display()))
        })?;
    if certs.is_empty() {
        return Err(WarehouseError::Settings(format!(
            "{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            path.display()
        )));
    }
    Ok(certs)
}

/// `tls.insecure_skip_verify: true`: accepts any certificate and host name, for test servers
/// with self-signed certificates. Signatures are still checked, so the session is encrypted.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_insecure_configs_build() {
        assert!(client_config(&TlsSettings::default()).is_ok());
        let insecure = TlsSettings {
            insecure_skip_verify: true,
            ..TlsSettings::default()
        };
        assert!(client_config(&insecure).is_ok());
    }

    #[test]
    fn unreadable_or_empty_ca_file_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(&TlsSettings {
            ca_file: Some(empty.clone()),
            ..TlsSettings::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
        let missing = dir.path().join("missing.pem");
        let err = client_config(&TlsSettings {
            ca_file: Some(missing),
            ..TlsSettings::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("cannot read CA certificates"),
            "{err}"
        );
    }
}
