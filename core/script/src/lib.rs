//! Scripted interaction tests: a small line-oriented language that drives a cluster of
//! replicas one rule at a time, and golden transcripts of what each command caused.
//!
//! A protocol plugs in by implementing [`Protocol`] (how to configure a node, how to print
//! a message). An [`Interpreter`] then runs commands against a cluster of its replicas,
//! hosting each one in the reference host (`rsm_core::Host`), and [`run_dir`] checks
//! script files against their recorded transcripts. Nothing moves unless a command says
//! so: no message is delivered, no write is synced and no tick happens on its own.
//!
//! # Commands
//!
//! Node ids are plain numbers; `NODES` is one or more ids or `all`. Options are
//! `key=value`; id lists are comma-separated (`voters=1,2,3`).
//!
//! | command | effect |
//! |---|---|
//! | `create 1 2 3 [seed=N] [learners=4,5] [OPTION=VALUE ...]` | start nodes 1..3 as voters and 4, 5 as learners, fresh disks; other options go to the protocol's [`NodeSetup`] |
//! | `create 4 voters=1,2,3 [learners=4] [seed=N]` | start only the named nodes, with the given initial membership |
//! | `tick NODES [n=K]` | K rounds (default 1) of one `Tick` to each node, ascending id |
//! | `tick-all [n=K]` | the same for every running node |
//! | `propose N TEXT` | `Propose` TEXT; `key=value` is proposed as a key-value put, anything else as raw bytes |
//! | `read N [KEY]` | `Read`; once ready and applied, the host serves KEY from node N's store |
//! | `get N KEY` | print KEY from node N's store directly (no protocol involved) |
//! | `reconfigure N voters=1,2,3 [learners=4]` | `Reconfigure` to that membership |
//! | `transfer N to=M` | `TransferLeadership` to M |
//! | `persist NODES [through=K]` | sync unsynced persists (all, or those numbered <= K), release the sends they held, feed `Persisted` |
//! | `deliver [from=A] [to=B] [n=K]` | deliver queued messages that match, in queue order (at most K; only those queued when the command starts) |
//! | `drop all` / `drop [from=A] [to=B] [n=K]` | discard matching queued messages |
//! | `partition 1 2 \| 3 [\| ...]` | only nodes in the same group can talk; nodes named nowhere form one more group |
//! | `cut A B` / `cut A->B` | take down the link between A and B (both ways), or only from A to B |
//! | `heal` | remove the partition and every cut |
//! | `crash N` | the node stops; its unsynced persists, held sends and the messages in flight to it are lost |
//! | `restart N` | rebuild with `Replica::restore(config, durable)`; the store is rebuilt from the durable snapshot |
//! | `disk N [log=1,1,2] [epoch=E] [vote=V] [commit=C]` | crash N if it runs, replace its durable image by entries i1, i2, ... with those epochs (commands whose text is `INDEX@EPOCH`, e.g. `3@t2`) and that hard state (epoch defaults to the last entry's), then restart it: how a script sets up divergent logs |
//! | `apply NODES` | print how far each node's state machine has applied (the host itself reports `Applied` to the replica after every step) |
//! | `status NODES` | print each node's `Status` |
//! | `log NODES` | print each node's durable hard state, snapshot and entries, then its unsynced persists |
//! | `network` | print the messages in flight, then the held sends |
//! | `stabilize` | repeat { persist all; deliver all } until nothing happens, at most [`STABILIZE_ROUNDS_MAX`] rounds |
//!
//! A message is lost if its link is down (by `partition` or `cut`) when it is sent or
//! when it is delivered, or if its recipient is down at any time while it is in flight. Lines starting with `#` are comments.
//!
//! # Output
//!
//! Each command prints the effects it caused, one per line, in the order the replicas
//! emitted them, `ok` when it caused none, or `error: ...` when it could not run.
//! A delivered message is printed as `A->B MESSAGE`, and the effects of the recipient
//! are indented beneath it. Epochs carry the protocol's letter ([`Protocol::epoch_prefix`]).
//!
//! | line | meaning |
//! |---|---|
//! | `1->2 MSG` | node 1 sent MSG to 2 (it is queued) |
//! | `1->2 MSG (after p3)` | held by the host until node 1's persist p3 is synced |
//! | `1->2 MSG dropped (partitioned \| cut \| 2 is down \| ...)` | a delivery that was lost |
//! | `1 persist p3 append i5..7 t2` | persist number 3: `append`, `truncate i5`, `hard t2 vote=1 commit=i4`, `snapshot i9 t2`, `compact i9` |
//! | `1 synced p3..5, released 2 sends` | a `persist` command wrote these to disk |
//! | `1 applied i7` | the host reported `Applied` to the replica (after a step that applied), or `apply` showed it |
//! | `1 apply i5..7: noop, x=1, config voters=1,2` | committed entries handed to the state machine |
//! | `1 proposed r1 at i5 t2` / `1 reject r1 not-leader hint=2` | a request's fate |
//! | `1 read-ready r2 at i5`, `1 read r2 served at i5: x=1` | a read cleared, then served from the store |
//! | `1 take-snapshot i9`, `1 snapshot taken at i9 t2` | the host took the snapshot asked for and fed it back |
//! | `1 install-snapshot i9 t2` | the store was replaced by a received snapshot |
//! | `1 role Leader t2 leader=1` | role, epoch or leader changed |
//! | `1 crashed, ...`, `1 restarted: ...` | host events |
//!
//! # Golden files
//!
//! See [`check`] and [`run_dir`]: each command is followed by `----` and its expected
//! output, up to a blank line. `RSM_REWRITE=1 cargo test` regenerates the files; review
//! the diff before committing it, since a transcript that records a bug is a defect.

#![warn(missing_docs)]

mod command;
mod golden;
mod host;
mod render;

use std::collections::BTreeMap;

use rsm_core::Membership;
use rsm_core::NodeId;
use rsm_core::Replica;

pub use golden::{Outcome, REWRITE_ENV, SEPARATOR, check, diff, run_dir};
pub use host::{Interpreter, STABILIZE_ROUNDS_MAX};
pub use render::{
    command as render_command, entries as render_entries, epoch as render_epoch,
    index_range as render_index_range, membership as render_membership, payload as render_payload,
};

/// What `create` knows about a node it is about to start.
#[derive(Clone, Debug)]
pub struct NodeSetup<'a> {
    /// The node.
    pub id: NodeId,
    /// Its initial membership.
    pub membership: &'a Membership,
    /// Its PRNG seed, already distinct per node (derived from `seed=` and the id).
    pub seed: u64,
    /// The `key=value` options of the `create` line that the interpreter does not
    /// interpret itself (such as `pre-vote=false`), for the protocol to read.
    pub options: &'a BTreeMap<String, String>,
}

/// What a protocol supplies to be scripted.
pub trait Protocol {
    /// The automaton under test.
    type Replica: Replica;

    /// The configuration of a node being created. Fails (with a message the script
    /// prints) on an option the protocol does not know or cannot parse.
    fn config(&self, setup: &NodeSetup<'_>) -> Result<<Self::Replica as Replica>::Config, String>;

    /// A compact one-line rendering of a message, such as `AppendEntries(t2 i5..7 c4)`.
    /// The helpers `render_*` in this module print entries the way transcripts do.
    fn message(&self, msg: &<Self::Replica as Replica>::Message) -> String;

    /// The letter printed before epochs: `t` for Raft terms, `v` for views, `e` by default.
    fn epoch_prefix(&self) -> &'static str {
        "e"
    }
}
