//! PEM files: certificate chains and private keys, read for the listener's
//! TLS (`[server]`) and for deliveries (`[plugins.delivery] ca_file`,
//! `client_cert_file`, `client_key_file`). Errors name the file and never
//! hold key bytes.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A PEM file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct PemError {
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl PemError {
    fn new(path: &Path, reason: impl ToString) -> Self {
        Self {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// A regular file: opening a FIFO would wait for a writer, holding up the
/// load (or reload) that reads it.
fn regular(path: &Path) -> Result<(), PemError> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(PemError::new(path, "not a regular file")),
        _ => Ok(()),
    }
}

/// Every certificate in the PEM file at `path`, in order (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    regular(path)?;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| PemError::new(path, e))?;
    if certs.is_empty() {
        return Err(PemError::new(path, "no PEM certificate in it"));
    }
    Ok(certs)
}

/// The first private key in the PEM file at `path`.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    regular(path)?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            PemError::new(path, "no PEM private key in it")
        }
        other => PemError::new(path, other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_with_pem_in_them_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let e = certificates(dir.path()).unwrap_err().to_string();
        assert!(e.ends_with(": not a regular file"), "{e}");
        let e = private_key(Path::new("/dev/zero")).unwrap_err().to_string();
        assert_eq!(e, "/dev/zero: not a regular file");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(
            certificates(&empty)
                .unwrap_err()
                .to_string()
                .contains("no PEM certificate")
        );
        assert!(
            private_key(&empty)
                .unwrap_err()
                .to_string()
                .contains("no PEM private key")
        );
    }
}
