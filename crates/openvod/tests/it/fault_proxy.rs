//! A TCP proxy that misbehaves on purpose, put between a client and a server: each new connection
//! gets the next fault of a fixed list (then, once the list is used up, none), so a test knows
//! exactly what it survived.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Passes bytes through untouched.
    None,
    /// Holds each read for this long before passing it on (both directions).
    Delay(Duration),
    /// Passes this many bytes from the client, then closes both sides (a cut mid-request).
    TruncateAfter(usize),
    /// Passes this many bytes from the client, then resets the connection (RST, not FIN).
    ResetAfter(usize),
    /// Passes this many bytes from the client, then passes nothing either way while keeping the
    /// connection open (a stalled network).
    StallAfter(usize),
    /// Passes the request, then cuts the connection before the answer reaches the client: the
    /// server did the work, the client never hears of it.
    DropResponse,
}

pub struct FaultProxy {
    /// `http://127.0.0.1:port`
    pub url: String,
    faults: Arc<Mutex<std::collections::VecDeque<Fault>>>,
    /// Connections being relayed, so that `fault_next` can cut them.
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    /// While set, every connection holds what it reads (a network that stops moving bytes).
    paused: Arc<std::sync::atomic::AtomicBool>,
    /// Connections numbered below this hold what they read for good (see `freeze_open`).
    frozen_below: Arc<std::sync::atomic::AtomicU64>,
    /// How many connections were accepted.
    accepted: Arc<std::sync::atomic::AtomicU64>,
}

/// What a relay waits on before passing bytes on.
#[derive(Clone)]
struct Gate {
    paused: Arc<std::sync::atomic::AtomicBool>,
    frozen_below: Arc<std::sync::atomic::AtomicU64>,
    number: u64,
}

impl FaultProxy {
    /// Proxies to `upstream` (`host:port`), faulting connections in the order of `faults`.
    pub async fn start(upstream: &str, faults: &[Fault]) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let faults: Arc<Mutex<std::collections::VecDeque<Fault>>> =
            Arc::new(Mutex::new(faults.iter().copied().collect()));
        let upstream = upstream.to_owned();
        let queue = Arc::clone(&faults);
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let relays = Arc::clone(&open);
        let paused: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let frozen_below: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let accepted: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let gate = Gate {
            paused: Arc::clone(&paused),
            frozen_below: Arc::clone(&frozen_below),
            number: 0,
        };
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let fault = queue.lock().unwrap().pop_front().unwrap_or(Fault::None);
                let gate = Gate {
                    number: counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                    ..gate.clone()
                };
                let upstream = upstream.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, fault, &gate).await;
                    }
                });
                let mut relays = relays.lock().unwrap();
                relays.retain(|r| !r.is_finished());
                relays.push(relay.abort_handle());
            }
        });
        FaultProxy {
            url,
            faults,
            open,
            paused,
            frozen_below,
            accepted,
        }
    }

    /// Every connection open now passes nothing more, ever, while staying open; new ones work (a
    /// path that lost its connections without a word: a NAT or firewall forgetting them, a host
    /// failed over).
    pub fn freeze_open(&self) {
        let accepted = self.accepted.load(std::sync::atomic::Ordering::SeqCst);
        self.frozen_below
            .store(accepted, std::sync::atomic::Ordering::SeqCst);
    }

    /// Holds every byte on every connection, open or new, until `resume` (a stalled network:
    /// connections stay open, nothing moves).
    pub fn pause(&self) {
        self.paused
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Lets the held bytes through, in order, and the traffic flow again.
    pub fn resume(&self) {
        self.paused
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Cuts every connection open now and faults the next new ones with `faults`: a client
    /// that keeps connections alive (an S3 client's pool) meets the faults on its next requests.
    pub fn fault_next(&self, faults: &[Fault]) {
        self.faults.lock().unwrap().extend(faults.iter().copied());
        for relay in self.open.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    /// Forgets the faults not yet handed out: the network is healthy again.
    pub fn clear(&self) {
        self.faults.lock().unwrap().clear();
    }

    /// Faults still to be handed out.
    pub fn pending(&self) -> usize {
        self.faults.lock().unwrap().len()
    }
}

/// Waits while the proxy is paused, or for good once this connection is frozen.
async fn held(gate: &Gate) {
    while gate.paused.load(std::sync::atomic::Ordering::Relaxed)
        || gate.number < gate.frozen_below.load(std::sync::atomic::Ordering::SeqCst)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn relay(client: TcpStream, server: TcpStream, fault: Fault, gate: &Gate) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    if let Fault::ResetAfter(_) = fault {
        // Linger 0: closing sends RST instead of a FIN. (Deprecated because a non-zero linger
        // blocks the thread on drop; zero does not.)
        #[allow(deprecated)]
        let _ = (
            client.set_linger(Some(Duration::ZERO)),
            server.set_linger(Some(Duration::ZERO)),
        );
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let delay = match fault {
        Fault::Delay(d) => Some(d),
        _ => None,
    };
    let limit = match fault {
        Fault::TruncateAfter(n) | Fault::ResetAfter(n) | Fault::StallAfter(n) => Some(n),
        _ => None,
    };
    let stall = matches!(fault, Fault::StallAfter(_));
    // Set once the client has sent `limit` bytes.
    let cut = std::sync::atomic::AtomicBool::new(false);
    let upstream = async {
        let mut passed = 0usize;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if cut.load(std::sync::atomic::Ordering::Relaxed) {
                continue; // stalled: swallowed
            }
            let n = limit.map_or(n, |limit| n.min(limit - passed));
            held(gate).await;
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
            passed += n;
            if limit == Some(passed) {
                cut.store(true, std::sync::atomic::Ordering::Relaxed);
                if !stall {
                    return;
                }
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if fault == Fault::DropResponse {
                break;
            }
            if cut.load(std::sync::atomic::Ordering::Relaxed) {
                continue; // stalled: swallowed
            }
            held(gate).await;
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        if !stall {
            let _ = client_write.shutdown().await;
        }
    };
    match fault {
        // The connection ends as soon as the limit is reached, whatever the other direction does.
        Fault::TruncateAfter(_) | Fault::ResetAfter(_) => {
            tokio::select! {
                () = upstream => {}
                () = downstream => {}
            }
        }
        _ => {
            tokio::join!(upstream, downstream);
        }
    }
}
