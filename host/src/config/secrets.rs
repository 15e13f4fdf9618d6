//! Secret values (`[plugins.secrets]`), read at load time from an
//! environment variable (`env`) or a file (`file`: a mounted Kubernetes
//! secret, a file Vault Agent renders); `oauth2` secrets are only checked
//! here, their tokens are fetched while the host runs. A file is read on every load, so a
//! reload picks up a rotated value. Messages name the variable or file,
//! never the value.

use std::io::Read as _;
use std::path::Path;

use super::env::EnvLookup;
use super::error::{Issue, KeyPath};
use super::plugin::PluginConfig;
use crate::model::Secret;

/// Largest secret file: a token, a key or a certificate, not a dump.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Read each secret of `plugin` (at `path`) from its variable or file.
pub(crate) fn resolve(
    plugin: &mut PluginConfig,
    path: &KeyPath,
    env: EnvLookup<'_>,
) -> Result<(), Issue> {
    for (name, secret) in &mut plugin.secrets {
        let at = path.key("secrets").key(name.as_str());
        let value = match (&secret.env, &secret.file, secret.oauth2.as_mut()) {
            (Some(var), None, None) => {
                from_env(var, env).map_err(|m| Issue::at(at.key("env"), m))?
            }
            (None, Some(file), None) => {
                read_file(file).map_err(|m| Issue::at(at.key("file"), m))?
            }
            (None, None, Some(oauth)) => {
                // Fetched while the host runs.
                super::oauth2::resolve(oauth, &at.key("oauth2"))?;
                continue;
            }
            (None, None, None) => {
                return Err(Issue::at(
                    at,
                    "needs env (an environment variable), file (a file) or oauth2 (a token endpoint) for the value",
                ));
            }
            _ => {
                return Err(Issue::at(
                    at,
                    "sets more than one of env, file and oauth2; take the value from one of them",
                ));
            }
        };
        secret.value = Secret::new(value);
    }
    Ok(())
}

fn from_env(var: &str, env: EnvLookup<'_>) -> Result<String, String> {
    match env(var) {
        Some(value) if !value.is_empty() => Ok(value),
        Some(_) => Err(format!("environment variable {var} is empty")),
        None => Err(format!("environment variable {var} is not set")),
    }
}

/// The file's contents without trailing line breaks (`echo token > file`
/// writes one). Must be a regular file, UTF-8, not empty, at most
/// [`MAX_FILE_BYTES`]. Also what `${file:PATH}` reads.
pub(crate) fn read_file(file: &Path) -> Result<String, String> {
    let shown = file.display();
    // Opening a FIFO would wait for a writer, and hold up the load (and a
    // reload) for as long.
    match std::fs::metadata(file) {
        Ok(m) if !m.is_file() => return Err(format!("{shown} is not a regular file")),
        _ => {}
    }
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{shown} is over {} KiB; a secret file holds one value",
            MAX_FILE_BYTES / 1024
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))?;
    let value = text.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        return Err(format!("{shown} is empty"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_holds_one_value_without_its_trailing_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let cases: [(&str, &[u8], Result<&str, &str>); 6] = [
            ("plain", b"tok-1", Ok("tok-1")),
            ("newline", b"tok-2\n", Ok("tok-2")),
            ("crlf", b" tok 3 \r\n\r\n", Ok(" tok 3 ")),
            ("blank", b"\n", Err("is empty")),
            ("binary", b"\xff\xfe", Err("is not UTF-8 text")),
            ("missing", b"", Err("cannot read")),
        ];
        for (name, bytes, want) in cases {
            let path = if name == "missing" {
                dir.path().join(name)
            } else {
                write(name, bytes)
            };
            match (read_file(&path), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{name}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{name}: {got}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        assert!(
            read_file(dir.path())
                .unwrap_err()
                .contains("not a regular file")
        );
        let big = write("big", &vec![b'x'; MAX_FILE_BYTES as usize + 1]);
        assert!(read_file(&big).unwrap_err().contains("over 64 KiB"));
        let edge = write("edge", &vec![b'x'; MAX_FILE_BYTES as usize]);
        assert_eq!(read_file(&edge).unwrap().len(), MAX_FILE_BYTES as usize);
    }
}
