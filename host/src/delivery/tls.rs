//! TLS client configuration: rustls with the ring provider, the webpki
//! root set, optional extra roots, and ALPN for HTTP/2 and HTTP/1.1.
//!
//! Built once per client. Uses an explicit crypto provider so the process
//! never depends on which rustls provider another crate installed. Knows
//! nothing of connections or requests.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// An extra root certificate could not be parsed.
    #[error("extra root certificate #{index} is invalid: {source}")]
    BadRoot {
        /// Position in the list of extra roots.
        index: usize,
        /// rustls' complaint.
        source: rustls::Error,
    },
    /// The provider does not support the default protocol versions.
    #[error("TLS provider: {0}")]
    Provider(rustls::Error),
}

/// A client configuration trusting the webpki roots plus `extra_roots`
/// (e.g. a private CA, or a test CA), offering `h2` when `http2` is set.
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
    http2: bool,
) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for (index, cert) in extra_roots.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|source| TlsConfigError::BadRoot { index, source })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsConfigError::Provider)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_h2_only_when_asked() {
        let with = client_config(&[], true).unwrap();
        assert_eq!(
            with.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let without = client_config(&[], false).unwrap();
        assert_eq!(without.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn rejects_a_garbage_root() {
        let err = client_config(&[CertificateDer::from(vec![1, 2, 3])], true).unwrap_err();
        assert!(
            matches!(err, TlsConfigError::BadRoot { index: 0, .. }),
            "{err}"
        );
    }
}
