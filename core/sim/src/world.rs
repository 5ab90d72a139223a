//! The simulated world: every replica runs inside the reference host
//! ([`rsm_core::Host`]), over a simulated disk whose fsyncs complete on the simulator's
//! schedule and a per-node key-value store; the world drives virtual time, carries the
//! host's released sends over a faulty network, injects faults and checks invariants on
//! what the host reports.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use rsm_check::{Call, History, Operation, Outcome, Ret};
use rsm_core::kv::{KvCommand, KvResponse, KvStore};
use rsm_core::session::ClientId;
use rsm_core::{
    Bytes, ClientError, CodecError, Completion, Entry, EntryKind, Epoch, Host, HostConfig,
    HostError, HostEvent, LogIndex, Membership, NodeId, PersistError, Prng, Queryable, Replica,
    Reply, RequestId, Role, StartMode, StateMachine, Status,
};

use super::client::{
    self, ATTEMPT_TIMEOUT_UNITS, ATTEMPTS_MAX, Attempt, AttemptState, Client, RETRY_BACKOFF_UNITS,
};
use super::disk::{DISK_PENDING_MAX, Disk};
use super::faults::{self, FaultCounts, FaultKind};
use super::invariants::{Checker, Invariant, Violation, Watch, violation};
use super::network::{Fate, LinkFaults, Network};
use super::report::RunStats;
use super::swarm::{Swarm, TICK_UNITS};
use super::trace::{Digest, Event, EventKind};
use super::{LivenessHeal, RunResult, SimOptions};

/// Messages in flight at once; beyond it the network drops new sends (a congested
/// switch), which bounds memory against an automaton that floods.
pub const IN_FLIGHT_MAX: usize = 50_000;

/// Sends a node may hold back waiting for fsync before it is declared broken.
pub const HELD_SENDS_MAX: usize = 50_000;

/// Client requests a node's host keeps pending at once (simulated clients have one
/// operation each in flight, with a bounded number of attempts).
const PENDING_REQUESTS_MAX: usize = 1 << 16;

/// Scheduled items (deliveries, ticks, fsyncs, wake-ups) a single run may process before
/// it is declared a storm.
pub const EVENTS_MAX: u64 = 20_000_000;

/// Events kept for the tail printed with a violation.
pub const TAIL_EVENTS: usize = 24;

/// Events kept in a full trace; later ones are counted but not kept.
pub const TRACE_EVENTS_MAX: usize = 2_000_000;

/// Restart delay range after a crash in the fault phase, in ticks.
const RESTART_TICKS: (u64, u64) = (5, 60);

/// Pause length range, in ticks.
const PAUSE_TICKS: (u64, u64) = (3, 40);

/// How often the liveness phase checks for convergence, in time units.
const CONVERGENCE_CHECK_UNITS: u64 = TICK_UNITS;

/// Fault steps a rejoin waits for a membership change it asked for before asking the
/// leader again (the request may have been refused while another change was uncommitted).
const REJOIN_ASK_AGAIN_STEPS: u32 = 8;

/// The safe procedure for a node whose disk is wiped (README: "Replacing a node whose disk
/// lost data"), advanced by the fault steps as far as the cluster allows: the node is
/// removed from the membership, then its disk is wiped (it is down), it is added back as a
/// learner and restarted blank knowing only that, it catches up by entries or snapshot,
/// and it is promoted to voter.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Rejoin {
    node: usize,
    stage: RejoinStage,
    /// The leader and epoch the stage's membership change was last asked of.
    asked: Option<(usize, Epoch)>,
    /// Fault steps since it was asked.
    waited: u32,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum RejoinStage {
    /// Waiting for the removal to apply at the leader; the node still runs.
    Removing,
    /// Wiped and down; waiting for the learner to be added.
    AddingLearner,
    /// Restarted blank as a learner; waiting for it to apply through `through` (the
    /// leader's commit index when it restarted).
    CatchingUp { through: LogIndex },
    /// Waiting for the promotion to apply at the leader.
    Promoting,
}

/// Something scheduled at a time.
#[derive(Debug)]
enum Scheduled<M> {
    Deliver(InFlight<M>),
    SyncDone { node: usize, incarnation: u32 },
    Tick { node: usize },
    ClientWake { client: usize, generation: u64 },
    FaultStep,
    Restart { node: usize, incarnation: u32 },
}

/// A message on the wire.
#[derive(Debug)]
struct InFlight<M> {
    from: NodeId,
    to: NodeId,
    id: u64,
    sent: u64,
    msg: M,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Faults,
    Liveness { since: u64 },
}

/// The state machine of a simulated node: the reference key-value store, plus a record of
/// whether each applied command changed it, so that a retry applied twice is caught.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimKv {
    kv: KvStore,
    /// `(index, changed)` of the commands applied since the world last looked.
    changed: Vec<(LogIndex, bool)>,
}

impl StateMachine for SimKv {
    type Response = KvResponse;

    fn apply(&mut self, index: LogIndex, command: &Bytes) -> KvResponse {
        let key = KvCommand::decode(command).ok().map(|c| c.op.key().clone());
        let before = key.as_ref().map(|k| self.kv.get(k).cloned());
        let response = self.kv.apply(index, command);
        let after = key.as_ref().map(|k| self.kv.get(k).cloned());
        self.changed.push((index, before != after));
        response
    }

    fn snapshot(&self) -> Bytes {
        self.kv.snapshot()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), CodecError> {
        self.kv.restore(snapshot)
    }
}

impl Queryable for SimKv {
    type Query = Bytes;
    type Answer = Option<Bytes>;

    fn query(&self, key: &Bytes) -> Option<Bytes> {
        self.kv.get(key).cloned()
    }
}

/// A simulated node's reference host.
type SimHost<R> = Host<R, Disk, SimKv>;

/// One simulated machine: its host (absent while crashed) and, while it is down, its disk.
struct Node<R: Replica> {
    id: NodeId,
    host: Option<SimHost<R>>,
    /// The disk while the node is down; the host owns it while the node runs.
    disk: Disk,
    watch: Watch,
    incarnation: u32,
    paused_until: u64,
    /// The membership the node starts with instead of the initial one once it lost its
    /// disk, as an operator's `--join` gives it: the one that added it back as a learner,
    /// so that a blank start never makes it a voter. Later configurations come from its log.
    join: Option<Membership>,
    /// How the next start treats the disk: bootstrap at first, then restart, join for a
    /// wiped node that follows the safe procedure.
    start: StartMode,
}

pub(crate) struct World<'a, R: Replica> {
    seed: u64,
    swarm: Swarm,
    opts: &'a SimOptions,
    make_config: &'a dyn Fn(NodeId, &Membership, u64) -> R::Config,
    rng: Prng,
    now: u64,
    queue_seq: u64,
    queue: BTreeMap<(u64, u64), Scheduled<R::Message>>,
    in_flight: usize,
    nodes: Vec<Node<R>>,
    ids: Vec<NodeId>,
    initial: Membership,
    network: Network,
    clients: Vec<Client>,
    reqs: BTreeMap<RequestId, usize>,
    next_req: u64,
    /// Writes reported as definite failures: `(client, seq)`.
    failed_writes: Vec<(u64, u64)>,
    /// Writes acknowledged to a client: `(client, seq)`.
    acked_writes: Vec<(u64, u64)>,
    checker: Checker,
    history: History,
    stats: RunStats,
    faults: FaultCounts,
    digest: Digest,
    digest_buf: Vec<u8>,
    tail: VecDeque<Event<R::Message>>,
    trace: Vec<String>,
    next_msg: u64,
    phase: Phase,
    /// The membership as of the highest configuration entry applied anywhere.
    membership: (LogIndex, Membership),
    /// The nodes the liveness phase repaired (all of them unless it heals a quorum).
    healed: Vec<bool>,
    /// Voter sets of the membership changes asked for, any of which may be in force.
    requested_voters: Vec<std::collections::BTreeSet<NodeId>>,
    /// The wiped node's way back, while one is under way.
    rejoin: Option<Rejoin>,
}

impl<'a, R: Replica> World<'a, R>
where
    R::Message: Serialize,
{
    pub fn new(
        seed: u64,
        swarm: Swarm,
        opts: &'a SimOptions,
        make_config: &'a dyn Fn(NodeId, &Membership, u64) -> R::Config,
    ) -> Self {
        let ids: Vec<NodeId> = (1..=swarm.nodes as u64).map(NodeId).collect();
        let initial = Membership::new(ids.iter().copied());
        let network = Network::new(swarm.link);
        let clients = (1..=swarm.clients as u64).map(Client::new).collect();
        Self {
            seed,
            opts,
            make_config,
            rng: Prng::new(seed),
            now: 0,
            queue_seq: 0,
            queue: BTreeMap::new(),
            in_flight: 0,
            nodes: Vec::new(),
            ids,
            membership: (LogIndex(0), initial.clone()),
            healed: vec![true; swarm.nodes],
            requested_voters: Vec::new(),
            rejoin: None,
            initial,
            network,
            clients,
            reqs: BTreeMap::new(),
            next_req: 0,
            failed_writes: Vec::new(),
            acked_writes: Vec::new(),
            checker: Checker::default(),
            history: History::new(),
            stats: RunStats {
                nodes: swarm.nodes,
                ..RunStats::default()
            },
            faults: FaultCounts::default(),
            digest: Digest::new(),
            digest_buf: Vec::new(),
            tail: VecDeque::with_capacity(TAIL_EVENTS),
            trace: Vec::new(),
            next_msg: 0,
            phase: Phase::Faults,
            swarm,
        }
    }

    /// Run to the end: the fault phase, the liveness phase, the final checks.
    pub fn run(mut self) -> RunResult {
        let result = self.run_phases();
        let violation = result.err();
        if let Some(v) = &violation {
            self.record(
                v.node,
                EventKind::Violation {
                    invariant: v.invariant.name(),
                    detail: v.detail.clone(),
                },
            );
        }
        self.stats.set_time(self.now);
        self.stats.checks = self.checker.checks;
        self.stats.elections = self.checker.elections;
        self.stats.faults = self.faults;
        RunResult {
            seed: self.seed,
            swarm: self.swarm,
            options: self.opts.clone(),
            digest: self.digest,
            stats: self.stats,
            tail: self.tail.iter().map(|e| e.to_string()).collect(),
            violation,
            history: self.history,
            trace: self.trace,
        }
    }

    fn run_phases(&mut self) -> Result<(), Violation> {
        for i in 0..self.ids.len() {
            self.nodes.push(Node {
                id: self.ids[i],
                host: None,
                disk: Disk::new(),
                watch: Watch::default(),
                incarnation: 0,
                paused_until: 0,
                join: None,
                start: StartMode::Bootstrap,
            });
            self.start_node(i)?;
            let first = self.rng.range(1, self.swarm.tick_period_units[i] + 1);
            self.schedule(first, Scheduled::Tick { node: i });
        }
        for c in 0..self.clients.len() {
            let at = self.rng.range(1, self.swarm.think_units_max.max(2));
            self.wake_client(c, at);
        }
        self.schedule(self.swarm.fault_every_units, Scheduled::FaultStep);
        let faults_end = self.opts.fault_ticks * TICK_UNITS;
        let mut next_check = 0;
        let mut processed: u64 = 0;
        loop {
            let Some(((at, _), item)) = self.queue.pop_first() else {
                return Err(violation(
                    Invariant::Bounds,
                    None,
                    "event queue ran dry".into(),
                ));
            };
            if self.phase == Phase::Faults && at >= faults_end {
                self.now = faults_end;
                self.begin_liveness()?;
                next_check = self.now;
            }
            self.now = at;
            processed += 1;
            if processed > EVENTS_MAX {
                return Err(violation(
                    Invariant::Bounds,
                    None,
                    format!("more than {EVENTS_MAX} events in one run"),
                ));
            }
            self.handle(item)?;
            if let Phase::Liveness { since } = self.phase
                && self.now >= next_check
            {
                next_check = self.now + CONVERGENCE_CHECK_UNITS;
                if self.converged() {
                    self.stats.liveness_ticks = Some((self.now - since) / TICK_UNITS);
                    return self.final_checks();
                }
                if self.now - since > self.opts.liveness_ticks_max * TICK_UNITS {
                    return Err(self.liveness_failure());
                }
            }
        }
    }

    fn schedule(&mut self, delay: u64, item: Scheduled<R::Message>) {
        self.schedule_at(self.now + delay, item);
    }

    fn schedule_at(&mut self, at: u64, item: Scheduled<R::Message>) {
        self.queue_seq += 1;
        self.queue.insert((at, self.queue_seq), item);
    }

    fn record(&mut self, node: Option<NodeId>, kind: EventKind<R::Message>) {
        self.stats.events += 1;
        let event = Event {
            at: self.now,
            node,
            kind,
        };
        let buf = std::mem::take(&mut self.digest_buf);
        match postcard::to_extend(&event, buf) {
            Ok(mut buf) => {
                self.digest.update(&buf);
                buf.clear();
                self.digest_buf = buf;
            }
            Err(_) => self.digest.update(b"unencodable event"),
        }
        if self.opts.keep_trace && self.trace.len() < TRACE_EVENTS_MAX {
            match serde_json::to_string(&event) {
                Ok(line) => self.trace.push(line),
                Err(e) => self.trace.push(format!("{{\"error\":\"{e}\"}}")),
            }
        }
        if self.tail.len() == TAIL_EVENTS {
            self.tail.pop_front();
        }
        self.tail.push_back(event);
    }

    // ----- node lifecycle -------------------------------------------------------------

    fn node_seed(&self, i: usize) -> u64 {
        let inc = u64::from(self.nodes[i].incarnation);
        self.seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add((i as u64 + 1) << 32 | inc)
    }

    /// Start node `i` on its disk, unless the disk refuses the start (a restart on a
    /// wiped disk): then it stays down.
    fn start_node(&mut self, i: usize) -> Result<(), Violation> {
        let mode = self.nodes[i].start;
        if let Err(e) = self.nodes[i].disk.start(mode) {
            self.record(
                Some(self.ids[i]),
                EventKind::Admin {
                    what: format!("start refused: {e}"),
                },
            );
            return Ok(());
        }
        self.nodes[i].start = StartMode::Restart;
        let membership = self.nodes[i].join.as_ref().unwrap_or(&self.initial);
        let config = (self.make_config)(self.ids[i], membership, self.node_seed(i));
        let id = self.ids[i];
        let disk = std::mem::take(&mut self.nodes[i].disk);
        let durable = disk.durable().clone();
        let durable_epoch = durable.hard_state.epoch;
        let host_config = HostConfig {
            pending_requests_max: PENDING_REQUESTS_MAX,
            // Simulated clients keep their own deadlines and retry elsewhere.
            request_timeout_ticks: u64::MAX / 2,
            held_sends_max: HELD_SENDS_MAX,
            record_events: true,
            record_sends: false,
        };
        let host = Host::restore(host_config, config, durable, disk, SimKv::default()).map_err(
            |e| match e {
                HostError::SnapshotRestore(e) => violation(
                    Invariant::Durability,
                    Some(id),
                    format!("durable snapshot does not restore: {e}"),
                ),
                e => violation(
                    Invariant::Durability,
                    Some(id),
                    format!("restore from durable state failed: {e}"),
                ),
            },
        )?;
        let status = host.status();
        let node = &mut self.nodes[i];
        node.watch = Watch {
            hard_state_epoch: durable_epoch,
            applied: host.applied_index(),
            ..Watch::default()
        };
        node.host = Some(host);
        self.checker.restored(&node.watch, &status, durable_epoch)?;
        self.checker.status(&mut node.watch, &status)
    }
    fn crash(&mut self, i: usize) {
        let tear = self.swarm.torn_writes;
        let node = &mut self.nodes[i];
        let Some(host) = node.host.take() else {
            return;
        };
        // The host's volatile state (held sends, pending requests) dies with it.
        node.disk = host.into_parts().storage;
        let damage = node.disk.crash(&mut self.rng, tear);
        node.paused_until = 0;
        let id = node.id;
        self.faults.add(FaultKind::Crash);
        if damage.torn {
            self.faults.add(FaultKind::TornWrite);
        }
        self.record(
            Some(id),
            EventKind::Crash {
                lost_writes: damage.lost,
                torn: damage.torn,
            },
        );
    }
    fn restart(&mut self, i: usize) -> Result<(), Violation> {
        if self.nodes[i].host.is_some() {
            return Ok(());
        }
        self.nodes[i].incarnation += 1;
        self.faults.add(FaultKind::Restart);
        self.record(Some(self.ids[i]), EventKind::Restart);
        self.start_node(i)
    }

    fn is_up(&self, i: usize) -> bool {
        self.nodes[i].host.is_some() && self.nodes[i].paused_until <= self.now
    }

    // ----- event handling ---------------------------------------------------------------

    fn handle(&mut self, item: Scheduled<R::Message>) -> Result<(), Violation> {
        match item {
            Scheduled::Deliver(m) => {
                let i = (m.to.0 - 1) as usize;
                if self.nodes[i].host.is_none() {
                    self.in_flight -= 1;
                    return Ok(());
                }
                let resume = self.nodes[i].paused_until;
                if resume > self.now {
                    // A paused process still has the bytes in its socket buffer.
                    self.schedule_at(resume, Scheduled::Deliver(m));
                    return Ok(());
                }
                self.in_flight -= 1;
                let InFlight {
                    from,
                    to,
                    id,
                    sent,
                    msg,
                } = m;
                self.record(Some(to), EventKind::Deliver { from, id, sent });
                self.call(i, |h| h.receive(from, msg))
            }
            Scheduled::SyncDone { node, incarnation } => {
                if self.nodes[node].incarnation != incarnation || self.nodes[node].host.is_none() {
                    return Ok(());
                }
                self.sync_done(node)
            }
            Scheduled::Tick { node } => {
                let period = self.swarm.tick_period_units[node];
                self.schedule(period, Scheduled::Tick { node });
                if self.is_up(node) {
                    self.call(node, |h| h.tick())?;
                }
                Ok(())
            }
            Scheduled::ClientWake { client, generation } => {
                if self.clients[client].wake_gen != generation {
                    return Ok(());
                }
                self.client_wake(client)
            }
            Scheduled::FaultStep => {
                if self.phase == Phase::Faults {
                    self.fault_step()?;
                    self.schedule(self.swarm.fault_every_units, Scheduled::FaultStep);
                }
                Ok(())
            }
            Scheduled::Restart { node, incarnation } => {
                if self.phase == Phase::Faults && self.nodes[node].incarnation == incarnation {
                    self.restart(node)?;
                }
                Ok(())
            }
        }
    }

    fn sync_done(&mut self, i: usize) -> Result<(), Violation> {
        let id = self.ids[i];
        let Some(host) = self.nodes[i].host.as_mut() else {
            return Ok(());
        };
        let through = match host.storage_mut().finish_sync() {
            None => return Ok(()),
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                return Err(violation(
                    Invariant::Durability,
                    Some(id),
                    format!("the reference persist semantics refuse a write: {e}"),
                ));
            }
        };
        self.record(Some(id), EventKind::Synced { through });
        self.call(i, |h| h.persisted(through))
    }
    fn maybe_start_sync(&mut self, i: usize) {
        let Some(host) = self.nodes[i].host.as_mut() else {
            return;
        };
        if host.storage_mut().start_sync() {
            let latency = self
                .rng
                .range(self.swarm.fsync_units_min, self.swarm.fsync_units_max);
            let incarnation = self.nodes[i].incarnation;
            self.schedule(
                latency,
                Scheduled::SyncDone {
                    node: i,
                    incarnation,
                },
            );
        }
    }
    fn transmit(&mut self, from: NodeId, to: NodeId, msg: R::Message) {
        self.next_msg += 1;
        let id = self.next_msg;
        if to.0 == 0 || to.0 as usize > self.nodes.len() {
            self.record(
                Some(from),
                EventKind::Send {
                    to,
                    id,
                    arrive: Vec::new(),
                    dropped: Some("no such node"),
                    msg,
                },
            );
            return;
        }
        let (arrive, dropped) = if self.in_flight >= IN_FLIGHT_MAX {
            (Vec::new(), Some("congested"))
        } else {
            match self.network.route(from, to, &mut self.rng) {
                Fate::Blocked => (Vec::new(), Some("blocked by partition")),
                Fate::Lost => {
                    self.faults.add(FaultKind::MessageLoss);
                    (Vec::new(), Some("lost"))
                }
                Fate::Deliver(delays) => {
                    if delays.len() > 1 {
                        self.faults.add(FaultKind::MessageDuplicate);
                    }
                    (delays.iter().map(|d| self.now + d).collect(), None)
                }
            }
        };
        for &at in &arrive {
            self.in_flight += 1;
            let sent = self.now;
            self.schedule_at(
                at,
                Scheduled::Deliver(InFlight {
                    from,
                    to,
                    id,
                    sent,
                    msg: msg.clone(),
                }),
            );
        }
        self.record(
            Some(from),
            EventKind::Send {
                to,
                id,
                arrive,
                dropped,
                msg,
            },
        );
    }

    // ----- hosting: one call into a node's host, then what it reported ------------------

    /// Call node `i`'s host (if it runs), then check and carry out what the host reported:
    /// its events in order, the answers to client requests, the sends it released.
    fn call(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut SimHost<R>) -> Result<(), HostError<PersistError>>,
    ) -> Result<(), Violation> {
        let id = self.ids[i];
        let Some(host) = self.nodes[i].host.as_mut() else {
            return Ok(());
        };
        let result = f(host);
        let events: Vec<_> = host.drain_events().collect();
        let completions: Vec<_> = host.drain_completions().collect();
        let sends: Vec<_> = host.drain_sends().collect();
        let status = host.status();
        let dropped = host.stats().held_sends_dropped;
        let unsynced = host.storage().pending_len();
        let mut applied: Option<(LogIndex, LogIndex)> = None;
        for event in events {
            if let HostEvent::Applied { entry, .. } = &event {
                applied = Some(match applied {
                    Some((first, _)) => (first, entry.index),
                    None => (entry.index, entry.index),
                });
            } else if let Some((first, last)) = applied.take() {
                self.record(Some(id), EventKind::Apply { first, last });
            }
            self.on_event(i, event)?;
        }
        if let Some((first, last)) = applied {
            self.record(Some(id), EventKind::Apply { first, last });
        }
        if let Some(host) = self.nodes[i].host.as_mut() {
            host.machine_mut().changed.clear();
        }
        for completion in completions {
            self.on_completion(i, completion);
        }
        for (to, msg) in sends {
            self.transmit(id, to, msg);
        }
        result.map_err(|e| {
            let invariant = match e {
                HostError::SnapshotRestore(_) | HostError::Restore(_) => Invariant::Durability,
                _ => Invariant::Bounds,
            };
            violation(invariant, Some(id), format!("the host stopped: {e}"))
        })?;
        if dropped > 0 {
            return Err(violation(
                Invariant::Bounds,
                Some(id),
                format!("more than {HELD_SENDS_MAX} sends waiting for fsync"),
            ));
        }
        if unsynced > DISK_PENDING_MAX {
            return Err(violation(
                Invariant::Bounds,
                Some(id),
                format!("more than {DISK_PENDING_MAX} unsynced writes"),
            ));
        }
        self.check_status(i, &status)?;
        self.maybe_start_sync(i);
        Ok(())
    }

    fn check_status(&mut self, i: usize, status: &Status) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        if status.id != node.id {
            return Err(violation(
                Invariant::Bounds,
                Some(node.id),
                format!("status reports id {}", status.id),
            ));
        }
        self.checker.status(&mut node.watch, status)
    }

    fn on_event(
        &mut self,
        i: usize,
        event: HostEvent<R::Message, KvResponse>,
    ) -> Result<(), Violation> {
        let id = self.ids[i];
        match event {
            HostEvent::Persist { seq, op } => {
                let hard_state_epoch = match op {
                    rsm_core::Persist::HardState(hs) => Some(hs.epoch),
                    _ => None,
                };
                let node = &mut self.nodes[i];
                self.checker
                    .persist(id, &mut node.watch, seq, hard_state_epoch)?;
                self.record(Some(id), EventKind::Persist { seq });
            }
            HostEvent::Applied { entry, .. } => self.apply_entry(i, &entry)?,
            HostEvent::Proposed {
                ticket,
                index,
                epoch,
            } => {
                if let Some(attempt) = self.attempt(ticket) {
                    attempt.state = AttemptState::Proposed { index, epoch };
                }
            }
            HostEvent::ReadReady { ticket, .. } => {
                if let Some(attempt) = self.attempt(ticket) {
                    attempt.state = AttemptState::ReadAt;
                }
            }
            HostEvent::SnapshotInstalled { meta } => {
                let node = &mut self.nodes[i];
                self.checker.installed(&mut node.watch, meta.index);
            }
            HostEvent::RoleChanged {
                role,
                epoch,
                leader,
            } => self.record(
                Some(id),
                EventKind::Role {
                    role,
                    epoch,
                    leader,
                },
            ),
            // Rejections are handled with their completion; durability was recorded when
            // the fsync completed; sends are carried when the host releases them; the rest
            // changes nothing a client sees.
            HostEvent::Rejected { .. }
            | HostEvent::Durable { .. }
            | HostEvent::SnapshotTaken { .. }
            | HostEvent::Sent { .. }
            | HostEvent::TakeSnapshot { .. }
            | HostEvent::AppliedReported { .. } => {}
        }
        Ok(())
    }

    /// What the host answered for request `ticket`.
    fn on_completion(&mut self, i: usize, completion: Completion<KvResponse, Option<Bytes>>) {
        let id = self.ids[i];
        let Completion { ticket, result } = completion;
        let Some(c) = self.reqs.get(&ticket).copied() else {
            return;
        };
        match result {
            Ok(Reply::Applied { response, .. }) => match client::ret_of(&response) {
                Some(ret) => self.complete(c, Outcome::Ok(ret)),
                None => {
                    if let Some(attempt) = self.clients[c].attempt_mut(ticket) {
                        attempt.state = AttemptState::Maybe;
                    }
                }
            },
            Ok(Reply::Read { answer, .. }) => {
                let value = answer.as_ref().map(client::value_of);
                self.complete(c, Outcome::Ok(Ret::Read(value)));
            }
            Ok(Reply::Reconfigured { .. }) => {}
            Err(ClientError::Rejected(reason)) => {
                let definite = reason.is_definite();
                let hint = reason.leader_hint();
                if let Some(attempt) = self.clients[c].attempt_mut(ticket) {
                    attempt.state = if definite {
                        AttemptState::Dead
                    } else {
                        AttemptState::Maybe
                    };
                    let client = &mut self.clients[c];
                    client.hint = hint.filter(|&h| h != id);
                    if let Some(op) = client.op.as_mut() {
                        op.deadline = self.now + RETRY_BACKOFF_UNITS;
                    }
                    self.wake_client(c, RETRY_BACKOFF_UNITS);
                }
            }
            Err(error) => {
                if let Some(attempt) = self.clients[c].attempt_mut(ticket) {
                    attempt.state = if error.is_definite() {
                        AttemptState::Dead
                    } else {
                        AttemptState::Maybe
                    };
                }
            }
        }
    }

    fn attempt(&mut self, req: RequestId) -> Option<&mut Attempt> {
        let c = *self.reqs.get(&req)?;
        self.clients[c].attempt_mut(req)
    }

    /// The checks on one entry the host applied at node `i`.
    fn apply_entry(&mut self, i: usize, entry: &Entry) -> Result<(), Violation> {
        let id = self.ids[i];
        let command = match entry.kind {
            EntryKind::Command => KvCommand::decode(&entry.payload).ok(),
            _ => None,
        };
        let session = command.as_ref().map(|c| (c.session.client, c.session.seq));
        let node = &mut self.nodes[i];
        let retry = self.checker.apply(id, &mut node.watch, entry, session)?;
        match entry.kind {
            EntryKind::Command => {
                self.checker.checks += 1;
                let changed = node.host.as_ref().is_some_and(|h| {
                    h.machine()
                        .changed
                        .iter()
                        .any(|&(at, changed)| at == entry.index && changed)
                });
                if retry && changed {
                    let (client, seq) = session.expect("a retry has a session");
                    return Err(violation(
                        Invariant::AppliedTwice,
                        Some(id),
                        format!(
                            "client {} seq {seq} changed the state again at {}",
                            client.0, entry.index
                        ),
                    ));
                }
            }
            EntryKind::Config => {
                if let Some(m) = entry.membership()
                    && entry.index > self.membership.0
                {
                    self.membership = (entry.index, m);
                }
            }
            EntryKind::Noop => {}
        }
        Ok(())
    }

    // ----- clients ---------------------------------------------------------------------

    fn wake_client(&mut self, c: usize, delay: u64) {
        self.clients[c].wake_gen += 1;
        let generation = self.clients[c].wake_gen;
        self.schedule(
            delay,
            Scheduled::ClientWake {
                client: c,
                generation,
            },
        );
    }

    fn client_wake(&mut self, c: usize) -> Result<(), Violation> {
        if self.clients[c].op.is_none() {
            if self.phase != Phase::Faults
                || self.clients[c].ops_started >= self.opts.ops_per_client
            {
                return Ok(());
            }
            let op = self.clients[c]
                .start(&mut self.rng, self.swarm.keys, self.swarm.reads, self.now)
                .clone();
            self.record(
                None,
                EventKind::Invoke {
                    client: self.clients[c].id,
                    key: op.key,
                    call: op.call,
                },
            );
            return self.issue(c);
        }
        let op = self.clients[c].op.as_ref().expect("checked");
        if self.now < op.deadline {
            let wait = op.deadline - self.now;
            self.wake_client(c, wait);
            return Ok(());
        }
        let tries = op.attempts.len() as u32;
        let unlimited = matches!(self.phase, Phase::Liveness { .. });
        if tries < ATTEMPTS_MAX || unlimited {
            // A silent replica is no leader worth following.
            if op
                .attempts
                .last()
                .is_some_and(|a| !matches!(a.state, AttemptState::Dead))
            {
                self.clients[c].hint = None;
            }
            return self.issue(c);
        }
        let checker = &self.checker;
        let outcome = client::give_up_outcome(op, |index, epoch| {
            checker
                .applied_entry(index)
                .is_some_and(|e| e.epoch != epoch)
        });
        self.complete(c, outcome);
        Ok(())
    }

    fn issue(&mut self, c: usize) -> Result<(), Violation> {
        self.next_req += 1;
        let req = RequestId(self.next_req);
        let target = self.clients[c].target(&mut self.rng, self.nodes.len());
        let i = (target.0 - 1) as usize;
        let up = self.is_up(i);
        let now = self.now;
        let op = self.clients[c].op.as_mut().expect("issue needs an open op");
        op.attempts.push(Attempt {
            req,
            node: target,
            state: if up {
                AttemptState::Sent
            } else {
                AttemptState::Dead
            },
        });
        let command = op.command.clone();
        let key = client::key_bytes(op.key);
        // A replica that is down never sees the request: the client learns that only by
        // timing out, but sooner than a replica that took the request and went quiet.
        op.deadline = now
            + if up {
                ATTEMPT_TIMEOUT_UNITS
            } else {
                ATTEMPT_TIMEOUT_UNITS / 4
            };
        let deadline = op.deadline;
        self.reqs.insert(req, c);
        self.wake_client(c, deadline - now);
        if up {
            let mut refused = None;
            self.call(i, |h| {
                let admitted = match command {
                    Some(command) => h.propose_as(req, command),
                    None => h.read_as(req, key),
                };
                refused = admitted.err();
                Ok(())
            })?;
            if let Some(error) = refused {
                self.on_completion(
                    i,
                    Completion {
                        ticket: req,
                        result: Err(error),
                    },
                );
            }
        } else if self.clients[c].hint == Some(target) {
            self.clients[c].hint = None;
        }
        Ok(())
    }
    fn complete(&mut self, c: usize, outcome: Outcome) {
        let client = &mut self.clients[c];
        let Some(op) = client.op.take() else {
            return;
        };
        for a in &op.attempts {
            self.reqs.remove(&a.req);
        }
        if let Outcome::Ok(ret) = outcome {
            client.observe(op.key, op.call, ret);
            if let Some(a) = op.attempts.iter().find(|a| a.state != AttemptState::Dead) {
                client.hint = Some(a.node);
            }
        }
        match outcome {
            Outcome::Ok(_) => {
                self.stats.ops_ok += 1;
                if op.call != Call::Read {
                    self.acked_writes.push((client.id, op.seq));
                }
            }
            Outcome::Fail => {
                self.stats.ops_fail += 1;
                if op.call != Call::Read {
                    self.failed_writes.push((client.id, op.seq));
                }
            }
            Outcome::Indeterminate => self.stats.ops_indeterminate += 1,
        }
        let id = client.id;
        self.history.push(Operation {
            client: id,
            key: op.key,
            call: op.call,
            invoke: op.invoke,
            complete: self.now,
            outcome,
        });
        self.record(
            None,
            EventKind::Complete {
                client: id,
                key: op.key,
                outcome,
            },
        );
        let think = self.rng.range(1, self.swarm.think_units_max.max(2));
        self.wake_client(c, think);
    }

    // ----- faults -----------------------------------------------------------------------

    fn leader(&self) -> Option<(usize, Epoch)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.host.is_some() && n.watch.role == Role::Leader)
            .map(|(i, n)| (i, n.watch.epoch))
            .max_by_key(|&(i, e)| (e, std::cmp::Reverse(i)))
    }

    fn fault_step(&mut self) -> Result<(), Violation> {
        let n = self.nodes.len();
        if self.rng.chance(self.swarm.crash) {
            let i = self.rng.range(0, n as u64) as usize;
            if self.nodes[i].host.is_some() {
                self.crash(i);
                let delay = self.rng.range(RESTART_TICKS.0, RESTART_TICKS.1) * TICK_UNITS;
                let incarnation = self.nodes[i].incarnation;
                self.schedule(
                    delay,
                    Scheduled::Restart {
                        node: i,
                        incarnation,
                    },
                );
            }
        }
        if self.rng.chance(self.swarm.partition) {
            let kinds = [
                FaultKind::Partition,
                FaultKind::OneWayPartition,
                FaultKind::IsolateLeader,
                FaultKind::OverlappingMajorities,
            ];
            let kind = *self.rng.pick(&kinds).expect("non-empty");
            let leader = self.leader().map(|(i, _)| self.ids[i]);
            let applied =
                faults::partition(&mut self.network, kind, &self.ids, leader, &mut self.rng);
            self.faults.add(applied);
            let cut = self.network.cut_links().collect();
            self.record(
                None,
                EventKind::Partition {
                    fault: applied.name(),
                    cut,
                },
            );
        } else if self.network.is_partitioned() && self.rng.chance(self.swarm.heal) {
            self.heal();
        }
        if self.rng.chance(self.swarm.pause) {
            let i = self.rng.range(0, n as u64) as usize;
            if self.is_up(i) {
                let until = self.now + self.rng.range(PAUSE_TICKS.0, PAUSE_TICKS.1) * TICK_UNITS;
                self.nodes[i].paused_until = until;
                self.faults.add(FaultKind::Pause);
                self.record(Some(self.ids[i]), EventKind::Pause { until });
            }
        }
        // While a wiped node rejoins, only its procedure changes the membership.
        if self.rejoin.is_some() {
            self.advance_rejoin()?;
        } else if self.rng.chance(self.swarm.wipe) {
            self.begin_rejoin();
        } else if self.rng.chance(self.swarm.reconfigure)
            && let Some((l, _)) = self.leader()
        {
            self.reconfigure(l)?;
        }
        if self.rng.chance(self.swarm.transfer)
            && let Some((l, _)) = self.leader()
        {
            let to = *self.rng.pick(&self.ids).expect("non-empty");
            if to != self.ids[l] {
                self.faults.add(FaultKind::TransferLeadership);
                self.record(
                    Some(self.ids[l]),
                    EventKind::Admin {
                        what: format!("transfer leadership to {to}"),
                    },
                );
                self.call(l, |h| h.transfer_leadership(to))?;
            }
        }
        Ok(())
    }

    fn reconfigure(&mut self, leader: usize) -> Result<(), Violation> {
        // Toggle one node between voter and absent, never below three voters (or the
        // whole cluster if smaller), never removing the leader itself.
        let Some(current) = self.nodes[leader]
            .host
            .as_ref()
            .map(|h| h.applied().membership.clone())
        else {
            return Ok(());
        };
        if current.is_joint() {
            return Ok(());
        }
        let pick = *self.rng.pick(&self.ids).expect("non-empty");
        let mut voters = current.voters.clone();
        if voters.contains(&pick) {
            if voters.len() <= 3 || pick == self.ids[leader] {
                return Ok(());
            }
            voters.remove(&pick);
        } else {
            voters.insert(pick);
        }
        self.ask_membership(leader, Membership::new(voters))
    }

    /// Ask the leader to change the membership to `target`.
    fn ask_membership(&mut self, leader: usize, target: Membership) -> Result<(), Violation> {
        if self.requested_voters.last() != Some(&target.voters) {
            self.requested_voters.push(target.voters.clone());
        }
        self.faults.add(FaultKind::Reconfigure);
        let what = if target.learners.is_empty() {
            format!("reconfigure to voters {:?}", target.voters)
        } else {
            format!(
                "reconfigure to voters {:?} learners {:?}",
                target.voters, target.learners
            )
        };
        self.record(Some(self.ids[leader]), EventKind::Admin { what });
        self.next_req += 1;
        let req = RequestId(self.next_req);
        // A refusal at admission (too many pending) is a change that did not happen.
        self.call(leader, |h| {
            let _ = h.reconfigure_as(req, target);
            Ok(())
        })
    }

    /// The leader and the membership it has applied, unless it is joint (no new change
    /// can start then).
    fn leader_membership(&self) -> Option<(usize, Membership)> {
        let (l, _) = self.leader()?;
        let m = self.nodes[l].host.as_ref()?.applied().membership.clone();
        (!m.is_joint()).then_some((l, m))
    }

    /// Start wiping a voter other than the leader, in a membership that keeps a voter
    /// besides the leader without it: first it is removed.
    fn begin_rejoin(&mut self) {
        let Some((l, m)) = self.leader_membership() else {
            return;
        };
        if m.voters.len() < 3 {
            return;
        }
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| i != l && m.is_voter(self.ids[i]))
            .collect();
        let Some(&node) = self.rng.pick(&candidates) else {
            return;
        };
        self.record(
            Some(self.ids[node]),
            EventKind::Admin {
                what: "its disk will be wiped: remove it, then rejoin it as a learner".into(),
            },
        );
        self.rejoin = Some(Rejoin {
            node,
            stage: RejoinStage::Removing,
            asked: None,
            waited: 0,
        });
    }

    /// Take the wiped node's procedure through every stage the cluster has reached, then
    /// ask (again, if the request seems lost) for the membership change the next one
    /// waits for.
    fn advance_rejoin(&mut self) -> Result<(), Violation> {
        let Some(mut r) = self.rejoin else {
            return Ok(());
        };
        let Some((l, m)) = self.leader_membership() else {
            return Ok(());
        };
        if l == r.node {
            // The node to remove leads for now; the removal waits for another leader.
            return Ok(());
        }
        let w = self.ids[r.node];
        loop {
            let reached = match r.stage {
                RejoinStage::Removing => !m.contains(w),
                RejoinStage::AddingLearner => m.is_learner(w),
                RejoinStage::CatchingUp { through } => {
                    self.nodes[r.node].host.is_some() && self.nodes[r.node].watch.applied >= through
                }
                RejoinStage::Promoting => m.is_voter(w),
            };
            if !reached {
                break;
            }
            r.stage = match r.stage {
                RejoinStage::Removing => {
                    self.wipe(r.node);
                    // Restarted as before, the node is refused: its disk is blank.
                    self.restart(r.node)?;
                    if self.nodes[r.node].host.is_some() {
                        return Err(violation(
                            Invariant::Durability,
                            Some(w),
                            "a node restarted on a wiped disk".into(),
                        ));
                    }
                    // From now on it is started to join, as a learner of the membership
                    // that will add it: never a voter.
                    let node = &mut self.nodes[r.node];
                    node.start = StartMode::Join;
                    node.join = Some(Membership::with_learners(
                        m.voters.clone(),
                        m.learners.iter().copied().chain([w]),
                    ));
                    RejoinStage::AddingLearner
                }
                RejoinStage::AddingLearner => {
                    // It starts blank, knowing only the membership that added it as a
                    // learner (an operator's `--join`).
                    self.nodes[r.node].join = Some(m.clone());
                    self.restart(r.node)?;
                    let commit = self.nodes[l].host.as_ref().map(|h| h.status().commit);
                    RejoinStage::CatchingUp {
                        through: commit.unwrap_or_default(),
                    }
                }
                RejoinStage::CatchingUp { .. } => RejoinStage::Promoting,
                RejoinStage::Promoting => {
                    self.record(
                        Some(w),
                        EventKind::Admin {
                            what: "rejoined as a voter".into(),
                        },
                    );
                    self.rejoin = None;
                    return Ok(());
                }
            };
            r.asked = None;
            r.waited = 0;
        }
        let without_w = |set: &std::collections::BTreeSet<NodeId>| {
            set.iter().copied().filter(|&n| n != w).collect::<Vec<_>>()
        };
        let target = match r.stage {
            RejoinStage::Removing => {
                Membership::with_learners(without_w(&m.voters), without_w(&m.learners))
            }
            RejoinStage::AddingLearner => {
                Membership::with_learners(m.voters.clone(), m.learners.iter().copied().chain([w]))
            }
            RejoinStage::Promoting => Membership::with_learners(
                m.voters.iter().copied().chain([w]),
                without_w(&m.learners),
            ),
            RejoinStage::CatchingUp { .. } => {
                self.rejoin = Some(r);
                return Ok(());
            }
        };
        let epoch = self.nodes[l].watch.epoch;
        let ask = r.asked != Some((l, epoch)) || r.waited >= REJOIN_ASK_AGAIN_STEPS;
        if ask {
            r.asked = Some((l, epoch));
            r.waited = 0;
        } else {
            r.waited += 1;
        }
        self.rejoin = Some(r);
        if ask {
            self.ask_membership(l, target)?;
        }
        Ok(())
    }

    /// Wipe node `i`'s disk (crashing it if it runs).
    fn wipe(&mut self, i: usize) {
        if self.nodes[i].host.is_some() {
            self.crash(i);
        }
        let node = &mut self.nodes[i];
        node.disk = Disk::new();
        // A restart scheduled by an earlier crash must not start it blank.
        node.incarnation += 1;
        let id = node.id;
        self.faults.add(FaultKind::Wipe);
        self.record(
            Some(id),
            EventKind::Admin {
                what: "disk wiped".into(),
            },
        );
    }

    fn heal(&mut self) {
        self.network.heal();
        self.faults.add(FaultKind::Heal);
        self.record(
            None,
            EventKind::Partition {
                fault: FaultKind::Heal.name(),
                cut: Vec::new(),
            },
        );
    }

    // ----- liveness and final checks ----------------------------------------------------

    fn begin_liveness(&mut self) -> Result<(), Violation> {
        self.phase = Phase::Liveness { since: self.now };
        self.record(None, EventKind::LivenessPhase);
        if self.network.is_partitioned() {
            self.heal();
        }
        if self.opts.liveness_heal == LivenessHeal::Quorum {
            // A majority of every voter set that may be in force: the applied one (both
            // halves if joint) and every change asked for, committed or not.
            let applied = &self.membership.1;
            let mut sets = vec![applied.voters.clone(), applied.outgoing.clone()];
            sets.extend(self.requested_voters.iter().cloned());
            self.healed = vec![false; self.nodes.len()];
            for set in sets {
                let mut order: Vec<NodeId> = set.into_iter().collect();
                self.rng.shuffle(&mut order);
                let majority = order.len() / 2 + 1;
                for id in order.into_iter().take(majority) {
                    self.healed[(id.0 - 1) as usize] = true;
                }
            }
            let (inside, outside): (Vec<NodeId>, Vec<NodeId>) = self
                .ids
                .iter()
                .partition(|id| self.healed[(id.0 - 1) as usize]);
            self.network.cut_between(&inside, &outside);
            let cut = self.network.cut_links().collect();
            self.record(
                None,
                EventKind::Partition {
                    fault: "liveness-quorum",
                    cut,
                },
            );
        }
        let faults = self.network.faults();
        self.network.set_faults(LinkFaults {
            loss: 0.0,
            duplicate: 0.0,
            ..faults
        });
        for i in 0..self.nodes.len() {
            if self.healed[i] {
                self.nodes[i].paused_until = 0;
                self.restart(i)?;
            }
        }
        for c in 0..self.clients.len() {
            if self.clients[c].op.is_some() {
                self.wake_client(c, 1);
            }
        }
        Ok(())
    }

    /// The nodes that must converge: healed members of the newest configuration applied.
    fn members(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.healed[i] && self.membership.1.contains(self.ids[i]))
            .collect()
    }

    fn converged(&self) -> bool {
        if self.clients.iter().any(|c| c.op.is_some()) {
            return false;
        }
        let target = self.checker.applied_max();
        self.members()
            .into_iter()
            .all(|i| self.nodes[i].host.is_some() && self.nodes[i].watch.applied == target)
    }

    fn liveness_failure(&self) -> Violation {
        let pending: Vec<String> = self
            .clients
            .iter()
            .filter_map(|c| {
                c.op.as_ref()
                    .map(|op| format!("client {} {:?} key {}", c.id, op.call, op.key))
            })
            .collect();
        let applied: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let state = match (&n.host, self.healed[i]) {
                    (None, _) => " down",
                    (Some(_), false) => " cut off",
                    (Some(_), true) => "",
                };
                format!("{}@{}{state}", n.id, n.watch.applied)
            })
            .collect();
        violation(
            Invariant::Liveness,
            None,
            format!(
                "no convergence within {} ticks of healing: pending ops [{}], applied [{}], highest {}",
                self.opts.liveness_ticks_max,
                pending.join(", "),
                applied.join(" "),
                self.checker.applied_max()
            ),
        )
    }

    fn final_checks(&mut self) -> Result<(), Violation> {
        let members = self.members();
        if let Some((&first, rest)) = members.split_first() {
            for &i in rest {
                self.checker.checks += 1;
                let kv = |n: &Node<R>| n.host.as_ref().map(|h| h.machine().kv.clone());
                if kv(&self.nodes[i]) != kv(&self.nodes[first]) {
                    return Err(violation(
                        Invariant::Convergence,
                        Some(self.ids[i]),
                        format!(
                            "state differs from {} at the same applied index {}",
                            self.ids[first], self.nodes[i].watch.applied
                        ),
                    ));
                }
            }
        }
        let converged_at = members
            .first()
            .map_or(LogIndex(0), |&i| self.nodes[i].watch.applied);
        for &(client, seq) in &self.acked_writes {
            self.checker.checks += 1;
            match self.checker.executed_at(ClientId(client), seq) {
                Some(at) if at <= converged_at => {}
                found => {
                    return Err(violation(
                        Invariant::LostWrite,
                        None,
                        format!(
                            "client {client} seq {seq} was acknowledged but is not in the log \
                             the replicas converged on (found at {found:?}, converged at \
                             {converged_at})"
                        ),
                    ));
                }
            }
        }
        for &(client, seq) in &self.failed_writes {
            self.checker.checks += 1;
            if let Some(at) = self.checker.executed_at(ClientId(client), seq) {
                return Err(violation(
                    Invariant::FailedButApplied,
                    None,
                    format!("client {client} seq {seq} was reported failed but applied at {at}"),
                ));
            }
        }
        if let Some(check) = self.opts.history_check {
            self.checker.checks += 1;
            if let Err(detail) = check(&self.history) {
                return Err(violation(Invariant::Linearizability, None, detail));
            }
        }
        Ok(())
    }
}
