//! The `wasmhook` command line: argument parsing, wiring, exit codes.
//!
//! - `wasmhook check PLUGIN.wasm`: does the component implement the
//!   contract? Exit 0 yes, 1 no, 2 unreadable file or bad arguments.
//! - `wasmhook run PLUGIN.wasm --event FILE|-`: one invocation, no network;
//!   prints one JSON object. Exit 0 fire/skip, 1 plugin error, 2 bad input.
//! - `wasmhook serve --config FILE`: the host (see [`crate::serve`]); exit 2
//!   when the config or store cannot be loaded. `--check` only loads the
//!   config and builds the plugins (exit 0 when it would start).
//! - `wasmhook backup OUT` / `wasmhook restore BACKUP` (`--db FILE` or
//!   `--config FILE`): copy the store while it runs, put a copy back (see
//!   [`crate::backup`]); exit 1 when the copy fails, 2 for a missing or
//!   existing file, a database that is not usable or is in use.
//! - `wasmhook sink --listen ADDR`: a local receiver (see [`crate::sink`]).
//! - `wasmhook new NAME --lang L` / `wasmhook build [DIR]`: authoring (see
//!   [`crate::authoring`]); build exits 1 when the build or the check
//!   fails, 2 when a toolchain is missing (with the install command).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use crate::api::views;
use crate::model::Decision;
use crate::runtime::{Invocation, LoadError, PluginLimits, PluginSpec, Runtime, RuntimeConfig};
use crate::store::MemoryKv;

/// Event-driven webhook host: WebAssembly plugins decide, the host delivers.
#[derive(Debug, Parser)]
#[command(name = "wasmhook", version, about)]
pub struct Cli {
    /// Directory for compiled components (default: $WASMHOOK_CACHE_DIR or ~/.cache/wasmhook/components).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Most MiB the compile cache may hold (default 1024); the least recently used entries are removed beyond it.
    #[arg(long, global = true, value_name = "MB",
          value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub cache_max_mb: Option<u64>,
    /// Do not read or write the compile cache.
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Log lines as text or as one JSON object per line (levels: WASMHOOK_LOG, default warn).
    #[arg(long, global = true, value_enum, env = "WASMHOOK_LOG_FORMAT", default_value_t = crate::logging::LogFormat::Text)]
    pub log_format: crate::logging::LogFormat,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that a component implements wasmhook:plugin/transformer.
    Check {
        /// The component file.
        plugin: PathBuf,
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a plugin once on one event and print its decision as JSON.
    Run(RunArgs),
    /// Scaffold a new plugin from a template.
    New {
        /// Plugin name (lower-case letters, digits, '-').
        name: String,
        /// Language: rust, js, python, c or zig.
        #[arg(long)]
        lang: crate::authoring::Lang,
        /// Directory to create the plugin in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build a plugin directory into a component, then check it.
    Build {
        /// The plugin directory (its language is detected).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output file (default: DIR/build/<dir name>.wasm).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Run the webhook host: ingest API, durable queue, plugins, delivery.
    Serve {
        /// The config file.
        #[arg(long, short, default_value = "wasmhook.toml")]
        config: PathBuf,
        /// Override `server.listen` (e.g. 127.0.0.1:0 for a random port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Check the config and build every plugin, then exit (0 when it would start), without opening the store or listening.
        #[arg(long)]
        check: bool,
    },
    /// Copy the store to a new file while `serve` keeps running (one consistent, checked snapshot).
    Backup {
        /// The new file; never overwritten.
        out: PathBuf,
        /// Which database.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Put a backup in place of the store (refused while `serve` runs); the database replaced is kept, renamed.
    Restore {
        /// The backup file.
        backup: PathBuf,
        /// Which database.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// A local webhook receiver that prints each request and verifies its signature.
    Sink {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
        /// Signing secret (whsec_…) to verify webhook-signature with.
        #[arg(long)]
        secret: Option<String>,
        /// HTTP status to answer every request with.
        #[arg(long, default_value_t = 200)]
        status: u16,
    },
}

/// Which database `backup` and `restore` work on.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The database file (default: `store.path` of --config).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// The config file whose `store.path` to use (its variables must be set).
    #[arg(long, short, default_value = "wasmhook.toml", conflicts_with = "db")]
    pub config: PathBuf,
}

/// Arguments of `wasmhook run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The component file.
    pub plugin: PathBuf,
    /// Event file in the ingest format, or `-` for standard input.
    #[arg(long, value_name = "FILE|-")]
    pub event: String,
    /// A plugin setting visible through config.get (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,
    /// Deadline for the invocation in milliseconds.
    #[arg(long, default_value_t = PluginLimits::default().timeout_ms)]
    pub timeout_ms: u64,
    /// Memory cap in MiB.
    #[arg(long, default_value_t = PluginLimits::default().memory_mb)]
    pub memory_mb: u64,
    /// Fuel budget (enables fuel metering and reports fuel consumed).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Directory mounted read-only at /assets.
    #[arg(long, value_name = "DIR")]
    pub assets: Option<PathBuf>,
    /// Keep the plugin's kv store in this JSON file between runs (read
    /// before, rewritten after; missing: empty).
    #[arg(long, value_name = "FILE")]
    pub kv: Option<PathBuf>,
}

/// Print a line to stdout; a closed pipe (`wasmhook check x | head`) is
/// not an error worth a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Entry point: parse arguments, run, map to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init(cli.log_format);
    let cache = Cache {
        dir: if cli.no_cache {
            None
        } else {
            cli.cache_dir
                .clone()
                .or_else(crate::runtime::default_cache_dir)
        },
        max_bytes: cli
            .cache_max_mb
            .unwrap_or(crate::runtime::DEFAULT_CACHE_MAX_MB)
            << 20,
    };
    if matches!(cli.command, Command::Serve { .. })
        && (cli.cache_dir.is_some() || cli.no_cache || cli.cache_max_mb.is_some())
    {
        eprintln!(
            "wasmhook: --cache-dir, --no-cache and --cache-max-mb do not apply to serve: \
             set cache_dir and cache_max_mb in the config's [runtime] section"
        );
        return ExitCode::from(2);
    }
    match cli.command {
        Command::Check { plugin, json } => check(&plugin, json, cache),
        Command::Run(args) => run(args, cache),
        Command::New { name, lang, dir } => new_plugin(&name, lang, &dir),
        Command::Build { dir, out } => build_plugin(&dir, out, cache),
        Command::Serve {
            config,
            check: true,
            ..
        } => check_config(&config),
        Command::Serve { config, listen, .. } => serve(config, listen),
        Command::Backup { out, store } => crate::backup::backup(&store, &out),
        Command::Restore { backup, store } => crate::backup::restore(&store, &backup),
        Command::Sink {
            listen,
            secret,
            status,
        } => sink(listen, secret, status),
    }
}

fn authoring_home() -> Result<PathBuf, ExitCode> {
    crate::authoring::home().ok_or_else(|| {
        eprintln!(
            "wasmhook: new/build need a wasmhook checkout (templates, SDKs, build scripts); set WASMHOOK_HOME to one"
        );
        ExitCode::from(2)
    })
}

fn new_plugin(name: &str, lang: crate::authoring::Lang, parent: &Path) -> ExitCode {
    let home = match authoring_home() {
        Ok(h) => h,
        Err(code) => return code,
    };
    match crate::authoring::new_plugin(&home, name, lang, parent) {
        Ok((dir, files)) => {
            out!("created {lang} plugin {name} in {}", dir.display());
            for f in files {
                out!("  {}", f.display());
            }
            out!(
                "next: wasmhook build {} && wasmhook run {}/build/{name}.wasm --event {}/event.json --config url=https://example.com/hook",
                dir.display(),
                dir.display(),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasmhook: {e}");
            ExitCode::from(2)
        }
    }
}

fn build_plugin(dir: &Path, out: Option<PathBuf>, cache: Cache) -> ExitCode {
    let home = match authoring_home() {
        Ok(h) => h,
        Err(code) => return code,
    };
    let dir = match dir.canonicalize() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("wasmhook: {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    let out = out.unwrap_or_else(|| {
        let name = dir
            .file_name()
            .map_or_else(|| "plugin".into(), |n| n.to_string_lossy().into_owned());
        dir.join("build").join(format!("{name}.wasm"))
    });
    match crate::authoring::build(&home, &dir, &out) {
        Ok(lang) => {
            out!("built {lang} plugin → {}", out.display());
            check(&out, false, cache)
        }
        Err(e @ crate::authoring::BuildError::Failed { .. }) => {
            eprintln!("wasmhook: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("wasmhook: {e}");
            ExitCode::from(2)
        }
    }
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("wasmhook: cannot start the async runtime: {e}");
            ExitCode::from(2)
        })
}

fn serve(config: PathBuf, listen: Option<std::net::SocketAddr>) -> ExitCode {
    let rt = match tokio_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let opts = crate::serve::ServeOptions { config, listen };
    match rt.block_on(crate::serve::serve(
        opts,
        crate::registry::Builder::system_resolver(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::logging::failure(&format!("wasmhook: {e:#}"));
            ExitCode::from(2)
        }
    }
}

fn check_config(config: &Path) -> ExitCode {
    let rt = match tokio_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let _in_runtime = rt.enter();
    match crate::serve::check(config, crate::registry::Builder::system_resolver()) {
        Ok(summary) => {
            out!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasmhook: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn sink(listen: std::net::SocketAddr, secret: Option<String>, status: u16) -> ExitCode {
    let secret = match secret
        .map(|s| crate::delivery::SigningKey::from_whsec(&s))
        .transpose()
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("wasmhook: --secret: {e}");
            return ExitCode::from(2);
        }
    };
    let Ok(status) = hyper::StatusCode::from_u16(status) else {
        eprintln!("wasmhook: --status {status} is not an HTTP status");
        return ExitCode::from(2);
    };
    let rt = match tokio_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(crate::sink::run(crate::sink::SinkOptions {
        listen,
        secret,
        status,
    })) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasmhook: sink: {e}");
            ExitCode::from(2)
        }
    }
}

/// The compile cache the CLI commands use (`--cache-dir`, `--no-cache`,
/// `--cache-max-mb`).
struct Cache {
    dir: Option<PathBuf>,
    max_bytes: u64,
}

fn runtime(cache: Cache, fuel: bool, memory_mb: u64) -> Result<Runtime, LoadError> {
    Runtime::new(RuntimeConfig {
        cache_dir: cache.dir,
        cache_max_bytes: cache.max_bytes,
        fuel,
        max_memory_mb: memory_mb.max(512),
        max_instances: 4,
        ..RuntimeConfig::default()
    })
}

fn read_component(path: &Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(path).map_err(|e| {
        eprintln!("wasmhook: cannot read {}: {e}", path.display());
        ExitCode::from(2)
    })
}

fn check(path: &Path, as_json: bool, cache: Cache) -> ExitCode {
    let bytes = match read_component(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let rt = match runtime(cache, false, 512) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wasmhook: {e}");
            return ExitCode::from(2);
        }
    };
    let info = match rt.inspect(&bytes) {
        Ok(info) => info,
        Err(e) => {
            print_check_failure(path, as_json, &e, None);
            return ExitCode::from(1);
        }
    };
    let spec = PluginSpec {
        name: "check".into(),
        config: BTreeMap::new(),
        assets_dir: None,
        limits: PluginLimits::default(),
        kv: Arc::new(MemoryKv::new()),
    };
    if let Err(e) = rt.load(&bytes, spec) {
        print_check_failure(path, as_json, &e, Some(&info));
        return ExitCode::from(1);
    }
    let how = if info.cache_hit {
        "loaded from cache"
    } else {
        "compiled"
    };
    if as_json {
        out!(
            "{}",
            json!({
                "ok": true, "plugin": path.display().to_string(), "world": "wasmhook:plugin/transformer@0.1.0",
                "size": info.size, "hash": info.hash, "compile_ms": info.compile_time.as_secs_f64() * 1e3,
                "cache_hit": info.cache_hit, "imports": info.imports, "exports": info.exports,
            })
        );
    } else {
        out!(
            "ok: {} implements wasmhook:plugin/transformer@0.1.0",
            path.display()
        );
        out!("  size:    {} bytes", info.size);
        out!("  sha256:  {}", info.hash);
        out!("  {how} in {:.1} ms", info.compile_time.as_secs_f64() * 1e3);
        out!("  imports:");
        for i in &info.imports {
            out!("    {i}");
        }
        out!("  exports:");
        for e in &info.exports {
            out!("    {e}");
        }
    }
    ExitCode::SUCCESS
}

fn print_check_failure(
    path: &Path,
    as_json: bool,
    e: &LoadError,
    info: Option<&crate::runtime::ComponentInfo>,
) {
    if as_json {
        out!(
            "{}",
            json!({
                "ok": false, "plugin": path.display().to_string(), "error": e.to_string(),
                "imports": info.map(|i| i.imports.clone()), "exports": info.map(|i| i.exports.clone()),
            })
        );
        return;
    }
    eprintln!("wasmhook: {}: {e}", path.display());
    if let Some(info) = info {
        eprintln!("  imports: {}", info.imports.join(", "));
        eprintln!("  exports: {}", info.exports.join(", "));
    }
}

fn read_event_text(source: &str) -> Result<(String, String), String> {
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the event from standard input: {e}"))?;
        Ok(("<stdin>".into(), text))
    } else {
        let text = std::fs::read_to_string(source)
            .map_err(|e| format!("cannot read event file {source}: {e}"))?;
        Ok((source.to_owned(), text))
    }
}

fn run(args: RunArgs, cache: Cache) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("wasmhook: {msg}");
        ExitCode::from(2)
    };
    let (source, text) = match read_event_text(&args.event) {
        Ok(t) => t,
        Err(msg) => return fail(msg),
    };
    let event = match crate::ingest::parse_event(&text) {
        Ok(e) => e,
        Err(e) => return fail(format!("{source}: {e}")),
    };
    let bytes = match read_component(&args.plugin) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let rt = match runtime(cache, args.fuel.is_some(), args.memory_mb) {
        Ok(rt) => rt,
        Err(e) => return fail(e.to_string()),
    };
    let name = args
        .plugin
        .file_stem()
        .map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned());
    let kv = match &args.kv {
        Some(file) => match crate::kv_file::read(file) {
            Ok(entries) => Arc::new(MemoryKv::with_entries(&name, entries)),
            Err(msg) => return fail(msg),
        },
        None => Arc::new(MemoryKv::new()),
    };
    let spec = PluginSpec {
        name: name.clone(),
        config: args.config.into_iter().collect(),
        assets_dir: args.assets,
        limits: PluginLimits {
            timeout_ms: args.timeout_ms,
            memory_mb: args.memory_mb,
            fuel: args.fuel,
            ..PluginLimits::default()
        },
        kv: kv.clone(),
    };
    let plugin = match rt.load(&bytes, spec) {
        Ok(p) => p,
        Err(e) => return fail(format!("{}: {e}", args.plugin.display())),
    };
    let invocation = plugin.invoke(&event);
    // What the run stored, whatever its outcome (a trap keeps the writes
    // made before it, as in `serve`).
    if let Some(file) = &args.kv
        && let Err(msg) = crate::kv_file::write(file, &kv.entries(&name))
    {
        return fail(msg);
    }
    let ok = invocation.outcome.is_ok();
    out!("{}", invocation_json(&invocation));
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The JSON printed by `wasmhook run`.
pub fn invocation_json(inv: &Invocation) -> Value {
    let mut out = match &inv.outcome {
        Ok(Decision::Fire { requests }) => json!({
            "decision": "fire",
            "requests": requests.iter().map(views::request).collect::<Vec<_>>(),
        }),
        Ok(Decision::Skip { reason }) => json!({"decision": "skip", "reason": reason}),
        Err(e) => json!({"decision": "error", "kind": e.kind().as_str(), "error": e.to_string()}),
    };
    out["logs"] = json!(inv.logs.iter().map(views::log_line).collect::<Vec<_>>());
    out["elapsed_us"] = json!(inv.elapsed.as_micros() as u64);
    if let Some(fuel) = inv.fuel_consumed {
        out["fuel_consumed"] = json!(fuel);
    }
    out
}
