//! The lease that stands for a backup directory's lock on object storage: an object naming
//! its owner and an expiry, created or taken over by conditional PUTs, renewed by a thread
//! while the run lives (docs/FORMAT.md, "Object storage").
//!
//! A lease expires when its owner stops renewing it (killed, or its machine gone). A run that
//! finds an unexpired lease watches it: renewed meanwhile, its owner lives and the run stops
//! with [`Error::BackupLeased`]; left to expire, the run takes it over, conditionally on the
//! version it watched, so that of two runs taking over, one wins.

use super::{PutOutcome, Remote};
use crate::error::{Error, Result};
use object_store::{PutMode, UpdateVersion};
use serde::{Deserialize, Serialize};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The lease object, beside `latest.json`.
pub(crate) const LEASE: &str = ".wgfit-lease";
/// How long a lease lasts unless renewed. A rerun after a kill waits at most this long; the
/// holder renews every quarter of it. `WGFIT_LEASE_SECONDS` changes it.
const LEASE_SECONDS: u64 = 30;
const LEASE_FORMAT: &str = "wgfit-lease";
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
}

fn ttl() -> Result<Duration> {
    let seconds = crate::env_knobs::LEASE_SECONDS
        .read()?
        .unwrap_or(LEASE_SECONDS);
    Ok(Duration::from_secs(seconds))
}

fn host() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

impl Record {
    fn new(owner: &str, expires_unix_ms: u64) -> Record {
        Record {
            format: LEASE_FORMAT.into(),
            owner: owner.into(),
            host: host(),
            pid: std::process::id(),
            expires_unix_ms,
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
}

#[derive(Debug)]
struct Held {
    version: UpdateVersion,
    /// Why the lease is no longer ours, once that is known.
    lost: Option<String>,
}

impl Lease {
    /// Takes the lease of `remote` for `owner`, waiting (at most one lease period) for one
    /// whose owner stopped renewing it to expire.
    pub fn take(remote: Arc<Remote>, owner: &str) -> Result<Lease> {
        let ttl = ttl()?;
        let mut watched: Option<UpdateVersion> = None;
        loop {
            let expires = unix_ms(ttl);
            let mine = Record::new(owner, expires).json()?;
            let outcome = match read(&remote)? {
                Seen::None => remote.put(LEASE, &[&mine], PutMode::Create),
                Seen::Some(record, version) => {
                    let expired = record
                        .as_ref()
                        .is_none_or(|r| r.expires_unix_ms <= unix_ms(Duration::ZERO));
                    if !expired {
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
                    remote.put(LEASE, &[&mine], PutMode::Update(version))
                }
            };
            match outcome {
                PutOutcome::Written(version) => {
                    return Ok(Lease::hold(remote, owner, ttl, version));
                }
                // Another run took it first: watch what it wrote.
                PutOutcome::Exists | PutOutcome::Changed => continue,
                PutOutcome::Failed(e) => return Err(e),
            }
        }
    }

    fn hold(remote: Arc<Remote>, owner: &str, ttl: Duration, version: UpdateVersion) -> Lease {
        let shared = Arc::new(Shared {
            remote,
            owner: owner.into(),
            ttl,
            state: Mutex::new(Held {
                version,
                lost: None,
            }),
        });
        let (stop, stopped) = mpsc::channel();
        let own = shared.clone();
        let renewer = std::thread::Builder::new()
            .name("wgfit-lease".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(own.ttl / 4) {
                    if own.renew().is_err() {
                        return;
                    }
                }
            })
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
            Some(reason) => Err(self.lost(reason)),
            None => Ok(held.version.clone()),
        }
    }

    fn lost(&self, reason: &str) -> Error {
        Error::LeaseLost {
            url: self.remote.url().to_string(),
            reason: reason.into(),
        }
    }

    fn renew(&self) -> Result<()> {
        let mut held = self
            .state
            .lock()
            .map_err(|_| Error::internal("the lease state lock is poisoned"))?;
        if let Some(reason) = &held.lost {
            return Err(self.lost(reason));
        }
        let bytes = Record::new(&self.owner, unix_ms(self.ttl)).json()?;
        let outcome = self
            .remote
            .put(LEASE, &[&bytes], PutMode::Update(held.version.clone()));
        match outcome {
            PutOutcome::Written(version) => {
                held.version = version;
                Ok(())
            }
            PutOutcome::Exists | PutOutcome::Changed => {
                let reason = match read(&self.remote) {
                    Ok(Seen::Some(Some(r), _)) if r.owner != self.owner => format!(
                        "run {} (host {}, pid {}) took it over after it expired",
                        r.owner, r.host, r.pid
                    ),
                    _ => "the lease object changed under this run".into(),
                };
                held.lost = Some(reason.clone());
                Err(self.lost(&reason))
            }
            PutOutcome::Failed(e) => Err(e),
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
