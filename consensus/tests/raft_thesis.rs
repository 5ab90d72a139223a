//! Rule-level tests for the paper's §6 and §7 and the thesis chapters on membership
//! (ch. 4), leadership transfer (§3.10) and reads (§6.4), plus explicit rejections and
//! bad input. Each test names the rule it checks.

mod common;

use common::*;
use rsm_consensus::{ProgressState, RaftMessage};
use rsm_core::{
    Bytes, Durable, Effect, EntryKind, Epoch, Input, LogIndex, Membership, NodeId, Persist, Prng,
    RejectReason, Replica, RequestId, Role, SnapshotMeta, Term,
};

fn propose(r: &mut rsm_consensus::Raft, req: u64, payload: &[u8]) -> Fx {
    step(
        r,
        Input::Propose {
            req: RequestId(req),
            command: Bytes::copy_from_slice(payload),
        },
    )
}

fn rejection(fx: &Fx) -> Option<RejectReason> {
    fx.iter().find_map(|e| match e {
        Effect::Reject { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

fn reconfigure(r: &mut rsm_consensus::Raft, req: u64, m: Membership) -> Fx {
    step(
        r,
        Input::Reconfigure {
            req: RequestId(req),
            membership: m,
        },
    )
}

mod s6_membership {
    use super::*;

    #[test]
    fn a_single_server_change_is_one_entry_that_takes_effect_when_appended() {
        let mut r = committed_leader();
        let fx = reconfigure(&mut r, 7, membership(&[1, 2, 3, 4], &[]));
        assert!(fx.contains(&Effect::Proposed {
            req: RequestId(7),
            index: LogIndex(2),
            epoch: Epoch(1)
        }));
        let written = persists(&fx);
        match &written[..] {
            [(_, Persist::Append { entries })] => {
                assert_eq!(entries[0].kind, EntryKind::Config);
                assert!(!entries[0].membership().unwrap().is_joint());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(r.status().membership, membership(&[1, 2, 3, 4], &[]));
        assert!(
            sends(&fx).iter().any(|(to, _)| *to == NodeId(4)),
            "the new member is replicated to at once"
        );
    }

    #[test]
    fn at_most_one_configuration_change_is_uncommitted() {
        let mut r = committed_leader();
        reconfigure(&mut r, 1, membership(&[1, 2, 3, 4], &[]));
        let fx = reconfigure(&mut r, 2, membership(&[1, 2, 3], &[]));
        assert_eq!(rejection(&fx), Some(RejectReason::ConfigChangeInProgress));
    }

    #[test]
    fn no_configuration_entry_before_the_leader_commits_one_of_its_term() {
        let (mut r, _) = leader_of_three();
        let fx = reconfigure(&mut r, 1, membership(&[1, 2, 3, 4], &[]));
        assert_eq!(rejection(&fx), Some(RejectReason::ConfigChangeInProgress));
    }

    #[test]
    fn a_change_of_several_voters_passes_through_a_joint_configuration_and_leaves_it() {
        let mut c = Cluster::with_voters(&[1, 2, 3], |_| {});
        for id in [4, 5] {
            let cfg = rsm_consensus::RaftConfig::new(NodeId(id), membership(&[1, 2, 3], &[]), id);
            c.add_host(cfg);
        }
        let leader = c.stable_leader(300).expect("leader");
        c.run(5);
        c.take_effects(leader);
        c.input(
            leader,
            Input::Reconfigure {
                req: RequestId(1),
                membership: membership(&[leader.0, 4, 5], &[]),
            },
        );
        c.run(30);
        let configs: Vec<Membership> = c
            .take_effects(leader)
            .iter()
            .flat_map(|e| match e {
                Effect::Persist {
                    op: Persist::Append { entries },
                    ..
                } => entries.iter().filter_map(|e| e.membership()).collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(configs.len(), 2, "{configs:?}");
        assert!(configs[0].is_joint());
        assert_eq!(configs[1], membership(&[leader.0, 4, 5], &[]));
        for id in [leader.0, 4, 5] {
            assert_eq!(
                c.status(NodeId(id)).membership,
                configs[1],
                "node {id} left the joint configuration"
            );
        }
        let removed: Vec<u64> = [1, 2, 3].into_iter().filter(|&i| i != leader.0).collect();
        for id in removed {
            assert_eq!(c.status(NodeId(id)).role, Role::Removed);
        }
        let before = c.status(leader).commit;
        c.propose(leader, b"new-config");
        c.run(5);
        assert!(c.status(leader).commit > before);
    }

    #[test]
    fn removing_the_leader_hands_over_and_the_rest_carry_on() {
        let mut c = Cluster::with_voters(&[1, 2, 3, 4], |_| {});
        let old = c.stable_leader(300).expect("leader");
        c.run(5);
        let rest: Vec<u64> = [1, 2, 3, 4].into_iter().filter(|&i| i != old.0).collect();
        c.input(
            old,
            Input::Reconfigure {
                req: RequestId(1),
                membership: membership(&rest, &[]),
            },
        );
        c.run(60);
        assert_eq!(c.status(old).role, Role::Removed);
        let new = c.stable_leader(300).expect("a new leader");
        assert!(rest.contains(&new.0));
        let before = c.status(new).commit;
        c.propose(new, b"after");
        c.run(5);
        assert!(c.status(new).commit > before);
    }

    #[test]
    fn a_learner_catches_up_without_voting_and_is_then_promoted() {
        let mut c = Cluster::with_voters(&[1, 2, 3], |_| {});
        c.add_host(rsm_consensus::RaftConfig::new(
            NodeId(4),
            membership(&[1, 2, 3], &[]),
            4,
        ));
        let leader = c.stable_leader(300).expect("leader");
        for k in 0..10 {
            c.propose(leader, &[k]);
        }
        c.run(3);
        c.input(
            leader,
            Input::Reconfigure {
                req: RequestId(1),
                membership: membership(&[1, 2, 3], &[4]),
            },
        );
        c.run(10);
        assert_eq!(c.status(NodeId(4)).role, Role::Learner);
        assert_eq!(c.status(NodeId(4)).commit, c.status(leader).commit);
        let p = c.hosts[&leader].raft.progress(NodeId(4)).expect("tracked");
        assert_eq!(p.state, ProgressState::Replicate);
        assert_eq!(p.match_index, c.status(leader).last_index);
        c.input(
            leader,
            Input::Reconfigure {
                req: RequestId(2),
                membership: membership(&[1, 2, 3, 4], &[]),
            },
        );
        c.run(10);
        assert_eq!(c.status(NodeId(4)).role, Role::Follower);
        assert_eq!(c.status(leader).membership, membership(&[1, 2, 3, 4], &[]));
    }

    #[test]
    fn a_learner_never_campaigns() {
        let mut r = replica(config(4, &[1, 2, 3]));
        let fx = tick_n(&mut r, 200);
        assert!(sends(&fx).is_empty());
        assert_eq!(r.status().role, Role::Removed);
        let mut c = config(4, &[1, 2, 3]);
        c.membership = membership(&[1, 2, 3], &[4]);
        let mut r = replica(c);
        assert!(sends(&tick_n(&mut r, 200)).is_empty());
        assert_eq!(r.status().role, Role::Learner);
    }
}

mod s7_snapshots {
    use super::*;

    #[test]
    fn the_replica_asks_for_a_snapshot_at_the_threshold_and_compacts_on_receiving_it() {
        let mut c = config(1, &[1]);
        c.snapshot_entries_threshold = 4;
        let mut r = replica(c);
        for _ in 0..100 {
            let fx = step(&mut r, Input::Tick);
            persist_settle(&mut r, fx);
            if r.status().role == Role::Leader {
                break;
            }
        }
        for k in 0..4 {
            let fx = propose(&mut r, k, b"v");
            persist_settle(&mut r, fx);
        }
        assert_eq!(r.status().applied, LogIndex(5));
        let fx = step(
            &mut r,
            Input::Applied {
                through: LogIndex(5),
            },
        );
        assert_eq!(
            fx,
            vec![Effect::TakeSnapshot {
                through: LogIndex(5)
            }]
        );
        let fx = step(
            &mut r,
            Input::Snapshot {
                meta: SnapshotMeta {
                    index: LogIndex(5),
                    ..SnapshotMeta::default()
                },
                data: Bytes::from_static(b"state"),
            },
        );
        match &persists(&fx)[..] {
            [
                (_, Persist::Snapshot { meta, data }),
                (_, Persist::Compact { through }),
            ] => {
                assert_eq!((meta.index, meta.epoch), (LogIndex(5), Epoch(1)));
                assert_eq!(meta.membership, membership(&[1], &[]));
                assert_eq!(data.as_ref(), b"state");
                assert_eq!(*through, LogIndex(5));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_follower_assembles_chunks_in_order_then_stores_and_installs_the_snapshot() {
        let mut r = replica(config(2, &[1, 2, 3]));
        let meta = SnapshotMeta {
            index: LogIndex(10),
            epoch: Epoch(1),
            membership: membership(&[1, 2, 3], &[]),
        };
        let chunk = |offset: u64, data: &'static [u8], done: bool| RaftMessage::InstallSnapshot {
            term: Term(1),
            meta: meta.clone(),
            offset,
            data: Bytes::from_static(data),
            done,
        };
        let fx = recv(&mut r, 1, chunk(0, b"abc", false));
        assert!(sends(&fx).contains(&(
            NodeId(1),
            RaftMessage::InstallSnapshotResponse {
                term: Term(1),
                index: LogIndex(10),
                next_offset: 3,
                done: false
            }
        )));
        let fx = recv(&mut r, 1, chunk(7, b"zzz", true));
        assert!(
            matches!(
                sends(&fx)[0].1,
                RaftMessage::InstallSnapshotResponse {
                    next_offset: 3,
                    done: false,
                    ..
                }
            ),
            "an out-of-order chunk asks for the expected offset"
        );
        let fx = recv(&mut r, 1, chunk(3, b"def", true));
        let kinds: Vec<&str> = fx
            .iter()
            .map(|e| match e {
                Effect::Persist {
                    op: Persist::Snapshot { .. },
                    ..
                } => "persist-snapshot",
                Effect::InstallSnapshot { data, .. } => {
                    assert_eq!(data.as_ref(), b"abcdef");
                    "install"
                }
                Effect::Send { .. } => "send",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, vec!["persist-snapshot", "install", "send"]);
        let s = r.status();
        assert_eq!(
            (s.commit, s.applied, s.last_index),
            (LogIndex(10), LogIndex(10), LogIndex(10))
        );
    }

    /// §7: "If existing log entry has same index and term as snapshot's last included
    /// entry, retain log entries following it"; otherwise discard the entire log. A stored
    /// snapshot keeps the entries above it, so the follower truncates them first.
    #[test]
    fn a_snapshot_over_a_conflicting_log_discards_the_suffix_and_over_a_matching_one_keeps_it() {
        for (snapshot_term, truncated) in [(1, false), (2, true)] {
            let mut r = replica(config(2, &[1, 2, 3]));
            let entries: Vec<(u64, u64)> = (1..=12).map(|i| (i, 1)).collect();
            let fx = recv(&mut r, 1, append(1, (0, 0), &entries, 0));
            let mut durable = Durable::default();
            let mut all = persist_settle(&mut r, fx);
            let meta = SnapshotMeta {
                index: LogIndex(10),
                epoch: Epoch(snapshot_term),
                membership: membership(&[1, 2, 3], &[]),
            };
            let fx = recv(
                &mut r,
                1,
                RaftMessage::InstallSnapshot {
                    term: Term(2),
                    meta,
                    offset: 0,
                    data: Bytes::from_static(b"state"),
                    done: true,
                },
            );
            let ops: Vec<Persist> = persists(&fx).into_iter().map(|(_, op)| op).collect();
            let truncate = Persist::Truncate { from: LogIndex(11) };
            assert_eq!(ops.contains(&truncate), truncated, "{ops:?}");
            if truncated {
                let at = |f: fn(&Persist) -> bool| ops.iter().position(f);
                assert!(
                    at(|op| matches!(op, Persist::Truncate { .. }))
                        < at(|op| matches!(op, Persist::Snapshot { .. })),
                    "the truncation is written before the snapshot: {ops:?}"
                );
            }
            all.extend(persist_settle(&mut r, fx));
            for (_, op) in persists(&all) {
                durable.apply(&op).unwrap();
            }
            let kept = if truncated { 10 } else { 12 };
            assert_eq!(durable.last_index(), LogIndex(kept));
            assert_eq!(r.status().last_index, LogIndex(kept));
        }
    }

    #[test]
    fn a_follower_behind_the_compaction_point_catches_up_through_a_chunked_snapshot() {
        let mut c = Cluster::with_voters(&[1, 2, 3], |c| {
            c.snapshot_entries_threshold = 8;
            c.snapshot_chunk_bytes = 5;
        });
        let leader = c.stable_leader(300).expect("leader");
        let lagger = if leader == NodeId(3) {
            NodeId(2)
        } else {
            NodeId(3)
        };
        c.isolate(lagger);
        for k in 0..40 {
            c.propose(leader, &[k]);
            c.run(1);
        }
        c.take_effects(lagger);
        c.heal();
        c.run(40);
        let installs: Vec<LogIndex> = c
            .take_effects(lagger)
            .iter()
            .filter_map(|e| match e {
                Effect::InstallSnapshot { meta, .. } => Some(meta.index),
                _ => None,
            })
            .collect();
        assert_eq!(installs.len(), 1, "{installs:?}");
        let (l, f) = (&c.hosts[&leader], &c.hosts[&lagger]);
        assert_eq!(f.applied, l.applied);
        assert_eq!(f.digest, l.digest, "the same state at the same index");
    }
}

mod thesis_3_10_transfer {
    use super::*;

    #[test]
    fn transfer_to_a_caught_up_voter_sends_timeout_now_and_refuses_proposals_until_it_aborts() {
        let mut r = committed_leader();
        let fx = step(
            &mut r,
            Input::TransferLeadership {
                req: RequestId(90),
                to: NodeId(2),
            },
        );
        assert!(sends(&fx).contains(&(NodeId(2), RaftMessage::TimeoutNow { term: Term(1) })));
        let fx = propose(&mut r, 1, b"x");
        assert_eq!(
            rejection(&fx),
            Some(RejectReason::TransferInProgress { target: NodeId(2) })
        );
        // Followers keep answering heartbeats; no new leader shows up: abort.
        for _ in 0..10 {
            let fx = step(&mut r, Input::Tick);
            for (to, m) in sends(&fx) {
                if let RaftMessage::Heartbeat {
                    read_round,
                    sent_tick,
                    ..
                } = m
                {
                    recv(
                        &mut r,
                        to.0,
                        RaftMessage::HeartbeatResponse {
                            term: Term(1),
                            read_round,
                            sent_tick,
                            log_behind: false,
                        },
                    );
                }
            }
        }
        assert_eq!(r.status().role, Role::Leader);
        let fx = propose(&mut r, 2, b"y");
        assert!(rejection(&fx).is_none(), "the transfer was abandoned");
    }

    #[test]
    fn a_transfer_that_cannot_start_is_rejected() {
        let mut r = committed_leader();
        let fx = step(
            &mut r,
            Input::TransferLeadership {
                req: RequestId(91),
                to: NodeId(9),
            },
        );
        assert_eq!(
            rejection(&fx),
            Some(RejectReason::NotVoter { id: NodeId(9) })
        );
        let mut f = replica(config(2, &[1, 2, 3]));
        let fx = step(
            &mut f,
            Input::TransferLeadership {
                req: RequestId(92),
                to: NodeId(3),
            },
        );
        assert_eq!(rejection(&fx), Some(RejectReason::NotLeader { hint: None }));
    }

    #[test]
    fn transfer_to_a_lagging_voter_catches_it_up_first() {
        let mut r = committed_leader();
        let fx = propose(&mut r, 1, b"x");
        persist_all(&mut r, &fx);
        let fx = step(
            &mut r,
            Input::TransferLeadership {
                req: RequestId(90),
                to: NodeId(3),
            },
        );
        assert!(
            !sends(&fx)
                .iter()
                .any(|(_, m)| matches!(m, RaftMessage::TimeoutNow { .. }))
        );
        recv(&mut r, 3, ack(1, 1));
        let fx = recv(&mut r, 3, ack(1, 2));
        assert!(sends(&fx).contains(&(NodeId(3), RaftMessage::TimeoutNow { term: Term(1) })));
    }

    #[test]
    fn timeout_now_starts_a_real_election_at_once_that_voters_do_not_ignore() {
        let mut c = config(2, &[1, 2, 3]);
        c.pre_vote = true;
        let mut r = replica(c);
        recv(&mut r, 1, append(1, (0, 0), &[], 0));
        let fx = recv(&mut r, 1, RaftMessage::TimeoutNow { term: Term(1) });
        assert_eq!(r.status().role, Role::Candidate, "no pre-vote round");
        assert!(sends(&fx).iter().all(|(_, m)| matches!(
            m,
            RaftMessage::RequestVote {
                term: Term(2),
                pre_vote: false,
                transfer: true,
                ..
            }
        )));
        // A voter that just heard the leader still grants a transfer vote.
        let mut v = replica(config(3, &[1, 2, 3]));
        recv(&mut v, 1, append(1, (0, 0), &[], 0));
        let vote = sends(&fx)[0].1.clone();
        let fx = recv(&mut v, 2, vote);
        assert!(first_is_grant(&fx));
    }
}

mod thesis_6_4_reads {
    use super::*;

    fn read(r: &mut rsm_consensus::Raft, req: u64) -> Fx {
        step(
            r,
            Input::Read {
                req: RequestId(req),
            },
        )
    }

    #[test]
    fn read_index_waits_for_a_commit_of_the_leaders_term_then_a_heartbeat_quorum() {
        let (mut r, _) = leader_of_three();
        let fx = read(&mut r, 9);
        assert!(fx.is_empty(), "no commit of its own term yet: {fx:?}");
        let fx = recv(&mut r, 2, ack(1, 1));
        let rounds: Vec<u64> = sends(&fx)
            .iter()
            .filter_map(|(_, m)| match m {
                RaftMessage::Heartbeat { read_round, .. } => Some(*read_round),
                _ => None,
            })
            .collect();
        assert_eq!(rounds, vec![1, 1], "a confirmation round starts");
        assert!(!fx.iter().any(|e| matches!(e, Effect::ReadReady { .. })));
        let fx = recv(
            &mut r,
            3,
            RaftMessage::HeartbeatResponse {
                term: Term(1),
                read_round: 1,
                sent_tick: 1,
                log_behind: false,
            },
        );
        assert!(fx.contains(&Effect::ReadReady {
            req: RequestId(9),
            index: LogIndex(1)
        }));
    }

    #[test]
    fn a_lease_serves_reads_without_a_round_until_it_runs_out() {
        let mut c = config(1, &[1, 2, 3]);
        c.check_quorum = true;
        c.lease_reads = true;
        let mut r = committed_leader_with(c);
        let fx = tick_n(&mut r, 2);
        let sent_tick = sends(&fx)
            .iter()
            .find_map(|(_, m)| match m {
                RaftMessage::Heartbeat { sent_tick, .. } => Some(*sent_tick),
                _ => None,
            })
            .expect("a heartbeat");
        recv(
            &mut r,
            2,
            RaftMessage::HeartbeatResponse {
                term: Term(1),
                read_round: 0,
                sent_tick,
                log_behind: false,
            },
        );
        let fx = read(&mut r, 1);
        assert_eq!(
            fx,
            vec![Effect::ReadReady {
                req: RequestId(1),
                index: LogIndex(1)
            }]
        );
        // election_ticks_min (10) minus the drift margin (2) later, the lease is gone.
        for _ in 0..8 {
            step(&mut r, Input::Tick);
        }
        let fx = read(&mut r, 2);
        assert!(!fx.iter().any(|e| matches!(e, Effect::ReadReady { .. })));
    }

    #[test]
    fn a_follower_forwards_reads_to_the_leader_and_serves_the_answer() {
        let mut r = replica(config(2, &[1, 2, 3]));
        recv(&mut r, 1, append(1, (0, 0), &[], 0));
        let fx = read(&mut r, 5);
        assert_eq!(
            sends(&fx),
            vec![(
                NodeId(1),
                RaftMessage::ReadIndex {
                    term: Term(1),
                    id: 5
                }
            )]
        );
        let fx = recv(
            &mut r,
            1,
            RaftMessage::ReadIndexResponse {
                term: Term(1),
                id: 5,
                index: Some(LogIndex(4)),
            },
        );
        assert_eq!(
            fx,
            vec![Effect::ReadReady {
                req: RequestId(5),
                index: LogIndex(4)
            }]
        );
    }

    #[test]
    fn a_forwarded_read_without_an_answer_is_refused_after_a_timeout() {
        let mut r = replica(config(2, &[1, 2, 3]));
        recv(&mut r, 1, append(1, (0, 0), &[], 0));
        read(&mut r, 5);
        let fx = tick_n(&mut r, 20);
        assert!(
            fx.contains(&Effect::Reject {
                req: RequestId(5),
                reason: RejectReason::NotLeader {
                    hint: r.status().leader
                }
            }) || fx.iter().any(|e| matches!(
                e,
                Effect::Reject {
                    req: RequestId(5),
                    ..
                }
            ))
        );
    }

    #[test]
    fn a_replica_that_knows_no_leader_refuses_reads_at_once() {
        let mut r = replica(config(2, &[1, 2, 3]));
        let fx = read(&mut r, 1);
        assert_eq!(
            fx,
            vec![Effect::Reject {
                req: RequestId(1),
                reason: RejectReason::NotLeader { hint: None }
            }]
        );
    }
}

mod rejections_and_bad_input {
    use super::*;

    #[test]
    fn every_refused_proposal_gets_a_typed_reason() {
        let mut f = replica(config(2, &[1, 2, 3]));
        recv(&mut f, 1, append(1, (0, 0), &[], 0));
        assert_eq!(
            rejection(&propose(&mut f, 1, b"x")),
            Some(RejectReason::NotLeader {
                hint: Some(NodeId(1))
            })
        );
        let mut c = config(1, &[1, 2, 3]);
        c.proposal_bytes_max = 4;
        c.uncommitted_bytes_max = 100;
        let mut r = replica(c);
        let fx = tick_until_candidate(&mut r);
        persist_all(&mut r, &fx);
        recv(&mut r, 2, grant(1));
        assert_eq!(
            rejection(&propose(&mut r, 2, b"too big")),
            Some(RejectReason::TooLarge {
                bytes: 7,
                limit_bytes: 4
            })
        );
        let mut busy = None;
        for k in 0..10 {
            if let Some(reason) = rejection(&propose(&mut r, 10 + k, b"four")) {
                busy = Some(reason);
                break;
            }
        }
        assert_eq!(busy, Some(RejectReason::Busy));
        let mut gone = replica(config(9, &[1, 2, 3]));
        assert_eq!(
            rejection(&propose(&mut gone, 1, b"x")),
            Some(RejectReason::Removed)
        );
    }

    #[test]
    fn messages_from_non_members_and_bogus_reports_change_nothing() {
        let mut r = committed_leader();
        let before = r.status();
        assert!(recv(&mut r, 9, ack(1, 1)).is_empty());
        assert!(recv(&mut r, 2, ack(1, 99)).is_empty(), "ack beyond the log");
        let fx = step(
            &mut r,
            Input::Persisted {
                through: rsm_core::PersistSeq(1_000),
            },
        );
        assert!(fx.is_empty());
        step(
            &mut r,
            Input::Applied {
                through: LogIndex(1_000),
            },
        );
        step(
            &mut r,
            Input::Snapshot {
                meta: SnapshotMeta {
                    index: LogIndex(50),
                    ..SnapshotMeta::default()
                },
                data: Bytes::new(),
            },
        );
        assert_eq!(r.status(), before);
        // A follower ignores an append whose entries are not consecutive.
        let mut f = replica(config(2, &[1, 2, 3]));
        let fx = recv(&mut f, 1, append(1, (0, 0), &[(1, 1), (3, 1)], 0));
        assert!(
            persists(&fx)
                .iter()
                .all(|(_, p)| !matches!(p, Persist::Append { .. }))
        );
        assert_eq!(f.status().last_index, LogIndex(0));
    }

    /// Random, mostly nonsensical messages from members and strangers, mixed with random
    /// inputs: never a panic, and the basic invariants hold after every step.
    #[test]
    fn random_messages_and_inputs_never_panic_or_break_invariants() {
        let mut rng = Prng::new(99);
        for round in 0..400 {
            let mut r = if round % 2 == 0 {
                committed_leader()
            } else {
                replica(config(2, &[1, 2, 3]))
            };
            for _ in 0..500 {
                let from = rng.range(1, 6);
                let t = Term(rng.range(0, 4));
                let i = LogIndex(rng.range(0, 8));
                let msg = match rng.range(0, 11) {
                    0 => vote_req(t.0, i.0, rng.range(0, 4)),
                    1 => RaftMessage::RequestVoteResponse {
                        term: t,
                        pre_vote: rng.chance(0.5),
                        granted: rng.chance(0.5),
                    },
                    2 => {
                        let prev = rng.range(0, 6);
                        let n = rng.range(0, 3);
                        let ents: Vec<(u64, u64)> = (1..=n).map(|k| (prev + k, t.0)).collect();
                        append(t.0, (prev, rng.range(0, 4)), &ents, rng.range(0, 8))
                    }
                    3 => RaftMessage::AppendEntriesResponse {
                        term: t,
                        success: rng.chance(0.5),
                        index: i,
                        hint_index: LogIndex(rng.range(0, 8)),
                        hint_term: rng.chance(0.5).then(|| Term(rng.range(0, 4))),
                    },
                    4 => RaftMessage::Heartbeat {
                        term: t,
                        commit: i,
                        read_round: rng.range(0, 5),
                        sent_tick: rng.range(0, 50),
                    },
                    5 => RaftMessage::HeartbeatResponse {
                        term: t,
                        read_round: rng.range(0, 5),
                        sent_tick: rng.range(0, 50),
                        log_behind: rng.chance(0.5),
                    },
                    6 => RaftMessage::InstallSnapshot {
                        term: t,
                        meta: SnapshotMeta {
                            index: i,
                            epoch: Epoch(rng.range(0, 4)),
                            membership: membership(&[1, 2, 3], &[]),
                        },
                        offset: rng.range(0, 4),
                        data: Bytes::from(vec![0u8; 16]),
                        done: rng.chance(0.5),
                    },
                    7 => RaftMessage::InstallSnapshotResponse {
                        term: t,
                        index: i,
                        next_offset: rng.range(0, 40),
                        done: rng.chance(0.5),
                    },
                    8 => RaftMessage::TimeoutNow { term: t },
                    9 => RaftMessage::ReadIndex {
                        term: t,
                        id: rng.range(0, 5),
                    },
                    _ => RaftMessage::ReadIndexResponse {
                        term: t,
                        id: rng.range(0, 5),
                        index: Some(i),
                    },
                };
                let fx = recv(&mut r, from, msg);
                persist_all(&mut r, &fx);
                let req = RequestId(rng.range(0, 1000));
                let input = match rng.range(0, 12) {
                    0 => Input::Tick,
                    1 => Input::Propose {
                        req,
                        command: Bytes::from_static(b"p"),
                    },
                    2 => Input::Read { req },
                    3 => Input::Reconfigure {
                        req,
                        membership: membership(&[1, 2, rng.range(3, 6)], &[rng.range(4, 7)]),
                    },
                    4 => Input::TransferLeadership {
                        req,
                        to: NodeId(rng.range(1, 6)),
                    },
                    5 => Input::Applied {
                        through: LogIndex(rng.range(0, 10)),
                    },
                    6 => Input::Snapshot {
                        meta: SnapshotMeta {
                            index: LogIndex(rng.range(0, 10)),
                            ..SnapshotMeta::default()
                        },
                        data: Bytes::new(),
                    },
                    _ => Input::Persisted {
                        through: rsm_core::PersistSeq(rng.range(0, 40)),
                    },
                };
                step(&mut r, input);
                let s = r.status();
                assert!(s.applied <= s.commit && s.commit <= s.last_index, "{s:?}");
            }
        }
    }
}

mod restart {
    use super::*;

    /// Restart a follower from the durable image after every single persist of a run:
    /// each image restores, and the restored replica never claims more than was durable.
    #[test]
    fn restart_from_durable_state_is_safe_at_every_persistence_point() {
        let mut c = Cluster::with_voters(&[1, 2, 3], |c| c.snapshot_entries_threshold = 5);
        let leader = c.stable_leader(300).expect("leader");
        for k in 0..20 {
            c.propose(leader, &[k]);
            c.run(1);
        }
        let follower = if leader == NodeId(1) {
            NodeId(2)
        } else {
            NodeId(1)
        };
        let fx = c.take_effects(follower);
        let cfg = c.hosts[&follower].config.clone();
        let mut image = rsm_core::Durable::default();
        let mut points = 0;
        for e in &fx {
            if let Effect::Persist { op, .. } = e {
                image.apply(op).expect("reference semantics");
                let r = rsm_consensus::Raft::restore(cfg.clone(), image.clone())
                    .expect("every durable image restores");
                let s = r.status();
                assert_eq!(s.last_index, image.last_index());
                assert_eq!(s.epoch, image.hard_state.epoch);
                assert!(s.commit <= s.last_index);
                points += 1;
            }
        }
        assert!(points > 20, "{points} persistence points");
    }
}
