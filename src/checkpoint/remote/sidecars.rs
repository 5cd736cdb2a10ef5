//! The sidecars on an object store (`latest.json`, `previous.json`): written on the condition
//! of the version this process last saw of each, and the fence a run that takes the lease
//! puts on `latest.json` (docs/FORMAT.md, "Object storage").

use super::{PutOutcome, Remote};
use crate::error::{Error, Result};
use object_store::{PutMode, UpdateVersion};

impl Remote {
    /// Writes the sidecar `name` on the condition that it is still the version this process
    /// last saw (read, wrote or removed), so that a copy of an earlier write of this run,
    /// replayed late by the network, fails when it lands instead of bringing an older
    /// sidecar back.
    ///
    /// `over_another`: `None` for the commit (`latest.json`): of two writers only one can
    /// commit over a given version, a failed condition not explained by this run's own bytes
    /// is a lost lease, and a pointer never seen must not exist. `Some(confirm)` for
    /// `previous.json` (no commit): one never seen is looked up first, and what another
    /// writer left there (a stale copy of an earlier owner's write) is replaced, on the
    /// condition of its version, once `confirm` has renewed the lease: a run that lost its
    /// lease must not overwrite the new owner's.
    pub fn put_sidecar(
        &self,
        name: &str,
        bytes: &[u8],
        over_another: Option<&dyn Fn() -> Result<()>>,
    ) -> Result<()> {
        let mut sidecars = self
            .sidecars
            .lock()
            .map_err(|_| Error::internal("the sidecar version lock is poisoned"))?;
        let mut seen = match (sidecars.get(name), over_another) {
            (Some(seen), _) => seen.clone(),
            (None, None) => None,
            (None, Some(_)) => self.head(name)?.map(|(_, version)| version),
        };
        for _ in 0..16 {
            let mode = match seen {
                Some(version) => PutMode::Update(version),
                None => PutMode::Create,
            };
            let now = match self.put(name, &[bytes], mode) {
                PutOutcome::Written(version) => {
                    sidecars.insert(name.to_string(), Some(version));
                    return Ok(());
                }
                PutOutcome::Exists | PutOutcome::Changed => {
                    self.read(name, crate::checkpoint::format::MAX_SIDECAR_BYTES)?
                }
                PutOutcome::Failed(e) => return Err(e),
            };
            match (now, over_another) {
                // A retried PUT whose first attempt landed reads back as our own bytes.
                (Some((now, version)), _) if now == bytes => {
                    sidecars.insert(name.to_string(), Some(version));
                    return Ok(());
                }
                (now, Some(confirm)) => {
                    confirm()?;
                    seen = now.map(|(_, version)| version);
                }
                (_, None) => {
                    return Err(Error::LeaseLost {
                        url: self.url.clone(),
                        reason: format!(
                            "{name} was changed by another writer since this run last read it"
                        ),
                        taken_over: true,
                    });
                }
            }
        }
        Err(self.fail(
            name,
            "writing",
            "it keeps changing: another writer writes under this run's lease",
        ))
    }

    /// Fences off the commits of earlier writers still on their way (a run paused, or its
    /// request held in the network, while its lease expired and this run took over): rewrites
    /// the pointer `name` with `"fence": token` added (so that its ETag, a digest of the
    /// bytes, changes; readers ignore the field), conditionally on the version read, so that
    /// a delayed commit, conditional on an older version, fails when it lands. Called once
    /// the lease is taken, before anything else is read or removed. `Ok(false)` where there
    /// is no pointer yet: a delayed first commit (`If-None-Match: *`) cannot be fenced, so
    /// the caller sweeps nothing until its own first commit has made one impossible.
    pub fn fence_pointer(&self, name: &str, token: &str) -> Result<bool> {
        for _ in 0..16 {
            let Some((bytes, version)) =
                self.read(name, crate::checkpoint::format::MAX_SIDECAR_BYTES)?
            else {
                return Ok(false);
            };
            let fenced = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(serde_json::Value::Object(mut fields)) => {
                    fields.insert("fence".into(), token.into());
                    serde_json::to_vec_pretty(&fields)
                        .map_err(|e| Error::encoding("the fenced pointer", e))?
                }
                // Damaged: it stays damaged (restore refuses it or falls back), but changed.
                _ => [&bytes[..], b"\n", token.as_bytes()].concat(),
            };
            match self.put(name, &[&fenced], PutMode::Update(version)) {
                PutOutcome::Written(version) => {
                    self.saw_sidecar(name, Some(version));
                    return Ok(true);
                }
                // A delayed commit landed between the read and the write: fence that one.
                PutOutcome::Exists | PutOutcome::Changed => continue,
                PutOutcome::Failed(e) => return Err(e),
            }
        }
        Err(self.fail(
            name,
            "fencing",
            "it keeps changing: another writer commits under this run's lease",
        ))
    }

    /// Remembers the version of the sidecar `name` this process read or removed (`None`:
    /// there is none); its next write is conditional on it.
    pub fn saw_sidecar(&self, name: &str, version: Option<UpdateVersion>) {
        if let Ok(mut sidecars) = self.sidecars.lock() {
            sidecars.insert(name.to_string(), version);
        }
    }
}
