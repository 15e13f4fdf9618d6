//! Core module → component: embeds the world's type metadata when the
//! module lacks it, checks the world's exports are there, adapts WASI
//! preview1 with wasmtime's reactor adapter, and validates the result.

use std::path::Path;

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{ComponentTypeRef, Encoding, Parser, Payload};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{Resolve, WorldId, WorldItem, WorldKey};

use crate::ToolchainError;
use crate::wit::load_world;

/// Turns `core`, a wasm32-wasi (preview1) core module, into a component of
/// `world` from the WIT package in `wit_dir`.
///
/// A module built with the `wit-bindgen` C bindings carries the world's
/// types in a `component-type` custom section; for a module without one the
/// world is embedded first. Imports of `wasi_snapshot_preview1` are served
/// by the reactor adapter of wasmtime 48, so the result only imports WASI
/// preview2 interfaces besides the world's own imports.
pub fn componentize(core: &[u8], wit_dir: &Path, world: &str) -> Result<Vec<u8>, ToolchainError> {
    let module = CoreModule::parse(core)?;
    let (resolve, world_id) = load_world(wit_dir, world)?;
    if let Some(name) = first_missing_export(&resolve, world_id, &module.exports) {
        return Err(ToolchainError::MissingExport {
            name,
            world: world.to_string(),
        });
    }

    let mut bytes = core.to_vec();
    if !module.has_component_type {
        wit_component::embed_component_metadata(
            &mut bytes,
            &resolve,
            world_id,
            StringEncoding::UTF8,
        )
        .map_err(|e| ToolchainError::Embed(format!("{e:#}")))?;
    }

    ComponentEncoder::default()
        .validate(true)
        .module(&bytes)
        .and_then(|encoder| {
            encoder.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|encoder| encoder.encode())
        .map_err(|e| ToolchainError::Encode(format!("{e:#}")))
}

/// The names of what a component asks its host for, in order, e.g.
/// `wasmhook:plugin/log@0.1.0` or `wasi:io/streams@0.2.6`: its top-level
/// imports except type imports (a world's `use` of `event` and `decision`
/// shows up as those, and the host provides nothing for them).
pub fn component_imports(component: &[u8]) -> Result<Vec<String>, ToolchainError> {
    let not_component = |detail: String| ToolchainError::NotComponent(detail);
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        match payload.map_err(|e| not_component(e.to_string()))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err(not_component("this is a core module".into()));
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| not_component(e.to_string()))?;
                    if !matches!(import.ty, ComponentTypeRef::Type(_)) {
                        imports.push(import.name.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

/// What componentizing needs to know about a core module.
struct CoreModule {
    /// The module's export names, to check the world's functions are there
    /// before `wit-component` fails with a less direct message.
    exports: Vec<String>,
    /// Whether a `component-type*` custom section (from `wit-bindgen`) is
    /// present; without one the world is embedded.
    has_component_type: bool,
}

impl CoreModule {
    fn parse(bytes: &[u8]) -> Result<Self, ToolchainError> {
        let bad = |detail: String| ToolchainError::NotCoreModule(detail);
        let mut module = CoreModule {
            exports: Vec::new(),
            has_component_type: false,
        };
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.map_err(|e| bad(e.to_string()))? {
                Payload::Version { encoding, .. } if encoding != Encoding::Module => {
                    return Err(bad("this is already a component".into()));
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.map_err(|e| bad(e.to_string()))?;
                        module.exports.push(export.name.to_string());
                    }
                }
                Payload::CustomSection(section) if section.name().starts_with("component-type") => {
                    module.has_component_type = true;
                }
                _ => {}
            }
        }
        Ok(module)
    }
}

/// The first function the world exports at top level (like `transform`)
/// that the module does not export under either the legacy name (`name`)
/// or a mangled one ending in `|name` or `]name`.
fn first_missing_export(resolve: &Resolve, world: WorldId, exports: &[String]) -> Option<String> {
    resolve.worlds[world]
        .exports
        .iter()
        .filter_map(|(key, item)| match (key, item) {
            (WorldKey::Name(name), WorldItem::Function(_)) => Some(name),
            _ => None,
        })
        .find(|name| {
            !exports.iter().any(|export| {
                export == *name
                    || export.ends_with(&format!("|{name}"))
                    || export.ends_with(&format!("]{name}"))
            })
        })
        .cloned()
}

#[cfg(test)]
mod tests;
