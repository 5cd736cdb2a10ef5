//! The lease that stands for a backup directory's lock on object storage: an object naming
//! its owner and an expiry, created or taken over by conditional PUTs, renewed by a thread
//! while the run lives (docs/FORMAT.md, "Object storage").
//!
//! A lease expires when its owner stops renewing it (killed, or its machine gone). A run that
//! finds an unexpired lease watches it: renewed meanwhile, its owner lives and the run stops
//! with [`Error::BackupLeased`]; left to expire, the run takes it over, conditionally on the
//! version it watched, so that of two runs taking over, one wins.

use super::owner::{self, ProcessIdentity, host};
use super::{PutOutcome, Remote};
use crate::error::{Error, Result};
use object_store::{PutMode, UpdateVersion};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The lease object, beside `latest.json`.
pub(crate) const LEASE: &str = ".wgfit-lease";
/// How long a lease lasts unless renewed. A rerun after a kill waits at most this long; the
/// holder renews every quarter of it. `WGFIT_LEASE_SECONDS` changes it.
const LEASE_SECONDS: u64 = 30;
const LEASE_FORMAT: &str = "wgfit-lease";
/// The least a renewal is given to be answered, even with less of the lease left: the
/// conditional PUT still fences a late one.
const MIN_RENEWAL_WAIT: Duration = Duration::from_millis(200);
/// How often a watched lease is read again.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// The lease object's contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    format: String,
    /// Random, per run.
    owner: String,
    host: String,
    pid: u32,
    /// Milliseconds since the Unix epoch, by the owner's clock; 0 once released.
    expires_unix_ms: u64,
    /// Where the owner's pid means something (absent in leases of older wgfit versions, and
    /// off Linux): a later run on the same machine and pid namespace can tell that the owner
    /// is gone and take the lease at once instead of waiting for it to expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<ProcessIdentity>,
}

fn ttl() -> Result<Duration> {
    let seconds = crate::env_knobs::LEASE_SECONDS
        .read()?
        .unwrap_or(LEASE_SECONDS);
    Ok(Duration::from_secs(seconds))
}

impl Record {
    fn new(owner: &str, expires_unix_ms: u64) -> Record {
        Record {
            format: LEASE_FORMAT.into(),
            owner: owner.into(),
            host: host(),
            pid: std::process::id(),
            expires_unix_ms,
            process: ProcessIdentity::of(std::process::id()),
        }
    }

    fn json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::encoding("the lease", e))
    }
}

/// What the lease object holds now.
enum Seen {
    None,
    /// A lease (or bytes that are not one, which count as expired).
    Some(Option<Record>, UpdateVersion),
}

fn read(remote: &Remote) -> Result<Seen> {
    Ok(match remote.read(LEASE, 64 << 10)? {
        None => Seen::None,
        Some((bytes, version)) => {
            let record = serde_json::from_slice::<Record>(&bytes)
                .ok()
                .filter(|r| r.format == LEASE_FORMAT);
            Seen::Some(record, version)
        }
    })
}

/// A lease held by this process, renewed until dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    shared: Arc<Shared>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    remote: Arc<Remote>,
    owner: String,
    ttl: Duration,
    state: Mutex<Held>,
    /// Set with `Held::lost`, read without the lock (which a renewal holds for its request).
    lost: AtomicBool,
}

/// See [`Lease::watch`].
#[derive(Debug, Clone)]
pub(crate) struct LeaseWatch(Arc<Shared>);

impl LeaseWatch {
    /// [`Error::LeaseLost`] once the lease is known lost.
    pub fn check(&self) -> Result<()> {
        if self.0.lost.load(Ordering::Acquire) {
            return self.0.version().map(|_| ());
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Held {
    version: UpdateVersion,
    /// Why the lease is no longer ours, once that is known, and whether another run took it.
    lost: Option<(String, bool)>,
    /// When the lease as last written expires, by this process's clock (taken before the PUT
    /// that wrote it went out, so never later than the expiry other runs read).
    expires: Instant,
}

impl Lease {
    /// Takes the lease of `remote` for `owner`, waiting (at most one lease period) for one
    /// whose owner stopped renewing it to expire.
    pub fn take(remote: Arc<Remote>, owner: &str) -> Result<Lease> {
        let ttl = ttl()?;
        let mut watched: Option<UpdateVersion> = None;
        // When this run's last PUT of the lease went out.
        let mut last_sent = Instant::now();
        loop {
            let sent = Instant::now();
            let mine = Record::new(owner, unix_ms(ttl)).json()?;
            let outcome = match read(&remote)? {
                // This run's own PUT landed, though its answer was lost: the lease is ours.
                Seen::Some(Some(r), version) if r.owner == owner => {
                    return Ok(Lease::hold(remote, owner, ttl, version, last_sent + ttl));
                }
                Seen::None => {
                    last_sent = sent;
                    remote.put(LEASE, &[&mine], PutMode::Create)
                }
                Seen::Some(record, version) => {
                    let expired = record
                        .as_ref()
                        .is_none_or(|r| r.expires_unix_ms <= unix_ms(Duration::ZERO));
                    let gone = !expired
                        && record
                            .as_ref()
                            .is_some_and(|r| owner::is_gone(&r.host, r.pid, r.process.as_ref()));
                    if gone && let Some(r) = &record {
                        eprintln!(
                            "wgfit: {} was leased by run {} (pid {} on this host), which is no longer running; taking the lease over",
                            remote.url(),
                            r.owner,
                            r.pid
                        );
                    }
                    if !expired && !gone {
                        if watched.as_ref().is_some_and(|w| *w != version)
                            && let Some(r) = record
                        {
                            return Err(Error::BackupLeased {
                                url: remote.url().to_string(),
                                owner: r.owner,
                                host: r.host,
                                pid: r.pid,
                            });
                        }
                        if watched.is_none()
                            && let Some(r) = &record
                        {
                            // Up to a lease period of silence: say what the run waits for.
                            let left = r.expires_unix_ms.saturating_sub(unix_ms(Duration::ZERO));
                            eprintln!(
                                "wgfit: {} is leased by run {} (host {}, pid {}) for {:.1} s more; waiting for it to expire, unless that run renews it",
                                remote.url(),
                                r.owner,
                                r.host,
                                r.pid,
                                left as f64 / 1000.0
                            );
                        }
                        watched = Some(version);
                        std::thread::sleep(WATCH_EVERY);
                        continue;
                    }
                    last_sent = sent;
                    remote.put(LEASE, &[&mine], PutMode::Update(version))
                }
            };
            match outcome {
                PutOutcome::Written(version) => {
                    return Ok(Lease::hold(remote, owner, ttl, version, sent + ttl));
                }
                // Another run took it first: watch what it wrote.
                PutOutcome::Exists | PutOutcome::Changed => continue,
                PutOutcome::Failed(e) => return Err(e),
            }
        }
    }

    fn hold(
        remote: Arc<Remote>,
        owner: &str,
        ttl: Duration,
        version: UpdateVersion,
        expires: Instant,
    ) -> Lease {
        let shared = Arc::new(Shared {
            remote,
            owner: owner.into(),
            ttl,
            state: Mutex::new(Held {
                version,
                lost: None,
                expires,
            }),
            lost: AtomicBool::new(false),
        });
        let (stop, stopped) = mpsc::channel();
        let own = shared.clone();
        let renewer = std::thread::Builder::new()
            .name("wgfit-lease".into())
            .spawn(move || own.keep_renewing(&stopped))
            .ok();
        Lease {
            shared,
            stop: Some(stop),
            renewer,
        }
    }

    /// Renews the lease now: an error when it is no longer ours ([`Error::LeaseLost`]) or
    /// cannot be renewed. A commit does this first, so a run whose lease was taken over stops
    /// instead of writing.
    pub fn renew(&self) -> Result<()> {
        self.shared.renew()
    }

    /// A handle that tells, without waiting on a request in flight, whether the lease was
    /// lost (taken over, or not renewed in time).
    pub fn watch(&self) -> LeaseWatch {
        LeaseWatch(self.shared.clone())
    }

    /// Releases the lease and removes its object (the backup is being removed).
    pub fn remove(mut self) -> Result<()> {
        self.stop_renewing();
        let version = self.shared.version()?;
        let remote = &self.shared.remote;
        // Only a lease still ours goes: a changed one belongs to a later run.
        match read(remote)? {
            Seen::Some(_, now) if now == version => remote.remove(LEASE),
            _ => Ok(()),
        }
    }

    fn stop_renewing(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Lease {
    /// Releases the lease (expiry 0), conditionally on it still being ours, so the next run
    /// takes it at once. Failing that, it expires by itself.
    fn drop(&mut self) {
        if self.stop.is_none() {
            return;
        }
        self.stop_renewing();
        if let (Ok(version), Ok(bytes)) = (
            self.shared.version(),
            Record::new(&self.shared.owner, 0).json(),
        ) {
            let _ = self
                .shared
                .remote
                .put(LEASE, &[&bytes], PutMode::Update(version));
        }
    }
}

impl Shared {
    fn version(&self) -> Result<UpdateVersion> {
        let held = self
            .state
            .lock()
            .map_err(|_| Error::internal("the lease state lock is poisoned"))?;
        match &held.lost {
            Some((reason, taken_over)) => Err(self.lost(reason, *taken_over)),
            None => Ok(held.version.clone()),
        }
    }

    fn lost(&self, reason: &str, taken_over: bool) -> Error {
        Error::LeaseLost {
            url: self.remote.url().to_string(),
            reason: reason.into(),
            taken_over,
        }
    }

    /// Marks the lease lost for `reason` (`taken_over`: by another run, rather than not
    /// renewed in time) and returns the error that says so.
    fn mark_lost(&self, held: &mut Held, reason: String, taken_over: bool) -> Error {
        held.lost = Some((reason.clone(), taken_over));
        self.lost.store(true, Ordering::Release);
        self.lost(&reason, taken_over)
    }

    /// The renewer thread: renews every quarter of the lease until stopped. A renewal that
    /// fails (the store unreachable) is retried until so little of the lease is left that
    /// the run could no longer stop before another run may take it over; then the lease is
    /// marked lost, so that the run stops at its next batch and writes nothing more.
    /// How long before its lease expires a run that could not renew it stops: time for the
    /// batch in progress to end and the run to see that it must stop.
    fn margin(&self) -> Duration {
        self.ttl / 4
    }

    fn keep_renewing(&self, stopped: &mpsc::Receiver<()>) {
        let margin = self.margin();
        let mut wait = self.ttl / 4;
        let mut complained = false;
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
            match self.renew() {
                Ok(()) => {
                    wait = self.ttl / 4;
                    if complained {
                        eprintln!("wgfit: renewed the lease on {} again", self.remote.url());
                        complained = false;
                    }
                }
                // The run sees it at its next batch and stops, saying so.
                Err(Error::LeaseLost { .. }) => return,
                Err(e) => {
                    let Ok(held) = self.state.lock() else {
                        return;
                    };
                    let budget = held
                        .expires
                        .saturating_duration_since(Instant::now())
                        .saturating_sub(margin);
                    if !complained {
                        eprintln!(
                            "wgfit: cannot renew the lease on {} ({e}); retrying for {:.1} s, then the run stops",
                            self.remote.url(),
                            budget.as_secs_f64()
                        );
                        complained = true;
                    }
                    wait = (self.ttl / 32).min(budget);
                }
            }
        }
    }

    /// Renews the lease (a PUT conditional on its last version; the client retries a failed
    /// request with backoff), giving up once no more than the margin is left: a renewal never
    /// outlasts the lease it renews.
    fn renew(&self) -> Result<()> {
        let mut held = self
            .state
            .lock()
            .map_err(|_| Error::internal("the lease state lock is poisoned"))?;
        match self.try_renew(&mut held) {
            Err(e @ Error::LeaseLost { .. }) => Err(e),
            // Whatever failed (the PUT, the read-back), too late to try again: another run may
            // take the lease over from now on.
            Err(e) if held.expires <= Instant::now() + self.margin() => {
                let reason = format!("it could not be renewed before it expired (last error: {e})");
                Err(self.mark_lost(&mut held, reason, false))
            }
            other => other,
        }
    }

    /// One renewal (see [`Shared::renew`]).
    fn try_renew(&self, held: &mut Held) -> Result<()> {
        // A second try only after an earlier renewal of this run, given up on, landed late
        // and moved the version: then the lease is still this run's, at the new version.
        for _ in 0..2 {
            if let Some((reason, taken_over)) = &held.lost {
                return Err(self.lost(reason, *taken_over));
            }
            let sent = Instant::now();
            let limit = held
                .expires
                .saturating_duration_since(sent)
                .saturating_sub(self.margin())
                .max(MIN_RENEWAL_WAIT);
            let record = Record::new(&self.owner, unix_ms(self.ttl));
            let bytes = record.json()?;
            let outcome =
                self.remote
                    .put_within(LEASE, &bytes, PutMode::Update(held.version.clone()), limit);
            match outcome {
                PutOutcome::Written(version) => {
                    held.version = version;
                    held.expires = sent + self.ttl;
                    return Ok(());
                }
                PutOutcome::Exists | PutOutcome::Changed => match read(&self.remote)? {
                    // This very renewal landed and its answer was lost (the client's retry
                    // then found the version moved): renewed.
                    Seen::Some(Some(r), version)
                        if r.owner == self.owner && r.expires_unix_ms == record.expires_unix_ms =>
                    {
                        held.version = version;
                        held.expires = sent + self.ttl;
                        return Ok(());
                    }
                    // An earlier renewal given up on landed after all: still this run's lease.
                    Seen::Some(Some(r), version) if r.owner == self.owner => {
                        held.version = version;
                    }
                    Seen::Some(Some(r), _) => {
                        let reason = format!(
                            "run {} (host {}, pid {}) took it over after it expired",
                            r.owner, r.host, r.pid
                        );
                        return Err(self.mark_lost(held, reason, true));
                    }
                    _ => {
                        let reason = "the lease object changed under this run".to_string();
                        return Err(self.mark_lost(held, reason, true));
                    }
                },
                PutOutcome::Failed(e) => return Err(e),
            }
        }
        Err(self.remote_failure("renewals of this run kept landing late"))
    }

    /// A renewal that did not go through, to be retried.
    fn remote_failure(&self, what: &str) -> Error {
        Error::ObjectStore {
            url: format!("{}/{LEASE}", self.remote.url()),
            what: "renewing".into(),
            reason: what.into(),
        }
    }
}

/// Now plus `later`, in milliseconds since the Unix epoch.
fn unix_ms(later: Duration) -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d + later).as_millis() as u64)
}

/// Whether an unexpired lease is on `remote` (for `wgfit inspect`).
pub(crate) fn is_leased(remote: &Remote) -> Result<bool> {
    Ok(match read(remote)? {
        Seen::Some(Some(r), _) => r.expires_unix_ms > unix_ms(Duration::ZERO),
        _ => false,
    })
}
