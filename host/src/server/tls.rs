//! TLS for the listener (`[server] tls_cert_file` / `tls_key_file`): the
//! certificate chain and key read from PEM files into a rustls acceptor
//! offering HTTP/2 and HTTP/1.1, and with `tls_client_ca_file`, mutual TLS:
//! every client must present a certificate those CAs issued. `serve`
//! re-reads the files on every reload, so a renewed certificate (or CA) is
//! used without a restart; each new connection takes the acceptor current
//! at its handshake.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::pem::{self, PemError};

/// Why the listener's TLS could not be set up. Never contains key bytes.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate or key file could not be read or holds none.
    #[error(transparent)]
    File(#[from] PemError),
    /// The key does not go with the certificate, or rustls refused them.
    #[error("the certificate and key do not make a usable pair: {0}")]
    Pair(rustls::Error),
    /// The client CA certificates cannot verify client certificates.
    #[error("the client CA certificates are not usable: {0}")]
    ClientCa(String),
}

/// An acceptor serving the chain in `cert_file` with the key in `key_file`;
/// with `client_ca_file`, one that requires a client certificate issued
/// by one of the CAs in it.
pub fn acceptor(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
) -> Result<TlsAcceptor, TlsError> {
    let certs = pem::certificates(cert_file)?;
    let key = pem::private_key(key_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Pair)?;
    let builder = match client_ca_file {
        None => builder.with_no_client_auth(),
        Some(file) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in pem::certificates(file)? {
                roots
                    .add(ca)
                    .map_err(|e| TlsError::ClientCa(format!("{}: {e}", file.display())))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| TlsError::ClientCa(format!("{}: {e}", file.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
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
        match acceptor(cert, key, None) {
            Ok(_) => panic!("{} and {} loaded", cert.display(), key.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_matching_pair_loads_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "a");
        assert!(acceptor(&cert, &key, None).is_ok());
        // A client CA file: certificates required; a file without one is
        // named.
        assert!(acceptor(&cert, &key, Some(&cert)).is_ok());
        let e = match acceptor(&cert, &key, Some(&key)) {
            Ok(_) => panic!("a key file as client CA loaded"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("no PEM certificate"), "{e}");

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
