//! TLS for API requests: rustls with the platform's root certificates,
//! loaded on the first TLS handshake rather than when the client is built.
//!
//! Loading and parsing the system store (about 300 certificates on Debian)
//! costs ~4 MB of memory and ~20 ms of start-up; a run against an `http://`
//! API never needs it. Verification is the same as reqwest's default
//! (`rustls-platform-verifier`); only the moment the roots are read moves.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error as TlsError, SignatureScheme};
use std::sync::{Arc, OnceLock};

/// The platform verifier, built on first use.
#[derive(Debug)]
pub struct LazyPlatformVerifier {
    provider: Arc<CryptoProvider>,
    inner: OnceLock<Result<rustls_platform_verifier::Verifier, TlsError>>,
}

impl LazyPlatformVerifier {
    pub fn new(provider: Arc<CryptoProvider>) -> LazyPlatformVerifier {
        LazyPlatformVerifier {
            provider,
            inner: OnceLock::new(),
        }
    }

    /// Whether the roots have been loaded (for tests).
    pub fn loaded(&self) -> bool {
        self.inner.get().is_some()
    }

    fn verifier(&self) -> Result<&rustls_platform_verifier::Verifier, TlsError> {
        self.inner
            .get_or_init(|| rustls_platform_verifier::Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyPlatformVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    // Handshake signatures need no roots: checked with the provider's
    // algorithms, as the platform verifier does.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The client TLS configuration: TLS 1.2 and 1.3, ALPN for HTTP/2 and
/// HTTP/1.1 (as reqwest's own), roots loaded lazily.
pub fn client_config() -> Result<(rustls::ClientConfig, Arc<LazyPlatformVerifier>), String> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let verifier = Arc::new(LazyPlatformVerifier::new(provider.clone()));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((config, verifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost` (openssl, RSA 2048).
    const SELF_SIGNED: &str = include_str!("testdata/self_signed.pem");

    fn der(pem: &str) -> CertificateDer<'static> {
        use base64::Engine as _;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        CertificateDer::from(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap(),
        )
    }

    #[test]
    fn roots_load_on_the_first_handshake_and_verify_as_before() {
        let (_, verifier) = client_config().unwrap();
        assert!(!verifier.loaded(), "built without reading the system store");
        let cert = der(SELF_SIGNED);
        let name = ServerName::try_from("localhost").unwrap();
        let err = verifier
            .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        assert!(verifier.loaded());
        // A certificate no root vouches for is refused.
        assert!(matches!(err, TlsError::InvalidCertificate(_)), "{err:?}");
    }
}
