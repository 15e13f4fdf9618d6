//! Load-time checks of the TLS files a config names: the listener's
//! certificate and key (`[server] tls_cert_file`, `tls_key_file`) and a
//! plugin's delivery CA and client certificate (`[plugins.delivery]
//! ca_file`, `client_cert_file`, `client_key_file`). Each file is parsed
//! (with `pem`) and each pair built once (with the listener's and the
//! delivery client's own builders), so a bad file stops start-up with its
//! key instead of failing the first handshake.

use std::path::Path;

use super::error::{Issue, KeyPath};
use super::plugin::DeliveryConfig;
use super::types::ServerConfig;
use crate::delivery::ClientIdentity;
use crate::pem;

/// Both or neither of a certificate and its key; the key names what each
/// one is for.
fn pair<'a>(
    cert: Option<&'a Path>,
    key: Option<&'a Path>,
    (cert_key, key_key): (&str, &str),
    path: &KeyPath,
) -> Result<Option<(&'a Path, &'a Path)>, Issue> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(Issue::at(
            path.key(cert_key),
            format!("needs {key_key} too (the certificate's private key)"),
        )),
        (None, Some(_)) => Err(Issue::at(
            path.key(key_key),
            format!("needs {cert_key} too (the certificate chain)"),
        )),
        (Some(c), Some(k)) => Ok(Some((c, k))),
    }
}

/// `[server] tls_cert_file`, `tls_key_file` and `tls_client_ca_file`, at
/// `path`.
pub(crate) fn check_server(server: &ServerConfig, path: &KeyPath) -> Result<(), Issue> {
    let names = ("tls_cert_file", "tls_key_file");
    let files = pair(
        server.tls_cert_file.as_deref(),
        server.tls_key_file.as_deref(),
        names,
        path,
    )?;
    let client_ca = server.tls_client_ca_file.as_deref();
    let at_client_ca = path.key("tls_client_ca_file");
    let Some((cert, key)) = files else {
        if client_ca.is_some() {
            return Err(Issue::at(
                at_client_ca,
                "needs tls_cert_file and tls_key_file: client certificates are asked for in a TLS handshake",
            ));
        }
        return Ok(());
    };
    let at_cert = path.key(names.0);
    pem::certificates(cert).map_err(|e| Issue::at(at_cert.clone(), e.to_string()))?;
    pem::private_key(key).map_err(|e| Issue::at(path.key(names.1), e.to_string()))?;
    if let Some(ca) = client_ca {
        pem::certificates(ca).map_err(|e| Issue::at(at_client_ca.clone(), e.to_string()))?;
    }
    crate::server::tls::acceptor(cert, key, client_ca)
        .map(drop)
        .map_err(|e| {
            let at = match e {
                crate::server::tls::TlsError::ClientCa(_) => at_client_ca,
                _ => at_cert,
            };
            Issue::at(at, e.to_string())
        })
}

/// A plugin's `ca_file`, `client_cert_file` and `client_key_file`, at
/// `path` (its `delivery` table).
pub(crate) fn check_delivery(delivery: &DeliveryConfig, path: &KeyPath) -> Result<(), Issue> {
    let roots = match &delivery.ca_file {
        Some(file) => {
            pem::certificates(file).map_err(|e| Issue::at(path.key("ca_file"), e.to_string()))?
        }
        None => Vec::new(),
    };
    let names = ("client_cert_file", "client_key_file");
    let files = pair(
        delivery.client_cert_file.as_deref(),
        delivery.client_key_file.as_deref(),
        names,
        path,
    )?;
    let identity = match files {
        Some((cert, key)) => Some(ClientIdentity {
            chain: pem::certificates(cert)
                .map_err(|e| Issue::at(path.key(names.0), e.to_string()))?,
            key: pem::private_key(key).map_err(|e| Issue::at(path.key(names.1), e.to_string()))?,
        }),
        None => None,
    };
    crate::delivery::tls::client_config(&roots, identity.as_ref(), true)
        .map(drop)
        .map_err(|e| {
            let at = if identity.is_some() {
                names.0
            } else {
                "ca_file"
            };
            Issue::at(path.key(at), e.to_string())
        })
}
