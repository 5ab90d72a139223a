//! The script interpreter and golden runner, exercised with a tiny replica: a fixed-leader
//! sequencer. It is just enough of a protocol to produce every kind of effect (persists
//! whose acknowledgements the host must hold back, commits by quorum, applies, reads,
//! snapshots) while staying simple enough that each transcript can be checked by hand.

use std::collections::BTreeMap;
use std::path::Path;

use rsm_core::{
    Durable, Effect, Entry, Epoch, Input, LogIndex, Membership, NodeId, Persist, PersistSeq, Phase,
    RejectReason, Replica, RestoreError, Role, Status,
};
use rsm_script::{self as script, Interpreter, NodeSetup, Protocol};
use serde::{Deserialize, Serialize};

/// The sequencer's only epoch: its leader never changes.
const EPOCH: Epoch = Epoch(1);

#[derive(Clone, Debug, Serialize, Deserialize)]
enum SeqMsg {
    /// Entries after `prev` (possibly none: a heartbeat) and the leader's commit index.
    Replicate {
        prev: LogIndex,
        entries: Vec<Entry>,
        commit: LogIndex,
    },
    /// The sender's log reaches `last`; sent after the append it covers, so the host
    /// holds it until that append is durable.
    Ack { last: LogIndex },
}

#[derive(Clone, Debug)]
struct SeqConfig {
    id: NodeId,
    membership: Membership,
    heartbeat_ticks: u64,
    /// Ask for a snapshot once this many entries are applied beyond the last one.
    snapshot_entries: u64,
}

/// The lowest voter leads; it appends, replicates, and commits at a quorum of durable
/// copies, counting its own only after `Persisted`.
#[derive(Debug)]
struct Sequencer {
    cfg: SeqConfig,
    /// Entries after the snapshot.
    log: Vec<Entry>,
    snapshot: LogIndex,
    commit: LogIndex,
    applied: LogIndex,
    snapshot_asked: bool,
    next_seq: PersistSeq,
    /// (persist number, last index it makes durable), oldest first.
    appends: Vec<(PersistSeq, LogIndex)>,
    durable: LogIndex,
    matched: BTreeMap<NodeId, LogIndex>,
    ticks: u64,
}

type Out = Vec<Effect<SeqMsg>>;

impl Sequencer {
    fn leader(&self) -> Option<NodeId> {
        self.cfg.membership.voters.first().copied()
    }

    fn is_leader(&self) -> bool {
        self.leader() == Some(self.cfg.id)
    }

    fn last(&self) -> LogIndex {
        self.log.last().map_or(self.snapshot, |e| e.index)
    }

    fn persist(&mut self, op: Persist, out: &mut Out) -> PersistSeq {
        self.next_seq = self.next_seq.next();
        out.push(Effect::Persist {
            seq: self.next_seq,
            op,
        });
        self.next_seq
    }

    /// Write `entries` into the in-memory log (replacing any suffix they overlap).
    fn write_log(&mut self, entries: &[Entry]) {
        let first = entries[0].index;
        self.log.retain(|e| e.index < first);
        self.log.extend(entries.iter().cloned());
    }

    /// Make the log through `self.last()` durable; the entries were written with
    /// `write_log`, possibly after sends that need not wait for this disk write.
    fn persist_append(&mut self, entries: Vec<Entry>, out: &mut Out) {
        let seq = self.persist(Persist::Append { entries }, out);
        self.appends.push((seq, self.last()));
    }

    fn peers(&self) -> Vec<NodeId> {
        let me = self.cfg.id;
        self.cfg
            .membership
            .members()
            .filter(|&id| id != me)
            .collect()
    }

    fn replicate(&self, to: NodeId, out: &mut Out) {
        let next = self.matched.get(&to).copied().unwrap_or_default().next();
        let from = next.max(self.snapshot.next());
        let entries: Vec<Entry> = self
            .log
            .iter()
            .filter(|e| e.index >= from)
            .cloned()
            .collect();
        out.push(Effect::Send {
            to,
            msg: SeqMsg::Replicate {
                prev: from.prev(),
                entries,
                commit: self.commit,
            },
        });
    }

    fn maybe_commit(&mut self, out: &mut Out) {
        let me = self.cfg.id;
        let durable = self.durable;
        let matched = &self.matched;
        let q = self.cfg.membership.quorum_value(Phase::Two, |id| {
            if id == me {
                durable
            } else {
                matched.get(&id).copied().unwrap_or_default()
            }
        });
        if q > self.commit {
            self.commit = q;
            self.maybe_apply(out);
        }
    }

    fn maybe_apply(&mut self, out: &mut Out) {
        let through = self.commit.min(self.durable);
        if through <= self.applied {
            return;
        }
        let entries: Vec<Entry> = self
            .log
            .iter()
            .filter(|e| e.index > self.applied && e.index <= through)
            .cloned()
            .collect();
        self.applied = through;
        out.push(Effect::Apply { entries });
    }

    fn receive(&mut self, from: NodeId, msg: SeqMsg, out: &mut Out) {
        if !self.cfg.membership.contains(from) {
            return;
        }
        match msg {
            SeqMsg::Replicate {
                prev,
                entries,
                commit,
            } => {
                let fits = prev <= self.last() && prev >= self.snapshot;
                if fits && !entries.is_empty() {
                    self.write_log(&entries);
                    self.persist_append(entries, out);
                }
                self.commit = self.commit.max(commit.min(self.last()));
                out.push(Effect::Send {
                    to: from,
                    msg: SeqMsg::Ack { last: self.last() },
                });
                self.maybe_apply(out);
            }
            SeqMsg::Ack { last } => {
                let m = self.matched.entry(from).or_default();
                *m = (*m).max(last);
                self.maybe_commit(out);
            }
        }
    }
}

impl Replica for Sequencer {
    type Message = SeqMsg;
    type Config = SeqConfig;

    fn restore(cfg: SeqConfig, durable: Durable) -> Result<Self, RestoreError> {
        if !cfg.membership.contains(cfg.id) {
            return Err(RestoreError::NotMember { id: cfg.id });
        }
        let snapshot = durable.snapshot_index();
        let durable_last = durable.last_index();
        Ok(Self {
            cfg,
            log: durable.entries,
            snapshot,
            commit: snapshot,
            applied: snapshot,
            snapshot_asked: false,
            next_seq: PersistSeq(0),
            appends: Vec::new(),
            durable: durable_last,
            matched: BTreeMap::new(),
            ticks: 0,
        })
    }

    fn step(&mut self, input: Input<SeqMsg>, out: &mut Out) {
        match input {
            Input::Tick => {
                self.ticks += 1;
                if self.is_leader() && self.ticks.is_multiple_of(self.cfg.heartbeat_ticks) {
                    for to in self.peers() {
                        self.replicate(to, out);
                    }
                }
            }
            Input::Receive { from, msg } => self.receive(from, msg, out),
            Input::Propose { req, command } => {
                if !self.is_leader() {
                    let hint = self.leader();
                    out.push(Effect::Reject {
                        req,
                        reason: RejectReason::NotLeader { hint },
                    });
                    return;
                }
                let index = self.last().next();
                let entries = vec![Entry::command(index, EPOCH, command)];
                self.write_log(&entries);
                out.push(Effect::Proposed {
                    req,
                    index,
                    epoch: EPOCH,
                });
                // Replicate before the local write: the leader counts its own copy only
                // after `Persisted`, so its sends need not wait for its disk.
                for to in self.peers() {
                    self.replicate(to, out);
                }
                self.persist_append(entries, out);
            }
            Input::Read { req } => {
                if self.is_leader() {
                    out.push(Effect::ReadReady {
                        req,
                        index: self.commit,
                    });
                } else {
                    let hint = self.leader();
                    out.push(Effect::Reject {
                        req,
                        reason: RejectReason::NotLeader { hint },
                    });
                }
            }
            Input::Persisted { through } => {
                while let Some(&(seq, last)) = self.appends.first() {
                    if seq > through {
                        break;
                    }
                    self.durable = self.durable.max(last);
                    self.appends.remove(0);
                }
                if self.is_leader() {
                    self.maybe_commit(out);
                } else {
                    self.maybe_apply(out);
                }
            }
            Input::Applied { through } => {
                let due = through.0 >= self.snapshot.0 + self.cfg.snapshot_entries;
                if due && !self.snapshot_asked {
                    self.snapshot_asked = true;
                    out.push(Effect::TakeSnapshot { through });
                }
            }
            Input::Snapshot { meta, data } => {
                self.snapshot_asked = false;
                self.snapshot = meta.index;
                self.log.retain(|e| e.index > meta.index);
                self.persist(Persist::Snapshot { meta, data }, out);
            }
            Input::Reconfigure { req, .. } => out.push(Effect::Reject {
                req,
                reason: RejectReason::Unsupported,
            }),
            Input::TransferLeadership { .. } | Input::Campaign => {}
        }
    }

    fn status(&self) -> Status {
        let role = if self.is_leader() {
            Role::Leader
        } else if self.cfg.membership.is_learner(self.cfg.id) {
            Role::Learner
        } else {
            Role::Follower
        };
        Status {
            id: self.cfg.id,
            role,
            epoch: EPOCH,
            leader: self.leader(),
            commit: self.commit,
            applied: self.applied,
            last_index: self.last(),
            membership: self.cfg.membership.clone(),
        }
    }
}

struct Sequencing;

impl Protocol for Sequencing {
    type Replica = Sequencer;

    fn config(&self, setup: &NodeSetup<'_>) -> Result<SeqConfig, String> {
        let mut heartbeat_ticks = 3;
        for (key, value) in setup.options {
            match key.as_str() {
                "heartbeat" => {
                    heartbeat_ticks = value
                        .parse()
                        .ok()
                        .filter(|&t| t > 0)
                        .ok_or_else(|| format!("heartbeat={value} is not a positive number"))?;
                }
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        Ok(SeqConfig {
            id: setup.id,
            membership: setup.membership.clone(),
            heartbeat_ticks,
            snapshot_entries: 4,
        })
    }

    fn message(&self, msg: &SeqMsg) -> String {
        match msg {
            SeqMsg::Replicate {
                prev,
                entries,
                commit,
            } if entries.is_empty() => format!("Replicate(prev=i{} commit=i{})", prev.0, commit.0),
            SeqMsg::Replicate {
                prev,
                entries,
                commit,
            } => format!(
                "Replicate(prev=i{} {} commit=i{})",
                prev.0,
                script::render_entries(entries, "e"),
                commit.0
            ),
            SeqMsg::Ack { last } => format!("Ack(i{})", last.0),
        }
    }
}

fn scripts_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts")
}

#[test]
fn golden_scripts() {
    script::run_dir(&scripts_dir(), || Sequencing);
}

fn run_all(script: &mut Interpreter<Sequencing>, lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| script.run(l)).collect()
}

#[test]
fn an_acknowledgement_waits_for_the_append_it_covers() {
    let mut s = Interpreter::new(Sequencing);
    run_all(&mut s, &["create 1 2 3", "propose 1 x=1", "deliver to=2"]);
    // Node 2 appended and acknowledged, but the ack is held until its append is synced.
    assert_eq!(
        s.run("network"),
        "1->3 Replicate(prev=i0 i1 e1 commit=i0)\n2->1 Ack(i1) (after p1)"
    );
    assert_eq!(s.run("deliver to=1"), "ok");
    assert_eq!(s.run("persist 2"), "2 synced p1, released 1 send");
    assert_eq!(s.run("deliver to=1"), "2->1 Ack(i1)");
    // The leader's own copy is not yet durable, so one ack is not a quorum...
    assert_eq!(s.replica(NodeId(1)).unwrap().status().commit, LogIndex(0));
    // ...until its own persist is reported; the host then reports the apply back.
    assert_eq!(
        s.run("persist 1"),
        "1 synced p1\n1 apply i1: x=1\n1 applied i1"
    );
    assert_eq!(
        s.store(NodeId(1)).unwrap().get(b"x").map(|v| &v[..]),
        Some(&b"1"[..])
    );
}

#[test]
fn a_crash_loses_only_what_was_not_synced() {
    let mut s = Interpreter::new(Sequencing);
    run_all(
        &mut s,
        &[
            "create 1 2 3",
            "propose 1 a=1",
            "persist 1",
            "propose 1 b=2",
            "propose 1 c=3",
            "persist 1 through=2",
        ],
    );
    let out = s.run("crash 1");
    assert_eq!(out, "1 crashed, lost unsynced p3");
    assert_eq!(s.durable(NodeId(1)).unwrap().last_index(), LogIndex(2));
    assert!(s.replica(NodeId(1)).is_none());
    assert!(s.run("tick 1").starts_with("error: node 1 is down"));
    assert!(s.run("restart 1").starts_with("1 restarted:"));
    assert_eq!(
        s.replica(NodeId(1)).unwrap().status().last_index,
        LogIndex(2)
    );
    assert!(s.run("restart 1").contains("is running"));
}

#[test]
fn the_same_script_gives_the_same_transcript() {
    let lines = [
        "create 1 2 3 seed=5",
        "propose 1 x=1",
        "tick-all n=3",
        "partition 1 | 2 3",
        "stabilize",
        "heal",
        "propose 1 y=2",
        "stabilize",
        "log all",
    ];
    let a = run_all(&mut Interpreter::new(Sequencing), &lines);
    let b = run_all(&mut Interpreter::new(Sequencing), &lines);
    assert_eq!(a, b);
}

#[test]
fn check_reports_a_diff_and_rewrite_accepts_the_actual_output() {
    let text = "create 1 2\n----\nok\n\npropose 1 x=1\n----\n1 proposed r9 at i1 e1\n\
                1->2 Replicate(prev=i0 i1 e1 commit=i0)\n1 persist p1 append i1 e1\n\nstatus 1\n";
    let outcome = script::check("t.txt", text, &mut Interpreter::new(Sequencing));
    assert_eq!(outcome.mismatches.len(), 2, "{:#?}", outcome.mismatches);
    let first = &outcome.mismatches[0];
    assert!(first.starts_with("t.txt:5: `propose 1 x=1`"), "{first}");
    assert!(first.contains("- 1 proposed r9 at i1 e1"), "{first}");
    assert!(first.contains("+ 1 proposed r1 at i1 e1"), "{first}");
    assert!(first.contains("  1 persist p1 append i1 e1"), "{first}");
    assert!(
        first.contains("  1->2 Replicate(prev=i0 i1 e1 commit=i0)"),
        "{first}"
    );
    assert!(outcome.mismatches[1].contains("has no expected output"));
    // The rewritten file passes, and rewriting it again changes nothing.
    let again = script::check(
        "t.txt",
        &outcome.rewritten,
        &mut Interpreter::new(Sequencing),
    );
    assert!(again.mismatches.is_empty(), "{:#?}", again.mismatches);
    assert_eq!(again.rewritten, outcome.rewritten);
    assert!(
        outcome
            .rewritten
            .contains("1 proposed r1 at i1 e1\n1->2 Replicate")
    );
}
