//! The sockets between the processes of one run, connected by ipow rather than by timely's own
//! set-up (which prints to stdout, corrupting `--json`; retries forever with 1 s sleeps; and
//! defaults to fixed ports 2101+). Every wait has a deadline and ends in an error that names
//! the process and its address.
//!
//! - `--processes N` on one machine: the parent listens on `127.0.0.1:0` for a rendezvous;
//!   each child binds its own `127.0.0.1:0` listener, reports its index and port
//!   (`ipow-child INDEX PORT`), and receives every address (`ipow-peers A0 A1 ...`).
//! - `--hosts FILE`: every process is given the same list and its own index.
//!
//! Then [`mesh`]: process i connects to every process before it and accepts every one after
//! it. Each side opens with [`HELLO`], its index (u64) and the run's fingerprint (32 bytes:
//! the workload and validators the processes must agree on), so that a process of another run
//! or with other flags is refused by name instead of answering for the wrong market.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs as _};
use std::time::{Duration, Instant};

/// The first bytes of every cluster connection.
pub const HELLO: &[u8; 16] = b"ipow-cluster/v1\n";

/// A connection that failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A peer could not be reached, did not answer in time, or is another run.
    #[error("process {index} at {address}: {message}")]
    Peer {
        /// Its index.
        index: usize,
        /// Its address.
        address: String,
        /// What went wrong.
        message: String,
    },
    /// This process's own listener or rendezvous.
    #[error("{0}")]
    Local(String),
}

fn peer(index: usize, address: &str, message: impl Into<String>) -> NetError {
    NetError::Peer {
        index,
        address: address.to_owned(),
        message: message.into(),
    }
}

fn left(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// Binds `address` for this process's cluster connections, naming it on failure (an occupied
/// port, an address not of this machine).
pub fn listen(address: &str) -> Result<TcpListener, NetError> {
    TcpListener::bind(address)
        .map_err(|e| NetError::Local(format!("cannot listen on {address}: {e}")))
}

/// The parent's side of the rendezvous: accepts `processes - 1` children on `rendezvous`,
/// each reporting its index and port, and sends each the list of every address (the parent's
/// own `me` first). Fails at `deadline` naming the children that never reported, or as soon as
/// `alive` fails (a child that exited).
pub fn rendezvous_parent(
    rendezvous: &TcpListener,
    me: SocketAddr,
    processes: usize,
    deadline: Instant,
    alive: &mut dyn FnMut() -> Result<(), NetError>,
) -> Result<Vec<String>, NetError> {
    let mut children: Vec<Option<(TcpStream, String)>> = (1..processes).map(|_| None).collect();
    rendezvous
        .set_nonblocking(true)
        .map_err(|e| NetError::Local(format!("rendezvous: {e}")))?;
    while children.iter().any(Option::is_none) {
        match rendezvous.accept() {
            Ok((stream, from)) => {
                let (index, address) = read_report(stream.try_clone(), from, deadline)?;
                match children.get_mut(index.wrapping_sub(1)) {
                    Some(slot @ None) => *slot = Some((stream, address)),
                    _ => {
                        return Err(NetError::Local(format!(
                            "rendezvous: a second or unknown child {index} from {from}"
                        )));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                alive()?;
                if Instant::now() >= deadline {
                    let missing: Vec<String> = children
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.is_none())
                        .map(|(i, _)| (i + 1).to_string())
                        .collect();
                    return Err(NetError::Local(format!(
                        "validator process(es) {} never reported at the rendezvous",
                        missing.join(", ")
                    )));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(NetError::Local(format!("rendezvous: {e}"))),
        }
    }
    let mut addresses = vec![me.to_string()];
    addresses.extend(children.iter().flatten().map(|(_, a)| a.clone()));
    let line = format!("ipow-peers {}\n", addresses.join(" "));
    for (i, (stream, address)) in children.iter_mut().flatten().enumerate() {
        stream
            .write_all(line.as_bytes())
            .map_err(|e| peer(i + 1, address, format!("sending the peer list: {e}")))?;
    }
    Ok(addresses)
}

/// A child's report at the rendezvous: `ipow-child INDEX PORT`.
fn read_report(
    stream: std::io::Result<TcpStream>,
    from: SocketAddr,
    deadline: Instant,
) -> Result<(usize, String), NetError> {
    let bad = |m: String| NetError::Local(format!("rendezvous from {from}: {m}"));
    let stream = stream.map_err(|e| bad(e.to_string()))?;
    stream
        .set_nonblocking(false)
        .map_err(|e| bad(e.to_string()))?;
    stream
        .set_read_timeout(Some(left(deadline)))
        .map_err(|e| bad(e.to_string()))?;
    let mut line = String::new();
    BufReader::new(stream.take(64))
        .read_line(&mut line)
        .map_err(|e| bad(e.to_string()))?;
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("ipow-child"), Some(i), Some(port), None) => {
            let index = i.parse().map_err(|_| bad(format!("index {i:?}")))?;
            let port: u16 = port.parse().map_err(|_| bad(format!("port {port:?}")))?;
            Ok((index, SocketAddr::new(from.ip(), port).to_string()))
        }
        _ => Err(bad(format!("not a child's report: {line:?}"))),
    }
}

/// A child's side of the rendezvous at `parent`: reports `index` and the port of its own
/// `listener`, and returns every process's address.
pub fn rendezvous_child(
    parent: &str,
    index: usize,
    listener: &TcpListener,
    deadline: Instant,
) -> Result<Vec<String>, NetError> {
    let port = listener
        .local_addr()
        .map_err(|e| NetError::Local(e.to_string()))?
        .port();
    let mut stream = connect(0, parent, deadline)?;
    let fail = |m: String| peer(0, parent, m);
    stream
        .write_all(format!("ipow-child {index} {port}\n").as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    stream
        .set_read_timeout(Some(left(deadline)))
        .map_err(|e| fail(e.to_string()))?;
    let mut line = String::new();
    BufReader::new(stream.take(1 << 20))
        .read_line(&mut line)
        .map_err(|e| fail(format!("waiting for the peer list: {e}")))?;
    match line.strip_prefix("ipow-peers ") {
        Some(list) => Ok(list.split_whitespace().map(str::to_owned).collect()),
        None => Err(fail(format!("not a peer list: {line:?}"))),
    }
}

/// Connects to `address` (process `index`), retrying until `deadline`.
fn connect(index: usize, address: &str, deadline: Instant) -> Result<TcpStream, NetError> {
    loop {
        let attempt = address
            .to_socket_addrs()
            .map_err(|e| e.to_string())
            .and_then(|mut a| a.next().ok_or_else(|| "no address".to_owned()))
            .and_then(|a| {
                TcpStream::connect_timeout(&a, left(deadline).min(Duration::from_secs(1)))
                    .map_err(|e| e.to_string())
            });
        match attempt {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => {
                return Err(peer(index, address, format!("unreachable: {e}")));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn hello(index: usize, fingerprint: &[u8; 32]) -> Vec<u8> {
    let mut h = HELLO.to_vec();
    h.extend_from_slice(&(index as u64).to_be_bytes());
    h.extend_from_slice(fingerprint);
    h
}

/// Reads a peer's hello: its index and fingerprint.
fn read_hello(stream: &mut TcpStream) -> std::io::Result<(u64, [u8; 32])> {
    let mut b = [0u8; 16 + 8 + 32];
    stream.read_exact(&mut b)?;
    if &b[..16] != HELLO {
        return Err(std::io::Error::other("not an ipow cluster peer"));
    }
    let mut index = [0u8; 8];
    index.copy_from_slice(&b[16..24]);
    let mut fp = [0u8; 32];
    fp.copy_from_slice(&b[24..]);
    Ok((u64::from_be_bytes(index), fp))
}

/// The connections of process `me` to every other process of `addresses` (`None` at `me`),
/// for timely's `initialize_networking_from_sockets`: connects to those before it, accepts
/// those after it on `listener`, and checks every peer's index and `fingerprint`; fails at
/// `deadline`, or as soon as `alive` fails.
pub fn mesh(
    me: usize,
    listener: &TcpListener,
    addresses: &[String],
    fingerprint: &[u8; 32],
    deadline: Instant,
    alive: &mut dyn FnMut() -> Result<(), NetError>,
) -> Result<Vec<Option<TcpStream>>, NetError> {
    let mut sockets: Vec<Option<TcpStream>> = (0..addresses.len()).map(|_| None).collect();
    for (i, address) in addresses.iter().enumerate().take(me) {
        let mut s = connect(i, address, deadline)?;
        let fail = |m: String| peer(i, address, m);
        s.write_all(&hello(me, fingerprint))
            .map_err(|e| fail(e.to_string()))?;
        s.set_read_timeout(Some(left(deadline)))
            .map_err(|e| fail(e.to_string()))?;
        let (index, fp) = read_hello(&mut s).map_err(|e| fail(format!("no hello: {e}")))?;
        check_peer(i, address, index, &fp, fingerprint)?;
        sockets[i] = Some(s);
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| NetError::Local(e.to_string()))?;
    while sockets.iter().skip(me + 1).any(Option::is_none) {
        match listener.accept() {
            Ok((mut s, from)) => {
                let bad = |m: String| NetError::Local(format!("a connection from {from}: {m}"));
                s.set_nonblocking(false).map_err(|e| bad(e.to_string()))?;
                s.set_read_timeout(Some(left(deadline)))
                    .map_err(|e| bad(e.to_string()))?;
                let (index, fp) = read_hello(&mut s).map_err(|e| bad(format!("no hello: {e}")))?;
                let j = usize::try_from(index).unwrap_or(usize::MAX);
                if j <= me || j >= addresses.len() || sockets[j].is_some() {
                    return Err(bad(format!("announces itself as process {index}")));
                }
                check_peer(j, &addresses[j], index, &fp, fingerprint)?;
                s.write_all(&hello(me, fingerprint))
                    .map_err(|e| bad(e.to_string()))?;
                sockets[j] = Some(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                alive()?;
                if Instant::now() >= deadline {
                    let j = (me + 1..addresses.len())
                        .find(|&j| sockets[j].is_none())
                        .unwrap_or(me);
                    return Err(peer(j, &addresses[j], "never connected"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(NetError::Local(format!("accepting: {e}"))),
        }
    }
    for s in sockets.iter().flatten() {
        s.set_read_timeout(None)
            .and_then(|()| s.set_nodelay(true))
            .map_err(|e| NetError::Local(e.to_string()))?;
    }
    Ok(sockets)
}

fn check_peer(
    i: usize,
    address: &str,
    index: u64,
    fp: &[u8; 32],
    fingerprint: &[u8; 32],
) -> Result<(), NetError> {
    if index != i as u64 {
        return Err(peer(i, address, format!("answers as process {index}")));
    }
    if fp != fingerprint {
        return Err(peer(
            i,
            address,
            "runs another workload or other validators (its fingerprint differs): start every \
             process with the same flags",
        ));
    }
    Ok(())
}
