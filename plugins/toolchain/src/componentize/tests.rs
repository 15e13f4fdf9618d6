//! Componentizing tiny core modules written in WAT.

use std::path::PathBuf;

use super::*;
use crate::DEFAULT_WORLD;

fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit")
}

/// The core signature of `transform`: the event record flattened (id,
/// name, option<string> user-id, u64 timestamp, properties) and a pointer
/// to the result returned.
const TRANSFORM: &str = r#"
    (func (export "transform")
        (param i32 i32 i32 i32 i32 i32 i32 i64 i32 i32) (result i32)
        i32.const 0)
"#;

const REALLOC: &str = r#"
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
        i32.const 64)
"#;

fn module(imports: &str, body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        "(module {imports} (memory (export \"memory\") 1) {REALLOC} {body})"
    ))
    .unwrap()
}

fn exported_functions(component: &[u8]) -> Vec<String> {
    let wit_component::DecodedWasm::Component(resolve, world) =
        wit_component::decode(component).unwrap()
    else {
        panic!("decoded a WIT package, not a component");
    };
    resolve.worlds[world]
        .exports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .collect()
}

#[test]
fn module_without_metadata_becomes_a_transformer_component() {
    let core = module("", TRANSFORM);
    let component = componentize(&core, &wit_dir(), DEFAULT_WORLD).unwrap();
    assert!(
        component.starts_with(&[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]),
        "component header"
    );
    assert_eq!(exported_functions(&component), ["transform"]);
    // The world's `use types.{event, decision}` is all it needs: no WASI,
    // no log/config/kv since the module imports none of them, and the type
    // imports `event` and `decision` are not listed.
    assert_eq!(
        component_imports(&component).unwrap(),
        ["wasmhook:plugin/types@0.1.0"]
    );
}

#[test]
fn wasi_preview1_calls_are_adapted_to_preview2() {
    let core = module(
        r#"(import "wasmhook:plugin/log@0.1.0" "log" (func (param i32 i32 i32)))
           (import "wasi_snapshot_preview1" "fd_write"
               (func (param i32 i32 i32 i32) (result i32)))"#,
        TRANSFORM,
    );
    let component = componentize(&core, &wit_dir(), DEFAULT_WORLD).unwrap();
    let imports = component_imports(&component).unwrap();
    assert!(
        imports.iter().any(|i| i == "wasmhook:plugin/log@0.1.0"),
        "{imports:?}"
    );
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:io/streams@0.2")),
        "{imports:?}"
    );
    assert!(
        imports
            .iter()
            .all(|i| i.starts_with("wasmhook:plugin/") || i.starts_with("wasi:")),
        "{imports:?}"
    );
    assert!(
        !imports.iter().any(|i| i.starts_with("wasi:http")),
        "{imports:?}"
    );
}

#[test]
fn module_without_transform_is_refused_by_name() {
    let core = module("", "");
    let err = componentize(&core, &wit_dir(), DEFAULT_WORLD).unwrap_err();
    assert!(
        matches!(&err, ToolchainError::MissingExport { name, world }
            if name == "transform" && world == DEFAULT_WORLD),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the module does not export `transform`, which world `transformer` requires"
    );
}

#[test]
fn transform_with_wrong_signature_fails_to_encode() {
    let core = module(
        "",
        r#"(func (export "transform") (param i32) (result i32) i32.const 0)"#,
    );
    let err = componentize(&core, &wit_dir(), DEFAULT_WORLD).unwrap_err();
    assert!(matches!(err, ToolchainError::Encode(_)), "{err}");
}

#[test]
fn bytes_that_are_not_wasm_are_refused() {
    let err = componentize(b"int main() {}", &wit_dir(), DEFAULT_WORLD).unwrap_err();
    assert!(matches!(err, ToolchainError::NotCoreModule(_)), "{err}");
}

#[test]
fn a_component_is_not_componentized_twice() {
    let component = componentize(&module("", TRANSFORM), &wit_dir(), DEFAULT_WORLD).unwrap();
    let err = componentize(&component, &wit_dir(), DEFAULT_WORLD).unwrap_err();
    assert!(matches!(err, ToolchainError::NotCoreModule(_)), "{err}");
}

#[test]
fn imports_of_a_core_module_are_refused() {
    let err = component_imports(&module("", TRANSFORM)).unwrap_err();
    assert!(matches!(err, ToolchainError::NotComponent(_)), "{err}");
}

#[test]
fn transform_is_found_under_legacy_and_mangled_export_names() {
    let (resolve, world) = load_world(&wit_dir(), DEFAULT_WORLD).unwrap();
    let cases: [(&[&str], Option<&str>); 5] = [
        (&["transform"], None),
        (&["cm32p2||transform"], None),
        (&["[async-lift]transform"], None),
        (&["transformer", "_initialize", "memory"], Some("transform")),
        (&[], Some("transform")),
    ];
    for (exports, missing) in cases {
        let exports: Vec<String> = exports.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            first_missing_export(&resolve, world, &exports).as_deref(),
            missing,
            "exports {exports:?}"
        );
    }
}
