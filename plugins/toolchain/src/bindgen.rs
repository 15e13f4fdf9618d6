//! C bindings for a world, through the `wit-bindgen-c` library: the same
//! files the `wit-bindgen c` command line writes, without installing it.

use std::path::{Path, PathBuf};

use wit_bindgen_core::Files;

use crate::ToolchainError;
use crate::wit::load_world;

/// Generates the C bindings of `world` from the WIT package in `wit_dir`
/// into `out_dir` (created if missing) and returns the paths written, e.g.
/// `transformer.h`, `transformer.c` and `transformer_component_type.o`.
pub fn generate_c_bindings(
    wit_dir: &Path,
    world: &str,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, ToolchainError> {
    let (mut resolve, world_id) = load_world(wit_dir, world)?;
    let mut files = Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world_id, &mut files)
        .map_err(|e| ToolchainError::Bindgen(format!("{e:#}")))?;

    std::fs::create_dir_all(out_dir).map_err(|source| ToolchainError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (name, contents) in files.iter() {
        let path = out_dir.join(name);
        std::fs::write(&path, contents).map_err(|source| ToolchainError::Io {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_WORLD;

    fn wit_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit")
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wasmhook-toolchain-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn bindings_for_transformer_declare_the_export_and_imports() {
        let out = scratch_dir("bindgen");
        let written = generate_c_bindings(&wit_dir(), DEFAULT_WORLD, &out).unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "transformer.c",
                "transformer.h",
                "transformer_component_type.o"
            ]
        );
        let header = std::fs::read_to_string(out.join("transformer.h")).unwrap();
        assert!(
            header.contains("exports_transformer_transform("),
            "{header}"
        );
        assert!(header.contains("wasmhook_plugin_config_get("), "{header}");
        assert!(header.contains("wasmhook_plugin_log_log("), "{header}");
        let object = std::fs::read(out.join("transformer_component_type.o")).unwrap();
        assert!(
            object.starts_with(b"\0asm"),
            "the type object is a wasm object file"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn unknown_world_is_reported_by_name() {
        let out = scratch_dir("bindgen-unknown");
        let err = generate_c_bindings(&wit_dir(), "no-such-world", &out).unwrap_err();
        assert!(
            matches!(&err, ToolchainError::World { world, .. } if world == "no-such-world"),
            "{err}"
        );
        assert!(!out.exists(), "nothing is written on failure");
    }

    #[test]
    fn missing_wit_directory_is_a_wit_error() {
        let err = generate_c_bindings(
            Path::new("/nonexistent/wit"),
            DEFAULT_WORLD,
            &scratch_dir("bindgen-nowit"),
        )
        .unwrap_err();
        assert!(matches!(err, ToolchainError::Wit { .. }), "{err}");
    }
}
