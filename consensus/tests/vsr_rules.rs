//! Viewstamped Replication at the rule level: each test drives replicas input by input
//! and names the rule of "Viewstamped Replication Revisited" (or of this implementation's
//! persistence and liveness rules) it checks.

use rsm_consensus::{Vsr, VsrConfig, VsrMessage};
use rsm_core::{
    Bytes, Durable, Effect, Entry, Epoch, HardState, Input, LogIndex, Membership, NodeId, Persist,
    Replica, RestoreError, Role, View,
};

type Fx = Vec<Effect<VsrMessage>>;

/// Timeouts of exactly `election_ticks_min` ticks, so tests know when timers fire.
fn config(id: u64) -> VsrConfig {
    let mut c = VsrConfig::new(NodeId(id), Membership::new([1, 2, 3].map(NodeId)), id);
    c.election_ticks_max = c.election_ticks_min + 1;
    c
}

fn replica(id: u64) -> Vsr {
    Vsr::restore(config(id), Durable::default()).expect("valid config")
}

/// A replica restored at `view` with last normal view `last_normal` and `entries`.
fn restored(id: u64, view: u64, last_normal: u64, entries: Vec<Entry>) -> Vsr {
    let durable = Durable {
        hard_state: HardState {
            epoch: Epoch(view),
            vote: None,
            commit: LogIndex(0),
            extra: Bytes::copy_from_slice(&last_normal.to_le_bytes()),
        },
        snapshot: None,
        entries,
    };
    Vsr::restore(config(id), durable).expect("valid durable state")
}

/// Feed `input`, then report every persist it caused durable (and those that caused),
/// as a host does after each sync; `durable` false leaves them pending.
fn feed(r: &mut Vsr, input: Input<VsrMessage>, durable: bool) -> Fx {
    let mut fx = Vec::new();
    r.step(input, &mut fx);
    let mut reported = None;
    while durable && fx.len() < 10_000 {
        let newest = fx
            .iter()
            .filter_map(|e| match e {
                Effect::Persist { seq, .. } => Some(*seq),
                _ => None,
            })
            .max();
        let Some(through) = newest.filter(|_| newest != reported) else {
            break;
        };
        reported = newest;
        r.step(Input::Persisted { through }, &mut fx);
    }
    fx
}

fn recv(r: &mut Vsr, from: u64, msg: VsrMessage) -> Fx {
    let from = NodeId(from);
    feed(r, Input::Receive { from, msg }, false)
}

fn recv_durably(r: &mut Vsr, from: u64, msg: VsrMessage) -> Fx {
    let from = NodeId(from);
    feed(r, Input::Receive { from, msg }, true)
}

/// A `Prepare` of view `view` from the op after `prev` (created in `prev_view`).
fn prepare(view: u64, prev: u64, prev_view: u64, entries: Vec<Entry>, start_op: u64) -> VsrMessage {
    VsrMessage::Prepare {
        view: View(view),
        prev: LogIndex(prev),
        prev_view: Epoch(prev_view),
        entries,
        commit: LogIndex(0),
        start_op: LogIndex(start_op),
    }
}

fn ticks(r: &mut Vsr, n: u64, durable: bool) -> Fx {
    (0..n).flat_map(|_| feed(r, Input::Tick, durable)).collect()
}

fn sends(fx: &Fx) -> Vec<(NodeId, VsrMessage)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

/// What `fx` writes, in order.
fn writes(fx: &Fx) -> Vec<&Persist> {
    fx.iter().filter_map(persist_op).collect()
}

fn persist_op(e: &Effect<VsrMessage>) -> Option<&Persist> {
    if let Effect::Persist { op, .. } = e {
        Some(op)
    } else {
        None
    }
}

fn entry(index: u64, view: u64) -> Entry {
    Entry::command(LogIndex(index), Epoch(view), Bytes::from_static(b"x"))
}

fn svc(view: u64) -> VsrMessage {
    VsrMessage::StartViewChange {
        view: View(view),
        handover: false,
        primary: Some(NodeId(view % 3 + 1)),
    }
}

// ---- normal operation (§4.1) ----

#[test]
fn the_primary_of_a_view_is_round_robin_over_the_sorted_voters() {
    let r = replica(1);
    let primaries: Vec<_> = (0..4).map(|v| r.primary_of(View(v))).collect();
    assert_eq!(primaries, [1, 2, 3, 1].map(|n| Some(NodeId(n))));
}

#[test]
fn a_backup_enters_normal_status_only_after_the_view_start_log_and_writes_it_after_the_entries() {
    // Node 3 was promised view 1 and holds a stale op 1 from view 0.
    let mut r = restored(3, 1, 0, vec![entry(1, 0)]);
    let prepare = prepare(1, 0, 0, vec![entry(1, 0), entry(2, 0)], 2);
    let fx = recv(&mut r, 2, prepare);
    let writes = writes(&fx);
    assert!(
        matches!(writes[0], Persist::Append { entries } if entries.len() == 1 && entries[0].index == LogIndex(2)),
        "only the missing op is written: {writes:?}"
    );
    assert!(
        matches!(writes.last(), Some(Persist::HardState(hs)) if hs.extra[..] == 1u64.to_le_bytes()),
        "normal status in view 1 is written last: {writes:?}"
    );
    assert_eq!(r.last_normal_view(), View(1));
    assert!(sends(&fx).iter().any(|(to, m)| *to == NodeId(2)
        && matches!(
            m,
            VsrMessage::PrepareOk {
                op: LogIndex(2),
                synced: true,
                ok: true,
                ..
            }
        )));
}

#[test]
fn a_prepare_whose_previous_op_disagrees_is_refused_with_a_hint() {
    let mut r = restored(3, 1, 1, vec![entry(1, 0), entry(2, 0)]);
    let prepare = prepare(1, 2, 1, vec![entry(3, 1)], 0);
    let fx = recv(&mut r, 2, prepare);
    assert!(sends(&fx).iter().any(|(_, m)| matches!(
        m,
        VsrMessage::PrepareOk {
            ok: false,
            op: LogIndex(0),
            ..
        }
    )));
    assert_eq!(r.status().last_index, LogIndex(2), "nothing was written");
}

// ---- view change (§4.2) ----

#[test]
fn a_backup_that_heard_its_primary_recently_does_not_join_a_view_change() {
    // The one-way-partition trap: a replica that cannot hear the primary asks for view 1;
    // node 3 has just started (as if it had just heard its primary) and ignores it.
    let mut r = replica(3);
    let fx = recv(&mut r, 1, svc(1));
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(r.view(), View(0));
}

#[test]
fn a_suspecting_replica_promises_a_view_asked_by_a_quorum_durably_before_do_view_change() {
    let mut r = replica(3);
    let fx = ticks(&mut r, 10, false);
    assert!(
        sends(&fx).iter().any(|(_, m)| *m == svc(1)),
        "the timer fired: {fx:?}"
    );
    assert_eq!(r.view(), View(0), "asking promises nothing");
    let fx = recv(&mut r, 1, svc(1));
    let persist = fx
        .iter()
        .position(|e| matches!(e, Effect::Persist { op: Persist::HardState(hs), .. } if hs.epoch == Epoch(1)))
        .expect("the view is written");
    let dvc = fx
        .iter()
        .position(|e| matches!(e, Effect::Send { to, msg: VsrMessage::DoViewChange { view: View(1), .. } } if *to == NodeId(2)))
        .expect("DoViewChange goes to the primary of view 1");
    assert!(
        persist < dvc,
        "the host holds the promise until the view is durable"
    );
    assert_eq!(r.status().role, Role::Candidate);
}

#[test]
fn hearing_the_primary_again_gives_up_a_view_change_that_promised_nothing() {
    let mut r = replica(3);
    ticks(&mut r, 10, false);
    let commit = VsrMessage::Commit {
        view: View(0),
        commit: LogIndex(0),
        read_round: 0,
        sent_tick: 1,
    };
    let fx = recv(&mut r, 1, commit);
    assert!(
        sends(&fx)
            .iter()
            .any(|(_, m)| matches!(m, VsrMessage::CommitOk { .. }))
    );
    let fx = recv(&mut r, 2, svc(1));
    assert!(fx.is_empty(), "it follows its primary again: {fx:?}");
}

#[test]
fn the_new_primary_fetches_the_log_with_the_largest_last_normal_view_and_op() {
    let mut r = replica(2);
    ticks(&mut r, 10, true);
    let dvc = VsrMessage::DoViewChange {
        view: View(1),
        last_normal: View(0),
        op: LogIndex(3),
        commit: LogIndex(0),
        primary: NodeId(2),
    };
    let fx = recv_durably(&mut r, 1, dvc);
    assert!(
        sends(&fx).iter().any(|(to, m)| *to == NodeId(1)
            && *m
                == VsrMessage::GetState {
                    view: View(1),
                    after: LogIndex(0)
                }),
        "{fx:?}"
    );
    let new_state = VsrMessage::NewState {
        view: View(1),
        after: LogIndex(0),
        entries: Some(vec![entry(1, 0), entry(2, 0), entry(3, 0)]),
    };
    recv_durably(&mut r, 1, new_state);
    assert_eq!(r.status().role, Role::Leader);
    assert_eq!(r.status().last_index, LogIndex(3));
    assert_eq!(r.last_normal_view(), View(1));
}

#[test]
fn a_restarted_replica_never_leads_the_view_it_restarted_in() {
    // Node 2 may have led view 1 before it crashed, with another log.
    let mut r = restored(2, 1, 0, Vec::new());
    let dvc = |op| VsrMessage::DoViewChange {
        view: View(1),
        last_normal: View(0),
        op: LogIndex(op),
        commit: LogIndex(0),
        primary: NodeId(2),
    };
    let fx = recv_durably(&mut r, 1, dvc(0));
    let fx2 = recv(&mut r, 3, dvc(0));
    assert!(sends(&fx).is_empty() && sends(&fx2).is_empty());
    assert_ne!(r.status().role, Role::Leader);
}

#[test]
fn a_replica_that_promised_a_view_refuses_prepares_of_lower_views() {
    let mut r = restored(3, 2, 0, Vec::new());
    let prepare = prepare(1, 0, 0, vec![entry(1, 1)], 0);
    let fx = recv(&mut r, 2, prepare);
    assert!(
        !sends(&fx)
            .iter()
            .any(|(_, m)| matches!(m, VsrMessage::PrepareOk { .. })),
        "{fx:?}"
    );
    assert_eq!(r.status().last_index, LogIndex(0));
    assert_eq!(r.view(), View(2));
}

// ---- bad input ----

#[test]
fn malformed_prepares_and_durable_state_are_refused_without_panicking() {
    let mut r = replica(3);
    let gap = prepare(0, 0, 0, vec![entry(2, 0)], 0);
    let fx = recv(&mut r, 1, gap);
    assert!(sends(&fx).is_empty(), "{fx:?}");
    let future = prepare(0, 0, 0, vec![entry(1, 5)], 0);
    assert!(sends(&recv(&mut r, 1, future)).is_empty());
    assert_eq!(r.status().last_index, LogIndex(0));

    let mut durable = Durable::default();
    durable.hard_state.extra = Bytes::from_static(b"bad");
    assert!(matches!(
        Vsr::restore(config(1), durable),
        Err(RestoreError::MalformedHardState { len: 3 })
    ));
    let mut durable = Durable::default();
    durable.hard_state.epoch = Epoch(1);
    durable.hard_state.extra = Bytes::copy_from_slice(&2u64.to_le_bytes());
    assert!(
        Vsr::restore(config(1), durable).is_err(),
        "a last normal view above the view"
    );
}

#[test]
fn a_replica_that_does_not_know_it_was_promoted_promises_to_the_primary_the_asker_names() {
    // Node 4 lags: its log does not hold the configuration that made it a voter.
    let mut c = VsrConfig::new(NodeId(4), Membership::new([1, 2, 3].map(NodeId)), 4);
    c.election_ticks_max = c.election_ticks_min + 1;
    let mut r = Vsr::restore(c, Durable::default()).expect("valid config");
    let fx = ticks(&mut r, 10, false);
    assert!(sends(&fx).is_empty(), "a non-voter never asks: {fx:?}");
    let ask = VsrMessage::StartViewChange {
        view: View(5),
        handover: false,
        primary: Some(NodeId(4)),
    };
    let fx = recv(&mut r, 1, ask);
    let persist = fx.iter().position(
        |e| matches!(e, Effect::Persist { op: Persist::HardState(hs), .. } if hs.epoch == Epoch(5)),
    );
    assert!(persist.is_some(), "{fx:?}");
    assert_eq!(r.view(), View(5));
    assert_ne!(
        r.status().role,
        Role::Leader,
        "it never leads by another's count"
    );
}

#[test]
fn a_do_view_change_promised_to_another_primary_is_not_counted() {
    // Node 3 promised view 2 to node 3 (say) and tells node 2, its old primary, about it:
    // node 2 must not count that copy when it starts a view of its own.
    let mut r = replica(2);
    ticks(&mut r, 10, true);
    let copy = VsrMessage::DoViewChange {
        view: View(1),
        last_normal: View(0),
        op: LogIndex(0),
        commit: LogIndex(0),
        primary: NodeId(3),
    };
    recv_durably(&mut r, 1, copy);
    assert_ne!(r.status().role, Role::Leader);
    let promise = VsrMessage::DoViewChange {
        view: View(1),
        last_normal: View(0),
        op: LogIndex(0),
        commit: LogIndex(0),
        primary: NodeId(2),
    };
    recv_durably(&mut r, 1, promise);
    assert_eq!(r.status().role, Role::Leader, "the promise to it counts");
}
