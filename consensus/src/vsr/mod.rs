//! Viewstamped Replication as a pure automaton, after "Viewstamped Replication Revisited"
//! (Liskov & Cowling, 2012).
//!
//! Each view has one primary, chosen round-robin: the voter at position `view mod n` of
//! the sorted voters of the configuration in force. In normal status the primary orders
//! requests into its log and sends them in `Prepare` messages (batched and pipelined,
//! bounded by count and bytes); backups answer `PrepareOk`; an op is committed once a
//! phase-2 quorum holds it; `Commit` is the heartbeat that carries the commit number.
//!
//! # View change
//!
//! A backup that hears nothing from its primary for a (jittered) timeout asks for the
//! next view with `StartViewChange`. A replica joins another's request only if it has not
//! heard from its own primary within `election_ticks_min` itself (or the request comes
//! from that primary, handing over): a replica that can send but not receive therefore
//! cannot pull a healthy cluster into view changes, and it comes back to the current view
//! as soon as it hears its primary again, because asking for a view promises nothing.
//! Once a replica sees a quorum ask for view `v` it makes `v` durable and sends
//! `DoViewChange` (its last normal view, op number and commit number) to `v`'s primary.
//! That is its promise: it accepts nothing from a lower view afterwards, across crashes.
//!
//! The new primary, holding `DoViewChange` from a phase-1 quorum (its own counting once
//! durable), chooses the log with the largest `(last normal view, op number)`. If that is
//! not its own it fetches the chosen log's suffix with `GetState`/`NewState` (the chosen
//! replica answers only while still in that view change, so the log is the one it
//! reported). It then makes the view's normal status durable and starts replicating.
//!
//! # Why the chosen log holds every committed op
//!
//! Entries keep the view that created them, and a primary only appends to the log it
//! started its view with, so two logs holding the same `(op, view)` agree up to it, as in
//! Raft. A backup enters a view's normal status (`last_normal = view`, written after the
//! entries) only once its log matches the primary's through the log the view started
//! with (`start_op`); from then on it only receives that primary's appends. So every log
//! reported with `last_normal = v` is a prefix of `v`'s primary log. An op committed in
//! view `v` was held by a phase-2 quorum with `last_normal >= v`; any later
//! `DoViewChange` quorum meets it, so the largest reported `last_normal` is at least `v`,
//! and among logs with `last_normal = v` the longest is at least as long as the
//! intersecting one: a prefix of `v`'s log holding the op. By induction, a later view's
//! log holds it too. A backup part-way through joining a view (crashed, or still
//! receiving) reports its older `last_normal`: its log then agrees with the new view's
//! up to some op and was only cut where it disagreed, above anything committed.
//!
//! A restarted replica never leads its durable view again: it may have led it before the
//! crash with another log.
//!
//! Liveness beyond the paper: a replica that promised a view the others never joined
//! (its view change failed) answers its old primary's messages with a copy of its promise
//! (which names the primary it was made to, so only that one counts it), and the old
//! primary moves everyone past it by handing over to itself in a higher view. A replica
//! that does not know it was made a voter (it lagged behind the configuration entry)
//! still joins a voter's view change and sends its promise to the primary the asker
//! names; each replica still promises a view to one primary only.
//!
//! # Reconfiguration
//!
//! Configuration entries take effect when they enter the log, one at a time, a change of
//! more than one voter through a joint configuration, never before the primary committed
//! the log its view started with: the same rules as the other protocols here, so
//! consecutive configurations share a member in every pair of quorums. A new primary whose
//! chosen log names another configuration needs `DoViewChange` from a quorum of that one
//! too, and must be its primary for the view. (The paper's epochs — StartEpoch,
//! EpochStarted, CheckEpoch — are not implemented; this is the reconfiguration the other
//! protocols use.)
//!
//! # Recovery
//!
//! A replica restarts from its durable state (view, last normal view, log): nothing
//! volatile is needed for safety. A replica whose disk was lost does not run the paper's
//! nonce-based recovery, which can lose committed ops when it races view changes (Michael
//! et al., DISC 2017); it rejoins as a new member (removed, added as a learner, caught
//! up, promoted), which is safe by the reconfiguration rules.

mod config;
mod message;
mod normal;
mod reads;
mod reconfigure;
mod snapshot;
mod view_change;

use bytes::Bytes;
use rsm_core::{
    Durable, Effect, Epoch, HardState, Input, LogIndex, NodeId, Persist, PersistSeq, Prng,
    RejectReason, Replica, RequestId, RestoreError, Role, Status, View,
};

pub use config::VsrConfig;
pub use message::VsrMessage;

use crate::apply_pump::ApplyPump;
use crate::log_window::LogWindow;
use crate::persist_tracker::PersistTracker;
use crate::progress::Progress;
use crate::read_queue::ReadQueue;
use crate::snapshot_transfer::SnapshotAssembly;
use view_change::{Fetch, ViewChangeVotes};

type Out = Vec<Effect<VsrMessage>>;

/// What the hard state's `extra` bytes hold: the last normal view.
fn encode_last_normal(v: View) -> Bytes {
    Bytes::copy_from_slice(&v.0.to_le_bytes())
}

fn decode_last_normal(extra: &[u8]) -> Option<View> {
    if extra.is_empty() {
        return Some(View(0));
    }
    let bytes: [u8; 8] = extra.try_into().ok()?;
    Some(View(u64::from_le_bytes(bytes)))
}

/// The status of the paper, with the primary's normal status apart.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// Following the primary of `view` (possibly still joining its log).
    Backup,
    /// Promised `view` with `DoViewChange` and waiting for it to start (or starting it).
    ViewChange,
    /// The primary of `view`, in normal status.
    Primary,
}

/// One VSR replica: a deterministic automaton implementing [`Replica`].
///
/// ```
/// use rsm_consensus::{Vsr, VsrConfig};
/// use rsm_core::{Durable, Effect, Input, Membership, NodeId, Replica, Role};
///
/// let config = VsrConfig::new(NodeId(1), Membership::new([NodeId(1)]), 7);
/// let mut vsr = Vsr::restore(config, Durable::default()).unwrap();
/// let mut out = Vec::new();
/// while vsr.status().role != Role::Leader {
///     vsr.step(Input::Tick, &mut out);
///     // A single replica counts its own DoViewChange once it is durable.
///     for e in std::mem::take(&mut out) {
///         if let Effect::Persist { seq, .. } = e {
///             vsr.step(Input::Persisted { through: seq }, &mut out);
///         }
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Vsr {
    cfg: VsrConfig,
    id: NodeId,
    rng: Prng,

    /// The highest view this replica promised or joined (durable).
    view: View,
    /// The last view in which this replica's log was in normal status (durable).
    last_normal: View,
    /// Views at or below this one are never led by this incarnation (module docs).
    lead_after: View,
    log: LogWindow,
    commit: LogIndex,
    state: State,
    primary: Option<NodeId>,
    persist: PersistTracker,

    /// Ticks since this incarnation started, from 1.
    now: u64,
    /// Ticks since the primary (or a view change in progress) was last heard from; the
    /// view-change timer.
    idle_ticks: u64,
    /// Ticks since a primary was last heard from (not reset by asking for a view): a
    /// replica joins other replicas' view changes only once it reaches
    /// `election_ticks_min`, which is what makes a primary's lease sound.
    primary_silence_ticks: u64,
    view_change_timeout: u64,
    heartbeat_elapsed: u64,

    /// The view change this replica asks for (`StartViewChange`), if any.
    asking: Option<ViewChangeVotes>,
    /// The highest view each voter asked for and the tick it last did, one entry per
    /// voter heard from.
    asks_heard: Vec<(NodeId, View, u64)>,
    /// At the primary of `view` during a view change: the `DoViewChange`s gathered.
    starting: Option<view_change::Starting>,
    /// At the primary during a view change: the chosen log being fetched.
    fetch: Option<Fetch>,
    /// Where this replica sent its `DoViewChange` for `view`.
    promised_to: Option<NodeId>,

    progress: Vec<Progress>,
    /// Backups known to be in the view's normal status.
    synced: Vec<NodeId>,
    /// The hard-state write that put the primary in normal status: its log counts toward
    /// commits once that write is durable.
    own_sync: Option<PersistSeq>,
    /// The last op of the log the primary started the view with: reads and configuration
    /// changes wait until it is committed.
    start_op: LogIndex,
    unflushed: LogIndex,
    unflushed_bytes: usize,
    uncommitted_bytes: usize,
    /// Set once this primary handed over: the lease is void for the rest of the view.
    lease_revoked: bool,
    reads: ReadQueue<RequestId>,
    incoming: Option<SnapshotAssembly>,

    apply: ApplyPump,
    snapshot_asked: Option<LogIndex>,

    reported: (Role, View, Option<NodeId>),
}

impl Replica for Vsr {
    type Message = VsrMessage;
    type Config = VsrConfig;

    fn restore(config: VsrConfig, durable: Durable) -> Result<Self, RestoreError> {
        config.validate()?;
        let mut durable = durable;
        let log = LogWindow::restore(&config.membership, &mut durable, false)?;
        let hs = durable.hard_state;
        let last_normal =
            decode_last_normal(&hs.extra).ok_or(RestoreError::MalformedHardState {
                len: hs.extra.len(),
            })?;
        let view = View(hs.epoch.0);
        if last_normal > view {
            return Err(RestoreError::MalformedHardState {
                len: hs.extra.len(),
            });
        }
        if log.last_term().0 > view.0 {
            return Err(RestoreError::HardStateBehindLog {
                epoch: view.0,
                entry_epoch: log.last_term().0,
            });
        }
        let snap = log.snapshot.index;
        let commit = hs.commit.clamp(snap, log.last_index());
        let mut rng = Prng::new(config.seed);
        let view_change_timeout = rng.range(config.election_ticks_min, config.election_ticks_max);
        let last = log.last_index();
        let state = if last_normal == view {
            State::Backup
        } else {
            State::ViewChange
        };
        let mut vsr = Self {
            id: config.id,
            rng,
            view,
            last_normal,
            lead_after: view,
            log,
            commit,
            state,
            primary: None,
            persist: PersistTracker::new(last),
            now: 1,
            // A restarted backup may have answered a primary's `Commit` just before it
            // crashed, and that primary may rely on it for its lease: it starts out as if
            // it had just heard from its primary.
            idle_ticks: 0,
            primary_silence_ticks: 0,
            view_change_timeout,
            heartbeat_elapsed: 0,
            asking: None,
            asks_heard: Vec::new(),
            starting: None,
            fetch: None,
            promised_to: None,
            progress: Vec::new(),
            synced: Vec::new(),
            own_sync: None,
            start_op: LogIndex(0),
            unflushed: last.next(),
            unflushed_bytes: 0,
            uncommitted_bytes: 0,
            lease_revoked: false,
            reads: ReadQueue::new(),
            incoming: None,
            apply: ApplyPump::new(snap),
            snapshot_asked: None,
            reported: (Role::Follower, view, None),
            cfg: config,
        };
        vsr.reported = (vsr.role(), view, None);
        Ok(vsr)
    }

    fn step(&mut self, input: Input<VsrMessage>, out: &mut Out) {
        let mut flush_now = true;
        match input {
            Input::Tick => self.tick(out),
            Input::Receive { from, msg } => self.receive(from, msg, out),
            Input::Propose { req, command } => flush_now = self.request(req, command, out),
            Input::Read { req } => self.read(req, out),
            Input::Persisted { through } => self.persisted(through, out),
            Input::Applied { through } => self.applied_through(through, out),
            Input::Snapshot { meta, data } => self.snapshot_taken(meta, data, out),
            Input::Reconfigure { req, membership } => self.reconfigure(req, membership, out),
            Input::TransferLeadership { req, to } => self.transfer_leadership(req, to, out),
            Input::Campaign => self.campaign_now(out),
        }
        if flush_now && self.state == State::Primary {
            self.flush(out);
        }
        self.maybe_apply(out);
        self.report_role(out);
        debug_assert!(self.apply.applied() <= self.commit && self.commit <= self.log.last_index());
        debug_assert!(self.last_normal <= self.view);
    }

    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role(),
            epoch: Epoch(self.view.0),
            leader: self.primary,
            commit: self.commit,
            applied: self.apply.applied(),
            last_index: self.log.last_index(),
            membership: self.log.membership().0.clone(),
        }
    }
}

impl Vsr {
    /// The configuration this replica was built with.
    pub fn config(&self) -> &VsrConfig {
        &self.cfg
    }

    /// The highest view this replica promised or joined.
    pub fn view(&self) -> View {
        self.view
    }

    /// The last view in which this replica's log was in normal status.
    pub fn last_normal_view(&self) -> View {
        self.last_normal
    }

    /// The primary of `view` under the configuration in force here: round-robin over the
    /// sorted voters.
    pub fn primary_of(&self, view: View) -> Option<NodeId> {
        let voters: Vec<NodeId> = self.log.membership().0.all_voters().collect();
        if voters.is_empty() {
            return None;
        }
        Some(voters[(view.0 % voters.len() as u64) as usize])
    }

    fn role(&self) -> Role {
        match self.state {
            State::Primary => Role::Leader,
            State::ViewChange if self.log.membership().0.is_voter(self.id) => Role::Candidate,
            _ => self.log.member_role(self.id),
        }
    }

    fn report_role(&mut self, out: &mut Out) {
        let now = (self.role(), self.view, self.primary);
        if now != self.reported {
            self.reported = now;
            out.push(Effect::RoleChanged {
                role: now.0,
                epoch: Epoch(now.1.0),
                leader: now.2,
            });
        }
    }

    /// Why a request addressed to a primary is refused here, if it is.
    fn primary_refusal(&self) -> Option<RejectReason> {
        if self.state == State::Primary {
            return None;
        }
        Some(if self.role() == Role::Removed {
            RejectReason::Removed
        } else {
            RejectReason::NotLeader { hint: self.primary }
        })
    }

    /// The one refusal path; every refusal is definite (nothing refused was prepared).
    fn refuse(&self, req: RequestId, reason: RejectReason, out: &mut Out) {
        debug_assert!(reason.is_definite());
        out.push(Effect::Reject { req, reason });
    }

    fn send(&self, to: NodeId, msg: VsrMessage, out: &mut Out) {
        out.push(Effect::Send { to, msg });
    }

    // ---- persistence ----

    fn persist_hard_state(&mut self, out: &mut Out) -> PersistSeq {
        let hs = HardState {
            epoch: Epoch(self.view.0),
            vote: None,
            commit: self.commit,
            extra: encode_last_normal(self.last_normal),
        };
        self.persist.emit(Persist::HardState(hs), out)
    }

    /// Emit a write that changes the log; once durable, the log as it is now is durable.
    fn persist_log(&mut self, op: Persist, out: &mut Out) {
        let last = self.log.last_index();
        self.persist.emit_log(op, last, out);
    }

    /// Cut the log from `from` on, in memory and on disk.
    fn truncate_log(&mut self, from: LogIndex, out: &mut Out) {
        if from > self.log.last_index() {
            return;
        }
        debug_assert!(from > self.commit, "committed ops never change");
        self.log.truncate_from(from);
        self.persist.forget_after(from.prev());
        self.persist_log(Persist::Truncate { from }, out);
    }

    fn persisted(&mut self, through: PersistSeq, out: &mut Out) {
        if !self.persist.persisted(through) {
            return;
        }
        match self.state {
            State::ViewChange => self.check_do_view_change(out),
            State::Primary => self.maybe_commit(out),
            State::Backup => {}
        }
    }

    // ---- time ----

    fn tick(&mut self, out: &mut Out) {
        self.now += 1;
        self.heartbeat_elapsed += 1;
        let beat = self.heartbeat_elapsed >= self.cfg.heartbeat_ticks;
        if beat {
            self.heartbeat_elapsed = 0;
        }
        if self.state == State::Primary {
            self.tick_primary(beat, out);
            return;
        }
        self.idle_ticks = self.idle_ticks.saturating_add(1);
        self.primary_silence_ticks = self.primary_silence_ticks.saturating_add(1);
        if self.idle_ticks >= self.view_change_timeout && self.is_voter() {
            self.ask_for_next_view(false, out);
        } else if beat {
            self.retransmit_view_change(out);
        }
    }

    fn tick_primary(&mut self, beat: bool, out: &mut Out) {
        self.idle_ticks = 0;
        self.primary_silence_ticks = 0;
        if self.quorum_silent() {
            // Its backups may be starting another view: stop serving and ask for one.
            self.step_down(out);
            self.idle_ticks = self.view_change_timeout;
            return;
        }
        if beat {
            self.heartbeat_round(out);
        }
    }

    fn reset_timer(&mut self) {
        self.idle_ticks = 0;
        self.view_change_timeout = self
            .rng
            .range(self.cfg.election_ticks_min, self.cfg.election_ticks_max);
    }

    fn is_voter(&self) -> bool {
        self.log.membership().0.is_voter(self.id)
    }

    // ---- messages ----

    fn receive(&mut self, from: NodeId, msg: VsrMessage, out: &mut Out) {
        if from == self.id {
            return;
        }
        let view = msg.view();
        if msg.is_from_primary() && !self.follow_primary(from, view, out) {
            return;
        }
        match msg {
            VsrMessage::Prepare {
                view,
                prev,
                prev_view,
                entries,
                commit,
                start_op,
            } => self.handle_prepare(from, view, prev, prev_view, entries, commit, start_op, out),
            VsrMessage::PrepareOk {
                view,
                op,
                synced,
                ok,
            } => self.handle_prepare_ok(from, view, op, synced, ok, out),
            VsrMessage::Commit {
                view,
                commit,
                read_round,
                sent_tick,
            } => self.handle_commit(from, view, commit, read_round, sent_tick, out),
            VsrMessage::CommitOk {
                view,
                read_round,
                sent_tick,
            } => self.handle_commit_ok(from, view, read_round, sent_tick, out),
            VsrMessage::StartViewChange {
                view,
                handover,
                primary,
            } => self.handle_start_view_change(from, view, handover, primary, out),
            VsrMessage::DoViewChange {
                view,
                last_normal,
                op,
                commit,
                primary,
            } => self.handle_do_view_change(from, view, last_normal, op, commit, primary, out),
            VsrMessage::GetState { view, after } => self.handle_get_state(from, view, after, out),
            VsrMessage::NewState {
                view,
                after,
                entries,
            } => self.handle_new_state(from, view, after, entries, out),
            VsrMessage::Snapshot {
                view,
                meta,
                offset,
                data,
                done,
            } => self.handle_snapshot(from, view, meta, offset, data, done, out),
            VsrMessage::SnapshotReply {
                view,
                index,
                next_offset,
                done,
            } => self.handle_snapshot_reply(from, view, index, next_offset, done, out),
        }
    }

    /// A message only `view`'s primary sends arrived from `from`. A lower view is stale;
    /// `view` itself or a higher one is followed: the replica enters it (durably, before
    /// any answer leaves) as a backup. Returns whether to handle the message.
    fn follow_primary(&mut self, from: NodeId, view: View, out: &mut Out) -> bool {
        if view < self.view || (view == self.view && self.state == State::Primary) {
            if view < self.view {
                // This replica promised a view the sender's backups never joined: tell
                // the sender, which moves them past it (`overtaken`).
                let msg = self.do_view_change();
                self.send(from, msg, out);
            }
            return false;
        }
        if view > self.view {
            self.step_down(out);
            self.view = view;
            self.persist_hard_state(out);
        } else if self.state != State::Backup {
            self.step_down(out);
        }
        self.state = State::Backup;
        self.starting = None;
        self.fetch = None;
        // Asking for a view promised nothing: a replica that hears its primary again
        // gives the request up (the one-way-partition trap).
        self.asking = None;
        self.primary = Some(from);
        self.primary_silence_ticks = 0;
        self.reset_timer();
        true
    }

    // ---- apply ----

    /// Only committed ops this replica holds durably are applied: a crash must not lose an
    /// op its state machine already reflects.
    fn maybe_apply(&mut self, out: &mut Out) {
        let ready = self.commit.min(self.persist.stable_index());
        self.apply.pump(
            &self.log,
            ready,
            self.cfg.apply_lag_entries_max,
            self.cfg.apply_batch_entries_max,
            out,
        );
    }

    /// The one quorum question over the backups' progress at a primary.
    fn primary_quorum<T: Ord + Copy + Default>(
        &self,
        phase: rsm_core::Phase,
        own: T,
        of: impl Fn(&Progress) -> T,
    ) -> T {
        let membership = self.log.membership().0;
        crate::progress::quorum_value(membership, phase, self.id, own, &self.progress, of)
    }
}
