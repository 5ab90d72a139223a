//! Multi-Paxos at the rule level: each test drives replicas input by input and names the
//! rule of the acceptor or proposer it checks.

use rsm_consensus::{ConfigError, Paxos, PaxosConfig, PaxosMessage, ballot_epoch};
use rsm_core::{
    Ballot, Bytes, Durable, Effect, Entry, EntryKind, HardState, Input, LogIndex, Membership,
    NodeId, Persist, QuorumSizes, Replica, RequestId, RestoreError, Role,
};

type Fx = Vec<Effect<PaxosMessage>>;

fn b(round: u64, node: u64) -> Ballot {
    Ballot {
        round,
        node: NodeId(node),
    }
}

fn config(id: u64) -> PaxosConfig {
    PaxosConfig::new(NodeId(id), Membership::new([1, 2, 3].map(NodeId)), id)
}

fn replica(id: u64) -> Paxos {
    Paxos::restore(config(id), Durable::default()).expect("valid config")
}

fn step(r: &mut Paxos, input: Input<PaxosMessage>) -> Fx {
    let mut out = Vec::new();
    r.step(input, &mut out);
    out
}

fn recv(r: &mut Paxos, from: u64, msg: PaxosMessage) -> Fx {
    step(
        r,
        Input::Receive {
            from: NodeId(from),
            msg,
        },
    )
}

/// Report every persist in `fx` durable, and return `fx` with what that caused.
fn settle(r: &mut Paxos, mut fx: Fx) -> Fx {
    let mut k = 0;
    while k < fx.len() {
        if let Effect::Persist { seq, .. } = fx[k] {
            let more = step(r, Input::Persisted { through: seq });
            fx.extend(more);
        }
        k += 1;
    }
    fx
}

fn recv_settled(r: &mut Paxos, from: u64, msg: PaxosMessage) -> Fx {
    let fx = recv(r, from, msg);
    settle(r, fx)
}

fn candidate_settled(r: &mut Paxos) -> Fx {
    let fx = until_candidate(r);
    settle(r, fx)
}

fn sends(fx: &Fx) -> Vec<(NodeId, PaxosMessage)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

fn hard_states(fx: &Fx) -> Vec<HardState> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Persist {
                op: Persist::HardState(hs),
                ..
            } => Some(hs.clone()),
            _ => None,
        })
        .collect()
}

fn cmd(index: u64, ballot: Ballot, payload: &'static [u8]) -> Entry {
    Entry::command(
        LogIndex(index),
        ballot_epoch(ballot),
        Bytes::from_static(payload),
    )
}

fn accept(
    ballot: Ballot,
    prev: u64,
    entries: Vec<Entry>,
    commit: u64,
    sync_end: u64,
) -> PaxosMessage {
    PaxosMessage::Accept {
        ballot,
        prev: LogIndex(prev),
        entries,
        commit: LogIndex(commit),
        sync_end: LogIndex(sync_end),
    }
}

fn prepare(ballot: Ballot, commit: u64) -> PaxosMessage {
    PaxosMessage::Prepare {
        ballot,
        commit: LogIndex(commit),
        transfer: false,
    }
}

/// Tick `r` until it starts phase 1; returns the effects.
fn until_candidate(r: &mut Paxos) -> Fx {
    for _ in 0..200 {
        let fx = step(r, Input::Tick);
        if r.status().role == Role::Candidate {
            return fx;
        }
    }
    panic!("never campaigned");
}

/// A replica whose failure detector has long fired: it heard no leader recently.
fn idle_acceptor(id: u64) -> Paxos {
    let mut r = replica(id);
    // Without lease reads an acceptor starts out free to promise; a few ticks change nothing.
    step(&mut r, Input::Tick);
    r
}

#[test]
fn prepare_above_the_promise_is_promised_durably_before_the_reply() {
    let mut a = idle_acceptor(2);
    let fx = recv(&mut a, 1, prepare(b(1, 1), 0));
    assert_eq!(a.promised(), b(1, 1));
    let k_persist = fx
        .iter()
        .position(|e| {
            matches!(
                e,
                Effect::Persist {
                    op: Persist::HardState(_),
                    ..
                }
            )
        })
        .expect("the promise is written");
    let k_send = fx
        .iter()
        .position(|e| {
            matches!(
                e,
                Effect::Send {
                    msg: PaxosMessage::Promise { .. },
                    ..
                }
            )
        })
        .expect("the promise is sent");
    assert!(
        k_persist < k_send,
        "the host holds the promise until its write is durable"
    );
    assert_eq!(hard_states(&fx)[0].epoch, ballot_epoch(b(1, 1)));
}

#[test]
fn prepare_below_the_promise_is_refused_with_the_promise() {
    let mut a = idle_acceptor(2);
    recv(&mut a, 3, prepare(b(2, 3), 0));
    let fx = recv(&mut a, 1, prepare(b(1, 1), 0));
    assert_eq!(
        sends(&fx),
        vec![(
            NodeId(1),
            PaxosMessage::Nack {
                ballot: b(1, 1),
                promised: b(2, 3),
                leader: None,
            }
        )]
    );
    assert_eq!(a.promised(), b(2, 3));
}

/// The trap: accepting ballot n is also a promise for n. An acceptor that accepted a
/// higher ballot's slots without raising its promise could then promise a lower ballot
/// whose proposer never learns of them.
#[test]
fn accept_must_raise_the_promise() {
    let mut a = idle_acceptor(2);
    recv(&mut a, 1, prepare(b(1, 1), 0));
    // The leader of ballot 3.3 synchronises this acceptor and proposes slot 1.
    let fx = recv(
        &mut a,
        3,
        accept(b(3, 3), 0, vec![cmd(1, b(3, 3), b"x")], 0, 0),
    );
    assert_eq!(a.promised(), b(3, 3), "the accept raised the promise");
    let hs = hard_states(&fx);
    assert_eq!(hs.first().map(|h| h.epoch), Some(ballot_epoch(b(3, 3))));
    // A proposer with a ballot between the two is now refused.
    let fx = recv(&mut a, 1, prepare(b(2, 1), 0));
    assert!(matches!(
        sends(&fx)[..],
        [(_, PaxosMessage::Nack { promised, .. })] if promised == b(3, 3)
    ));
}

#[test]
fn an_acceptor_takes_no_new_slot_before_the_leader_synchronised_it() {
    let mut a = idle_acceptor(2);
    // Ballot 1.1's leader recovered nothing (sync_end 0) and proposes slot 2 after 1: the
    // acceptor holds nothing at 1, so it asks for slot 1 first.
    let fx = recv(
        &mut a,
        1,
        accept(b(1, 1), 1, vec![cmd(2, b(1, 1), b"y")], 0, 1),
    );
    assert_eq!(
        sends(&fx),
        vec![(
            NodeId(1),
            PaxosMessage::Accepted {
                ballot: b(1, 1),
                index: LogIndex(0),
                synced: false,
                ok: false
            }
        )]
    );
    assert_eq!(a.status().last_index, LogIndex(0));
}

#[test]
fn synchronisation_overwrites_in_place_then_drops_what_lies_above_and_records_the_ballot() {
    let mut a = idle_acceptor(2);
    // Ballot 1.1 left slots 1..=3 here.
    let old: Vec<Entry> = (1..=3).map(|i| cmd(i, b(1, 1), b"old")).collect();
    recv_settled(&mut a, 1, accept(b(1, 1), 0, old, 0, 0));
    assert_eq!(a.accepted(), b(1, 1));
    // Ballot 2.3 recovered only slot 1 (with another value) and sends it in a first
    // chunk that does not reach its sync_end of 2: slot 1 is overwritten in place, slots
    // 2 and 3 stay, and nothing is recorded yet.
    let fx = recv(
        &mut a,
        3,
        accept(b(2, 3), 0, vec![cmd(1, b(2, 3), b"new")], 0, 2),
    );
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Persist { op: Persist::Accept { entries }, .. } if entries.len() == 1
    )));
    assert_eq!(a.status().last_index, LogIndex(3));
    assert_eq!(a.accepted(), b(1, 1), "not synchronised before sync_end");
    // The second chunk reaches sync_end: slot 3 (above it) is dropped, then the ballot is
    // recorded.
    let fx = recv(
        &mut a,
        3,
        accept(b(2, 3), 1, vec![cmd(2, b(1, 1), b"old")], 0, 2),
    );
    let ops: Vec<&Persist> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Persist { op, .. } => Some(op),
            _ => None,
        })
        .collect();
    assert!(
        matches!(ops[..], [Persist::Truncate { from }, Persist::HardState(_)] if *from == LogIndex(3))
    );
    assert_eq!(a.accepted(), b(2, 3));
    assert_eq!(a.status().last_index, LogIndex(2));
    assert!(sends(&fx).iter().any(|(_, m)| matches!(
        m,
        PaxosMessage::Accepted { synced: true, ok: true, index, .. } if *index == LogIndex(2)
    )));
}

/// Phase 1 over all open slots: for each slot, the value of the promise with the highest
/// accepted ballot, whatever ballot created it; the new leader proposes them unchanged.
#[test]
fn recovery_takes_each_slot_from_the_highest_accepted_ballot() {
    let five = Membership::new([1, 2, 3, 4, 5].map(NodeId));
    let mut p = Paxos::restore(PaxosConfig::new(NodeId(1), five, 1), Durable::default()).unwrap();
    step(&mut p, Input::Tick);
    recv_settled(&mut p, 2, prepare(b(9, 2), 0));
    candidate_settled(&mut p);
    let ballot = p.promised();
    assert_eq!(ballot, b(10, 1));
    // Acceptor 3 was synchronised by 4.3 and holds slots 1..=3; acceptor 2 by 5.2 and
    // holds a different slot 1 (created by 2.2) and slot 2. Slots 1 and 2 come from
    // acceptor 2, slot 3 from acceptor 3.
    let promise3 = PaxosMessage::Promise {
        ballot,
        accepted: b(4, 3),
        commit: LogIndex(0),
        entries: vec![
            cmd(1, b(4, 3), b"c"),
            cmd(2, b(4, 3), b"d"),
            cmd(3, b(4, 3), b"e"),
        ],
    };
    let promise2 = PaxosMessage::Promise {
        ballot,
        accepted: b(5, 2),
        commit: LogIndex(0),
        entries: vec![cmd(1, b(2, 2), b"a"), cmd(2, b(5, 2), b"b")],
    };
    recv(&mut p, 3, promise3);
    assert_eq!(p.status().role, Role::Candidate, "two of five is no quorum");
    let fx = recv(&mut p, 2, promise2);
    assert_eq!(p.status().role, Role::Leader);
    let to4 = sends(&fx)
        .into_iter()
        .find_map(|(to, m)| match m {
            PaxosMessage::Accept {
                entries, sync_end, ..
            } if to == NodeId(4) => Some((entries, sync_end)),
            _ => None,
        })
        .expect("acceptor 4 is synchronised");
    let payloads: Vec<&[u8]> = to4.0.iter().map(|e| &e.payload[..]).collect();
    assert_eq!(payloads, [&b"a"[..], b"b", b"e", b""]);
    assert_eq!(
        to4.0[0].epoch,
        ballot_epoch(b(2, 2)),
        "recovered values keep their epoch"
    );
    assert_eq!(
        to4.0[3].kind,
        EntryKind::Noop,
        "the ballot opens with a no-op"
    );
    assert_eq!(
        to4.1,
        LogIndex(3),
        "synchronisation covers every recovered slot"
    );
}

#[test]
fn a_leader_counts_its_own_acceptor_only_once_its_synchronisation_is_durable() {
    let mut p = replica(1);
    candidate_settled(&mut p);
    let ballot = p.promised();
    let fx = recv(
        &mut p,
        2,
        PaxosMessage::Promise {
            ballot,
            accepted: Ballot::default(),
            commit: LogIndex(0),
            entries: vec![],
        },
    );
    assert_eq!(p.status().role, Role::Leader);
    // Acceptor 2 synchronises and accepts the no-op; the leader's own writes are not
    // durable yet, so one acceptor is not a quorum of three.
    recv(
        &mut p,
        2,
        PaxosMessage::Accepted {
            ballot,
            index: LogIndex(1),
            synced: true,
            ok: true,
        },
    );
    assert_eq!(p.status().commit, LogIndex(0));
    settle(&mut p, fx);
    assert_eq!(p.status().commit, LogIndex(1));
}

/// Dueling proposers: an acceptor that heard from a live leader ignores other
/// proposers' prepares, so a proposer that timed out behind a partition cannot unseat
/// it; once the leader is silent for a minimal timeout, a higher ballot wins.
#[test]
fn dueling_proposers_a_live_leader_is_not_preempted() {
    let mut a = idle_acceptor(2);
    let ballot = b(1, 1);
    recv_settled(&mut a, 1, accept(ballot, 0, vec![], 0, 0));
    let fx = recv(&mut a, 3, prepare(b(2, 3), 0));
    assert!(fx.is_empty(), "ignored while the leader is live");
    assert_eq!(a.promised(), ballot);
    for _ in 0..a.config().election_ticks_min {
        // Not yet the failure detector's own timeout for this acceptor: step only ticks.
        step(&mut a, Input::Tick);
        if a.status().role == Role::Candidate {
            break;
        }
    }
    let fx = recv(&mut a, 3, prepare(b(9, 3), 0));
    assert!(
        sends(&fx)
            .iter()
            .any(|(_, m)| matches!(m, PaxosMessage::Promise { .. }))
    );
}

/// Dueling proposers: the loser of a ballot race learns the winner's ballot from a
/// refusal, stops its phase 1, and its next ballot is above everything it saw.
#[test]
fn dueling_proposers_the_preempted_proposer_backs_off_and_outbids_next_time() {
    let mut p = replica(1);
    candidate_settled(&mut p);
    let mine = p.promised();
    let fx = recv(
        &mut p,
        2,
        PaxosMessage::Nack {
            ballot: mine,
            promised: b(7, 3),
            leader: None,
        },
    );
    assert_eq!(p.status().role, Role::Follower);
    assert_eq!(p.promised(), b(7, 3));
    assert!(
        hard_states(&fx)
            .iter()
            .any(|h| h.epoch == ballot_epoch(b(7, 3)))
    );
    settle(&mut p, fx);
    candidate_settled(&mut p);
    assert_eq!(p.promised(), b(8, 1));
}

#[test]
fn bad_input_is_ignored_and_bad_durable_state_is_a_typed_error() {
    let mut a = idle_acceptor(2);
    // A ballot of node 3 sent by node 1.
    assert!(
        recv(
            &mut a,
            1,
            accept(b(5, 3), 0, vec![cmd(1, b(5, 3), b"x")], 0, 0)
        )
        .is_empty()
    );
    // Entries that do not follow `prev`.
    assert!(
        recv(
            &mut a,
            1,
            accept(b(5, 1), 0, vec![cmd(3, b(5, 1), b"x")], 0, 0)
        )
        .iter()
        .all(|e| !matches!(
            e,
            Effect::Send {
                msg: PaxosMessage::Accepted { ok: true, .. },
                ..
            }
        ))
    );
    // Promises for a ballot nobody asked about, and replies from strangers.
    let fx = recv(
        &mut a,
        9,
        PaxosMessage::Accepted {
            ballot: b(5, 2),
            index: LogIndex(40),
            synced: true,
            ok: true,
        },
    );
    assert!(fx.is_empty());
    assert_eq!(a.status().last_index, LogIndex(0));
    let durable = Durable {
        hard_state: HardState {
            extra: Bytes::from_static(b"short"),
            ..HardState::default()
        },
        ..Durable::default()
    };
    assert!(matches!(
        Paxos::restore(config(2), durable),
        Err(RestoreError::MalformedHardState { len: 5 })
    ));
    let gap = Durable {
        entries: vec![cmd(2, b(1, 1), b"x")],
        ..Durable::default()
    };
    assert!(matches!(
        Paxos::restore(config(2), gap),
        Err(RestoreError::LogGap { .. })
    ));
}

#[test]
fn a_restarted_acceptor_keeps_its_promise_and_accepted_ballot() {
    let mut a = idle_acceptor(2);
    let fx = recv_settled(
        &mut a,
        1,
        accept(b(4, 1), 0, vec![cmd(1, b(4, 1), b"x")], 0, 0),
    );
    let mut durable = Durable::default();
    for e in &fx {
        if let Effect::Persist { op, .. } = e {
            durable.apply(op).unwrap();
        }
    }
    let r = Paxos::restore(config(2), durable).unwrap();
    assert_eq!(r.promised(), b(4, 1));
    assert_eq!(r.accepted(), b(4, 1));
    assert_eq!(r.status().last_index, LogIndex(1));
    assert_eq!(r.status().epoch, ballot_epoch(b(4, 1)));
}

/// A single replica leads alone and decides what it is asked to propose, each command
/// with the ballot that created it as its epoch.
#[test]
fn a_single_replica_decides_proposals_in_order() {
    let c = PaxosConfig::new(NodeId(1), Membership::new([NodeId(1)]), 1);
    let mut p = Paxos::restore(c, Durable::default()).unwrap();
    while p.status().role != Role::Leader {
        let fx = step(&mut p, Input::Tick);
        settle(&mut p, fx);
    }
    let fx = step(
        &mut p,
        Input::Propose {
            req: RequestId(1),
            command: Bytes::from_static(b"hello"),
        },
    );
    let fx = settle(&mut p, fx);
    let applied: Vec<Entry> = fx
        .iter()
        .flat_map(|e| match e {
            Effect::Apply { entries } => entries.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        applied.last().map(|e| e.payload.clone()),
        Some(Bytes::from_static(b"hello"))
    );
    assert_eq!(
        applied.last().map(|e| e.epoch),
        Some(ballot_epoch(p.promised()))
    );
}

/// Flexible quorums: with three voters, phase 1 needs all three and phase 2 one. A
/// proposer leads only once every acceptor promised; then its own durable acceptor
/// decides alone. Sizes that need not intersect are refused when configured.
#[test]
fn flexible_quorums_elect_with_phase_one_sizes_and_decide_with_phase_two_sizes() {
    let three = Membership::new([1, 2, 3].map(NodeId));
    let m = three
        .clone()
        .with_quorum(QuorumSizes::Flexible {
            phase1: 3,
            phase2: 1,
        })
        .unwrap();
    let mut p = Paxos::restore(PaxosConfig::new(NodeId(1), m, 1), Durable::default()).unwrap();
    step(&mut p, Input::Tick);
    candidate_settled(&mut p);
    let ballot = p.promised();
    let promise = PaxosMessage::Promise {
        ballot,
        accepted: Ballot::default(),
        commit: LogIndex(0),
        entries: vec![],
    };
    recv(&mut p, 2, promise.clone());
    assert_eq!(
        p.status().role,
        Role::Candidate,
        "two of three is no phase-1 quorum"
    );
    let fx = recv(&mut p, 3, promise);
    assert_eq!(p.status().role, Role::Leader);
    settle(&mut p, fx);
    assert_eq!(
        p.status().commit,
        LogIndex(1),
        "one acceptor decides the no-op"
    );

    let mut c = PaxosConfig::new(NodeId(1), three, 1);
    c.membership.quorum = QuorumSizes::Flexible {
        phase1: 1,
        phase2: 2,
    };
    assert!(matches!(c.validate(), Err(ConfigError::Quorum(_))));
    assert!(matches!(
        Paxos::restore(c, Durable::default()),
        Err(RestoreError::Quorum(_))
    ));
}
