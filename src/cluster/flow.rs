//! The dataflow every process builds, worker 0's [`TimelyPool`] and the validator processes'
//! [`serve`].
//!
//! One input (worker 0's; the others close theirs at once) carries [`Frame`]s exchanged to
//! their destination worker; the `validators` operator of worker k stashes a timestamp's frames
//! until its input frontier passes that timestamp (every frame of the round has arrived), then
//! answers them; its answers are exchanged to worker 0, whose `collect` operator puts them in
//! an inbox. A probe after `collect` tells worker 0 that a round is complete: no wall-clock
//! timeout decides that a validator process has answered.

// Ask positions are u32 (a workload holds at most `rules::MAX_TRANSACTIONS`) and worker indices
// below 1,024.
#![allow(clippy::cast_possible_truncation)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Input;
use timely::dataflow::{InputHandleVec, ProbeHandle};
use timely::worker::Worker;

use super::wire::{Answers, Frame, Message, WireAsk, WireError};
use super::{ClusterError, Ship, lost};
use crate::base::process_cpu_seconds;
use crate::consensus::PeriodInput;
use crate::consensus::ipow::IpowParams;
use crate::consensus::pool::{
    Answer, Ask, PoolError, RayonPool, Roster, Round, Transactions, ValidatorPool,
};
use crate::contract::SignedContract;
use crate::crypto::verify::BatchStats;
use crate::grid::placement::GridMarket;
use crate::market::rules::{Truth, Workload};
use crate::validate::congestion::PeriodCongestion;
use crate::validate::{Checks, CongestionStage, NoCongestionStage};

/// How long a waiting worker parks before it looks again (a lost peer poisons its queues;
/// the worker sees it when it wakes).
const PARK: Duration = Duration::from_millis(20);

/// How long worker 0 waits for the dataflow to end after the run.
const SHUTDOWN: Duration = Duration::from_secs(30);

/// What one process's dataflow hands back.
struct Flow {
    input: InputHandleVec<u64, Frame>,
    probe: ProbeHandle<u64>,
    inbox: Rc<RefCell<Vec<Frame>>>,
}

/// Builds the dataflow; `answer` turns a timestamp's frames into the frames to send back.
fn build(worker: &mut Worker, mut answer: impl FnMut(Vec<Frame>) -> Vec<Frame> + 'static) -> Flow {
    let mut input = InputHandleVec::new();
    let probe = ProbeHandle::new();
    let inbox: Rc<RefCell<Vec<Frame>>> = Rc::default();
    let sink = Rc::clone(&inbox);
    worker.dataflow::<u64, _, _>(|scope| {
        scope
            .input_from(&mut input)
            .unary_frontier::<CapacityContainerBuilder<Vec<Frame>>, _, _, _>(
                Exchange::new(|f: &Frame| u64::from(f.to)),
                "validators",
                |_, _| {
                    let mut stash: Vec<(timely::dataflow::operators::Capability<u64>, Vec<Frame>)> =
                        Vec::new();
                    move |(input, frontier), output| {
                        input.for_each_stamp(|cap, data| {
                            let frames: Vec<Frame> = data.flat_map(|d| d.drain(..)).collect();
                            // Frames sent under a time (never under no capability).
                            let Some(cap) = cap.retain_least(0) else {
                                return;
                            };
                            match stash.iter_mut().find(|(c, _)| c.time() == cap.time()) {
                                Some((_, v)) => v.extend(frames),
                                None => stash.push((cap, frames)),
                            }
                        });
                        stash.sort_by_key(|(c, _)| *c.time());
                        let mut keep = Vec::new();
                        for (cap, frames) in stash.drain(..) {
                            if frontier.frontier().less_equal(cap.time()) {
                                keep.push((cap, frames));
                                continue;
                            }
                            let replies = answer(frames);
                            output.session(&cap).give_iterator(replies.into_iter());
                        }
                        stash = keep;
                    }
                },
            )
            .unary::<CapacityContainerBuilder<Vec<Frame>>, _, _, _>(
                Exchange::new(|f: &Frame| u64::from(f.to)),
                "collect",
                move |_, _| {
                    move |input, _output| {
                        input.for_each(|_, data| sink.borrow_mut().append(data));
                    }
                },
            )
            .probe_with(&probe);
    });
    Flow {
        input,
        probe,
        inbox,
    }
}

/// What crossed the wire, from worker 0's side.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Traffic {
    /// Processes in the run.
    pub processes: usize,
    /// How asks travelled: `bytes` or `index`.
    pub ship: &'static str,
    /// Rounds sent.
    pub rounds: u64,
    /// Seconds from sending a round's asks to its frontier passing (worker 0's own share of
    /// the validators answers in this time too).
    pub send_to_frontier_s: f64,
    /// The longest of them.
    pub send_to_frontier_max_s: f64,
    /// Seconds worker 0 spent encoding and sending asks (serial, before its own validators
    /// start).
    pub send_s: f64,
    /// Seconds it spent decoding and placing answers (serial, before the tally).
    pub collect_s: f64,
    /// Per channel: messages and bytes sent by worker 0 (keys, context, asks) and received
    /// (answers).
    pub channels: Vec<Channel>,
    /// Asks answered by worker 0's own validators (validator number mod processes = 0).
    pub asks_local: u64,
    /// Asks sent to other processes.
    pub asks_remote: u64,
    /// Each other process's CPU seconds from the run's first message to its last answer (its
    /// market's generation before the run excluded; process 0's own is the run's).
    pub cpu_s: Vec<f64>,
    /// Peak resident memory in bytes: process 0's, then each other process's by its last
    /// answer.
    pub peak_rss_bytes: Vec<u64>,
    /// Process 0's own CPU seconds from its first round to the report (the supervision node
    /// and its validators' share).
    pub cpu_s_process0: f64,
    /// Per period: its rounds, their send-to-frontier seconds, the bytes each way.
    pub periods: Vec<PeriodTraffic>,
}

/// One period's traffic, from worker 0's side.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PeriodTraffic {
    /// The period.
    pub period: u64,
    /// Rounds.
    pub rounds: u32,
    /// Seconds from sending each round's asks to its frontier passing, summed.
    pub send_to_frontier_s: f64,
    /// Bytes worker 0 sent (keys, context, asks).
    pub bytes_out: u64,
    /// Bytes it received (answers).
    pub bytes_in: u64,
}

/// One kind of message's count and bytes.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Channel {
    /// `keys`, `context`, `asks` or `answers`.
    pub name: &'static str,
    /// Messages.
    pub messages: u64,
    /// Bytes of their encodings.
    pub bytes: u64,
}

impl Traffic {
    fn count(&mut self, name: &'static str, bytes: usize) {
        if let Some(p) = self.periods.last_mut() {
            match name {
                "answers" => p.bytes_in += bytes as u64,
                _ => p.bytes_out += bytes as u64,
            }
        }
        let i = match self.channels.iter().position(|c| c.name == name) {
            Some(i) => i,
            None => {
                self.channels.push(Channel {
                    name,
                    ..Channel::default()
                });
                self.channels.len() - 1
            }
        };
        self.channels[i].messages += 1;
        self.channels[i].bytes += bytes as u64;
    }
}

/// The validator tier across processes, as the supervision node (worker 0) drives it: each
/// round one timestamp; its asks go to validator v's process (v mod processes), worker 0's
/// own validators answer in process while the others work, and the round ends when the
/// probe's frontier passes it. Answers are put back in ask order, so the supervision node
/// tallies exactly what the in-process pool would have given it.
pub struct TimelyPool {
    worker: Option<Worker>,
    guard: Option<Box<dyn std::any::Any + Send>>,
    flow: Flow,
    params: IpowParams,
    local: RayonPool,
    ship: Ship,
    keys_sent: bool,
    context_of: Option<u64>,
    traffic: Traffic,
    broken: Option<String>,
    /// Process 0's CPU seconds at its first round.
    cpu_start: Option<f64>,
}

impl TimelyPool {
    /// The pool on `worker` (process 0 of its cluster), whose `guard` keeps its network
    /// threads; `params` are the run's validators.
    pub fn new(
        mut worker: Worker,
        guard: Box<dyn std::any::Any + Send>,
        params: IpowParams,
        ship: Ship,
    ) -> Self {
        let flow = build(&mut worker, |_| Vec::new());
        let processes = worker.peers();
        Self {
            worker: Some(worker),
            guard: Some(guard),
            flow,
            local: RayonPool::new(params.clone()),
            params,
            ship,
            keys_sent: false,
            context_of: None,
            traffic: Traffic {
                processes,
                ship: ship.name(),
                cpu_s: vec![0.0; processes.saturating_sub(1)],
                peak_rss_bytes: vec![0; processes],
                ..Traffic::default()
            },
            broken: None,
            cpu_start: None,
        }
    }

    fn processes(&self) -> usize {
        self.traffic.processes
    }

    fn send(&mut self, to: usize, message: &Message, channel: &'static str) {
        self.send_bytes(to, message.encode(), channel);
    }

    /// Sends an encoded message to worker `to`, counted on `channel`.
    fn send_bytes(&mut self, to: usize, bytes: Vec<u8>, channel: &'static str) {
        self.traffic.count(channel, bytes.len());
        self.flow.input.send(Frame {
            to: to as u32,
            from: 0,
            bytes,
        });
    }

    /// Steps worker 0 until `done` holds, parked between events; a lost process (timely
    /// panics on its broken queue) becomes an error naming it.
    fn step_until(
        &mut self,
        period: u64,
        mut done: impl FnMut(&Flow) -> bool,
    ) -> Result<(), PoolError> {
        if let Some(b) = &self.broken {
            return Err(PoolError(b.clone().into()));
        }
        let Some(worker) = self.worker.as_mut() else {
            return Err(PoolError("the cluster is shut down".into()));
        };
        let flow = &self.flow;
        let stepped = super::guarded(|| {
            worker.step();
            worker.step_or_park_while(Some(PARK), || !done(flow));
        });
        if let Err(cause) = stepped {
            let message = lost(period, &cause);
            self.broken = Some(message.clone());
            return Err(PoolError(message.into()));
        }
        Ok(())
    }

    /// Once: each process its validators' MAC keys; once per period: the published context.
    fn publish(&mut self, input: &PeriodInput<'_>) {
        if self.traffic.periods.last().map(|p| p.period) != Some(input.period) {
            self.traffic.periods.push(PeriodTraffic {
                period: input.period,
                ..PeriodTraffic::default()
            });
        }
        let processes = self.processes();
        if !self.keys_sent {
            let secret = self.params.node_secret();
            for k in 1..processes {
                let keys = (0..self.params.validators)
                    .filter(|v| *v as usize % processes == k)
                    .map(|v| (v, secret.validator_mac_bytes(v)))
                    .collect();
                self.send(k, &Message::Keys(keys), "keys");
            }
            self.keys_sent = true;
        }
        if self.context_of != Some(input.period) {
            let mut context = Vec::new();
            input.checks.congestion.publish(&mut context);
            let message = Message::Context {
                period: input.period,
                context,
            };
            for k in 1..processes {
                self.send(k, &message, "context");
            }
            self.context_of = Some(input.period);
        }
    }

    /// Sends each other process its validators' asks (each process's message encoded on its
    /// own rayon task); returns worker 0's own asks with their positions.
    fn send_asks(&mut self, input: &PeriodInput<'_>, asks: &[Ask]) -> (Vec<Ask>, Vec<usize>) {
        let processes = self.processes();
        let mut local = Vec::new();
        let mut local_pos = Vec::new();
        let mut remote: Vec<Vec<(u32, Ask, bool)>> = vec![Vec::new(); processes];
        for (pos, a) in asks.iter().enumerate() {
            let k = a.validator as usize % processes;
            if k == 0 {
                local.push(*a);
                local_pos.push(pos);
            } else {
                let planted = input.workload.truth[a.tx as usize] != Truth::Valid;
                remote[k].push((pos as u32, *a, planted));
            }
        }
        self.traffic.asks_local += local.len() as u64;
        self.traffic.asks_remote += (asks.len() - local.len()) as u64;
        let contracts = match self.ship {
            Ship::Bytes => Some(&input.workload.transactions[..]),
            Ship::Index => None,
        };
        use rayon::prelude::*;
        let encoded: Vec<(usize, Vec<u8>)> = remote
            .par_iter()
            .enumerate()
            .skip(1)
            .filter(|(_, a)| !a.is_empty())
            .map(|(k, a)| (k, super::wire::encode_asks(input.period, a, contracts)))
            .collect();
        for (k, bytes) in encoded {
            self.send_bytes(k, bytes, "asks");
        }
        (local, local_pos)
    }

    /// Puts the other processes' answers of the round at their asks' positions.
    fn collect(
        &mut self,
        asks: &[Ask],
        answers: &mut [Answer],
        stats: &mut BatchStats,
    ) -> Result<(), PoolError> {
        let processes = self.processes();
        let frames: Vec<Frame> = self.flow.inbox.borrow_mut().drain(..).collect();
        for frame in frames {
            self.traffic.count("answers", frame.bytes.len());
            let from = frame.from as usize;
            let message = Message::decode(&frame.bytes).map_err(|e| {
                PoolError(format!("an answer from validator process {from}: {e}").into())
            })?;
            let Message::Answers(got) = message else {
                return Err(PoolError(
                    format!("validator process {from} sent something else than answers").into(),
                ));
            };
            stats.add(&got.stats);
            if let Some(c) = self.traffic.cpu_s.get_mut(from.wrapping_sub(1)) {
                *c = got.cpu_us as f64 / 1e6;
            }
            if let Some(m) = self.traffic.peak_rss_bytes.get_mut(from) {
                *m = got.peak_rss_bytes;
            }
            for (pos, answer) in got.answers {
                // Only an answer to an ask of this process's validators counts; the tally
                // then checks the proof's transaction and validator against the ask.
                if let Some(slot) = answers.get_mut(pos as usize)
                    && asks[pos as usize].validator as usize % processes == from
                {
                    *slot = answer;
                }
            }
        }
        Ok(())
    }
}

impl ValidatorPool for TimelyPool {
    fn validate(
        &mut self,
        input: &PeriodInput<'_>,
        asks: &[Ask],
        stats: &mut BatchStats,
    ) -> Result<Vec<Answer>, PoolError> {
        let t = Instant::now();
        self.cpu_start.get_or_insert_with(process_cpu_seconds);
        self.publish(input);
        let (local, local_pos) = self.send_asks(input, asks);
        self.traffic.send_s += t.elapsed().as_secs_f64();
        let sent = Instant::now();
        let round = *self.flow.input.time();
        self.flow.input.advance_to(round + 1);
        // Push the asks out before worker 0's own validators start.
        self.step_until(input.period, |_| true)?;
        let none = Answer {
            proof: None,
            worked: false,
        };
        let mut answers = vec![none; asks.len()];
        let own = self.local.answer_round(&Round::of(input), &local, stats);
        for (pos, a) in local_pos.into_iter().zip(own) {
            answers[pos] = a;
        }
        self.step_until(input.period, |f| !f.probe.less_than(&(round + 1)))?;
        let waited = sent.elapsed().as_secs_f64();
        self.traffic.rounds += 1;
        self.traffic.send_to_frontier_s += waited;
        self.traffic.send_to_frontier_max_s = self.traffic.send_to_frontier_max_s.max(waited);
        if let Some(p) = self.traffic.periods.last_mut() {
            p.rounds += 1;
            p.send_to_frontier_s += waited;
        }
        let t = Instant::now();
        self.collect(asks, &mut answers, stats)?;
        self.traffic.collect_s += t.elapsed().as_secs_f64();
        Ok(answers)
    }

    fn remote_cpu_seconds(&self) -> f64 {
        self.traffic.cpu_s.iter().sum()
    }

    fn report(&self) -> serde_json::Value {
        let mut traffic = self.traffic.clone();
        if let Some(own) = traffic.peak_rss_bytes.first_mut() {
            *own = crate::base::peak_rss_bytes();
        }
        if let Some(start) = self.cpu_start {
            traffic.cpu_s_process0 = process_cpu_seconds() - start;
        }
        serde_json::to_value(&traffic).unwrap_or_default()
    }
}

impl Drop for TimelyPool {
    fn drop(&mut self) {
        let input = std::mem::replace(&mut self.flow.input, InputHandleVec::new());
        drop(input);
        if self.broken.is_none() {
            // Close the input and let every process see the dataflow end, for at most
            // SHUTDOWN: a process that never lets it end is left to its parent's kill.
            let deadline = Instant::now() + SHUTDOWN;
            let ended = self.step_until(u64::MAX, |f| f.probe.done() || Instant::now() >= deadline);
            if ended.is_err() || !self.flow.probe.done() {
                self.broken = Some("the cluster did not shut down".into());
            }
        }
        if self.broken.is_some() {
            // timely's network threads panicked; joining them would panic again.
            std::mem::forget(self.worker.take());
            std::mem::forget(self.guard.take());
        }
    }
}

/// A validator process's transactions in `bytes` mode: the contracts its asks carried.
struct Carried(HashMap<u32, (SignedContract, bool)>);

impl Transactions for Carried {
    fn contract(&self, tx: u32) -> &SignedContract {
        &self.0[&tx].0
    }
    fn planted(&self, tx: u32) -> bool {
        self.0[&tx].1
    }
}

/// What a validator process works from: the market (every process derives the same from the
/// same flags), the grid, its validators' parameters.
pub struct Setup {
    /// The workload (`index` mode reads its transactions; both modes its rules).
    pub workload: Workload,
    /// The grid market, with a grid.
    pub grid: Option<GridMarket>,
    /// The run's validators (faults and lateness by its seed; keys arrive from worker 0).
    pub params: IpowParams,
}

/// A validator process's state between frames.
struct Validators {
    /// This process's CPU seconds when the run's first message (its keys) arrived.
    cpu_at_keys: f64,
    workload: Workload,
    grid: Option<&'static GridMarket>,
    params: IpowParams,
    me: usize,
    pool: Option<RayonPool>,
    /// The period whose context arrived last, and its congestion stage (none without a
    /// grid), decoded once for all the period's rounds.
    stage: Option<(u64, Option<PeriodCongestion<'static>>)>,
    failed: Rc<RefCell<Option<WireError>>>,
}

impl Validators {
    fn answer(&mut self, frames: Vec<Frame>) -> Vec<Frame> {
        let mut out = Vec::new();
        for frame in frames {
            match Message::decode(&frame.bytes).and_then(|m| self.take(m)) {
                Ok(Some(reply)) => out.push(Frame {
                    to: 0,
                    from: self.me as u32,
                    bytes: reply.encode(),
                }),
                Ok(None) => {}
                Err(e) => {
                    self.failed.borrow_mut().get_or_insert(e);
                }
            }
        }
        out
    }

    fn take(&mut self, message: Message) -> Result<Option<Message>, WireError> {
        match message {
            Message::Keys(keys) => {
                self.cpu_at_keys = process_cpu_seconds();
                let keys: HashMap<u32, [u8; 32]> = keys.into_iter().collect();
                let roster = Roster::assemble(&self.params, |v| {
                    ring::hmac::Key::new(
                        ring::hmac::HMAC_SHA256,
                        keys.get(&v).map_or(&[0u8; 32][..], |k| &k[..]),
                    )
                });
                self.pool = Some(RayonPool::with_roster(
                    self.params.clone(),
                    Arc::new(roster),
                ));
                Ok(None)
            }
            Message::Context { period, context } => {
                self.stage = Some((period, self.stage_of(&context)?));
                Ok(None)
            }
            Message::Asks { period, asks } => self.answer_asks(period, asks).map(Some),
            Message::Answers(_) => Err(refused(
                "message",
                "answers go to the supervision node, not to a validator process".into(),
            )),
        }
    }

    fn answer_asks(&self, period: u64, mut asks: Vec<WireAsk>) -> Result<Message, WireError> {
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| refused("asks", "asks before the validators' keys".into()))?;
        let stage = match &self.stage {
            Some((p, stage)) if *p == period => stage,
            _ => {
                return Err(refused(
                    "asks",
                    format!("asks of period {period} before its context"),
                ));
            }
        };
        let rules = &self.workload.rules;
        let checks = Checks {
            rules,
            congestion: match &stage {
                Some(s) => s as &dyn CongestionStage,
                None => &NoCongestionStage,
            },
        };
        let carried = self.carried(&mut asks)?;
        let txs: &dyn Transactions = match &carried {
            Some(c) => c,
            None => &self.workload,
        };
        let round = Round {
            period,
            checks: &checks,
            txs,
        };
        let plain: Vec<Ask> = asks.iter().map(|a| a.ask).collect();
        let mut stats = BatchStats::default();
        let answers = pool.answer_round(&round, &plain, &mut stats);
        let cpu = (process_cpu_seconds() - self.cpu_at_keys).max(0.0);
        Ok(Message::Answers(Answers {
            answers: asks.iter().map(|a| a.pos).zip(answers).collect(),
            stats,
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            cpu_us: (cpu * 1e6) as u64,
            peak_rss_bytes: crate::base::peak_rss_bytes(),
        }))
    }

    /// The congestion stage a published context gives (none without a grid).
    fn stage_of(&self, context: &[u8]) -> Result<Option<PeriodCongestion<'static>>, WireError> {
        let terms = self.workload.rules.terms();
        match (self.grid, context.is_empty()) {
            (Some(g), false) => Ok(Some(PeriodCongestion::published(g, terms, context)?)),
            (None, true) => Ok(None),
            _ => Err(refused(
                "context",
                "a grid context without a grid, or none with one".into(),
            )),
        }
    }

    /// The asks' contracts in `bytes` mode (each carried by its transaction's first ask in
    /// the message); `None` in `index` mode (no ask carries one: the workload's own), after
    /// checking every ask names a transaction and a validator this process knows.
    fn carried(&self, asks: &mut [WireAsk]) -> Result<Option<Carried>, WireError> {
        let n = self.params.validators;
        if let Some(a) = asks.iter().find(|a| a.ask.validator >= n) {
            return Err(refused(
                "asks",
                format!("validator {} of {n}", a.ask.validator),
            ));
        }
        if asks.iter().all(|a| a.contract.is_none()) {
            let len = self.workload.transactions.len();
            if let Some(a) = asks.iter().find(|a| a.ask.tx as usize >= len) {
                return Err(refused(
                    "asks",
                    format!(
                        "transaction {} is not in this process's workload of {len}",
                        a.ask.tx
                    ),
                ));
            }
            return Ok(None);
        }
        let mut carried = HashMap::new();
        for a in asks.iter_mut() {
            match a.contract.take() {
                Some(c) => {
                    carried.insert(a.ask.tx, (c, a.planted));
                }
                None if carried.contains_key(&a.ask.tx) => {}
                None => {
                    return Err(refused(
                        "asks",
                        format!("transaction {} comes without its contract", a.ask.tx),
                    ));
                }
            }
        }
        Ok(Some(Carried(carried)))
    }
}

/// A message this process refuses, naming the field.
fn refused(field: &str, message: String) -> WireError {
    WireError::Field(crate::base::cursor::FieldError {
        field: field.into(),
        at: 0,
        message,
    })
}

/// A validator process (worker `worker.index()` > 0): answers worker 0's asks until worker 0
/// closes the dataflow. Fails on a message that does not decode, or when a process is lost.
/// Call it once per process: its grid market is kept until the process ends.
pub fn serve(
    mut worker: Worker,
    guard: Box<dyn std::any::Any + Send>,
    setup: Setup,
) -> Result<(), ClusterError> {
    let failed: Rc<RefCell<Option<WireError>>> = Rc::default();
    // The grid market lives as long as the process (serving is a validator process's last
    // work), so each period's decoded context can borrow it for all of the period's rounds.
    let grid: Option<&'static GridMarket> = setup.grid.map(|g| &*Box::leak(Box::new(g)));
    let mut state = Validators {
        cpu_at_keys: 0.0,
        workload: setup.workload,
        grid,
        params: setup.params,
        me: worker.index(),
        pool: None,
        stage: None,
        failed: Rc::clone(&failed),
    };
    let flow = build(&mut worker, move |frames| state.answer(frames));
    let Flow { input, probe, .. } = flow;
    drop(input);
    let stepped = super::guarded(|| {
        worker.step_or_park_while(Some(PARK), || !probe.done() && failed.borrow().is_none());
    });
    let outcome = match (stepped, failed.borrow_mut().take()) {
        (Err(cause), _) => Err(ClusterError::Lost(lost(u64::MAX, &cause))),
        (Ok(()), Some(e)) => Err(ClusterError::Wire(e)),
        (Ok(()), None) => Ok(()),
    };
    if outcome.is_err() {
        std::mem::forget(worker);
        std::mem::forget(guard);
    } else {
        drop(worker);
        drop(guard);
    }
    outcome
}
