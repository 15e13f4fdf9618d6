//! Fresh work handed to the workers in process, without a lease call.
//!
//! The write that creates jobs can lease them to its caller
//! ([`JobLease`]): ingest's insert leases the new invocation jobs, an
//! invocation's completion leases the new deliveries. Those jobs then go
//! straight to the worker over a bounded channel, instead of being found
//! by another write (`lease_invocations` / `lease_deliveries`) that would
//! touch every row again: two of the five durable state changes per event
//! are gone.
//!
//! Room in the channel is reserved *before* the write: if there is none
//! (the workers are behind), the jobs are created unleased and the worker
//! finds them in the store when it catches up, so a leased job never waits
//! outside the channel. A handed job is an ordinary leased job: if the
//! process dies, its lease ends and it is leased again like any other; at
//! shutdown the jobs still in the channel are given back, due at once. (So
//! are jobs whose creating call was cancelled after its write committed,
//! e.g. by a client hanging up: they wait for their lease to end.)

use tokio::sync::mpsc;

use crate::app::App;
use crate::ingest::now_ms;
use crate::store::{DeliveryJob, Inserted, InvocationJob, JobLease, NewEvent, StoreError};

/// Jobs of each kind waiting in the channel at most. Small enough that a
/// handed job is started long before its lease ends, large enough to keep
/// every worker permit busy between two ingest batches.
pub const HANDOFF_CAPACITY: usize = 512;

/// The sending side, shared through [`App`].
pub struct Handoff {
    invocations: mpsc::Sender<InvocationJob>,
    deliveries: mpsc::Sender<DeliveryJob>,
}

/// The receiving side, owned by the worker loops.
pub struct HandedJobs {
    pub(super) invocations: mpsc::Receiver<InvocationJob>,
    pub(super) deliveries: mpsc::Receiver<DeliveryJob>,
}

impl Handoff {
    /// A hand-off holding up to `capacity` jobs of each kind.
    pub fn new(capacity: usize) -> (Handoff, HandedJobs) {
        let (itx, irx) = mpsc::channel(capacity.max(1));
        let (dtx, drx) = mpsc::channel(capacity.max(1));
        (
            Handoff {
                invocations: itx,
                deliveries: dtx,
            },
            HandedJobs {
                invocations: irx,
                deliveries: drx,
            },
        )
    }
}

/// Store a batch of routed events (the 202 may follow once this returns
/// `Ok`) and hand their invocation jobs to the worker when there is room,
/// or wake the worker to find them in the store. The answer's
/// [`Inserted::New`] entries come back with their jobs taken out.
pub async fn insert_events(app: &App, batch: Vec<NewEvent>) -> Result<Vec<Inserted>, StoreError> {
    let jobs: usize = batch.iter().map(|e| e.plugins.len()).sum();
    let room = match jobs {
        0 => None,
        n => app.handoff.invocations.try_reserve_many(n).ok(),
    };
    let lease = room.as_ref().map(|_| JobLease {
        now_ms: now_ms(),
        lease_ms: super::invocation_lease_ms(app),
    });
    let mut inserted = app.store.insert_events(batch, lease).await?;
    match room {
        Some(room) => {
            let handed = inserted.iter_mut().flat_map(|i| match i {
                Inserted::New { jobs } => std::mem::take(jobs),
                Inserted::Duplicate => Vec::new(),
            });
            for (permit, job) in room.zip(handed) {
                permit.send(job);
            }
        }
        None if inserted.iter().any(Inserted::is_new) => app.invocations_ready.notify_one(),
        None => {}
    }
    Ok(inserted)
}

/// Room for `n` deliveries, reserved before the completion that creates
/// them (see [`hand_deliveries`]).
pub(super) fn reserve_deliveries(
    app: &App,
    n: usize,
) -> Option<mpsc::PermitIterator<'_, DeliveryJob>> {
    if n == 0 {
        return None;
    }
    app.handoff.deliveries.try_reserve_many(n).ok()
}

/// Hand deliveries leased by a completion to the delivery worker.
pub(super) fn hand_deliveries(
    room: mpsc::PermitIterator<'_, DeliveryJob>,
    leased: Vec<DeliveryJob>,
) {
    for (permit, job) in room.zip(leased) {
        permit.send(job);
    }
}

/// Give every invocation job still waiting (in the channel, and the one
/// the loop held) back to the store, due now, so the next process runs it
/// without waiting for its lease to end.
pub(super) async fn give_back_invocations(
    app: &App,
    mut rx: mpsc::Receiver<InvocationJob>,
    in_hand: Option<InvocationJob>,
) {
    rx.close();
    let now = now_ms();
    let waiting = std::iter::from_fn(|| rx.try_recv().ok());
    for job in in_hand.into_iter().chain(waiting) {
        if let Err(e) = app.store.release_invocation(job.id, &job.lease, now).await {
            tracing::warn!(plugin = %job.plugin, event_id = %job.event.id, error = %e, "giving back a handed invocation failed; it returns when its lease ends");
        }
    }
}

/// Give every delivery still waiting back to the store, due now.
pub(super) async fn give_back_deliveries(
    app: &App,
    mut rx: mpsc::Receiver<DeliveryJob>,
    in_hand: Option<DeliveryJob>,
) {
    rx.close();
    let now = now_ms();
    let waiting = std::iter::from_fn(|| rx.try_recv().ok());
    for job in in_hand.into_iter().chain(waiting) {
        if let Err(e) = app.store.release_delivery(&job.id, &job.lease, now).await {
            tracing::warn!(delivery = %job.id, error = %e, "giving back a handed delivery failed; it returns when its lease ends");
        }
    }
}
