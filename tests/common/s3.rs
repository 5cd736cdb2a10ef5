//! A real S3-compatible server for the object-storage tests: the server mode of the Python
//! package `moto` (`moto_server`, installed by `.ci/run`), started on a free port of
//! 127.0.0.1 and stopped with the test.
//!
//! wgfit reaches it through [`Proxy`], a TCP relay the test can cut (every connection closed,
//! the port refusing) and restore: moto keeps its objects in memory, so killing moto itself
//! would lose the bucket the test wants to resume from; cutting the relay looks the same to
//! wgfit as a server that died.
//!
//! Without `moto_server` a test says so and returns, unless `WGFIT_REQUIRE_ALL_TESTS=1` (set
//! by `.ci/run`) makes that a failure.

use super::worker::{run_to_end, spawn};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `moto_server`, killed when dropped.
pub struct Moto {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Moto {
    /// Starts the server; `None` (after saying why) when `moto_server` is not installed.
    pub fn start() -> Option<Moto> {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                let why = format!("moto_server cannot start ({e}); `pip install 'moto[server]'`");
                if std::env::var(super::mount_ns::REQUIRE_ALL).is_ok_and(|v| v == "1") {
                    panic!("{why}");
                }
                eprintln!("NOT RUN: {why}");
                return None;
            }
        };
        wait_until_listening(port);
        Some(Moto { child, port })
    }

    /// Creates a bucket and returns a client of it (direct, not through a proxy). A server
    /// that listens but is still starting may reset the connection: that is retried.
    pub fn bucket(&self, name: &str) -> Bucket {
        let create = || -> std::io::Result<String> {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
            write!(
                stream,
                "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.port
            )?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response)
        };
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            match create() {
                Ok(response) => break response,
                Err(e) if attempt < 20 => {
                    eprintln!("creating bucket {name}: {e}; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Err(e) => panic!("cannot create bucket {name} after {attempt} attempts: {e}"),
            }
        };
        // A retried request may find the bucket its reset predecessor made.
        assert!(
            response.starts_with("HTTP/1.1 200")
                || (attempt > 1 && response.contains("BucketAlreadyOwnedByYou")),
            "{response}"
        );
        Bucket::new(self.port, name)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment a wgfit process needs to reach the server at `port`.
pub fn env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        // Short waits: a lease lasts 2 s, a failing request is retried for 3 s.
        ("WGFIT_LEASE_SECONDS", "2".into()),
        ("WGFIT_STORE_RETRY_SECONDS", "3".into()),
    ]
}

/// The worker's settings plus the environment that reaches the server at `port`.
pub fn with_env<'a>(port: u16, vars: &[(&'a str, &'a str)]) -> Vec<(&'a str, String)> {
    let mut all: Vec<(&str, String)> = env(port);
    all.extend(vars.iter().map(|(k, v)| (*k, v.to_string())));
    all
}

/// A worker on `url`, run to its end: exit code and stderr.
pub fn run(url: &str, out: &Path, vars: &[(&str, String)]) -> (i32, String) {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_to_end(Path::new(url), out, &vars, None)
}

/// A worker on `url`, running.
pub fn start(url: &str, out: &Path, vars: &[(&str, String)]) -> std::process::Child {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn(Path::new(url), out, &vars, None)
}

/// Waits for a worker to end successfully with `expected` as its final parameters.
pub fn ends_exactly(child: std::process::Child, out: &Path, expected: &[u8]) {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read(out).unwrap(),
        expected,
        "the uninterrupted run's bits"
    );
}

/// A test's own client of one bucket, to look at and damage what wgfit wrote.
pub struct Bucket {
    store: AmazonS3,
    runtime: tokio::runtime::Runtime,
    pub name: String,
}

impl Bucket {
    fn new(port: u16, name: &str) -> Bucket {
        let store = AmazonS3Builder::new()
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_bucket_name(name)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Bucket {
            store,
            runtime,
            name: name.into(),
        }
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.name)
    }

    /// The names under `prefix`, sorted.
    pub fn names(&self, prefix: &str) -> Vec<String> {
        let listed = self
            .runtime
            .block_on(self.store.list_with_delimiter(Some(&Key::from(prefix))))
            .unwrap();
        let mut names: Vec<String> = listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.runtime.block_on(self.store.get(&Key::from(key))) {
            Ok(got) => Some(self.runtime.block_on(got.bytes()).unwrap().to_vec()),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        self.runtime
            .block_on(self.store.put(&Key::from(key), PutPayload::from(bytes)))
            .unwrap();
    }

    pub fn delete(&self, key: &str) {
        self.runtime
            .block_on(self.store.delete(&Key::from(key)))
            .unwrap();
    }

    /// The global step `prefix/latest.json` records, if there is one.
    pub fn committed_step(&self, prefix: &str) -> Option<u64> {
        let bytes = self.get(&format!("{prefix}/latest.json"))?;
        serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["global_step"].as_u64()
    }

    /// That `prefix/previous.json`, where there is one, is a commit before `latest.json`'s
    /// and names weights that are there: no stale write, landing late, brought back an older
    /// one whose weights were removed as superseded. (Not necessarily one epoch before: a
    /// save that finds the writer busy is merged into the next.)
    pub fn check_previous(&self, prefix: &str, case: &str) {
        let Some(bytes) = self.get(&format!("{prefix}/previous.json")) else {
            return;
        };
        let sidecar: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let file = sidecar["weights"]["file"].as_str().unwrap();
        assert!(
            self.get(&format!("{prefix}/{file}")).is_some(),
            "{case}: previous.json names {file}, which is not there"
        );
        let latest = self
            .committed_step(prefix)
            .unwrap_or_else(|| panic!("{case}: previous.json without latest.json"));
        let step = sidecar["global_step"].as_u64().unwrap();
        assert!(
            step < latest,
            "{case}: previous.json is of step {step}, latest.json's {latest}"
        );
    }
}

/// A TCP relay from a port of its own to the server, that a test can cut and restore.
pub struct Proxy {
    pub port: u16,
    target: u16,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    /// Cut the relay when the n-th request whose first line contains `cut_on.1` begins.
    cut_on: Arc<Mutex<Option<(usize, String)>>>,
    seen: Arc<AtomicUsize>,
    hold: Arc<Hold>,
}

/// A partition that delays rather than drops: from the n-th request whose first line contains
/// a text, every request through the relay waits until a moment, then goes on.
#[derive(Default)]
struct Hold {
    /// (n, text, how long).
    on: Mutex<Option<(usize, String, Duration)>>,
    seen: AtomicUsize,
    until: Mutex<Option<Instant>>,
}

impl Hold {
    /// Starts the hold if `first` (a request's first line) is the one it waits for.
    fn watch(&self, first: &str) {
        if let Some((at, text, how_long)) = &*self.on.lock().unwrap()
            && first.contains(text.as_str())
            && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == *at
        {
            *self.until.lock().unwrap() = Some(Instant::now() + *how_long);
        }
    }

    /// Waits out a hold in progress.
    fn wait(&self) {
        let until = *self.until.lock().unwrap();
        if let Some(until) = until {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
        }
    }
}

impl Proxy {
    /// A relay to `target`, listening.
    pub fn start(target: u16) -> Proxy {
        let proxy = Proxy {
            port: free_port(),
            target,
            up: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(Mutex::new(Vec::new())),
            cut_on: Arc::new(Mutex::new(None)),
            seen: Arc::new(AtomicUsize::new(0)),
            hold: Arc::new(Hold::default()),
        };
        proxy.restore();
        proxy
    }

    /// Cuts the relay at the `n`-th request whose first line contains `text` (counted from
    /// now): that request and all later ones find no server.
    pub fn cut_at(&self, n: usize, text: &str) {
        self.seen.store(0, Ordering::SeqCst);
        *self.cut_on.lock().unwrap() = Some((n, text.into()));
    }

    /// Holds every request for `how_long` from the `n`-th request whose first line contains
    /// `text` (counted from now), that one included: they reach the server late, in order.
    pub fn hold_at(&self, n: usize, text: &str, how_long: Duration) {
        self.hold.seen.store(0, Ordering::SeqCst);
        *self.hold.on.lock().unwrap() = Some((n, text.into(), how_long));
    }

    /// Whether a hold has begun.
    pub fn is_holding(&self) -> bool {
        self.hold.until.lock().unwrap().is_some()
    }

    /// Whether the relay is cut.
    pub fn is_cut(&self) -> bool {
        !self.up.load(Ordering::SeqCst)
    }

    /// Closes every connection and stops listening: the server is gone.
    pub fn cut(&self) {
        cut(&self.up, &self.connections);
    }

    /// Listens again on the same port.
    pub fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        self.up.store(true, Ordering::SeqCst);
        let (up, connections, target) = (self.up.clone(), self.connections.clone(), self.target);
        let (cut_on, seen, hold) = (self.cut_on.clone(), self.seen.clone(), self.hold.clone());
        std::thread::spawn(move || {
            while up.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                connections
                    .lock()
                    .unwrap()
                    .push(client.try_clone().unwrap());
                connections
                    .lock()
                    .unwrap()
                    .push(server.try_clone().unwrap());
                let watch = (
                    up.clone(),
                    connections.clone(),
                    cut_on.clone(),
                    seen.clone(),
                    hold.clone(),
                );
                relay(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    Some(watch),
                );
                relay(server, client, None);
            }
        });
    }
}

type Watch = (
    Arc<AtomicBool>,
    Arc<Mutex<Vec<TcpStream>>>,
    Arc<Mutex<Option<(usize, String)>>>,
    Arc<AtomicUsize>,
    Arc<Hold>,
);

fn cut(up: &AtomicBool, connections: &Mutex<Vec<TcpStream>>) {
    up.store(false, Ordering::SeqCst);
    for c in connections.lock().unwrap().drain(..) {
        let _ = c.shutdown(Shutdown::Both);
    }
}

/// Copies `from` to `to` on a thread; requests from the client are watched for the cut.
fn relay(mut from: TcpStream, mut to: TcpStream, watch: Option<Watch>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some((up, connections, cut_on, seen, hold)) = &watch {
                let line = String::from_utf8_lossy(&buf[..n.min(512)]);
                let first = line.lines().next().unwrap_or("");
                hold.watch(first);
                hold.wait();
                let cut_now = match &*cut_on.lock().unwrap() {
                    Some((at, text)) if first.contains(text.as_str()) => {
                        seen.fetch_add(1, Ordering::SeqCst) + 1 == *at
                    }
                    _ => false,
                };
                if cut_now {
                    cut(up, connections);
                    break;
                }
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
