//! `wasmhook serve` (the built binary) as a child process: start it on a
//! config file, learn its address from the "wasmhook listening on" line,
//! kill it with SIGKILL, read its memory from `/proc`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many of the last stderr lines are kept for error messages.
const LOG_TAIL: usize = 50;

/// A running `wasmhook serve`; killed when dropped.
pub struct Serve {
    /// `127.0.0.1:PORT` as printed by the host.
    pub addr: String,
    config: PathBuf,
    child: Child,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Start on `config` with `WASMHOOK_LOG=warn`; waits for the listening
    /// line (up to 60 s). An error carries the tail of stderr.
    pub fn start(config: &Path) -> Result<Serve, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasmhook"))
            .args(["serve", "--config"])
            .arg(config)
            .env("WASMHOOK_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn wasmhook serve: {e}"))?;
        let stderr = child.stderr.take().unwrap();
        let tail: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let sink = tail.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("wasmhook listening on ") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                let mut t = sink.lock().unwrap();
                if t.len() == LOG_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        let mut serve = Serve {
            addr: String::new(),
            config: config.to_owned(),
            child,
            tail,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => {
                serve.addr = addr;
                Ok(serve)
            }
            Err(_) => {
                let _ = serve.child.kill();
                let _ = serve.child.wait();
                std::thread::sleep(Duration::from_millis(100));
                Err(format!(
                    "wasmhook serve did not start:\n{}",
                    serve.log_tail()
                ))
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process has exited (and was reaped).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The last lines the host wrote to stderr.
    pub fn log_tail(&self) -> String {
        let t = self.tail.lock().unwrap();
        t.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// The config file it runs on.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Resident set size now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// Peak resident set size so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid(), "VmHWM:")
    }
}

/// A `kB` field of `/proc/PID/status`.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Samples a process's RSS every `every` on a thread; `max` is the
/// highest sample seen.
pub struct RssSampler {
    max: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl RssSampler {
    /// Start sampling `pid`.
    pub fn start(pid: u32, every: Duration) -> RssSampler {
        use std::sync::atomic::Ordering;
        let max = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (m, s) = (max.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = proc_status_kib(pid, "VmRSS:") {
                    m.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(every);
            }
        });
        RssSampler { max, stop }
    }

    /// The highest sample, in KiB.
    pub fn max_kib(&self) -> u64 {
        self.max.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Write `text` to `dir/wasmhook.toml`; its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("wasmhook.toml");
    std::fs::write(&path, text).unwrap();
    path
}
