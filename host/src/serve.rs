//! `wasmhook serve`: wiring of the whole pipeline (config → store →
//! runtime → plugins → HTTP edge + workers), signal handling, reload.
//!
//! - SIGTERM / SIGINT: stop accepting, let open requests and in-flight work
//!   finish within `server.shutdown_grace_s`, leave the rest queued.
//! - SIGHUP, or a changed component, secret or TLS file: reload config and
//!   plugins; an invalid new config is refused and the old one keeps
//!   running.
//! - SIGXFSZ (a write past the file-size limit): handled, so the process
//!   lives and the write fails with EFBIG like on a full disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;

use crate::app::{App, IngestLimits};
use crate::config::Config;
use crate::delivery::guard::PinnedResolver;
use crate::delivery::{Resolver, StaticResolver};
use crate::logging;
use crate::metrics::Metrics;
use crate::registry::{Builder, PluginSet};
use crate::retention;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::server::{self, Tokens};
use crate::store::{SqliteStore, Store};
use crate::worker::{self, Handoff, WorkerConfig};

/// How often the files a reload reads are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Options of `wasmhook serve` beyond the config file.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The config file.
    pub config: PathBuf,
    /// Override of `server.listen` (e.g. `127.0.0.1:0` in tests).
    pub listen: Option<std::net::SocketAddr>,
}

/// Instance slots of the pool: room for every executor's running
/// instance twice over (fresh ones being set up as others end) and some
/// of the idle ones `instance_reuse` keeps, with at least the default.
/// When the pool is full, the idle instances are let go; if it is full of
/// running ones, the job goes back to the queue.
fn instance_slots() -> u32 {
    let executors = crate::worker::WorkerConfig::default().invocations;
    u32::try_from(executors.saturating_mul(4) + 64)
        .unwrap_or(u32::MAX)
        .max(RuntimeConfig::default().max_instances)
}

fn runtime_for(config: &Config) -> anyhow::Result<Runtime> {
    let max_memory = config
        .plugins
        .iter()
        .map(|p| p.memory_mb)
        .max()
        .unwrap_or(64)
        .max(512);
    Runtime::new(RuntimeConfig {
        cache_dir: config
            .runtime
            .cache_dir
            .clone()
            .or_else(crate::runtime::default_cache_dir),
        cache_max_bytes: config
            .runtime
            .cache_max_mb
            .unwrap_or(crate::runtime::DEFAULT_CACHE_MAX_MB)
            << 20,
        fuel: config.runtime.fuel || config.plugins.iter().any(|p| p.fuel.is_some()),
        max_memory_mb: max_memory,
        max_instances: instance_slots(),
        ..RuntimeConfig::default()
    })
    .context("starting the WebAssembly runtime")
}

/// `wasmhook serve --check`: load the config and build every plugin (load
/// and compile its component, its policy, client and keys) as a start or a
/// reload would, and read the TLS files, without opening the store or the
/// listener, so it can run next to the server it checks a new config for.
/// A one-line summary when the config would start.
pub fn check(path: &Path, resolver: Arc<dyn Resolver>) -> anyhow::Result<String> {
    let config = Config::load(path)?;
    let runtime = runtime_for(&config)?;
    let builder = Builder {
        runtime: &runtime,
        kv: Arc::new(crate::store::MemoryKv::new()),
        resolver: with_pinned_names(&config, &resolver),
    };
    let plugins = builder.build(&config, None).context("loading plugins")?;
    let tls = tls_acceptor(&config)?.is_some();
    // Each OAuth2 secret's first token, as a start would fetch it, so
    // wrong client credentials show up here.
    let tokens = plugins.token_sources();
    tokio::runtime::Handle::current().block_on(async {
        for (plugin, secret, source) in &tokens {
            source
                .first_fetch(crate::tokens::FETCH_TIMEOUT)
                .await
                .map_err(|e| anyhow::anyhow!("plugin {plugin}: secrets.{secret}: {e}"))?;
        }
        anyhow::Ok(())
    })?;
    let names: Vec<&str> = plugins.plugins.keys().map(String::as_str).collect();
    Ok(format!(
        "{}: ok; {} plugins ({}), {} OAuth2 tokens fetched, {} [[destinations]] limits, store {}, listen {}{}",
        path.display(),
        names.len(),
        names.join(", "),
        tokens.len(),
        config.destinations.len(),
        config.store.path.display(),
        config.server.listen,
        tls_note(&config, tls)
    ))
}

/// The egress proxy, for the start-up line (never its credentials).
fn proxy_note(config: &Config) -> String {
    match &config.egress.proxy_parsed {
        Some(p) => format!("; deliveries through proxy {}:{}", p.host, p.port),
        None => String::new(),
    }
}

/// How the listener speaks, for the start-up line and the check.
fn tls_note(config: &Config, tls: bool) -> &'static str {
    match (tls, config.server.tls_client_ca_file.is_some()) {
        (false, _) => "",
        (true, false) => " with TLS",
        (true, true) => " with TLS (client certificates required)",
    }
}

/// Run the server until SIGTERM/SIGINT. `resolver` is the DNS resolver of
/// the delivery clients (the system's, or a test's); the config's
/// `[dns] static` names are pinned in front of it.
pub async fn serve(opts: ServeOptions, resolver: Arc<dyn Resolver>) -> anyhow::Result<()> {
    survive_file_size_limit();
    // From now on a SIGHUP asks for a reload (handled once the server
    // runs) instead of ending the process as it would by default.
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    // The files the config names, looked at, then read: a change made
    // after the look (while the server starts, or between the look and the
    // read) differs from what is recorded, and the reload loop's first
    // look reads it. The config is loaded twice for that: the first load
    // only says which files there are.
    let seen = watched(&Config::load(&opts.config)?);
    let config = Config::load(&opts.config)?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&config.store.path)
            .with_context(|| format!("opening the store {}", config.store.path.display()))?,
    );
    let runtime = runtime_for(&config)?;
    let builder = Builder {
        runtime: &runtime,
        kv: store.kv(),
        resolver: with_pinned_names(&config, &resolver),
    };
    let plugins = builder.build(&config, None).context("loading plugins")?;
    let paused = worker::restore_pauses(store.as_ref(), &plugins)
        .await
        .context("reading the plugin pauses the store remembers")?;
    let held = worker::restore_holds(store.as_ref(), &plugins)
        .await
        .context("reading the plugin pauses the store remembers")?;
    let (handoff, handed) = Handoff::new(worker::HANDOFF_CAPACITY);
    let app = Arc::new(App {
        store,
        runtime: runtime.clone(),
        plugins: ArcSwap::from_pointee(plugins),
        tokens: ArcSwap::from_pointee(tokens_of(&config)),
        limits: IngestLimits {
            max_body_bytes: config.server.max_body_bytes,
            max_batch_events: config.server.max_batch_events,
        },
        ingest_rate: config
            .server
            .ingest_events_per_second
            .map(server::IngestRate::new),
        metrics: Metrics::default(),
        handoff,
        invocations_ready: Notify::new(),
        deliveries_ready: Notify::new(),
        shutting_down: Default::default(),
        readiness: Default::default(),
    });
    let listen = opts.listen.unwrap_or(config.server.listen);
    if config.auth.insecure_no_auth && !listen.ip().is_loopback() {
        tracing::warn!(%listen, "[auth] insecure_no_auth = true on an address other hosts can reach: anyone who can connect can send events and use the management API");
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let grace = Duration::from_secs(config.server.shutdown_grace_s);
    let tls = tls_acceptor(&config)?.map(|a| Arc::new(ArcSwap::from_pointee(a)));
    let edge = server::EdgeOptions {
        grace,
        max_connections: config.server.max_connections,
        tls: tls.clone(),
    };
    if !held.is_empty() {
        logging::notice(&format!(
            "wasmhook: paused by the operator (POST /v1/plugins/{{name}}/resume to resume): {}",
            held.join(", ")
        ));
    }
    if !paused.is_empty() {
        logging::notice(&format!(
            "wasmhook: still paused from before the restart (their runs kept failing): {}",
            paused.join(", ")
        ));
    }
    logging::notice(&format!(
        "wasmhook listening on {}{} ({} plugins: {}){}",
        listener.local_addr()?,
        tls_note(&config, tls.is_some()),
        config.plugins.len(),
        config
            .plugins
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        proxy_note(&config)
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = tokio::spawn(worker::run(
        app.clone(),
        WorkerConfig::default(),
        handed,
        stop_rx.clone(),
    ));
    let pruner = tokio::spawn(retention::run(
        app.clone(),
        Duration::from_secs(config.store.retention_s),
        stop_rx.clone(),
    ));
    let reloader = tokio::spawn(reload_loop(
        app.clone(),
        opts.config.clone(),
        (config, seen),
        resolver,
        tls,
        (hup, stop_rx),
    ));

    // One grace period for the whole shutdown: the workers get what the
    // listener's drain left of it, not a second one.
    let signalled = Arc::new(std::sync::OnceLock::new());
    let signal = {
        let signalled = signalled.clone();
        async move {
            shutdown_signal().await;
            let _ = signalled.set(tokio::time::Instant::now());
        }
    };
    server::run(listener, app.clone(), signal, edge).await;
    tracing::info!("shutting down: finishing in-flight work");
    logging::notice("wasmhook shutting down");
    app.shutting_down.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    reloader.abort();
    pruner.abort();
    let left = signalled
        .get()
        .map_or(grace, |at| grace.saturating_sub(at.elapsed()))
        .max(GIVE_BACK_TIME);
    if tokio::time::timeout(left, workers).await.is_err() {
        tracing::warn!(
            "grace period over with work in flight; it stays queued and resumes on restart"
        );
    }
    Ok(())
}

/// Time the workers always get at shutdown, even after a drain that took
/// the whole grace period, to give back the jobs they hold.
const GIVE_BACK_TIME: Duration = Duration::from_secs(1);

/// The listener's TLS acceptor, when `[server]` names a certificate.
fn tls_acceptor(config: &Config) -> anyhow::Result<Option<TlsAcceptor>> {
    match (&config.server.tls_cert_file, &config.server.tls_key_file) {
        (Some(cert), Some(key)) => Ok(Some(
            server::tls::acceptor(cert, key, config.server.tls_client_ca_file.as_deref())
                .context("[server] TLS certificate")?,
        )),
        _ => Ok(None),
    }
}

/// `resolver` behind the config's `[dns] static` names, if it has any.
fn with_pinned_names(config: &Config, resolver: &Arc<dyn Resolver>) -> Arc<dyn Resolver> {
    if config.dns.static_hosts.is_empty() {
        return resolver.clone();
    }
    let pinned = config
        .dns
        .pinned()
        .fold(StaticResolver::new(), |r, (name, ips)| r.with(name, ips));
    Arc::new(PinnedResolver::new(pinned, resolver.clone()))
}

fn tokens_of(config: &Config) -> Tokens {
    Tokens::new(
        &config.auth.ingest_tokens,
        &config.auth.admin_tokens,
        &config.auth.read_tokens,
        config.auth.insecure_no_auth,
    )
}

/// A write past the process's file-size limit (`RLIMIT_FSIZE`, e.g. a
/// quota set by the operator) raises SIGXFSZ, whose default action kills
/// the process: every queued write and request in flight would be lost
/// over what is really a full disk. With a handler installed the write
/// fails with EFBIG instead, the store reports it as unavailable (503 on
/// ingest), and writes resume when the limit is lifted. tokio keeps a
/// handler registered for the life of the process, so the stream itself
/// can be dropped.
fn survive_file_size_limit() {
    use tokio::signal::unix::{SignalKind, signal};
    if let Err(e) = signal(SignalKind::from_raw(libc::SIGXFSZ)) {
        tracing::warn!(error = %e, "cannot handle SIGXFSZ; a file-size limit would kill the process");
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// A file whose change triggers a reload, with what it is for the log.
#[derive(Debug, Clone, PartialEq)]
struct Watched {
    kind: &'static str,
    path: PathBuf,
    stamp: Option<Stamp>,
}

/// What tells one version of a file from another without reading it: its
/// modification time, size and inode (a file replaced by a rename, or a
/// symlink switched to another file, may keep the time: Nix store files
/// all have time 1).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    device: u64,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            device: meta.dev(),
            inode: meta.ino(),
        })
    }
}

/// The files a reload would read again: components, secret files (and
/// `${file:PATH}` values), the
/// listener's certificate and key, the deliveries' CA and client
/// certificates. Metadata follows symlinks, so a
/// Kubernetes secret volume's swap of its `..data` link counts.
fn watched(config: &Config) -> Vec<Watched> {
    let components = config.plugins.iter().map(|p| ("component", &p.component));
    let secrets = config
        .plugins
        .iter()
        .flat_map(|p| p.secrets.values().flat_map(secret_files))
        .chain(&config.watched_files)
        .map(|f| ("secret", f));
    let delivery_tls = config.plugins.iter().flat_map(|p| {
        let d = &p.delivery;
        [&d.ca_file, &d.client_cert_file, &d.client_key_file]
    });
    let server = &config.server;
    let tls = [
        &server.tls_cert_file,
        &server.tls_key_file,
        &server.tls_client_ca_file,
    ]
    .into_iter()
    .chain(delivery_tls)
    .flatten()
    .map(|f| ("TLS", f));
    components
        .chain(secrets)
        .chain(tls)
        .map(|(kind, path)| Watched {
            kind,
            path: path.clone(),
            stamp: Stamp::of(path),
        })
        .collect()
}

/// The files of a config just loaded, each as it was before the load read
/// it when `before` (a look taken before) has it: a file rewritten while
/// the reload ran then differs from what is recorded, and the next look
/// reloads again. Files the new config is the first to name are looked at
/// now.
fn as_read(config: &Config, before: &[Watched]) -> Vec<Watched> {
    watched(config)
        .into_iter()
        .map(|w| match before.iter().find(|b| b.path == w.path) {
            Some(b) => Watched {
                stamp: b.stamp,
                ..w
            },
            None => w,
        })
        .collect()
}

/// The files a secret's value is read from: its `file`, or its OAuth2
/// grant's key and certificate files.
fn secret_files(secret: &crate::config::SecretConfig) -> Vec<&PathBuf> {
    let oauth = secret.oauth2.as_ref();
    [
        secret.file.as_ref(),
        oauth.and_then(|o| o.service_account_file.as_ref()),
        oauth.and_then(|o| o.private_key_file.as_ref()),
        oauth.and_then(|o| o.certificate_file.as_ref()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// What changed between two looks at the watched files, for the log: "a
/// component file changed", or `None`.
fn change(before: &[Watched], now: &[Watched]) -> Option<String> {
    if before == now {
        return None;
    }
    let kind = now
        .iter()
        .find(|w| !before.contains(w))
        .or_else(|| before.iter().find(|w| !now.contains(w)))
        .map_or("watched", |w| w.kind);
    Some(format!("a {kind} file changed"))
}

/// Reload on SIGHUP or when a watched file changes ([`watched`]).
async fn reload_loop(
    app: Arc<App>,
    path: PathBuf,
    (mut current, mut seen): (Config, Vec<Watched>),
    resolver: Arc<dyn Resolver>,
    tls: Option<Arc<ArcSwap<TlsAcceptor>>>,
    (mut hup, mut stop): (tokio::signal::unix::Signal, watch::Receiver<bool>),
) {
    let started = current.clone();
    loop {
        // A look at the files before the reload reads them.
        let (why, looked) = tokio::select! {
            _ = hup.recv() => ("SIGHUP".to_owned(), watched(&current)),
            _ = tokio::time::sleep(WATCH_INTERVAL) => {
                let now = watched(&current);
                let Some(why) = change(&seen, &now) else { continue };
                seen = now.clone();
                (why, now)
            }
            _ = stop.changed() => return,
        };
        // Compiling a changed component takes seconds: off the async
        // threads, which go on serving meanwhile.
        let result = {
            let (app, path, started) = (app.clone(), path.clone(), started.clone());
            let (resolver, tls) = (resolver.clone(), tls.clone());
            tokio::task::spawn_blocking(move || {
                reload(&app, &path, &started, &resolver, tls.as_deref())
            })
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the reload task failed: {e}")))
        };
        match result {
            Ok((config, kept, before)) => {
                worker::forget_replaced_pauses(&app, &before, &app.plugins()).await;
                let kept = if kept.is_empty() {
                    String::new()
                } else {
                    format!("; unchanged, run history kept: {}", kept.join(", "))
                };
                logging::notice(&format!(
                    "wasmhook reloaded ({why}): {} plugins{kept}",
                    config.plugins.len()
                ));
                seen = as_read(&config, &looked);
                current = config;
            }
            Err(e) => {
                logging::failure(&format!(
                    "wasmhook: reload ({why}) refused, keeping the running config: {e:#}"
                ));
            }
        }
    }
}

/// Load the config at `path` again and swap in what can change while
/// running. `started`: the config the server started with, which settings
/// that need a restart are compared against (so the warning repeats for
/// as long as the file and the running server differ).
fn reload(
    app: &App,
    path: &Path,
    started: &Config,
    resolver: &Arc<dyn Resolver>,
    tls: Option<&ArcSwap<TlsAcceptor>>,
) -> anyhow::Result<(Config, Vec<String>, Arc<PluginSet>)> {
    let config = Config::load(path)?;
    // The certificate and key are read again: a renewed certificate is
    // served to new connections. Turning TLS on or off needs a restart.
    let acceptor = tls_acceptor(&config)?;
    let without_tls = |server: &crate::config::ServerConfig| crate::config::ServerConfig {
        tls_cert_file: None,
        tls_key_file: None,
        tls_client_ca_file: None,
        ..server.clone()
    };
    if acceptor.is_some() != tls.is_some() {
        tracing::warn!("turning TLS on or off takes effect only after a restart");
    }
    if without_tls(&config.server) != without_tls(&started.server)
        || config.store.path != started.store.path
        || config.store.retention_s != started.store.retention_s
        || config.runtime != started.runtime
    {
        tracing::warn!(
            "[server] and [runtime] settings, store.path and store.retention_s changes take effect only after a restart"
        );
    }
    let builder = Builder {
        runtime: &app.runtime,
        kv: app.store.kv(),
        resolver: with_pinned_names(&config, resolver),
    };
    let before = app.plugins();
    let plugins = builder
        .build(&config, Some(&before))
        .context("loading plugins")?;
    if app.is_shutting_down() {
        // Built while the server began to stop: nothing to swap in for.
        anyhow::bail!("the server is shutting down");
    }
    let kept = kept_history(&before, &plugins);
    let removed: Vec<&str> = before
        .plugins
        .keys()
        .filter(|name| !plugins.plugins.contains_key(*name))
        .map(String::as_str)
        .collect();
    if !removed.is_empty() {
        tracing::warn!(
            removed = %removed.join(", "),
            "plugins no longer configured: their queued events and deliveries fail as \"no longer configured\" (bring them back with the retry and replay API once the plugin is back)"
        );
    }
    if let (Some(swap), Some(acceptor)) = (tls, acceptor) {
        swap.store(Arc::new(acceptor));
    }
    app.plugins.store(Arc::new(plugins));
    app.tokens.store(Arc::new(tokens_of(&config)));
    app.invocations_ready.notify_one();
    Ok((config, kept, before))
}

/// The plugins of `after` that took over their run history from `before`
/// (unchanged component, settings and limits), those paused marked so.
fn kept_history(before: &PluginSet, after: &PluginSet) -> Vec<String> {
    let now = Instant::now();
    after
        .plugins
        .values()
        .filter(|p| {
            before
                .plugins
                .get(&p.name)
                .is_some_and(|b| Arc::ptr_eq(&b.runs, &p.runs))
        })
        .map(|p| {
            if p.runs.is_paused(now) {
                format!("{} (paused)", p.name)
            } else {
                p.name.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(kind: &'static str, path: &str, secs: u64) -> Watched {
        Watched {
            kind,
            path: path.into(),
            stamp: Some(Stamp {
                modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
                len: 10,
                device: 1,
                inode: 7,
            }),
        }
    }

    #[test]
    fn a_file_replaced_with_the_same_time_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, link) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("link"),
        );
        std::fs::write(&a, "token-1").unwrap();
        std::fs::write(&b, "token-2").unwrap();
        // Both with the same time, as a Nix store's files are.
        let t =
            std::fs::FileTimes::new().set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1));
        for f in [&a, &b] {
            std::fs::File::options()
                .write(true)
                .open(f)
                .unwrap()
                .set_times(t)
                .unwrap();
        }
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let first = Stamp::of(&link).unwrap();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&b, &link).unwrap();
        let second = Stamp::of(&link).unwrap();
        assert_eq!(first.modified, second.modified);
        assert_ne!(first, second, "another file behind the link");
        // Rewritten in place within one tick of the clock: the size tells.
        let t0 = Stamp::of(&a).unwrap();
        std::fs::write(&a, "token-longer").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&a)
            .unwrap()
            .set_times(t)
            .unwrap();
        assert_ne!(t0, Stamp::of(&a).unwrap());
    }

    #[test]
    fn a_reload_records_the_files_as_they_were_before_it_read_them() {
        let dir = tempfile::tempdir().unwrap();
        let component = dir.path().join("p.wasm");
        std::fs::write(&component, b"v1").unwrap();
        let text = format!(
            "[auth]\ninsecure_no_auth = true\n[[plugins]]\nname = \"p\"\ncomponent = \"{}\"\nevents = [\"*\"]\n",
            component.display()
        );
        let config = Config::parse(&text, Path::new("t.toml"), dir.path(), &|_| None).unwrap();
        let looked = watched(&config);
        // Rewritten while the reload ran, after the look and the read.
        std::fs::write(&component, b"version 2").unwrap();
        let seen = as_read(&config, &looked);
        assert_eq!(seen, looked);
        assert!(
            change(&seen, &watched(&config)).is_some(),
            "the next look reloads again"
        );
    }

    #[test]
    fn a_change_names_the_kind_of_file_that_changed() {
        let before = vec![
            file("component", "/p.wasm", 1),
            file("secret", "/s.token", 1),
            file("TLS", "/c.pem", 1),
        ];
        assert_eq!(change(&before, &before), None);
        let mut now = vec![
            file("component", "/p.wasm", 1),
            file("secret", "/s.token", 2),
            file("TLS", "/c.pem", 1),
        ];
        assert_eq!(
            change(&before, &now).as_deref(),
            Some("a secret file changed")
        );
        now[1].stamp = None; // deleted
        assert_eq!(
            change(&before, &now).as_deref(),
            Some("a secret file changed")
        );
        now.truncate(1); // a reload dropped the others
        assert_eq!(
            change(&before, &now).as_deref(),
            Some("a secret file changed")
        );
    }
}
