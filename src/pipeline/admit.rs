//! Admission of arrivals (O1 updates T): how transactions arrive ([`Load`]), the queue of
//! pending transactions, and the refusal of a copy of a contract already submitted in the run.

// Transaction indices are u32: a workload holds at most `rules::MAX_TRANSACTIONS`.
#![allow(clippy::cast_possible_truncation)]

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::metrics::{Tally, nanos};
use crate::contract::ContractId;
use crate::market::rules::Workload;

/// How transactions arrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Load {
    /// Every transaction submitted at the start (saturation).
    ClosedLoop,
    /// Transaction i is due at i / rate seconds.
    OpenLoop {
        /// Transactions per second, positive.
        rate: f64,
    },
    /// A rate curve over time: each step's rate holds from its `from_s` until the next step's
    /// (the last holds to the end). Steps in increasing `from_s`, the first at 0; a rate of 0
    /// pauses arrivals; the last rate is positive.
    Curve {
        /// The steps.
        steps: Vec<RateStep>,
    },
}

/// One step of a rate curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateStep {
    /// When the step starts, seconds from the start of the run.
    pub from_s: f64,
    /// Transactions per second from then on.
    pub rate: f64,
}

/// The slowest open-loop rate: one transaction a day. Below it a run would wait longer between
/// two arrivals than anyone watches it.
pub const MIN_RATE: f64 = 1.0 / 86_400.0;

/// The latest a curve step may start: a year after the run's start.
pub const MAX_FROM_S: f64 = 365.0 * 86_400.0;

impl Load {
    /// Checks the parameters; the message names what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let ok = |r: f64| r.is_finite() && (r == 0.0 || r >= MIN_RATE);
        match self {
            Load::ClosedLoop => Ok(()),
            Load::OpenLoop { rate } if rate.is_finite() && *rate >= MIN_RATE => Ok(()),
            Load::OpenLoop { rate } => Err(format!(
                "rate {rate} must be a number of transactions per second of at least {MIN_RATE:.3e} \
                 (one a day)"
            )),
            Load::Curve { steps } => {
                let Some(last) = steps.last() else {
                    return Err("a curve needs at least one step".into());
                };
                if steps[0].from_s != 0.0 {
                    return Err("the first step must start at from_s 0".into());
                }
                if let Some(k) = (0..steps.len()).find(|&k| {
                    !ok(steps[k].rate)
                        || !(0.0..=MAX_FROM_S).contains(&steps[k].from_s)
                        || (k > 0 && steps[k].from_s <= steps[k - 1].from_s)
                }) {
                    return Err(format!(
                        "steps[{k}]: rates must be 0 or at least {MIN_RATE:.3e} (one a day), \
                         from_s increasing from 0 to at most {MAX_FROM_S} (a year)"
                    ));
                }
                if last.rate <= 0.0 {
                    return Err("the last step's rate must be positive".into());
                }
                Ok(())
            }
        }
    }

    /// When transaction `i` is due, from the start of the run (saturating at `Duration::MAX`
    /// for a time no `Duration` holds; [`Load::check`] keeps checked loads far below it).
    #[allow(clippy::cast_precision_loss)]
    pub fn intended(&self, i: usize) -> Duration {
        let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX);
        let i = i as f64;
        match self {
            Load::ClosedLoop => Duration::ZERO,
            Load::OpenLoop { rate } if *rate > 0.0 => secs(i / rate),
            Load::OpenLoop { .. } => Duration::ZERO,
            Load::Curve { steps } => {
                let mut before = 0.0;
                for (k, st) in steps.iter().enumerate() {
                    let end = steps.get(k + 1).map_or(f64::INFINITY, |n| n.from_s);
                    let here = st.rate * (end - st.from_s);
                    if i < before + here {
                        return secs(st.from_s + (i - before) / st.rate);
                    }
                    before += here;
                }
                Duration::ZERO
            }
        }
    }

    /// A short description for tables.
    pub fn describe(&self) -> String {
        match self {
            Load::ClosedLoop => "closed loop (saturation)".into(),
            Load::OpenLoop { rate } => format!("open loop at {rate} tx/s"),
            Load::Curve { steps } => format!("rate curve of {} steps", steps.len()),
        }
    }
}
/// The queue of pending transactions and what has arrived so far.
pub(super) struct Arrivals<'w> {
    workload: &'w Workload,
    load: &'w Load,
    arrived: usize,
    queue: VecDeque<u32>,
    seen: HashSet<ContractId>,
}

impl<'w> Arrivals<'w> {
    pub(super) fn new(workload: &'w Workload, load: &'w Load) -> Self {
        Self {
            workload,
            load,
            arrived: 0,
            queue: VecDeque::new(),
            seen: HashSet::with_capacity(workload.transactions.len()),
        }
    }

    /// Every transaction has arrived.
    pub(super) fn all_arrived(&self) -> bool {
        self.arrived == self.workload.transactions.len()
    }

    /// The next period's pending transactions (carried ones first, at most `period_txs`),
    /// waiting for arrivals while none is pending; `None` once everything has arrived and the
    /// queue is empty. A transaction whose contract id was already submitted in this run is
    /// refused here as a replay: validators check sequence numbers against the watermark of
    /// what was committed before the run, which cannot see a copy submitted during it.
    pub(super) fn next_period(
        &mut self,
        start: Instant,
        period_txs: usize,
        tally: &mut Tally,
    ) -> Option<Vec<u32>> {
        let total = self.workload.transactions.len();
        loop {
            let now = start.elapsed();
            while self.arrived < total && self.load.intended(self.arrived) <= now {
                let tx = self.arrived;
                if self.seen.insert(self.workload.transactions[tx].id()) {
                    self.queue.push_back(tx as u32);
                } else {
                    tally.refuse_replay(tx, nanos(start.elapsed()));
                }
                self.arrived += 1;
            }
            if !self.queue.is_empty() {
                let take = self.queue.len().min(period_txs);
                return Some(self.queue.drain(..take).collect());
            }
            if self.all_arrived() {
                return None;
            }
            let due = self.load.intended(self.arrived);
            std::thread::sleep(due.saturating_sub(start.elapsed()));
        }
    }

    /// Puts undecided transactions back at the head of the queue, in their order.
    pub(super) fn carry(&mut self, carried: &[u32]) {
        for &tx in carried.iter().rev() {
            self.queue.push_front(tx);
        }
    }
}
