//! Loading a WIT directory and selecting one world in it.

use std::path::Path;

use wit_parser::{Resolve, WorldId};

use crate::ToolchainError;

/// Parses the WIT package in `wit_dir` (with its `deps/`) and finds `world`
/// in it.
pub(crate) fn load_world(
    wit_dir: &Path,
    world: &str,
) -> Result<(Resolve, WorldId), ToolchainError> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(wit_dir)
        .map_err(|e| ToolchainError::Wit {
            path: wit_dir.to_path_buf(),
            detail: format!("{e:#}"),
        })?;
    let world_id =
        resolve
            .select_world(&[package], Some(world))
            .map_err(|e| ToolchainError::World {
                world: world.to_string(),
                detail: format!("{e:#}"),
            })?;
    Ok((resolve, world_id))
}
