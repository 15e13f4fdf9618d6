//! `wasmhook-toolchain`: a thin command line over the `wasmhook_toolchain`
//! library, used by `scripts/plugins/c.sh`.
//!
//! ```text
//! wasmhook-toolchain bindgen-c --wit <dir> [--world transformer] --out-dir <dir>
//! wasmhook-toolchain componentize <core.wasm> --wit <dir> [--world transformer] -o <out.wasm>
//! wasmhook-toolchain imports <component.wasm>
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use wasmhook_toolchain::{DEFAULT_WORLD, component_imports, componentize, generate_c_bindings};

const USAGE: &str = "usage:
  wasmhook-toolchain bindgen-c --wit <dir> [--world transformer] --out-dir <dir>
  wasmhook-toolchain componentize <core.wasm> --wit <dir> [--world transformer] -o <out.wasm>
  wasmhook-toolchain imports <component.wasm>";

/// Parsed options shared by the subcommands.
#[derive(Default)]
struct Args {
    input: Option<PathBuf>,
    wit: Option<PathBuf>,
    world: Option<String>,
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let args = match parse(rest) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(command, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse(rest: &[String]) -> Result<Args, String> {
    let mut args = Args::default();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        let mut value = || {
            iter.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--wit" => args.wit = Some(value()?.into()),
            "--world" => args.world = Some(value()?),
            "--out-dir" | "-o" | "--output" => args.out = Some(value()?.into()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            input if args.input.is_none() => args.input = Some(input.into()),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    Ok(args)
}

fn run(command: &str, args: Args) -> Result<(), String> {
    let world = args.world.as_deref().unwrap_or(DEFAULT_WORLD);
    let required = |value: Option<PathBuf>, what: &str| value.ok_or(format!("missing {what}"));
    match command {
        "bindgen-c" => {
            let wit = required(args.wit, "--wit <dir>")?;
            let out = required(args.out, "--out-dir <dir>")?;
            for path in generate_c_bindings(&wit, world, &out).map_err(|e| e.to_string())? {
                println!("{}", path.display());
            }
        }
        "componentize" => {
            let input = required(args.input, "<core.wasm>")?;
            let wit = required(args.wit, "--wit <dir>")?;
            let out = required(args.out, "-o <out.wasm>")?;
            let core = std::fs::read(&input)
                .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
            let component = componentize(&core, &wit, world)
                .map_err(|e| format!("{}: {e}", input.display()))?;
            std::fs::write(&out, &component)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        }
        "imports" => {
            let input = required(args.input, "<component.wasm>")?;
            let bytes = std::fs::read(&input)
                .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
            for name in component_imports(&bytes).map_err(|e| e.to_string())? {
                println!("{name}");
            }
        }
        "-h" | "--help" | "help" => println!("{USAGE}"),
        other => return Err(format!("unknown command {other}\n{USAGE}")),
    }
    Ok(())
}
