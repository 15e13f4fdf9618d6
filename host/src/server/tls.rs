//! TLS for the listener (`[server] tls_cert_file` / `tls_key_file`): the
//! certificate chain and key read from PEM files into a rustls acceptor
//! offering HTTP/2 and HTTP/1.1. `serve` re-reads the files on every
//! reload, so a renewed certificate is served without a restart; each new
//! connection takes the acceptor current at its handshake.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why the listener's TLS could not be set up. Never contains key bytes.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read or holds no certificate.
    #[error("{path}: {reason}")]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file could not be read or holds no private key.
    #[error("{path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key does not go with the certificate, or rustls refused them.
    #[error("the certificate and key do not make a usable pair: {0}")]
    Pair(rustls::Error),
}

/// An acceptor serving the chain in `cert_file` with the key in `key_file`.
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: cert_file.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: cert_file.display().to_string(),
            reason: "no PEM certificate in it".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::Key {
        path: key_file.display().to_string(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key in it".into(),
            other => other.to_string(),
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Pair)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Pair)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.cert.pem()).unwrap();
        std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
        (c, k)
    }

    fn err(cert: &Path, key: &Path) -> String {
        match acceptor(cert, key) {
            Ok(_) => panic!("{} and {} loaded", cert.display(), key.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_matching_pair_loads_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "a");
        assert!(acceptor(&cert, &key).is_ok());

        let missing = dir.path().join("missing.pem");
        let e = err(&missing, &key);
        assert!(e.starts_with(&missing.display().to_string()), "{e}");
        let e = err(&key, &key);
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = err(&cert, &cert);
        assert!(e.contains("no PEM private key"), "{e}");
        let (_, other_key) = pair(dir.path(), "b");
        let e = err(&cert, &other_key);
        assert!(e.contains("do not make a usable pair"), "{e}");
        assert!(!e.contains("PRIVATE KEY"), "no key material: {e}");
    }
}
