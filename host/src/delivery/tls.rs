//! TLS client configuration: rustls with the ring provider, the webpki
//! root set, optional extra roots, an optional client certificate (for
//! receivers that require mutual TLS), and ALPN for HTTP/2 and HTTP/1.1.
//!
//! Built once per client. Uses an explicit crypto provider so the process
//! never depends on which rustls provider another crate installed. Knows
//! nothing of connections or requests.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A client certificate chain and its private key, presented to receivers
/// that ask for one (mutual TLS). Its `Debug` never shows the key.
pub struct ClientIdentity {
    /// The certificate, then any intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The certificate's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for ClientIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

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
    /// The client certificate and key are unusable or do not match.
    #[error("the client certificate and key do not make a usable pair: {0}")]
    ClientIdentity(rustls::Error),
}

/// A client configuration trusting the webpki roots plus `extra_roots`
/// (e.g. a private CA, or a test CA), presenting `identity` when a server
/// asks for a client certificate, offering `h2` when `http2` is set.
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
    identity: Option<&ClientIdentity>,
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
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsConfigError::Provider)?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(TlsConfigError::ClientIdentity)?,
        None => builder.with_no_client_auth(),
    };
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
        let with = client_config(&[], None, true).unwrap();
        assert_eq!(
            with.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let without = client_config(&[], None, false).unwrap();
        assert_eq!(without.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn rejects_a_garbage_root() {
        let err = client_config(&[CertificateDer::from(vec![1, 2, 3])], None, true).unwrap_err();
        assert!(
            matches!(err, TlsConfigError::BadRoot { index: 0, .. }),
            "{err}"
        );
    }
}
