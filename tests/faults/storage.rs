//! Storage that cannot be written. A full disk is simulated without root
//! tricks: `prlimit` lowers the running host's file-size limit
//! (`RLIMIT_FSIZE`) so every write SQLite makes past a few bytes fails with
//! EFBIG (and SIGXFSZ, which the host must survive), then lifts it. A
//! read-only database needs the host to run as an unprivileged user, since
//! root ignores file modes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::support::host::{Host, SpawnOptions};
use super::support::receiver::{Reply, TestReceiver};
use super::support::{eventually, eventually_async};
use super::{config, ingest, only_delivery, plugin};

/// Set the soft and hard file-size limits of a running process.
fn prlimit_fsize(pid: u32, limit: &str) {
    let status = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={limit}")])
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit --fsize={limit} failed");
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

async fn readyz(host: &Host) -> (u16, Value) {
    host.admin("GET", "/readyz", "").await
}

/// A retry schedule long enough to outlast the fault: 30 retries 1 s apart.
const PATIENT: &str = "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]";

#[tokio::test(flavor = "multi_thread")]
async fn disk_full_ingest_answers_503_and_recovers_without_losing_accepted_events() {
    let rx = TestReceiver::start().await;
    // A slow receiver, so the deliveries of the events accepted before the
    // fault are in flight when it starts and their attempts must be
    // recorded while the disk is full.
    rx.set_default(Reply::status(200).after(Duration::from_secs(2)));
    let host = Host::start(&config(&[plugin("p", &rx.url(), 5, PATIENT)]), &[]);
    let pid = host.pid();
    let mut accepted: Vec<String> = Vec::new();
    for i in 0..10 {
        let id = format!("evt-before-{i}");
        assert_eq!(ingest(&host, &id).await.0, 202);
        accepted.push(id);
    }
    rx.wait_for(10, 30).await;

    // The disk fills up: no file may grow past 4 KiB, which every WAL
    // append crosses.
    prlimit_fsize(pid, "4096:unlimited");
    // Events committed before the limit took effect are accepted and must
    // arrive; keep ingesting until one is refused.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (refused, status, body) = loop {
        assert!(std::time::Instant::now() < deadline, "ingest never failed");
        let id = format!("evt-during-{}", accepted.len());
        let (status, body) = ingest(&host, &id).await;
        if status != 202 {
            break (id, status, body);
        }
        accepted.push(id);
    };
    assert_eq!(status, 503, "{body}");
    eprintln!("disk full: ingest answered {status} {body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("storage unavailable: ") && error.contains("disk full"),
        "{body}"
    );
    assert!(alive(pid), "the host died of SIGXFSZ:\n{}", host.log());
    // Still refused on a second try, and readiness says why.
    assert_eq!(ingest(&host, "evt-refused-2").await.0, 503);
    let (ready, why) = readyz(&host).await;
    assert_eq!(ready, 503, "{why}");
    assert!(why.to_string().contains("storage unavailable"), "{why}");
    // Reads still work: the management API shows the refused event absent.
    let (status, _) = host
        .admin("GET", &format!("/v1/events/{refused}"), "")
        .await;
    assert_eq!(status, 404, "a refused event is not stored");

    // The in-flight deliveries are answered, and recording their attempts
    // fails: the delivery worker logs it and lives on; the leases expire
    // and the deliveries are sent again after the fault.
    let failed_records = eventually(30, || {
        let n = host.log().matches("recording an attempt failed").count();
        (n >= 10).then_some(n)
    })
    .await;
    assert!(
        failed_records.is_some(),
        "attempts were recorded on a full disk?\n{}",
        host.log()
    );
    assert!(alive(pid));

    // Space returns.
    rx.set_default(Reply::status(200));
    prlimit_fsize(pid, "unlimited:unlimited");
    let recovered = eventually_async(30, || async {
        (ingest(&host, "evt-after").await.0 == 202).then_some(())
    })
    .await;
    assert!(
        recovered.is_some(),
        "ingest did not recover:\n{}",
        host.log()
    );
    accepted.push("evt-after".into());
    assert_eq!(
        ingest(&host, &refused).await.0,
        202,
        "the refused one, resent"
    );
    accepted.push(refused);
    let (ready, why) = readyz(&host).await;
    assert_eq!(ready, 200, "{why}");

    // Nothing accepted was lost: every event's delivery succeeded.
    for id in &accepted {
        let v = host.settled_event(id, 60).await;
        assert_eq!(only_delivery(&v)["status"], "succeeded", "{id}: {v}");
    }
    let delivered = eventually(30, || {
        let got: std::collections::BTreeSet<String> = rx
            .requests()
            .iter()
            .filter_map(|r| r.body_json()["id"].as_str().map(str::to_owned))
            .collect();
        accepted.iter().all(|id| got.contains(id)).then_some(got)
    })
    .await;
    assert!(
        delivered.is_some(),
        "some accepted event never reached the receiver"
    );
    assert!(alive(pid));
}

/// The user the host runs as in the read-only test.
const NOBODY: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_database_refuses_start_up_naming_the_path_and_nothing_is_lost() {
    assert_eq!(
        unsafe_free_euid(),
        0,
        "this test switches to an unprivileged user and must run as root"
    );
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(503));
    let host = Host::start_with(
        &config(&[plugin("p", &rx.url(), 2, PATIENT)]),
        &[],
        SpawnOptions { uid: Some(NOBODY) },
    );
    let dir = host.dir.path().to_path_buf();
    let db = dir.join("wasmhook.db");
    for i in 0..5 {
        assert_eq!(ingest(&host, &format!("evt-ro-{i}")).await.0, 202);
    }
    rx.wait_for(5, 30).await;

    // The file and its directory become read-only. The running host keeps
    // its already-open, writable descriptors, so SQLite goes on writing
    // through them: chmod alone does not stop a running writer (asserted,
    // so a change in that behaviour is noticed).
    chmod(&db, 0o444);
    chmod(&dir, 0o555);
    assert_eq!(ingest(&host, "evt-ro-open-fd").await.0, 202);

    // A restart on the read-only file fails at start-up, naming the file.
    let mut host = host;
    let (code, stderr) = host.restart_expecting_failure(60);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert!(stderr.contains("database is read-only"), "{stderr}");

    // Writable again: it starts, and every accepted event is delivered.
    chmod(&dir, 0o755);
    chmod(&db, 0o644);
    rx.set_default(Reply::status(200));
    let host = host.restart();
    assert_eq!(ingest(&host, "evt-ro-after").await.0, 202);
    let ids = (0..5)
        .map(|i| format!("evt-ro-{i}"))
        .chain(["evt-ro-open-fd".into(), "evt-ro-after".into()]);
    for id in ids {
        let v = host.settled_event(&id, 60).await;
        assert_eq!(only_delivery(&v)["status"], "succeeded", "{id}: {v}");
    }
}

/// The effective uid, read from /proc (no libc in the test crate).
fn unsafe_free_euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
    uids.split_whitespace().nth(1).unwrap().parse().unwrap()
}
