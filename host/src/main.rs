//! The `wasmhook` binary: a thin shell over [`wasmhook::cli`].

fn main() -> std::process::ExitCode {
    wasmhook::cli::main()
}
