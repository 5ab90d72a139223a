//! The interpreter: a cluster of replicas, a host for each, and a network queue, driven
//! one script command at a time.
//!
//! Each node's host follows the contract's host rule exactly: effects are executed in
//! order; persists wait in an unsynced list until a `persist` command (or `stabilize`)
//! writes them to the node's durable image with [`Durable::apply`] and reports
//! `Persisted`; a `Send` emitted after a persist that is not yet synced is held until it
//! is; committed commands are applied to a [`KvStore`]; a crash loses every unsynced
//! persist and held send, and a restart rebuilds the replica with [`Replica::restore`]
//! from the durable image alone.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use bytes::Bytes;

use super::command::{Command, Filter, Nodes, parse};
use super::render;
use super::{NodeSetup, Protocol};
use rsm_core::Membership;
use rsm_core::Prng;
use rsm_core::StateMachine;
use rsm_core::kv::{KvCommand, KvOp, KvStore};
use rsm_core::session::{ClientId, SessionHeader};
use rsm_core::{Durable, Effect, HardState, Input, Persist, Replica};
use rsm_core::{Entry, EntryKind, SnapshotMeta};
use rsm_core::{Epoch, LogIndex, NodeId, PersistSeq, RequestId};

type Msg<P> = <<P as Protocol>::Replica as Replica>::Message;

/// Rounds of persist + deliver + apply that `stabilize` runs before giving up: a cluster
/// that still has work after this many rounds is livelocked, and the script says so.
pub const STABILIZE_ROUNDS_MAX: usize = 256;

/// Inputs the host may feed back to one node while handling one command's effects
/// (a snapshot it was asked to take). Bounds a protocol that keeps asking.
const HOST_INPUTS_MAX: usize = 16;

/// A message in flight.
struct Envelope<M> {
    from: NodeId,
    to: NodeId,
    msg: M,
    /// Set when the link was down as the message was sent: it is lost even if the link
    /// comes back before delivery.
    lost: Option<&'static str>,
}

/// A read the protocol has cleared, waiting for the state machine to catch up.
struct PendingRead {
    req: RequestId,
    index: LogIndex,
    key: Option<String>,
}

/// A node's state machine and what the host knows about the applied prefix.
struct Machine {
    kv: KvStore,
    applied: LogIndex,
    /// The epoch of the entry at `applied`, for snapshot metadata.
    epoch: Epoch,
    /// The membership in force at `applied`, for snapshot metadata.
    membership: Membership,
    /// Keys of reads issued but not yet cleared by `ReadReady`.
    read_keys: BTreeMap<RequestId, Option<String>>,
    ready: Vec<PendingRead>,
}

impl Machine {
    fn new(membership: Membership) -> Self {
        Self {
            kv: KvStore::new(),
            applied: LogIndex(0),
            epoch: Epoch(0),
            membership,
            read_keys: BTreeMap::new(),
            ready: Vec::new(),
        }
    }

    /// Install a snapshot's state; `Err` when its bytes are not a key-value snapshot.
    fn install(&mut self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), String> {
        self.kv
            .restore(data)
            .map_err(|e| format!("snapshot at i{} does not decode: {e}", meta.index.0))?;
        self.applied = meta.index;
        self.epoch = meta.epoch;
        self.membership = meta.membership.clone();
        Ok(())
    }

    fn apply(&mut self, entry: &Entry) -> Result<(), String> {
        if entry.index != self.applied.next() {
            return Err(format!(
                "apply out of order: i{} after i{}",
                entry.index.0, self.applied.0
            ));
        }
        match entry.kind {
            EntryKind::Command => {
                self.kv.apply(entry.index, &entry.payload);
            }
            EntryKind::Config => {
                if let Some(m) = entry.membership() {
                    self.membership = m;
                }
            }
            EntryKind::Noop => {}
        }
        self.applied = entry.index;
        self.epoch = entry.epoch;
        Ok(())
    }

    /// Reads whose index is now applied, with the value each one returns.
    fn serve_reads(&mut self) -> Vec<String> {
        let applied = self.applied;
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ready)
            .into_iter()
            .partition(|r| r.index <= applied);
        self.ready = later;
        now.into_iter()
            .map(|r| {
                let value = match &r.key {
                    Some(k) => match self.kv.get(k.as_bytes()) {
                        Some(v) => format!(": {k}={}", render::command(v)),
                        None => format!(": {k} absent"),
                    },
                    None => String::new(),
                };
                format!("read r{} served at i{}{value}", r.req.0, applied.0)
            })
            .collect()
    }
}

/// One simulated node: the replica (absent while crashed) and its host.
struct Node<R: Replica> {
    config: R::Config,
    initial: Membership,
    replica: Option<R>,
    disk: Durable,
    unsynced: Vec<(PersistSeq, Persist)>,
    /// The highest persist number emitted in this incarnation.
    emitted: PersistSeq,
    synced: PersistSeq,
    /// Sends waiting for the persist numbered by the first field to be synced.
    held: Vec<(PersistSeq, NodeId, R::Message)>,
    machine: Machine,
    /// The highest index reported with `Applied`.
    acked: LogIndex,
}

/// The output of one command: lines, indented by nesting depth.
#[derive(Default)]
struct Out {
    lines: Vec<String>,
}

impl Out {
    fn line(&mut self, depth: usize, text: impl Into<String>) {
        let text = text.into();
        self.lines
            .push(format!("{:width$}{text}", "", width = depth * 2));
    }
}

/// Runs script commands against a cluster of `P::Replica`s.
///
/// ```
/// # use rsm_script::{Interpreter, Protocol};
/// # fn demo<P: Protocol>(protocol: P) {
/// let mut script = Interpreter::new(protocol);
/// let transcript = script.run("create 1 2 3 seed=7");
/// assert_eq!(transcript, "ok");
/// # }
/// ```
pub struct Interpreter<P: Protocol> {
    protocol: P,
    nodes: BTreeMap<NodeId, Node<P::Replica>>,
    network: VecDeque<Envelope<Msg<P>>>,
    /// `None` when every node reaches every other; else the groups that can talk.
    groups: Option<Vec<BTreeSet<NodeId>>>,
    /// Directed links that are down, beside the partition.
    cuts: BTreeSet<(NodeId, NodeId)>,
    next_req: u64,
}

impl<P: Protocol> fmt::Debug for Interpreter<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interpreter")
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .field("in_flight", &self.network.len())
            .field("groups", &self.groups)
            .field("cuts", &self.cuts)
            .finish_non_exhaustive()
    }
}

impl<P: Protocol> Interpreter<P> {
    /// An empty cluster for `protocol`.
    pub fn new(protocol: P) -> Self {
        Self {
            protocol,
            nodes: BTreeMap::new(),
            network: VecDeque::new(),
            groups: None,
            cuts: BTreeSet::new(),
            next_req: 1,
        }
    }

    /// Run one command line and return its transcript: one line per effect or event,
    /// `ok` when nothing happened, `error: ...` when the command is malformed or
    /// impossible (the cluster is left as it was).
    pub fn run(&mut self, line: &str) -> String {
        let mut out = Out::default();
        match parse(line).and_then(|c| self.execute(c, &mut out)) {
            Ok(()) if out.lines.is_empty() => "ok".to_string(),
            Ok(()) => out.lines.join("\n"),
            Err(e) => {
                out.line(0, format!("error: {e}"));
                out.lines.join("\n")
            }
        }
    }

    /// The replica `id`, unless it does not exist or is crashed.
    pub fn replica(&self, id: NodeId) -> Option<&P::Replica> {
        self.nodes.get(&id)?.replica.as_ref()
    }

    /// What node `id` has made durable.
    pub fn durable(&self, id: NodeId) -> Option<&Durable> {
        Some(&self.nodes.get(&id)?.disk)
    }

    /// Node `id`'s key-value store.
    pub fn store(&self, id: NodeId) -> Option<&KvStore> {
        Some(&self.nodes.get(&id)?.machine.kv)
    }

    fn execute(&mut self, command: Command, out: &mut Out) -> Result<(), String> {
        match command {
            Command::Create {
                ids,
                voters,
                learners,
                seed,
                options,
            } => self.create(&ids, voters, learners, seed, &options),
            Command::Tick { nodes, n } => {
                let ids = self.live(&nodes)?;
                for _ in 0..n {
                    for &id in &ids {
                        self.step(id, Input::Tick, 0, out);
                    }
                }
                Ok(())
            }
            Command::Propose { node, text } => {
                self.live_one(node)?;
                let req = self.request();
                let command = proposal(req, &text);
                self.step(node, Input::Propose { req, command }, 0, out);
                Ok(())
            }
            Command::Read { node, key } => {
                self.live_one(node)?;
                let req = self.request();
                self.node_mut(node)?.machine.read_keys.insert(req, key);
                self.step(node, Input::Read { req }, 0, out);
                Ok(())
            }
            Command::Get { node, key } => {
                let kv = &self.node_mut(node)?.machine.kv;
                let shown = match kv.get(key.as_bytes()) {
                    Some(v) => format!("{} {key}={}", node.0, render::command(v)),
                    None => format!("{} {key} absent", node.0),
                };
                out.line(0, shown);
                Ok(())
            }
            Command::Reconfigure {
                node,
                voters,
                learners,
            } => {
                self.live_one(node)?;
                let req = self.request();
                let membership = Membership::with_learners(voters, learners);
                self.step(node, Input::Reconfigure { req, membership }, 0, out);
                Ok(())
            }
            Command::Transfer { node, to } => {
                self.live_one(node)?;
                self.step(node, Input::TransferLeadership { to }, 0, out);
                Ok(())
            }
            Command::Persist { nodes, through } => {
                for id in self.live(&nodes)? {
                    self.sync(id, through.map(PersistSeq), out);
                }
                Ok(())
            }
            Command::Deliver { filter } => {
                self.deliver(&filter, out);
                Ok(())
            }
            Command::Drop { filter } => {
                self.drop_messages(&filter, out);
                Ok(())
            }
            Command::Partition { groups } => {
                self.groups = Some(
                    groups
                        .into_iter()
                        .map(|g| g.into_iter().collect())
                        .collect(),
                );
                Ok(())
            }
            Command::Cut { links } => {
                self.cuts.extend(links);
                Ok(())
            }
            Command::Heal => {
                self.groups = None;
                self.cuts.clear();
                Ok(())
            }
            Command::Crash { node } => self.crash(node, out),
            Command::Restart { node } => self.restart(node, out),
            Command::Disk {
                node,
                log,
                epoch,
                vote,
                commit,
            } => self.replace_disk(node, &log, epoch, vote, commit, out),
            Command::Apply { nodes } => {
                for id in self.live(&nodes)? {
                    self.ack_applied(id, out);
                }
                Ok(())
            }
            Command::Status { nodes } => {
                for id in self.existing(&nodes)? {
                    let ep = self.protocol.epoch_prefix();
                    match self.replica(id) {
                        Some(r) => {
                            out.line(0, format!("{} {}", id.0, render::status(&r.status(), ep)))
                        }
                        None => out.line(0, format!("{} down", id.0)),
                    }
                }
                Ok(())
            }
            Command::Log { nodes } => {
                for id in self.existing(&nodes)? {
                    self.print_log(id, out);
                }
                Ok(())
            }
            Command::Network => {
                for e in &self.network {
                    let text = self.envelope(e.from, e.to, &e.msg);
                    match e.lost {
                        Some(why) => out.line(0, format!("{text} (lost: {why})")),
                        None => out.line(0, text),
                    }
                }
                for (&id, node) in &self.nodes {
                    for (gate, to, msg) in &node.held {
                        let text = self.envelope(id, *to, msg);
                        out.line(0, format!("{text} (after p{})", gate.0));
                    }
                }
                Ok(())
            }
            Command::Stabilize => self.stabilize(out),
        }
    }

    fn create(
        &mut self,
        ids: &[NodeId],
        voters: Option<Vec<NodeId>>,
        learners: Vec<NodeId>,
        seed: u64,
        options: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let (membership, created) = match voters {
            Some(voters) => (Membership::with_learners(voters, learners), ids.to_vec()),
            None => {
                let m = Membership::with_learners(ids.iter().copied(), learners.iter().copied());
                (m, ids.iter().chain(&learners).copied().collect())
            }
        };
        if let Some(id) = created.iter().find(|id| self.nodes.contains_key(id)) {
            return Err(format!("node {} already exists", id.0));
        }
        let mut built = Vec::with_capacity(created.len());
        for &id in &created {
            let setup = NodeSetup {
                id,
                membership: &membership,
                seed: node_seed(seed, id),
                options,
            };
            let config = self
                .protocol
                .config(&setup)
                .map_err(|e| format!("node {}: {e}", id.0))?;
            let replica = P::Replica::restore(config.clone(), Durable::default())
                .map_err(|e| format!("node {} cannot start: {e}", id.0))?;
            built.push((id, config, replica));
        }
        for (id, config, replica) in built {
            self.nodes.insert(
                id,
                Node {
                    config,
                    initial: membership.clone(),
                    replica: Some(replica),
                    disk: Durable::default(),
                    unsynced: Vec::new(),
                    emitted: PersistSeq(0),
                    synced: PersistSeq(0),
                    held: Vec::new(),
                    machine: Machine::new(membership.clone()),
                    acked: LogIndex(0),
                },
            );
        }
        Ok(())
    }

    fn request(&mut self) -> RequestId {
        let req = RequestId(self.next_req);
        self.next_req += 1;
        req
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut Node<P::Replica>, String> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {}", id.0))
    }

    fn existing(&self, nodes: &Nodes) -> Result<Vec<NodeId>, String> {
        match nodes {
            Nodes::All => Ok(self.nodes.keys().copied().collect()),
            Nodes::List(ids) => {
                if let Some(id) = ids.iter().find(|id| !self.nodes.contains_key(id)) {
                    return Err(format!("no node {}", id.0));
                }
                Ok(ids.clone())
            }
        }
    }

    /// The addressed nodes that are running: `all` skips crashed ones, a named crashed
    /// node is an error.
    fn live(&self, nodes: &Nodes) -> Result<Vec<NodeId>, String> {
        let ids = self.existing(nodes)?;
        match nodes {
            Nodes::All => Ok(ids.into_iter().filter(|id| self.is_up(*id)).collect()),
            Nodes::List(_) => {
                if let Some(id) = ids.iter().find(|id| !self.is_up(**id)) {
                    return Err(format!("node {} is down", id.0));
                }
                Ok(ids)
            }
        }
    }

    fn live_one(&self, id: NodeId) -> Result<(), String> {
        self.live(&Nodes::List(vec![id])).map(drop)
    }

    fn is_up(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.replica.is_some())
    }

    /// Why a message from `a` cannot reach `b` now, if it cannot.
    fn link_down(&self, a: NodeId, b: NodeId) -> Option<&'static str> {
        if self.cuts.contains(&(a, b)) {
            return Some("cut");
        }
        let groups = self.groups.as_ref()?;
        // Nodes named in no group form one more group together.
        let group = |id: NodeId| groups.iter().position(|g| g.contains(&id));
        (group(a) != group(b)).then_some("partitioned")
    }

    /// Put a message on the network, marked lost if its link or its recipient is down.
    fn transmit(&mut self, from: NodeId, to: NodeId, msg: Msg<P>) {
        let recipient_down = self.nodes.contains_key(&to) && !self.is_up(to);
        let lost = self
            .link_down(from, to)
            .or(recipient_down.then_some("recipient down"));
        self.network.push_back(Envelope {
            from,
            to,
            msg,
            lost,
        });
    }

    fn envelope(&self, from: NodeId, to: NodeId, msg: &Msg<P>) -> String {
        format!("{}->{} {}", from.0, to.0, self.protocol.message(msg))
    }

    /// Feed `input` to node `id` and execute the effects, then any input the host owes
    /// back (a snapshot it was asked to take).
    fn step(&mut self, id: NodeId, input: Input<Msg<P>>, depth: usize, out: &mut Out) {
        let mut inputs = VecDeque::from([input]);
        let mut fed = 0;
        while let Some(input) = inputs.pop_front() {
            fed += 1;
            if fed > HOST_INPUTS_MAX {
                out.line(
                    depth,
                    format!("error: {} kept asking for host inputs", id.0),
                );
                return;
            }
            let Some(replica) = self.nodes.get_mut(&id).and_then(|n| n.replica.as_mut()) else {
                return;
            };
            let mut effects = Vec::new();
            replica.step(input, &mut effects);
            for effect in effects {
                if let Some(next) = self.effect(id, effect, depth, out) {
                    inputs.push_back(next);
                }
            }
        }
    }

    /// Execute one effect of node `id`; returns an input the host must feed back.
    fn effect(
        &mut self,
        id: NodeId,
        effect: Effect<Msg<P>>,
        depth: usize,
        out: &mut Out,
    ) -> Option<Input<Msg<P>>> {
        let ep = self.protocol.epoch_prefix();
        let n = id.0;
        match effect {
            Effect::Send { to, msg } => {
                let text = self.envelope(id, to, &msg);
                let node = self.nodes.get_mut(&id)?;
                if node.emitted > node.synced {
                    out.line(depth, format!("{text} (after p{})", node.emitted.0));
                    node.held.push((node.emitted, to, msg));
                } else {
                    out.line(depth, text);
                    self.transmit(id, to, msg);
                }
            }
            Effect::Persist { seq, op } => {
                out.line(
                    depth,
                    format!("{n} persist p{} {}", seq.0, render::persist(&op, ep)),
                );
                let node = self.nodes.get_mut(&id)?;
                if seq != node.emitted.next() {
                    out.line(
                        depth,
                        format!(
                            "error: {n} numbered a persist p{} after p{}",
                            seq.0, node.emitted.0
                        ),
                    );
                }
                node.emitted = node.emitted.max(seq);
                node.unsynced.push((seq, op));
            }
            Effect::Apply { entries } => {
                let shown: Vec<String> = entries.iter().map(render::payload).collect();
                let range = render::index_range(&entries);
                out.line(depth, format!("{n} apply {range}: {}", shown.join(", ")));
                let machine = &mut self.nodes.get_mut(&id)?.machine;
                for e in &entries {
                    if let Err(why) = machine.apply(e) {
                        out.line(depth, format!("error: {n} {why}"));
                        break;
                    }
                }
                for served in machine.serve_reads() {
                    out.line(depth, format!("{n} {served}"));
                }
            }
            Effect::Proposed { req, index, epoch } => {
                let e = render::epoch(epoch, ep);
                out.line(
                    depth,
                    format!("{n} proposed r{} at i{} {e}", req.0, index.0),
                );
            }
            Effect::ReadReady { req, index } => {
                out.line(depth, format!("{n} read-ready r{} at i{}", req.0, index.0));
                let machine = &mut self.nodes.get_mut(&id)?.machine;
                let key = machine.read_keys.remove(&req).flatten();
                machine.ready.push(PendingRead { req, index, key });
                for served in machine.serve_reads() {
                    out.line(depth, format!("{n} {served}"));
                }
            }
            Effect::Reject { req, reason } => {
                out.line(
                    depth,
                    format!("{n} reject r{} {}", req.0, render::reject(&reason)),
                );
                self.nodes.get_mut(&id)?.machine.read_keys.remove(&req);
            }
            Effect::TakeSnapshot { through } => {
                out.line(depth, format!("{n} take-snapshot i{}", through.0));
                let machine = &self.nodes.get(&id)?.machine;
                if machine.applied < through {
                    let why = format!(
                        "asked to snapshot i{} with only i{} applied",
                        through.0, machine.applied.0
                    );
                    out.line(depth, format!("error: {n} {why}"));
                    return None;
                }
                let meta = SnapshotMeta {
                    index: machine.applied,
                    epoch: machine.epoch,
                    membership: machine.membership.clone(),
                };
                let e = render::epoch(meta.epoch, ep);
                out.line(
                    depth,
                    format!("{n} snapshot taken at i{} {e}", meta.index.0),
                );
                let data = machine.kv.snapshot();
                return Some(Input::Snapshot { meta, data });
            }
            Effect::InstallSnapshot { meta, data } => {
                let e = render::epoch(meta.epoch, ep);
                out.line(depth, format!("{n} install-snapshot i{} {e}", meta.index.0));
                let machine = &mut self.nodes.get_mut(&id)?.machine;
                if let Err(why) = machine.install(&meta, &data) {
                    out.line(depth, format!("error: {n} {why}"));
                }
            }
            Effect::RoleChanged {
                role,
                epoch,
                leader,
            } => {
                let leader = leader.map_or("-".to_string(), |l| l.0.to_string());
                let e = render::epoch(epoch, ep);
                out.line(depth, format!("{n} role {role:?} {e} leader={leader}"));
            }
        }
        None
    }

    /// Make node `id`'s persists durable through `through` (all when `None`), release
    /// the sends they held back, and report `Persisted`. False when nothing was pending.
    fn sync(&mut self, id: NodeId, through: Option<PersistSeq>, out: &mut Out) -> bool {
        let Some(node) = self.nodes.get_mut(&id) else {
            return false;
        };
        let target = through.unwrap_or(node.emitted).min(node.emitted);
        if target <= node.synced {
            return false;
        }
        let first = node.synced.next();
        let keep = node.unsynced.iter().position(|(seq, _)| *seq > target);
        let written: Vec<_> = node
            .unsynced
            .drain(..keep.unwrap_or(node.unsynced.len()))
            .collect();
        let mut errors = Vec::new();
        for (seq, op) in &written {
            if let Err(e) = node.disk.apply(op) {
                errors.push(format!(
                    "error: {} persist p{} refused by the disk: {e}",
                    id.0, seq.0
                ));
            }
        }
        node.synced = target;
        let released = node
            .held
            .iter()
            .take_while(|(gate, _, _)| *gate <= target)
            .count();
        let sends: Vec<_> = node.held.drain(..released).collect();
        for (_, to, msg) in sends {
            self.transmit(id, to, msg);
        }
        let range = if first == target {
            format!("p{}", target.0)
        } else {
            format!("p{}..{}", first.0, target.0)
        };
        let released = match released {
            0 => String::new(),
            1 => ", released 1 send".to_string(),
            k => format!(", released {k} sends"),
        };
        out.line(0, format!("{} synced {range}{released}", id.0));
        for e in errors {
            out.line(0, e);
        }
        self.step(id, Input::Persisted { through: target }, 0, out);
        true
    }

    /// Report node `id`'s applied index. False when it had nothing new to report.
    fn ack_applied(&mut self, id: NodeId, out: &mut Out) -> bool {
        let Some(node) = self.nodes.get_mut(&id) else {
            return false;
        };
        let through = node.machine.applied;
        let fresh = through > node.acked;
        node.acked = through;
        out.line(0, format!("{} applied i{}", id.0, through.0));
        self.step(id, Input::Applied { through }, 0, out);
        fresh
    }

    /// Deliver, in queue order, the messages queued now that match `filter`. Returns
    /// how many were taken off the queue (delivered or lost).
    fn deliver(&mut self, filter: &Filter, out: &mut Out) -> usize {
        let mut unseen = self.network.len();
        let mut at = 0;
        let mut taken = 0;
        while unseen > 0 && filter.n.is_none_or(|n| taken < n) {
            unseen -= 1;
            let e = &self.network[at];
            if !filter.matches(e.from, e.to) {
                at += 1;
                continue;
            }
            let Some(Envelope {
                from,
                to,
                msg,
                lost,
            }) = self.network.remove(at)
            else {
                break;
            };
            taken += 1;
            let text = self.envelope(from, to, &msg);
            if let Some(why) = lost.or_else(|| self.link_down(from, to)) {
                out.line(0, format!("{text} dropped ({why})"));
            } else if !self.nodes.contains_key(&to) {
                out.line(0, format!("{text} dropped ({} does not exist)", to.0));
            } else if !self.is_up(to) {
                out.line(0, format!("{text} dropped ({} is down)", to.0));
            } else {
                out.line(0, text);
                self.step(to, Input::Receive { from, msg }, 1, out);
            }
        }
        taken
    }

    fn drop_messages(&mut self, filter: &Filter, out: &mut Out) {
        let mut dropped = 0;
        let mut kept = VecDeque::with_capacity(self.network.len());
        for e in std::mem::take(&mut self.network) {
            if filter.matches(e.from, e.to) && filter.n.is_none_or(|n| dropped < n) {
                dropped += 1;
                out.line(
                    0,
                    format!("{} dropped", self.envelope(e.from, e.to, &e.msg)),
                );
            } else {
                kept.push_back(e);
            }
        }
        self.network = kept;
    }

    fn crash(&mut self, id: NodeId, out: &mut Out) -> Result<(), String> {
        self.live_one(id)?;
        let node = self.node_mut(id)?;
        node.replica = None;
        let mut text = format!("{} crashed", id.0);
        if let (Some((a, _)), Some((b, _))) = (node.unsynced.first(), node.unsynced.last()) {
            let range = if a == b {
                format!("p{}", a.0)
            } else {
                format!("p{}..{}", a.0, b.0)
            };
            text.push_str(&format!(", lost unsynced {range}"));
        }
        match node.held.len() {
            0 => {}
            1 => text.push_str(", lost 1 held send"),
            k => text.push_str(&format!(", lost {k} held sends")),
        }
        node.unsynced.clear();
        node.held.clear();
        node.machine = Machine::new(Membership::default());
        out.line(0, text);
        // What was on its way to the node is lost with it, even if it restarts in time.
        for e in self.network.iter_mut().filter(|e| e.to == id) {
            e.lost = e.lost.or(Some("recipient crashed"));
        }
        Ok(())
    }

    fn restart(&mut self, id: NodeId, out: &mut Out) -> Result<(), String> {
        let ep = self.protocol.epoch_prefix();
        let node = self.node_mut(id)?;
        if node.replica.is_some() {
            return Err(format!("node {} is running; crash it first", id.0));
        }
        let replica = P::Replica::restore(node.config.clone(), node.disk.clone())
            .map_err(|e| format!("node {} cannot restore: {e}", id.0))?;
        let mut machine = Machine::new(node.initial.clone());
        if let Some((meta, data)) = &node.disk.snapshot {
            machine.install(meta, data)?;
        }
        node.acked = machine.applied;
        node.machine = machine;
        node.replica = Some(replica);
        node.emitted = PersistSeq(0);
        node.synced = PersistSeq(0);
        let disk = &node.disk;
        let log = render::entries(&disk.entries, ep);
        out.line(
            0,
            format!(
                "{} restarted: hard {}, snapshot i{}, log {log}",
                id.0,
                render::hard_state(&disk.hard_state, ep),
                disk.snapshot_index().0
            ),
        );
        Ok(())
    }

    /// Crash node `id` if it runs, replace its durable image by a log whose entries have
    /// the given epochs (commands whose text names their index and epoch) and the given
    /// hard state, and restart it from that image.
    fn replace_disk(
        &mut self,
        id: NodeId,
        log: &[u64],
        epoch: Option<u64>,
        vote: Option<NodeId>,
        commit: u64,
        out: &mut Out,
    ) -> Result<(), String> {
        let ep = self.protocol.epoch_prefix();
        self.node_mut(id)?;
        if self.is_up(id) {
            self.crash(id, out)?;
        }
        let entries: Vec<Entry> = (1u64..)
            .zip(log)
            .map(|(i, &e)| {
                let text = format!("{i}@{ep}{e}");
                Entry::command(LogIndex(i), Epoch(e), Bytes::from(text))
            })
            .collect();
        let hard_state = HardState {
            epoch: Epoch(epoch.unwrap_or_else(|| log.iter().copied().max().unwrap_or(0))),
            vote,
            commit: LogIndex(commit),
            extra: Bytes::new(),
        };
        self.node_mut(id)?.disk = Durable {
            hard_state,
            snapshot: None,
            entries,
        };
        self.restart(id, out)
    }

    fn print_log(&self, id: NodeId, out: &mut Out) {
        let ep = self.protocol.epoch_prefix();
        let Some(node) = self.nodes.get(&id) else {
            return;
        };
        let n = id.0;
        let disk = &node.disk;
        out.line(
            0,
            format!("{n} hard {}", render::hard_state(&disk.hard_state, ep)),
        );
        if let Some((meta, _)) = &disk.snapshot {
            let e = render::epoch(meta.epoch, ep);
            let m = render::membership(&meta.membership);
            out.line(0, format!("{n} snapshot i{} {e} {m}", meta.index.0));
        }
        for e in &disk.entries {
            let epoch = render::epoch(e.epoch, ep);
            out.line(
                0,
                format!("{n} i{} {epoch} {}", e.index.0, render::payload(e)),
            );
        }
        for (seq, op) in &node.unsynced {
            out.line(
                0,
                format!("{n} unsynced p{} {}", seq.0, render::persist(op, ep)),
            );
        }
    }

    fn stabilize(&mut self, out: &mut Out) -> Result<(), String> {
        for _ in 0..STABILIZE_ROUNDS_MAX {
            let mut busy = false;
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for &id in &ids {
                if self.is_up(id) {
                    busy |= self.sync(id, None, out);
                }
            }
            busy |= self.deliver(&Filter::default(), out) > 0;
            for &id in &ids {
                let behind = self
                    .nodes
                    .get(&id)
                    .is_some_and(|n| n.replica.is_some() && n.machine.applied > n.acked);
                if behind {
                    busy |= self.ack_applied(id, out);
                }
            }
            if !busy {
                return Ok(());
            }
        }
        Err(format!(
            "not stable after {STABILIZE_ROUNDS_MAX} rounds of persist, deliver and apply"
        ))
    }
}

/// A proposal's bytes: `key=value` becomes a key-value put under a one-shot session
/// (client = request number), anything else is proposed as raw text.
fn proposal(req: RequestId, text: &str) -> Bytes {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !key.contains(char::is_whitespace) => KvCommand {
            session: SessionHeader {
                client: ClientId(req.0),
                seq: 1,
            },
            op: KvOp::Put {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Bytes::copy_from_slice(value.as_bytes()),
            },
        }
        .encode(),
        _ => Bytes::copy_from_slice(text.as_bytes()),
    }
}

/// Each node's PRNG seed, derived from the script's seed and the node id so that nodes
/// draw different election jitter.
fn node_seed(seed: u64, id: NodeId) -> u64 {
    Prng::new(seed ^ id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64()
}
