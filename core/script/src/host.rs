//! The interpreter: a cluster of replicas, each inside the reference host
//! ([`rsm_core::Host`]), and a network queue, driven one script command at a time.
//!
//! The host rule is the reference host's: effects run in order; persists wait on the
//! node's disk, unsynced, until a `persist` command (or `stabilize`) makes a prefix of them
//! durable, which releases the sends held behind them and feeds `Persisted`; committed
//! commands reach a [`KvStore`]; `Applied` and snapshots are fed back by the host itself,
//! in its documented order. A crash loses every unsynced persist and held send, and a
//! restart rebuilds the replica with [`Replica::restore`] from the durable image alone.
//! The interpreter only prints what the host reports and carries messages.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use bytes::Bytes;

use super::command::{Command, Filter, Nodes, parse};
use super::render;
use super::{NodeSetup, Protocol};
use rsm_core::kv::{KvCommand, KvOp, KvResponse, KvStore};
use rsm_core::session::{ClientId, SessionHeader};
use rsm_core::{
    ClientError, CodecError, Completion, Durable, Entry, Epoch, HardState, Host, HostConfig,
    HostError, HostEvent, LogIndex, Membership, NodeId, Persist, PersistError, PersistSeq, Prng,
    Queryable, Replica, Reply, RequestId, StateMachine, Storage, Ticket,
};

type Msg<P> = <<P as Protocol>::Replica as Replica>::Message;

/// Rounds of persist + deliver that `stabilize` runs before giving up: a cluster that
/// still has work after this many rounds is livelocked, and the script says so.
pub const STABILIZE_ROUNDS_MAX: usize = 256;

/// A message in flight.
struct Envelope<M> {
    from: NodeId,
    to: NodeId,
    msg: M,
    /// Set when the link was down as the message was sent: it is lost even if the link
    /// comes back before delivery.
    lost: Option<&'static str>,
}

/// A node's disk: the durable image, and the writes not yet synced, which a script makes
/// durable a prefix at a time.
#[derive(Clone, Debug, Default)]
struct ScriptDisk {
    durable: Durable,
    unsynced: Vec<(PersistSeq, Persist)>,
    /// The number of the last write queued in this incarnation.
    queued: PersistSeq,
}

impl Storage for ScriptDisk {
    type Error = PersistError;

    fn write(&mut self, op: &Persist) -> Result<(), PersistError> {
        self.queued = self.queued.next();
        self.unsynced.push((self.queued, op.clone()));
        Ok(())
    }

    fn sync(&mut self) -> Result<(), PersistError> {
        match self.sync_through(self.queued).into_iter().next() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

impl ScriptDisk {
    /// Make the writes numbered `<= through` durable, in order; the refusals of the
    /// reference semantics, which leave the image as it was for that write.
    fn sync_through(&mut self, through: PersistSeq) -> Vec<PersistError> {
        let keep = self.unsynced.iter().position(|(seq, _)| *seq > through);
        let written: Vec<_> = self
            .unsynced
            .drain(..keep.unwrap_or(self.unsynced.len()))
            .collect();
        written
            .iter()
            .filter_map(|(_, op)| self.durable.apply(op).err())
            .collect()
    }

    /// Lose every unsynced write; returns the numbers lost, if any.
    fn crash(&mut self) -> Option<(PersistSeq, PersistSeq)> {
        let lost = match (self.unsynced.first(), self.unsynced.last()) {
            (Some((a, _)), Some((b, _))) => Some((*a, *b)),
            _ => None,
        };
        self.unsynced.clear();
        self.queued = PersistSeq(0);
        lost
    }
}

/// A node's state machine: the reference key-value store; a read names the key it shows.
#[derive(Clone, Debug, Default)]
struct ScriptKv(KvStore);

impl StateMachine for ScriptKv {
    type Response = KvResponse;

    fn apply(&mut self, index: LogIndex, command: &Bytes) -> KvResponse {
        self.0.apply(index, command)
    }

    fn snapshot(&self) -> Bytes {
        self.0.snapshot()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), CodecError> {
        self.0.restore(snapshot)
    }
}

impl Queryable for ScriptKv {
    /// The key to show, if any.
    type Query = Option<String>;
    /// `: k=v`, `: k absent`, or nothing.
    type Answer = String;

    fn query(&self, key: &Option<String>) -> String {
        match key {
            Some(k) => match self.0.get(k.as_bytes()) {
                Some(v) => format!(": {k}={}", render::command(v)),
                None => format!(": {k} absent"),
            },
            None => String::new(),
        }
    }
}

type ScriptHost<R> = Host<R, ScriptDisk, ScriptKv>;

/// What every script host records and bounds: everything, since transcripts print it; no
/// request ever times out, since scripts have no clock but ticks they choose.
fn host_config() -> HostConfig {
    HostConfig {
        pending_requests_max: 1 << 16,
        request_timeout_ticks: u64::MAX / 2,
        record_events: true,
        record_sends: true,
        ..HostConfig::default()
    }
}

/// One scripted node: its host while it runs, its disk while it is down.
struct Node<R: Replica> {
    config: R::Config,
    host: Option<ScriptHost<R>>,
    disk: ScriptDisk,
}

/// An empty store, shown for a node that is down.
static EMPTY_STORE: std::sync::OnceLock<KvStore> = std::sync::OnceLock::new();

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
        Some(self.nodes.get(&id)?.host.as_ref()?.replica())
    }

    /// What node `id` has made durable.
    pub fn durable(&self, id: NodeId) -> Option<&Durable> {
        Some(&self.disk(id)?.durable)
    }

    /// Node `id`'s key-value store (empty while it is down).
    pub fn store(&self, id: NodeId) -> Option<&KvStore> {
        let node = self.nodes.get(&id)?;
        Some(match &node.host {
            Some(host) => &host.machine().0,
            None => EMPTY_STORE.get_or_init(KvStore::new),
        })
    }

    fn disk(&self, id: NodeId) -> Option<&ScriptDisk> {
        let node = self.nodes.get(&id)?;
        Some(match &node.host {
            Some(host) => host.storage(),
            None => &node.disk,
        })
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
                        self.call(id, 0, out, |h| h.tick());
                    }
                }
                Ok(())
            }
            Command::Propose { node, text } => {
                self.live_one(node)?;
                let req = self.request();
                let command = proposal(req, &text);
                self.request_at(node, req, out, |h| h.propose_as(req, command));
                Ok(())
            }
            Command::Read { node, key } => {
                self.live_one(node)?;
                let req = self.request();
                self.request_at(node, req, out, |h| h.read_as(req, key));
                Ok(())
            }
            Command::Get { node, key } => {
                let kv = self
                    .store(node)
                    .ok_or_else(|| format!("no node {}", node.0))?;
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
                self.request_at(node, req, out, |h| h.reconfigure_as(req, membership));
                Ok(())
            }
            Command::Transfer { node, to } => {
                self.live_one(node)?;
                self.call(node, 0, out, |h| h.transfer_leadership(to));
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
                // The host reports `Applied` itself after every step; this shows where
                // each node's state machine stands.
                for id in self.live(&nodes)? {
                    if let Some(host) = self.nodes.get(&id).and_then(|n| n.host.as_ref()) {
                        out.line(0, format!("{} applied i{}", id.0, host.applied_index().0));
                    }
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
                    let Some(host) = &node.host else {
                        continue;
                    };
                    for (gate, to, msg) in host.held() {
                        let text = self.envelope(id, to, msg);
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
            let host = Host::new(
                host_config(),
                replica,
                ScriptDisk::default(),
                ScriptKv::default(),
            );
            self.nodes.insert(
                id,
                Node {
                    config,
                    host: Some(host),
                    disk: ScriptDisk::default(),
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
        self.nodes.get(&id).is_some_and(|n| n.host.is_some())
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

    /// Call node `id`'s host (if it runs), print what it reported at `depth`, and put the
    /// sends it released on the network.
    fn call(
        &mut self,
        id: NodeId,
        depth: usize,
        out: &mut Out,
        f: impl FnOnce(&mut ScriptHost<P::Replica>) -> Result<(), HostError<PersistError>>,
    ) {
        let Some(host) = self.nodes.get_mut(&id).and_then(|n| n.host.as_mut()) else {
            return;
        };
        let result = f(host);
        let events: Vec<_> = host.drain_events().collect();
        let completions: Vec<_> = host.drain_completions().collect();
        let sends: Vec<_> = host.drain_sends().collect();
        self.print_events(id, events, depth, out);
        for Completion { ticket, result } in completions {
            // Only reads print an answer: proposals show as `apply` lines, refusals as
            // `reject` lines.
            if let Ok(Reply::Read { index, answer }) = result {
                out.line(
                    depth,
                    format!("{} read r{} served at i{}{answer}", id.0, ticket.0, index.0),
                );
            }
        }
        for (to, msg) in sends {
            self.transmit(id, to, msg);
        }
        if let Err(error) = result {
            out.line(depth, format!("error: {} {error}", id.0));
        }
    }

    /// Submit a client request to node `id`; a refusal at admission is printed.
    fn request_at(
        &mut self,
        id: NodeId,
        req: RequestId,
        out: &mut Out,
        f: impl FnOnce(&mut ScriptHost<P::Replica>) -> Result<Ticket, ClientError>,
    ) {
        let mut refused = None;
        self.call(id, 0, out, |h| {
            refused = f(h).err();
            Ok(())
        });
        if let Some(error) = refused {
            out.line(0, format!("{} refused r{}: {error}", id.0, req.0));
        }
    }

    fn print_events(
        &self,
        id: NodeId,
        events: Vec<HostEvent<Msg<P>, KvResponse>>,
        depth: usize,
        out: &mut Out,
    ) {
        let ep = self.protocol.epoch_prefix();
        let n = id.0;
        let mut applied: Vec<Entry> = Vec::new();
        let flush = |applied: &mut Vec<Entry>, out: &mut Out| {
            if applied.is_empty() {
                return;
            }
            let shown: Vec<String> = applied.iter().map(render::payload).collect();
            let range = render::index_range(applied);
            out.line(depth, format!("{n} apply {range}: {}", shown.join(", ")));
            applied.clear();
        };
        for event in events {
            if let HostEvent::Applied { entry, .. } = event {
                applied.push(entry);
                continue;
            }
            flush(&mut applied, out);
            match event {
                HostEvent::Sent {
                    to,
                    msg,
                    held_behind,
                } => {
                    let text = self.envelope(id, to, &msg);
                    match held_behind {
                        Some(p) => out.line(depth, format!("{text} (after p{})", p.0)),
                        None => out.line(depth, text),
                    }
                }
                HostEvent::Persist { seq, op } => out.line(
                    depth,
                    format!("{n} persist p{} {}", seq.0, render::persist(&op, ep)),
                ),
                HostEvent::Proposed {
                    ticket,
                    index,
                    epoch,
                } => {
                    let e = render::epoch(epoch, ep);
                    out.line(
                        depth,
                        format!("{n} proposed r{} at i{} {e}", ticket.0, index.0),
                    );
                }
                HostEvent::ReadReady { ticket, index } => out.line(
                    depth,
                    format!("{n} read-ready r{} at i{}", ticket.0, index.0),
                ),
                HostEvent::Rejected { ticket, reason } => out.line(
                    depth,
                    format!("{n} reject r{} {}", ticket.0, render::reject(&reason)),
                ),
                HostEvent::TakeSnapshot { through } => {
                    out.line(depth, format!("{n} take-snapshot i{}", through.0));
                }
                HostEvent::SnapshotTaken { meta } => {
                    let e = render::epoch(meta.epoch, ep);
                    out.line(
                        depth,
                        format!("{n} snapshot taken at i{} {e}", meta.index.0),
                    );
                }
                HostEvent::SnapshotInstalled { meta } => {
                    let e = render::epoch(meta.epoch, ep);
                    out.line(depth, format!("{n} install-snapshot i{} {e}", meta.index.0));
                }
                HostEvent::AppliedReported { through } => {
                    out.line(depth, format!("{n} applied i{}", through.0));
                }
                HostEvent::RoleChanged {
                    role,
                    epoch,
                    leader,
                } => {
                    let leader = leader.map_or("-".to_string(), |l| l.0.to_string());
                    let e = render::epoch(epoch, ep);
                    out.line(depth, format!("{n} role {role:?} {e} leader={leader}"));
                }
                // Durability is printed by the `persist` command that caused it.
                HostEvent::Durable { .. } | HostEvent::Applied { .. } => {}
            }
        }
        flush(&mut applied, out);
    }

    /// Make node `id`'s persists durable through `through` (all when `None`), release
    /// the sends they held back, and report `Persisted`. False when nothing was pending.
    fn sync(&mut self, id: NodeId, through: Option<PersistSeq>, out: &mut Out) -> bool {
        let Some(host) = self.nodes.get_mut(&id).and_then(|n| n.host.as_mut()) else {
            return false;
        };
        let written = host.written();
        let target = through.unwrap_or(written).min(written);
        if target <= host.durable() {
            return false;
        }
        let first = host.durable().next();
        let released = host
            .held()
            .take_while(|(gate, _, _)| *gate <= target)
            .count();
        let errors = host.storage_mut().sync_through(target);
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
            out.line(
                0,
                format!("error: {} a persist was refused by the disk: {e}", id.0),
            );
        }
        self.call(id, 0, out, |h| h.persisted(target));
        true
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
                self.call(to, 1, out, |h| h.receive(from, msg));
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
        let host = node.host.take().expect("checked live");
        let held = host.held_sends();
        node.disk = host.into_parts().storage;
        let mut text = format!("{} crashed", id.0);
        if let Some((a, b)) = node.disk.crash() {
            let range = if a == b {
                format!("p{}", a.0)
            } else {
                format!("p{}..{}", a.0, b.0)
            };
            text.push_str(&format!(", lost unsynced {range}"));
        }
        match held {
            0 => {}
            1 => text.push_str(", lost 1 held send"),
            k => text.push_str(&format!(", lost {k} held sends")),
        }
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
        if node.host.is_some() {
            return Err(format!("node {} is running; crash it first", id.0));
        }
        let durable = node.disk.durable.clone();
        let host = Host::restore(
            host_config(),
            node.config.clone(),
            durable,
            node.disk.clone(),
            ScriptKv::default(),
        )
        .map_err(|e| format!("node {} cannot restore: {e}", id.0))?;
        node.host = Some(host);
        let disk = &node.disk.durable;
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
        self.node_mut(id)?.disk = ScriptDisk {
            durable: Durable {
                hard_state,
                snapshot: None,
                entries,
            },
            ..ScriptDisk::default()
        };
        self.restart(id, out)
    }

    fn print_log(&self, id: NodeId, out: &mut Out) {
        let ep = self.protocol.epoch_prefix();
        let Some(disk) = self.disk(id) else {
            return;
        };
        let n = id.0;
        let durable = &disk.durable;
        out.line(
            0,
            format!("{n} hard {}", render::hard_state(&durable.hard_state, ep)),
        );
        if let Some((meta, _)) = &durable.snapshot {
            let e = render::epoch(meta.epoch, ep);
            let m = render::membership(&meta.membership);
            out.line(0, format!("{n} snapshot i{} {e} {m}", meta.index.0));
        }
        for e in &durable.entries {
            let epoch = render::epoch(e.epoch, ep);
            out.line(
                0,
                format!("{n} i{} {epoch} {}", e.index.0, render::payload(e)),
            );
        }
        for (seq, op) in &disk.unsynced {
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
            if !busy {
                return Ok(());
            }
        }
        Err(format!(
            "not stable after {STABILIZE_ROUNDS_MAX} rounds of persist and deliver"
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
