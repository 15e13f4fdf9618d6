//! What a component imports and exports, and whether wasmhook can give it
//! those imports. Refusals name the import and say why.

use std::time::Duration;

use wasmtime::component::types::ComponentItem;

use super::engine::{Compiled, Runtime};
use super::error::LoadError;

/// Facts about a compiled component, for `wasmhook check` and the API.
#[derive(Debug, Clone)]
pub struct ComponentInfo {
    /// Hex SHA-256 of the component bytes.
    pub hash: String,
    /// Size of the component file in bytes.
    pub size: usize,
    /// Time spent compiling (or loading from the cache).
    pub compile_time: Duration,
    /// Whether the compiled code came from the on-disk cache.
    pub cache_hit: bool,
    /// Imported interface and function names.
    pub imports: Vec<String>,
    /// Exported names.
    pub exports: Vec<String>,
}

/// wasmhook's own interfaces.
const PLUGIN_PACKAGE: &str = "wasmhook:plugin/";
/// WASI packages plugins may import.
const ALLOWED_WASI: [&str; 5] = [
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
];

/// Decide whether an import is one wasmhook provides.
pub(crate) fn check_import(name: &str) -> Result<(), LoadError> {
    if name.starts_with("wasi:http/") {
        return Err(LoadError::ForbiddenImport {
            import: name.to_owned(),
            why: "plugins return requests; the host sends them (build JavaScript with \
                  `-d http fetch-event`, and do not call an HTTP client from plugin code)",
        });
    }
    if name.starts_with("wasi:sockets/") {
        return Err(LoadError::ForbiddenImport {
            import: name.to_owned(),
            why: "plugins have no network access; return requests and the host sends them",
        });
    }
    if name.starts_with(PLUGIN_PACKAGE) || ALLOWED_WASI.iter().any(|p| name.starts_with(p)) {
        return Ok(());
    }
    Err(LoadError::UnknownImport(name.to_owned()))
}

impl Runtime {
    /// Compile a component and list its imports and exports, without
    /// checking it against the contract.
    pub fn inspect(&self, bytes: &[u8]) -> Result<ComponentInfo, LoadError> {
        let compiled = self.compile(bytes)?;
        Ok(self.info(&compiled))
    }

    pub(crate) fn info(&self, compiled: &Compiled) -> ComponentInfo {
        let engine = &self.inner.engine;
        let ty = compiled.component.component_type();
        ComponentInfo {
            hash: compiled.hash.clone(),
            size: compiled.size,
            compile_time: compiled.compile_time,
            cache_hit: compiled.cache_hit,
            imports: ty.imports(engine).map(|(n, _)| n.to_owned()).collect(),
            exports: ty
                .exports(engine)
                .map(|(n, item)| match item.ty {
                    ComponentItem::ComponentFunc(_) => format!("{n} (func)"),
                    ComponentItem::ComponentInstance(_) => format!("{n} (instance)"),
                    _ => n.to_owned(),
                })
                .collect(),
        }
    }

    /// Check a compiled component's imports and exports against the
    /// `transformer` world, before linking, with specific messages.
    pub(crate) fn check_world(&self, info: &ComponentInfo) -> Result<(), LoadError> {
        for import in &info.imports {
            check_import(import)?;
        }
        if !info.exports.iter().any(|e| e == "transform (func)") {
            let found = if info.exports.is_empty() {
                "it exports nothing".to_owned()
            } else {
                format!("it exports {}", info.exports.join(", "))
            };
            return Err(LoadError::WrongWorld(format!(
                "missing export `transform: func(event: event) -> result<decision, string>`; {found} \
                 (is it built for another world?)"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_policy() {
        for ok in [
            "wasmhook:plugin/log@0.1.0",
            "wasmhook:plugin/kv@0.1.0",
            "wasi:cli/stdout@0.2.12",
            "wasi:io/streams@0.2.0",
            "wasi:filesystem/preopens@0.2.3",
            "wasi:clocks/wall-clock@0.2.0",
            "wasi:random/random@0.2.0",
        ] {
            assert!(check_import(ok).is_ok(), "{ok}");
        }
        let err = check_import("wasi:http/outgoing-handler@0.2.0")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("plugins return requests; the host sends them"),
            "{err}"
        );
        let err = check_import("wasi:sockets/tcp@0.2.0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no network"), "{err}");
        assert!(matches!(
            check_import("acme:db/query"),
            Err(LoadError::UnknownImport(_))
        ));
    }
}
