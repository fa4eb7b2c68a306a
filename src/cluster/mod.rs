//! The validator tier across processes and machines, on timely dataflow.
//!
//! One timely worker per process. Worker 0 is the supervision node: it keeps O1 to O4, the
//! record, settlement and reports, unchanged, and drives the validators through
//! [`TimelyPool`] (a [`crate::consensus::pool::ValidatorPool`]). Validator v lives in process
//! v mod processes; each round is one timestamp. Worker 0 sends the round's asks, answers its
//! own validators' share in process, then parks until its probe's frontier passes the round:
//! timely's progress tracking, not a clock, says every validator has answered. Answers go
//! back in ask order, so decisions, proofs, roots and store bytes equal the in-process run's.
//!
//! - `net`: the sockets, connected by ipow (rendezvous, mesh, handshake with the run's
//!   fingerprint), every wait bounded by a deadline.
//! - `wire`: the messages as bytes, decoded with typed errors (a fuzz target).
//! - `flow`: the dataflow, [`TimelyPool`] and a validator process's [`serve`].
//!
//! Trust: the processes of a cluster trust each other. timely itself panics on malformed
//! frames below ipow's messages and has no authentication; ipow's own messages are bounded
//! and decoded with typed errors, and a process of another run is refused at the handshake,
//! but a hostile peer on the cluster's links is outside the threat model (ARCHITECTURE.md).
//! Worker 0 hands each process its own validators' MAC keys, never the node secret.
//!
//! timely is fail-stop: when a process dies its peers' network threads panic. ipow catches
//! that at the worker ([`guarded`]), keeps timely's panic messages off the terminal, and
//! turns it into an error naming the lost process.

mod flow;
pub mod net;
pub mod wire;

pub use flow::{Channel, PeriodTraffic, Setup, TimelyPool, Traffic, serve};

use std::cell::Cell;
use std::sync::{Mutex, Once};

/// How asks travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ship {
    /// Each ask carries the signed contract, as the paper's supervision node sends it.
    Bytes,
    /// Asks carry transaction indices; every process derives the same market (the same seed,
    /// or the same dataset file).
    Index,
}

impl Ship {
    /// `bytes` or `index`.
    pub fn name(self) -> &'static str {
        match self {
            Ship::Bytes => "bytes",
            Ship::Index => "index",
        }
    }
}

/// A cluster that failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Setting up the connections.
    #[error(transparent)]
    Net(#[from] net::NetError),
    /// A process was lost.
    #[error("{0}")]
    Lost(String),
    /// A message that does not decode.
    #[error("a message from the supervision node: {0}")]
    Wire(#[from] wire::WireError),
}

/// The timely worker of process `me` over `sockets` (from [`net::mesh`]), and the guard of its
/// network threads (keep it as long as the worker).
pub fn worker(
    me: usize,
    sockets: Vec<Option<std::net::TcpStream>>,
) -> Result<(timely::worker::Worker, Box<dyn std::any::Any + Send>), ClusterError> {
    use timely::communication::allocator::ProcessBuilder;
    use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
    use timely::communication::{Allocator, Hooks};
    quiet_timely_panics();
    let hooks = Hooks::default();
    let local = ProcessBuilder::new_typed_vector(1, hooks.refill.clone(), hooks.spill.clone());
    let (mut builders, guard) = initialize_networking_from_sockets(local, sockets, me, 1, hooks)
        .map_err(|e| ClusterError::Lost(format!("starting the network threads: {e}")))?;
    let builder = builders
        .pop()
        .ok_or_else(|| ClusterError::Lost("timely built no worker".into()))?;
    let allocator = Allocator::Tcp(builder.build());
    let worker = timely::worker::Worker::new(timely::WorkerConfig::default(), allocator, None);
    Ok((worker, Box::new(guard)))
}

thread_local! {
    /// Set while this thread steps a cluster worker: its panics are caught, not printed.
    static STEPPING: Cell<bool> = const { Cell::new(false) };
}

/// What timely's threads said as they panicked: (thread name, message).
static PANICS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Installs (once) a panic hook that records, instead of printing, the panics of timely's
/// network threads and of a worker being stepped under [`guarded`]; every other panic goes to
/// the previous hook.
fn quiet_timely_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            if name.starts_with("timely:") || STEPPING.with(Cell::get) {
                let message = info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| {
                        info.payload()
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                    })
                    .unwrap_or_default();
                if let Ok(mut p) = PANICS.lock() {
                    p.push((name, message));
                }
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f` (stepping a worker), catching a panic: timely's signal that a peer is lost.
pub(crate) fn guarded(f: impl FnOnce()) -> Result<(), String> {
    STEPPING.with(|s| s.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    STEPPING.with(|s| s.set(false));
    r.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}

/// The error for a peer lost in `period` (u64::MAX: outside a period), naming the process
/// whose connection broke first, as timely's receive threads recorded it.
pub(crate) fn lost(period: u64, cause: &str) -> String {
    let panics = PANICS.lock().map(|p| p.clone()).unwrap_or_default();
    let first = panics
        .iter()
        .find(|(name, _)| name.starts_with("timely:recv-") || name.starts_with("timely:send-"));
    let when = if period == u64::MAX {
        String::new()
    } else {
        format!(" during period {period}")
    };
    match first {
        Some((name, message)) => {
            let process = name.rsplit('-').next().unwrap_or("?");
            format!("validator process {process} was lost{when} ({message})")
        }
        None => format!("the cluster failed{when}: {cause}"),
    }
}
