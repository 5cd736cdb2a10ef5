//! An HTTP proxy in front of `moto_server` that injects one fault into one chosen request: the
//! n-th request of a kind (a method and a part of the path: the weights PUT, the commit of
//! `latest.json`, a lease renewal, a DELETE) is delayed, dropped before it reaches the server,
//! delivered with its response dropped, delivered twice (the copy replayed later, after the
//! response), or answered 503 by the proxy. Every other request goes through unchanged. One
//! request per connection to the server; the client is told to close its connection after
//! each response, so that requests and connections match one to one.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What happens to the chosen request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Held this long, then delivered (its response too).
    Delay(Duration),
    /// Never reaches the server; the client's connection is closed.
    DropRequest,
    /// Reaches the server, which acts on it; the client's connection is closed before the
    /// response: a request that landed but looks failed.
    DropResponse,
    /// Delivered and answered, then delivered again this much later: a stale duplicate.
    Replay(Duration),
    /// Answered `503 Slow Down` by the proxy; the server never sees it.
    Unavailable,
    /// Never reaches the server; the client's connection is reset (RST), as by a network
    /// that went away.
    Reset,
    /// A partition: this request and every later one through the proxy wait until this long
    /// after it came, then go on (their answers too).
    Partition(Duration),
}

/// Which request: the `nth` (from 1) whose method is `method`, whose path contains `path` and
/// whose body contains `body` (S3's bulk delete names its objects in the body).
#[derive(Debug, Clone)]
pub struct Target {
    pub method: &'static str,
    pub path: &'static str,
    pub body: &'static str,
    pub nth: usize,
}

impl Target {
    fn matches(&self, request: &Request) -> bool {
        request.method == self.method
            && request.path.contains(self.path)
            && String::from_utf8_lossy(&request.body).contains(self.body)
    }
}

pub struct FaultProxy {
    pub port: u16,
    rule: Arc<Mutex<Option<(Target, Fault)>>>,
    seen: Arc<AtomicUsize>,
    fired: Arc<AtomicBool>,
    /// The end of a partition in progress.
    healed: Arc<Mutex<Option<Instant>>>,
}

impl FaultProxy {
    /// A proxy to the server on `target`, listening, injecting nothing yet.
    pub fn start(target: u16) -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = FaultProxy {
            port,
            rule: Arc::new(Mutex::new(None)),
            seen: Arc::new(AtomicUsize::new(0)),
            fired: Arc::new(AtomicBool::new(false)),
            healed: Arc::new(Mutex::new(None)),
        };
        let faults = Faults {
            rule: proxy.rule.clone(),
            seen: proxy.seen.clone(),
            fired: proxy.fired.clone(),
            healed: proxy.healed.clone(),
        };
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let faults = faults.clone();
                std::thread::spawn(move || serve(client, target, &faults));
            }
        });
        proxy
    }

    /// Injects `fault` into `target` (counting from now); replaces any earlier rule.
    pub fn inject(&self, target: Target, fault: Fault) {
        self.seen.store(0, Ordering::SeqCst);
        self.fired.store(false, Ordering::SeqCst);
        *self.rule.lock().unwrap() = Some((target, fault));
    }

    /// Injects nothing more.
    pub fn clear(&self) {
        *self.rule.lock().unwrap() = None;
    }

    /// Whether the fault was injected.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

/// What the connections' threads share.
#[derive(Clone)]
struct Faults {
    rule: Arc<Mutex<Option<(Target, Fault)>>>,
    seen: Arc<AtomicUsize>,
    fired: Arc<AtomicBool>,
    healed: Arc<Mutex<Option<Instant>>>,
}

/// One request as it came: its head (request line and headers) and body.
struct Request {
    method: String,
    path: String,
    head: Vec<String>,
    body: Vec<u8>,
}

impl Request {
    /// Reads one request, or `None` at the end of the connection.
    fn read(reader: &mut BufReader<TcpStream>) -> Option<Request> {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            if line.is_empty() {
                break;
            }
            head.push(line);
        }
        let mut words = head.first()?.split(' ');
        let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
        let header = |name: &str| {
            head.iter().skip(1).find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        assert!(
            header("transfer-encoding").is_none(),
            "the fault proxy reads bodies by Content-Length only: {head:?}"
        );
        let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).ok()?;
        Some(Request {
            method,
            path,
            head,
            body,
        })
    }

    /// The request's bytes, asking the server to close the connection after answering.
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.head {
            if !line.to_ascii_lowercase().starts_with("connection:") {
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Sends `request` to the server on its own connection; its whole response, or `None` if the
/// server could not be reached.
fn deliver(target: u16, request: &[u8]) -> Option<Vec<u8>> {
    let mut server = TcpStream::connect(("127.0.0.1", target)).ok()?;
    server.write_all(request).ok()?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).ok()?;
    Some(response)
}

/// The response with `Connection: close` (the client then opens a new connection per request).
fn closing(response: &[u8]) -> Vec<u8> {
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return response.to_vec();
    };
    let head = String::from_utf8_lossy(&response[..end]);
    let mut out = Vec::new();
    for line in head.split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&response[end + 4..]);
    out
}

fn serve(client: TcpStream, target: u16, faults: &Faults) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    let Some(request) = Request::read(&mut reader) else {
        return;
    };
    let fault = match &*faults.rule.lock().unwrap() {
        Some((t, fault)) if t.matches(&request) => {
            (faults.seen.fetch_add(1, Ordering::SeqCst) + 1 == t.nth).then_some(*fault)
        }
        _ => None,
    };
    if fault.is_some() {
        faults.fired.store(true, Ordering::SeqCst);
    }
    if let Some(Fault::Partition(d)) = fault {
        *faults.healed.lock().unwrap() = Some(Instant::now() + d);
    }
    let healed = *faults.healed.lock().unwrap();
    if let Some(healed) = healed {
        std::thread::sleep(healed.saturating_duration_since(Instant::now()));
    }
    let bytes = request.bytes();
    let response = match fault {
        Some(Fault::Reset) => {
            reset(&client);
            return;
        }
        Some(Fault::DropRequest) => None,
        Some(Fault::Unavailable) => Some(
            b"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        Some(Fault::Delay(d)) => {
            std::thread::sleep(d);
            deliver(target, &bytes)
        }
        Some(Fault::DropResponse) => {
            deliver(target, &bytes);
            None
        }
        Some(Fault::Replay(after)) => {
            let response = deliver(target, &bytes);
            let copy = bytes.clone();
            std::thread::spawn(move || {
                std::thread::sleep(after);
                deliver(target, &copy);
            });
            response
        }
        Some(Fault::Partition(_)) | None => deliver(target, &bytes),
    };
    if let Some(response) = response {
        let _ = client.write_all(&closing(&response));
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// Closes `stream` with a reset: SO_LINGER on with a zero timeout makes the close send RST.
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a `linger` of the size passed.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = stream.shutdown(Shutdown::Read);
}
