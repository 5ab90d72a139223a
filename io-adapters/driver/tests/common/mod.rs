//! Fakes shared by the driver tests: a world log that storage and transport both write
//! to (so tests see the order of writes, syncs and sends), a storage that can be told to
//! fail, a scripted replica, and a small fixed-leader replica that really replicates.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use rsm_core::{
    Bytes, Durable, Effect, Entry, Epoch, Input, LogIndex, MemStorage, Membership, NodeId, Persist,
    PersistError, PersistSeq, RejectReason, Replica, RestoreError, Role, Status, Storage,
    Transport,
};
use serde::{Deserialize, Serialize};

/// One thing the world saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorldEvent {
    Write,
    Sync,
    Send {
        from: NodeId,
        to: NodeId,
        bytes: Bytes,
    },
}

/// The shared record of a test's world.
#[derive(Clone, Debug, Default)]
pub struct World {
    pub events: Arc<Mutex<Vec<WorldEvent>>>,
}

impl World {
    pub fn push(&self, e: WorldEvent) {
        self.events.lock().unwrap().push(e);
    }

    pub fn take(&self) -> Vec<WorldEvent> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    pub fn syncs(&self) -> usize {
        let events = self.events.lock().unwrap();
        events.iter().filter(|e| **e == WorldEvent::Sync).count()
    }
}

/// Why the fake storage failed.
#[derive(Debug, thiserror::Error)]
pub enum FakeStorageError {
    #[error("injected sync failure")]
    SyncFailed,
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// `MemStorage` semantics, logging every write and sync; syncs fail on demand.
#[derive(Debug)]
pub struct FakeStorage {
    pub mem: MemStorage,
    /// The image as of the last successful sync: what a crash would leave.
    pub synced: Durable,
    pub world: World,
    pub fail_syncs: Arc<Mutex<bool>>,
}

impl FakeStorage {
    pub fn new(world: World) -> Self {
        Self {
            mem: MemStorage::default(),
            synced: Durable::default(),
            world,
            fail_syncs: Arc::new(Mutex::new(false)),
        }
    }
}

impl Storage for FakeStorage {
    type Error = FakeStorageError;

    fn write(&mut self, op: &Persist) -> Result<(), FakeStorageError> {
        self.world.push(WorldEvent::Write);
        self.mem.write(op)?;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), FakeStorageError> {
        if *self.fail_syncs.lock().unwrap() {
            return Err(FakeStorageError::SyncFailed);
        }
        self.world.push(WorldEvent::Sync);
        self.mem.sync()?;
        self.synced = self.mem.durable.clone();
        Ok(())
    }

    fn stats(&self) -> rsm_core::StorageStats {
        self.mem.stats()
    }
}

/// Records every send in the world log, with its sender.
#[derive(Clone, Debug)]
pub struct FakeTransport {
    pub me: NodeId,
    pub world: World,
}

impl Transport for FakeTransport {
    fn send(&self, to: NodeId, message: Bytes) {
        self.world.push(WorldEvent::Send {
            from: self.me,
            to,
            bytes: message,
        });
    }
}

/// The scripted replica's message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note(pub u64);

type Script = Box<dyn FnMut(&Input<Note>) -> Vec<Effect<Note>> + Send>;

/// Records its inputs and answers each with whatever the test's script returns.
pub struct ScriptedReplica {
    pub inputs: Arc<Mutex<Vec<Input<Note>>>>,
    pub script: Script,
}

impl std::fmt::Debug for ScriptedReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedReplica").finish_non_exhaustive()
    }
}

impl ScriptedReplica {
    pub fn new(
        script: impl FnMut(&Input<Note>) -> Vec<Effect<Note>> + Send + 'static,
    ) -> (Self, Arc<Mutex<Vec<Input<Note>>>>) {
        let inputs = Arc::new(Mutex::new(Vec::new()));
        let replica = Self {
            inputs: inputs.clone(),
            script: Box::new(script),
        };
        (replica, inputs)
    }
}

impl Replica for ScriptedReplica {
    type Message = Note;
    type Config = ();

    fn restore(_: (), _: Durable) -> Result<Self, RestoreError> {
        Err(RestoreError::InvalidConfig {
            field: "config",
            rule: "a scripted replica is built by the test, never restored",
        })
    }

    fn step(&mut self, input: Input<Note>, out: &mut Vec<Effect<Note>>) {
        out.extend((self.script)(&input));
        self.inputs.lock().unwrap().push(input);
    }

    fn status(&self) -> Status {
        Status::default()
    }
}

// ----- a fixed-leader replica --------------------------------------------------------------

/// Messages of the fixed-leader replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeqMsg {
    /// Entries from the leader, and its commit index.
    Append {
        entries: Vec<Entry>,
        commit: LogIndex,
    },
    /// A follower has made its log durable through `index`.
    Ack { index: LogIndex },
}

#[derive(Clone, Debug)]
pub struct SeqConfig {
    pub id: NodeId,
    pub leader: NodeId,
    pub members: Vec<NodeId>,
    /// Most entries the leader resends to a lagging follower per tick.
    pub resend_entries_max: usize,
}

/// A replica with a fixed leader and no elections: the leader appends, replicates and
/// commits on a majority of durable copies; followers acknowledge only durable entries.
/// Safe as long as the leader never changes, which is all these tests need.
#[derive(Debug)]
pub struct FixedLeader {
    config: SeqConfig,
    log: Vec<Entry>,
    /// Persist number of each log append still waiting to be durable, with its last index.
    unsynced: VecDeque<(PersistSeq, LogIndex)>,
    seq: PersistSeq,
    durable: LogIndex,
    matched: BTreeMap<NodeId, LogIndex>,
    commit: LogIndex,
    applied: LogIndex,
}

const EPOCH: Epoch = Epoch(1);

impl FixedLeader {
    fn is_leader(&self) -> bool {
        self.config.id == self.config.leader
    }

    fn last(&self) -> LogIndex {
        LogIndex(self.log.len() as u64)
    }

    fn persist(&mut self, entries: Vec<Entry>, out: &mut Vec<Effect<SeqMsg>>) {
        let last = entries.last().map(|e| e.index).unwrap_or(self.last());
        self.seq = self.seq.next();
        self.unsynced.push_back((self.seq, last));
        out.push(Effect::Persist {
            seq: self.seq,
            op: Persist::Append { entries },
        });
    }

    fn apply_committed(&mut self, out: &mut Vec<Effect<SeqMsg>>) {
        let through = self.commit.min(self.last());
        if through > self.applied {
            let entries = self.log[self.applied.0 as usize..through.0 as usize].to_vec();
            self.applied = through;
            out.push(Effect::Apply { entries });
        }
    }

    fn replicate(&mut self, to: NodeId, out: &mut Vec<Effect<SeqMsg>>) {
        let from = self.matched.get(&to).copied().unwrap_or_default().0 as usize;
        let upto = (from + self.config.resend_entries_max).min(self.log.len());
        out.push(Effect::Send {
            to,
            msg: SeqMsg::Append {
                entries: self.log[from..upto].to_vec(),
                commit: self.commit,
            },
        });
    }

    fn maybe_commit(&mut self, out: &mut Vec<Effect<SeqMsg>>) {
        let mut matched: Vec<LogIndex> = self
            .config
            .members
            .iter()
            .map(|m| {
                if *m == self.config.id {
                    self.durable
                } else {
                    self.matched.get(m).copied().unwrap_or_default()
                }
            })
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = matched[self.config.members.len() / 2];
        if quorum > self.commit {
            self.commit = quorum;
            self.apply_committed(out);
        }
    }
}

impl Replica for FixedLeader {
    type Message = SeqMsg;
    type Config = SeqConfig;

    fn restore(config: SeqConfig, durable: Durable) -> Result<Self, RestoreError> {
        if let Some((meta, _)) = &durable.snapshot {
            return Err(RestoreError::UnexpectedSnapshot {
                index: meta.index.0,
            });
        }
        let durable_index = durable.last_index();
        Ok(Self {
            config,
            log: durable.entries,
            unsynced: VecDeque::new(),
            seq: PersistSeq::ZERO,
            durable: durable_index,
            matched: BTreeMap::new(),
            commit: LogIndex::ZERO,
            applied: LogIndex::ZERO,
        })
    }

    fn step(&mut self, input: Input<SeqMsg>, out: &mut Vec<Effect<SeqMsg>>) {
        match input {
            Input::Tick => {
                if self.is_leader() {
                    let peers: Vec<NodeId> = self.followers().collect();
                    for p in peers {
                        if self.matched.get(&p).copied().unwrap_or_default() < self.last()
                            || self.commit > LogIndex::ZERO
                        {
                            self.replicate(p, out);
                        }
                    }
                }
            }
            Input::Propose { req, command } => {
                if !self.is_leader() {
                    out.push(Effect::Reject {
                        req,
                        reason: RejectReason::NotLeader {
                            hint: Some(self.config.leader),
                        },
                    });
                    return;
                }
                let entry = Entry::command(self.last().next(), EPOCH, command);
                let index = entry.index;
                self.log.push(entry.clone());
                self.persist(vec![entry], out);
                out.push(Effect::Proposed {
                    req,
                    index,
                    epoch: EPOCH,
                });
                let peers: Vec<NodeId> = self.followers().collect();
                for p in peers {
                    out.push(Effect::Send {
                        to: p,
                        msg: SeqMsg::Append {
                            entries: vec![self.log[index.0 as usize - 1].clone()],
                            commit: self.commit,
                        },
                    });
                }
            }
            Input::Read { req } => {
                if self.is_leader() {
                    out.push(Effect::ReadReady {
                        req,
                        index: self.commit,
                    });
                } else {
                    out.push(Effect::Reject {
                        req,
                        reason: RejectReason::NotLeader {
                            hint: Some(self.config.leader),
                        },
                    });
                }
            }
            Input::Receive { from, msg } => match msg {
                SeqMsg::Append { entries, commit } => {
                    if from != self.config.leader || self.is_leader() {
                        return;
                    }
                    match entries.first() {
                        Some(first) if first.index <= self.last().next() => {
                            let fresh: Vec<Entry> = entries
                                .into_iter()
                                .filter(|e| e.index > self.last())
                                .collect();
                            if !fresh.is_empty() {
                                self.log.extend(fresh.iter().cloned());
                                self.persist(fresh, out);
                            }
                        }
                        _ => {}
                    }
                    // Acknowledge what is (or, after this persist, will be) durable: the
                    // host holds this send until the persist above is synced.
                    out.push(Effect::Send {
                        to: from,
                        msg: SeqMsg::Ack { index: self.last() },
                    });
                    self.commit = self.commit.max(commit);
                    self.apply_committed(out);
                }
                SeqMsg::Ack { index } => {
                    if !self.is_leader() || !self.config.members.contains(&from) {
                        return;
                    }
                    let m = self.matched.entry(from).or_default();
                    *m = (*m).max(index.min(LogIndex(self.log.len() as u64)));
                    self.maybe_commit(out);
                }
            },
            Input::Persisted { through } => {
                while let Some(&(seq, last)) = self.unsynced.front() {
                    if seq > through {
                        break;
                    }
                    self.durable = self.durable.max(last);
                    self.unsynced.pop_front();
                }
                if self.is_leader() {
                    self.maybe_commit(out);
                }
            }
            Input::Applied { .. } | Input::Snapshot { .. } => {}
            Input::Reconfigure { req, .. } => out.push(Effect::Reject {
                req,
                reason: RejectReason::Unsupported,
            }),
            Input::TransferLeadership { .. } | Input::Campaign => {}
        }
    }

    fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: if self.is_leader() {
                Role::Leader
            } else {
                Role::Follower
            },
            epoch: EPOCH,
            leader: Some(self.config.leader),
            commit: self.commit,
            applied: self.applied,
            last_index: self.last(),
            membership: Membership::new(self.config.members.iter().copied()),
        }
    }
}

impl FixedLeader {
    fn followers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.config
            .members
            .iter()
            .copied()
            .filter(move |m| *m != self.config.id)
    }
}

pub fn fixed_leader(id: u64, members: &[u64]) -> FixedLeader {
    FixedLeader::restore(
        SeqConfig {
            id: NodeId(id),
            leader: NodeId(members[0]),
            members: members.iter().map(|m| NodeId(*m)).collect(),
            resend_entries_max: 64,
        },
        Durable::default(),
    )
    .expect("a fresh replica restores")
}

// ----- a state machine that remembers what it applied -----------------------------------

/// Applies commands by recording them; answers a query with how many it applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorder {
    pub applied: Vec<(LogIndex, Bytes)>,
}

impl rsm_core::StateMachine for Recorder {
    type Response = u64;

    fn apply(&mut self, index: LogIndex, command: &Bytes) -> u64 {
        self.applied.push((index, command.clone()));
        self.applied.len() as u64
    }

    fn snapshot(&self) -> Bytes {
        let mut out = Vec::new();
        rsm_core::encode_body(self, &mut out).unwrap();
        Bytes::from(out)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), rsm_core::CodecError> {
        *self = rsm_core::decode_body(snapshot)?;
        Ok(())
    }
}

impl rsm_driver::Queryable for Recorder {
    type Query = ();
    type Answer = usize;

    fn query(&self, _: &()) -> usize {
        self.applied.len()
    }
}

// ----- running futures without a runtime ------------------------------------------------

#[allow(unused_imports)] // not every test runs futures
pub use rsm_driver::block_on;

/// Poll `future` once with a waker that does nothing.
pub fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(future).poll(&mut cx)
}

// ----- key-value nodes ------------------------------------------------------------------

/// A session-numbered key-value put.
pub fn kv_put(client: u64, seq: u64, key: &'static str, value: &'static str) -> Bytes {
    rsm_core::kv::KvCommand {
        session: rsm_core::session::SessionHeader {
            client: rsm_core::session::ClientId(client),
            seq,
        },
        op: rsm_core::kv::KvOp::Put {
            key: Bytes::from_static(key.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
        },
    }
    .encode()
}

/// Node `id` of a fixed-leader cluster (the first member leads) over a key-value store,
/// recording its storage and sends in `world`.
pub fn kv_node(
    config: rsm_driver::DriverConfig,
    id: u64,
    members: &[u64],
    world: &World,
) -> rsm_driver::NodeCore<FixedLeader, FakeStorage, FakeTransport, rsm_core::kv::KvStore> {
    rsm_driver::NodeCore::new(
        config,
        fixed_leader(id, members),
        FakeStorage::new(world.clone()),
        FakeTransport {
            me: NodeId(id),
            world: world.clone(),
        },
        rsm_core::kv::KvStore::new(),
    )
}

/// A node loop running on its own thread, ticking from a manual clock.
pub struct ThreadNode<R: rsm_core::Replica, S: Storage, T: Transport, M: rsm_driver::Queryable> {
    pub join: rsm_driver::NodeThread<R, S, T, M>,
    pub handles: rsm_driver::NodeHandles<M>,
    pub time: rsm_driver::ManualClockHandle,
}

/// Start `core`'s loop on a new thread.
pub fn spawn_thread<R, S, T, M>(core: rsm_driver::NodeCore<R, S, T, M>) -> ThreadNode<R, S, T, M>
where
    R: rsm_core::Replica + Send + 'static,
    R::Message: Send,
    S: Storage + Send + 'static,
    T: Transport + Send + 'static,
    M: rsm_driver::Queryable + Send + 'static,
    M::Query: Send,
    M::Answer: Send,
    M::Response: Send,
{
    let (runner, handles) = rsm_driver::NodeRunner::new(core);
    let (clock, time) = rsm_driver::ManualClock::new(4);
    let join = runner.spawn_thread("node", clock).unwrap();
    ThreadNode {
        join,
        handles,
        time,
    }
}

/// A one-node key-value cluster running on its own thread.
pub fn spawn_single_kv_node()
-> ThreadNode<FixedLeader, FakeStorage, FakeTransport, rsm_core::kv::KvStore> {
    spawn_thread(kv_node(
        rsm_driver::DriverConfig::default(),
        1,
        &[1],
        &World::default(),
    ))
}

/// Delivers each send into the recipient's inbox, as a real transport would.
#[derive(Clone, Debug)]
pub struct InboxTransport {
    pub me: NodeId,
    pub inboxes: Arc<Mutex<std::collections::HashMap<NodeId, rsm_driver::Inbox>>>,
}

impl Transport for InboxTransport {
    fn send(&self, to: NodeId, message: Bytes) {
        if let Some(inbox) = self.inboxes.lock().unwrap().get(&to) {
            inbox.try_deliver(self.me, message);
        }
    }
}
