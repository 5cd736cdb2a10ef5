//! A backup prefix in an object store, reached through the `object_store` crate: the same
//! names a backup directory has, written by single PUTs (atomic on every store), with the
//! commit a conditional PUT of `latest.json` and a lease object instead of a lock
//! (docs/FORMAT.md, "Object storage").
//!
//! Every call blocks on the client's own runtime; requests that fail transiently are retried
//! by the client with backoff, up to a bound (`connect.rs`).

mod connect;
mod lease;
mod owner;
mod sidecars;

pub use connect::Location;
pub(crate) use lease::{LEASE, Lease, LeaseWatch, is_leased};

use crate::checksum::{self, PART_BYTES};
use crate::error::{Error, Result};
use object_store::path::Path as Key;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart,
};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Files at least this large go up as a multipart upload of [`PART_BYTES`] parts, so that
/// memory holds a few parts, not a second copy of the state.
const MULTIPART_FROM: u64 = 2 * PART_BYTES;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// One backup prefix and the client that reaches it.
#[derive(Debug)]
pub(crate) struct Remote {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Key,
    runtime: tokio::runtime::Runtime,
    /// The longest one operation may take, retries included (`connect`).
    budget: Duration,
    /// The version of each sidecar (`latest.json`, `previous.json`) this process last read,
    /// wrote or removed (`None`: there is none): its next write is conditional on it, so that
    /// neither another writer's write nor a stale copy of one of this run's own, replayed by
    /// the network, is overwritten or overwrites.
    sidecars: Mutex<HashMap<String, Option<UpdateVersion>>>,
}

/// How long an operation on the store runs before wgfit says on stderr what it waits for.
const WAIT_NOTICE: Duration = Duration::from_secs(5);

/// What a failed request was doing, for its error.
fn failed(url: &str, name: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::ObjectStore {
        url: format!("{url}/{name}"),
        what: what.into(),
        reason: e.to_string(),
    }
}

impl Remote {
    /// The prefix `url` names, checked to be reachable with the credentials the environment
    /// gives (a missing bucket or wrong credentials fail here, before any training).
    pub fn open(url: &str) -> Result<Remote> {
        let (store, prefix, budget) = connect::connect(url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wgfit-object-store")
            .enable_all()
            .build()
            .map_err(|e| failed(url, "", "starting the client's runtime", e))?;
        let remote = Remote {
            url: url.to_string(),
            store,
            prefix,
            runtime,
            budget,
            sidecars: Mutex::new(HashMap::new()),
        };
        remote.names()?;
        Ok(remote)
    }

    /// The URL of the prefix.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `url/name`, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("{}/{name}", self.url))
    }

    fn key(&self, name: &str) -> Key {
        self.prefix.clone().join(name)
    }

    fn fail(&self, name: &str, what: &str, e: impl std::fmt::Display) -> Error {
        failed(&self.url, name, what, e)
    }

    /// Runs one operation on the store (the client retries it) to its end, or to the budget:
    /// a store that stops answering fails the operation (an error naming it) instead of
    /// hanging it. Past [`WAIT_NOTICE`] it says on stderr, once, what it waits for.
    fn wait<R>(&self, what: &str, name: &str, operation: impl Future<Output = R>) -> Result<R> {
        let budget = self.budget;
        self.runtime.block_on(async {
            let mut operation = std::pin::pin!(operation);
            if let Ok(done) = tokio::time::timeout(WAIT_NOTICE, &mut operation).await {
                return Ok(done);
            }
            eprintln!(
                "wgfit: waiting for the object store ({what} {}): no answer for {} s; giving up after {} s",
                self.join(name).display(),
                WAIT_NOTICE.as_secs(),
                budget.as_secs()
            );
            tokio::time::timeout(budget.saturating_sub(WAIT_NOTICE), operation)
                .await
                .map_err(|_| {
                    self.fail(
                        name,
                        what,
                        format!("no answer within {} s", budget.as_secs()),
                    )
                })
        })
    }

    /// The names directly under the prefix (objects and "directories"), sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        let listed = self
            .wait(
                "listing",
                "",
                self.store.list_with_delimiter(Some(&self.prefix)),
            )?
            .map_err(|e| self.fail("", "listing the prefix", e))?;
        let mut names: Vec<String> = listed
            .objects
            .iter()
            .map(|o| &o.location)
            .chain(&listed.common_prefixes)
            .filter_map(|k| k.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The size and version of `name`, if it exists.
    pub fn head(&self, name: &str) -> Result<Option<(u64, UpdateVersion)>> {
        match self.wait("HEAD", name, self.store.head(&self.key(name)))? {
            Ok(meta) => Ok(Some((
                meta.size,
                UpdateVersion {
                    e_tag: meta.e_tag,
                    version: meta.version,
                },
            ))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(name, "reading the metadata of", e)),
        }
    }

    /// Reads `name` whole, refusing one longer than `limit` bytes before its body is read;
    /// `Ok(None)` when it does not exist. Also returns the version read.
    pub fn read(&self, name: &str, limit: u64) -> Result<Option<(Vec<u8>, UpdateVersion)>> {
        self.wait("GET", name, async {
            let got = match self.store.get(&self.key(name)).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.fail(name, "reading", e)),
            };
            let len = got.meta.size;
            if len > limit {
                return Err(Error::corrupt(
                    self.join(name),
                    format!("it is {len} bytes, more than the {limit} it may have"),
                ));
            }
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let mut bytes = Vec::new();
            bytes
                .try_reserve_exact(usize::try_from(len).unwrap_or(usize::MAX))
                .map_err(|_| {
                    Error::corrupt(
                        self.join(name),
                        format!("it is {len} bytes, more than this machine can hold in memory"),
                    )
                })?;
            use futures_util::StreamExt;
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.fail(name, "reading", e))?;
                if bytes.len() as u64 + chunk.len() as u64 > len {
                    return Err(Error::corrupt(self.join(name), "it grew while being read"));
                }
                bytes.extend_from_slice(&chunk);
            }
            if bytes.len() as u64 != len {
                return Err(Error::corrupt(
                    self.join(name),
                    format!("it shrank to {} bytes while being read", bytes.len()),
                ));
            }
            Ok(Some((bytes, version)))
        })?
    }

    /// Bytes `start..end` of `name` (fewer at its end); `None` when it does not exist.
    pub fn read_range(&self, name: &str, start: u64, end: u64) -> Result<Option<Vec<u8>>> {
        match self.wait(
            "GET",
            name,
            self.store.get_range(&self.key(name), start..end),
        )? {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(name, "reading part of", e)),
        }
    }

    /// One small conditional PUT that must be answered within `limit` (retries included):
    /// for a lease renewal, which is of no use once the lease has expired. A PUT given up on
    /// may still land; its writer sees its own record under a version it did not get back.
    pub fn put_within(
        &self,
        name: &str,
        bytes: &[u8],
        mode: PutMode,
        limit: Duration,
    ) -> PutOutcome {
        let key = self.key(name);
        let payload = PutPayload::from(bytes.to_vec());
        let deadline = Instant::now() + limit;
        let result = self.repeat(deadline, || {
            let left = deadline.saturating_duration_since(Instant::now());
            let put = self
                .store
                .put_opts(&key, payload.clone(), PutOptions::from(mode.clone()));
            self.runtime
                .block_on(async { tokio::time::timeout(left, put).await })
                .map_err(|_| {
                    self.fail(
                        name,
                        "writing",
                        format!("no answer within {:.1} s", limit.as_secs_f64()),
                    )
                })
        });
        match result {
            Ok(Ok(put)) => PutOutcome::Written(UpdateVersion::from(put)),
            Ok(Err(object_store::Error::AlreadyExists { .. })) => PutOutcome::Exists,
            Ok(Err(object_store::Error::Precondition { .. })) => PutOutcome::Changed,
            Ok(Err(e)) => PutOutcome::Failed(self.fail(name, "writing", e)),
            Err(e) => PutOutcome::Failed(e),
        }
    }

    /// Repeats `attempt` while it fails in transport (a connection reset or refused: the
    /// request may not have reached the store, or its answer was lost) and `deadline` leaves
    /// time for another try after a pause. The client retries most requests itself, but not
    /// conditional PUTs nor S3's bulk-delete POST: a reset ended those at once (the fault
    /// matrix, `tests/object_store_matrix.rs`). Repeating them is safe: a conditional PUT that
    /// landed comes back `Precondition` or `AlreadyExists`, which the callers resolve by
    /// reading back, and deleting a removed object succeeds.
    fn repeat<T>(
        &self,
        deadline: Instant,
        mut attempt: impl FnMut() -> Result<std::result::Result<T, object_store::Error>>,
    ) -> Result<std::result::Result<T, object_store::Error>> {
        let mut pause = Duration::from_millis(100);
        loop {
            match attempt()? {
                Err(object_store::Error::Generic { .. }) if Instant::now() + pause < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                other => return Ok(other),
            }
        }
    }

    /// Writes `pieces` end to end as `name` in one atomic operation (a PUT, or a multipart
    /// upload that becomes visible whole when completed), then checks that the stored object
    /// is this write (its version; `Changed` if another writer replaced it since) and has its
    /// size.
    /// `mode` makes the PUT conditional; a multipart upload is only made for names this run
    /// alone writes (weights under a name it chose by checking it is free).
    pub fn put(&self, name: &str, pieces: &[&[u8]], mode: PutMode) -> PutOutcome {
        let total: u64 = pieces.iter().map(|p| p.len() as u64).sum();
        let key = self.key(name);
        let result = if total >= MULTIPART_FROM && matches!(mode, PutMode::Overwrite) {
            // Many requests, as long as the state is large: each part's attempts are bounded
            // by the client's timeout and retry budget, not the upload as a whole.
            self.runtime.block_on(async {
                let upload = self.store.put_multipart(&key).await?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES as usize);
                for start in (0..total).step_by(PART_BYTES as usize) {
                    if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                        // The parts already stored would otherwise stay (and cost) until the
                        // bucket's lifecycle rule removes unfinished uploads.
                        let _ = writer.abort().await;
                        return Err(e);
                    }
                    let end = (start + PART_BYTES).min(total);
                    for piece in checksum::range_of(pieces, start, end) {
                        writer.write(piece);
                    }
                }
                writer.finish().await
            })
        } else {
            let payload = PutPayload::from(pieces.concat());
            let deadline = Instant::now() + self.budget;
            let put = || {
                let put =
                    self.store
                        .put_opts(&key, payload.clone(), PutOptions::from(mode.clone()));
                self.wait("PUT", name, put)
            };
            match self.repeat(deadline, put) {
                Ok(result) => result,
                Err(e) => return PutOutcome::Failed(e),
            }
        };
        let put = match result {
            Ok(put) => put,
            Err(object_store::Error::AlreadyExists { .. }) => return PutOutcome::Exists,
            Err(object_store::Error::Precondition { .. }) => return PutOutcome::Changed,
            Err(e) => return PutOutcome::Failed(self.fail(name, "writing", e)),
        };
        let written = UpdateVersion::from(put);
        match self.head(name) {
            // Replaced since by another writer (this run was paused past its lease): not ours.
            Ok(Some((_, now))) if written.e_tag.is_some() && now.e_tag != written.e_tag => {
                PutOutcome::Changed
            }
            Ok(Some((size, _))) if size == total => PutOutcome::Written(written),
            Ok(Some((size, _))) => PutOutcome::Failed(self.fail(
                name,
                "checking",
                format!("it is {size} bytes after writing {total}"),
            )),
            // Removed since by another writer (as a stray of the backup it now writes).
            Ok(None) => PutOutcome::Changed,
            Err(e) => PutOutcome::Failed(e),
        }
    }

    /// Writes `name`, one of this run's own objects under its lease: a weights file (under a
    /// name it chose after checking it is free) or a history chunk (named by its content).
    /// Only the lease holder writes, so an object replaced or removed by another writer meanwhile
    /// means the lease was lost.
    pub fn put_new(&self, name: &str, pieces: &[&[u8]]) -> Result<UpdateVersion> {
        match self.put(name, pieces, PutMode::Overwrite) {
            PutOutcome::Changed => Err(Error::LeaseLost {
                url: self.url.clone(),
                reason: format!(
                    "{name} was replaced or removed by another writer as this run wrote it"
                ),
                taken_over: true,
            }),
            other => other.written(self, name),
        }
    }

    /// Removes `name` if it is there.
    pub fn remove(&self, name: &str) -> Result<()> {
        // A delete succeeds whether or not the object was there, so it can be repeated.
        let deadline = Instant::now() + self.budget;
        let delete = || self.wait("DELETE", name, self.store.delete(&self.key(name)));
        match self.repeat(deadline, delete)? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(name, "removing", e)),
        }
    }
}

/// How a [`Remote::put`] ended.
#[derive(Debug)]
pub(crate) enum PutOutcome {
    /// Written; the new version.
    Written(UpdateVersion),
    /// `PutMode::Create`, and the name exists.
    Exists,
    /// `PutMode::Update`, and the object is no longer that version.
    Changed,
    /// Any other failure.
    Failed(Error),
}

impl PutOutcome {
    /// The new version; a condition that failed is an error naming the object.
    pub fn written(self, remote: &Remote, name: &str) -> Result<UpdateVersion> {
        match self {
            PutOutcome::Written(version) => Ok(version),
            PutOutcome::Exists => Err(remote.fail(name, "creating", "it exists already")),
            PutOutcome::Changed => Err(remote.fail(name, "updating", "another writer changed it")),
            PutOutcome::Failed(e) => Err(e),
        }
    }
}
