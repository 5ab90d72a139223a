//! Rule-level tests, organised by the sections of the Raft paper and thesis. Each test
//! names the rule it checks, drives one replica with explicit inputs and asserts on the
//! exact effects.

mod common;

use common::*;
use rsm_consensus::{ProgressState, RaftMessage};
use rsm_core::{
    Bytes, Effect, Entry, Epoch, HardState, Input, LogIndex, NodeId, Persist, Replica, RequestId,
    Role, Term,
};

mod s5_1_terms {
    use super::*;

    #[test]
    fn a_newer_term_in_any_message_turns_a_leader_into_a_follower_and_is_persisted() {
        let mut r = committed_leader();
        let fx = recv(&mut r, 2, ack(5, 1));
        assert_eq!(r.status().role, Role::Follower);
        assert_eq!(r.status().epoch, Epoch(5));
        let hs = persists(&fx)
            .into_iter()
            .find_map(|(_, op)| match op {
                Persist::HardState(hs) => Some(hs),
                _ => None,
            })
            .expect("the new term is persisted");
        assert_eq!((hs.epoch, hs.vote), (Epoch(5), None));
    }

    #[test]
    fn a_stale_term_append_is_answered_with_the_current_term_and_changes_nothing() {
        let mut r = replica(config(2, &[1, 2, 3]));
        recv(&mut r, 1, append(3, (0, 0), &[], 0));
        let fx = recv(&mut r, 3, append(2, (0, 0), &[(1, 2)], 0));
        assert_eq!(r.status().last_index, LogIndex(0));
        assert_eq!(
            sends(&fx),
            vec![(
                NodeId(3),
                RaftMessage::HeartbeatResponse {
                    term: Term(3),
                    read_round: 0,
                    sent_tick: 0,
                    log_behind: false,
                }
            )]
        );
    }
}

mod s5_2_election {
    use super::*;

    #[test]
    fn election_timeout_is_drawn_from_the_configured_range() {
        for seed in 0..20 {
            let mut c = config(1, &[1, 2, 3]);
            c.seed = seed;
            let mut r = replica(c);
            let mut fired = None;
            for t in 1..=30 {
                let fx = step(&mut r, Input::Tick);
                if !sends(&fx).is_empty() {
                    fired = Some(t);
                    break;
                }
            }
            let t = fired.expect("the timeout fires");
            assert!((10..20).contains(&t), "seed {seed}: fired at {t}");
        }
    }

    #[test]
    fn a_candidate_persists_its_term_and_vote_before_asking_for_votes() {
        let mut r = replica(config(1, &[1, 2, 3]));
        let fx = tick_n(&mut r, 20);
        let first_persist = fx
            .iter()
            .position(|e| matches!(e, Effect::Persist { .. }))
            .expect("persist");
        let first_send = fx
            .iter()
            .position(|e| matches!(e, Effect::Send { .. }))
            .expect("send");
        assert!(first_persist < first_send);
        assert_eq!(
            persists(&fx)[0].1,
            Persist::HardState(HardState {
                epoch: Epoch(1),
                vote: Some(NodeId(1)),
                commit: LogIndex(0),
                extra: Bytes::new()
            })
        );
        let to: Vec<NodeId> = sends(&fx).iter().map(|(to, _)| *to).collect();
        assert_eq!(to, ids(&[2, 3]));
        assert_eq!(sends(&fx)[0].1, vote_req(1, 0, 0));
    }

    #[test]
    fn a_candidate_counts_its_own_vote_only_once_it_is_durable() {
        let mut r = replica(config(1, &[1, 2, 3]));
        let fx = tick_n(&mut r, 20);
        recv(&mut r, 2, grant(1));
        assert_eq!(
            r.status().role,
            Role::Candidate,
            "one remote grant without the durable own vote is not a quorum"
        );
        persist_all(&mut r, &fx);
        assert_eq!(r.status().role, Role::Leader);
    }

    #[test]
    fn a_new_leader_appends_a_noop_and_sends_before_its_own_write() {
        let (r, fx) = leader_of_three();
        assert_eq!(r.status().last_index, LogIndex(1));
        let append_at = fx
            .iter()
            .position(|e| {
                matches!(
                    e,
                    Effect::Persist {
                        op: Persist::Append { .. },
                        ..
                    }
                )
            })
            .expect("the no-op is written");
        let first_append_send = fx
            .iter()
            .position(|e| {
                matches!(
                    e,
                    Effect::Send {
                        msg: RaftMessage::AppendEntries { .. },
                        ..
                    }
                )
            })
            .expect("the no-op is sent");
        assert!(first_append_send < append_at);
        match &persists(&fx).last().unwrap().1 {
            Persist::Append { entries } => {
                assert_eq!(entries.len(), 1);
                assert_eq!(entries[0].kind, rsm_core::EntryKind::Noop);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn one_vote_per_term_and_the_grant_follows_its_persist() {
        let mut r = replica(config(3, &[1, 2, 3]));
        let fx = recv(&mut r, 1, vote_req(1, 0, 0));
        assert!(matches!(
            fx.as_slice(),
            [
                Effect::Persist {
                    op: Persist::HardState(_),
                    ..
                },
                Effect::Persist {
                    op: Persist::HardState(HardState {
                        vote: Some(NodeId(1)),
                        ..
                    }),
                    ..
                },
                Effect::Send {
                    msg: RaftMessage::RequestVoteResponse { granted: true, .. },
                    ..
                },
                Effect::RoleChanged { .. },
            ]
        ));
        let fx = recv(&mut r, 2, vote_req(1, 0, 0));
        assert_eq!(
            sends(&fx),
            vec![(
                NodeId(2),
                RaftMessage::RequestVoteResponse {
                    term: Term(1),
                    pre_vote: false,
                    granted: false
                }
            )]
        );
        assert!(persists(&fx).is_empty());
    }

    #[test]
    fn a_quorum_of_refusals_ends_the_candidacy() {
        let mut r = replica(config(1, &[1, 2, 3]));
        let fx = tick_n(&mut r, 20);
        persist_all(&mut r, &fx);
        let no = RaftMessage::RequestVoteResponse {
            term: Term(1),
            pre_vote: false,
            granted: false,
        };
        recv(&mut r, 2, no.clone());
        assert_eq!(r.status().role, Role::Candidate);
        recv(&mut r, 3, no);
        assert_eq!(r.status().role, Role::Follower);
    }

    #[test]
    fn pre_vote_does_not_raise_the_term_and_leads_to_a_real_election() {
        let mut c = config(1, &[1, 2, 3]);
        c.pre_vote = true;
        let mut r = replica(c);
        let fx = tick_n(&mut r, 20);
        assert_eq!(r.status().role, Role::PreCandidate);
        assert_eq!(r.status().epoch, Epoch(0));
        assert!(persists(&fx).is_empty(), "a pre-vote writes nothing");
        assert!(matches!(
            sends(&fx)[0].1,
            RaftMessage::RequestVote {
                term: Term(1),
                pre_vote: true,
                ..
            }
        ));
        let fx = recv(
            &mut r,
            2,
            RaftMessage::RequestVoteResponse {
                term: Term(1),
                pre_vote: true,
                granted: true,
            },
        );
        assert_eq!(r.status().role, Role::Candidate);
        assert_eq!(r.status().epoch, Epoch(1));
        assert!(!persists(&fx).is_empty());
    }

    #[test]
    fn campaign_starts_an_election_at_once_and_a_leader_ignores_it() {
        let mut r = replica(config(1, &[1, 2, 3]));
        let fx = step(&mut r, Input::Campaign);
        assert_eq!(r.status().role, Role::Candidate);
        assert_eq!(r.status().epoch, Epoch(1));
        assert!(!persists(&fx).is_empty(), "the term and vote are written");
        let mut c = config(1, &[1, 2, 3]);
        c.pre_vote = true;
        let mut r = replica(c);
        step(&mut r, Input::Campaign);
        assert_eq!(
            r.status().role,
            Role::PreCandidate,
            "pre-vote still comes first"
        );
        let mut leader = sole_leader(1);
        let fx = step(&mut leader, Input::Campaign);
        assert!(fx.is_empty(), "a leader ignores it: {fx:?}");
        assert_eq!(leader.status().role, Role::Leader);
    }

    #[test]
    fn a_voter_that_heard_a_leader_recently_ignores_a_disruptive_candidate() {
        let mut c = config(3, &[1, 2, 3]);
        // Timing out makes it a pre-candidate, which keeps its term and vote.
        c.pre_vote = true;
        let mut r = replica(c);
        recv(&mut r, 1, append(1, (0, 0), &[], 0));
        tick_n(&mut r, 3);
        let fx = recv(&mut r, 2, vote_req(2, 5, 1));
        assert!(fx.is_empty(), "ignored: {fx:?}");
        assert_eq!(r.status().epoch, Epoch(1));
        tick_n(&mut r, 10);
        let fx = recv(&mut r, 2, vote_req(2, 5, 1));
        assert!(first_is_grant(&fx));
    }

    #[test]
    fn check_quorum_counts_one_election_timeout_from_the_last_quorum_contact() {
        let mut c = config(1, &[1, 2, 3]);
        c.check_quorum = true;
        let mut r = replica(c);
        let fx = tick_n(&mut r, 20);
        persist_all(&mut r, &fx);
        recv(&mut r, 2, grant(1));
        tick_n(&mut r, 6);
        // Follower 2 answers: with the leader, a quorum of three is heard at this tick.
        recv(
            &mut r,
            2,
            RaftMessage::HeartbeatResponse {
                term: Term(1),
                read_round: 0,
                sent_tick: 0,
                log_behind: false,
            },
        );
        tick_n(&mut r, 9);
        assert_eq!(r.status().role, Role::Leader);
        tick_n(&mut r, 1);
        assert_eq!(r.status().role, Role::Follower);
    }

    #[test]
    fn check_quorum_makes_a_leader_that_hears_nobody_step_down() {
        let mut c = config(1, &[1, 2, 3]);
        c.check_quorum = true;
        let mut r = replica(c);
        let fx = tick_n(&mut r, 20);
        persist_all(&mut r, &fx);
        recv(&mut r, 2, grant(1));
        assert_eq!(r.status().role, Role::Leader);
        tick_n(&mut r, 9);
        assert_eq!(
            r.status().role,
            Role::Leader,
            "its election counts as contact: a fresh leader gets one election timeout"
        );
        let fx = tick_n(&mut r, 1);
        assert_eq!(
            r.status().role,
            Role::Follower,
            "isolated from its election on, it steps down after exactly one election timeout"
        );
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::RoleChanged {
                role: Role::Follower,
                ..
            }
        )));
    }

    #[test]
    fn priority_breaks_ties_between_equally_up_to_date_logs() {
        let mut c = config(3, &[1, 2, 3]);
        c.priority = 5;
        let mut r = replica(c);
        let mut low = vote_req(1, 0, 0);
        if let RaftMessage::RequestVote { priority, .. } = &mut low {
            *priority = 1;
        }
        let fx = recv(&mut r, 1, low);
        assert!(first_is_refusal(&fx));
        let fx = recv(&mut r, 2, vote_req(1, 1, 1));
        assert!(
            matches!(
                sends(&fx)[0].1,
                RaftMessage::RequestVoteResponse { granted: true, .. }
            ),
            "a longer log wins whatever the priority"
        );
    }
}

mod s5_3_replication {
    use super::*;

    #[test]
    fn a_follower_acknowledges_appended_entries_after_persisting_them() {
        let mut r = replica(config(2, &[1, 2, 3]));
        let fx = recv(&mut r, 1, append(1, (0, 0), &[(1, 1), (2, 1)], 0));
        assert!(matches!(
            fx.as_slice(),
            [
                Effect::Persist {
                    op: Persist::HardState(_),
                    ..
                },
                Effect::Persist {
                    op: Persist::Append { .. },
                    ..
                },
                Effect::Send { .. },
                Effect::RoleChanged { .. },
            ]
        ));
        assert_eq!(sends(&fx)[0].1, ack(1, 2));
    }

    #[test]
    fn a_mismatching_prev_entry_is_refused_with_a_conflict_hint() {
        let mut r = replica(config(2, &[1, 2, 3]));
        recv(&mut r, 1, append(1, (0, 0), &[(1, 1), (2, 1), (3, 1)], 0));
        let fx = recv(&mut r, 3, append(2, (3, 2), &[(4, 2)], 0));
        assert_eq!(
            sends(&fx)[0].1,
            RaftMessage::AppendEntriesResponse {
                term: Term(2),
                success: false,
                index: LogIndex(3),
                hint_index: LogIndex(1),
                hint_term: Some(Term(1)),
            }
        );
        let fx = recv(&mut r, 3, append(2, (7, 2), &[], 0));
        assert!(matches!(
            sends(&fx)[0].1,
            RaftMessage::AppendEntriesResponse {
                success: false,
                hint_index: LogIndex(4),
                hint_term: None,
                ..
            }
        ));
    }

    #[test]
    fn a_conflicting_suffix_is_replaced_and_the_write_discards_it() {
        let mut r = replica(config(2, &[1, 2, 3]));
        recv(&mut r, 1, append(1, (0, 0), &[(1, 1), (2, 1), (3, 1)], 1));
        let fx = recv(&mut r, 3, append(2, (1, 1), &[(2, 2)], 1));
        assert_eq!(r.status().last_index, LogIndex(2));
        match &persists(&fx).last().unwrap().1 {
            Persist::Append { entries } => {
                assert_eq!(
                    (entries[0].index, entries[0].epoch),
                    (LogIndex(2), Epoch(2))
                )
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(sends(&fx)[0].1, ack(2, 2));
    }

    #[test]
    fn entries_become_applicable_only_once_their_write_is_durable_however_many_are_pending() {
        let mut r = replica(config(2, &[1, 2, 3]));
        let mut last = None;
        for i in 1..=1100u64 {
            let fx = recv(
                &mut r,
                1,
                append(1, (i - 1, u64::from(i > 1)), &[(i, 1)], i),
            );
            assert!(applied_indexes(&fx).is_empty(), "nothing is durable yet");
            last = last_seq(&fx).or(last);
        }
        let fx = step(
            &mut r,
            Input::Persisted {
                through: last.unwrap(),
            },
        );
        let applied = applied_indexes(&fx);
        assert_eq!(applied.len(), 1100);
        assert_eq!(applied.last(), Some(&1100));
    }

    #[test]
    fn a_duplicate_append_writes_nothing_and_acknowledges_only_what_it_covers() {
        let mut r = replica(config(2, &[1, 2, 3]));
        recv(&mut r, 1, append(1, (0, 0), &[(1, 1), (2, 1), (3, 1)], 0));
        let fx = recv(&mut r, 1, append(1, (0, 0), &[(1, 1)], 0));
        assert!(persists(&fx).is_empty());
        assert_eq!(sends(&fx)[0].1, ack(1, 1));
        assert_eq!(
            r.status().last_index,
            LogIndex(3),
            "a stale append truncates nothing"
        );
    }

    #[test]
    fn the_leader_skips_a_whole_conflicting_term_in_one_step() {
        // Replica 1 restarts with five entries of term 1 and wins term 3.
        let entries = (1..=5)
            .map(|i| Entry::command(LogIndex(i), Epoch(1), Bytes::from_static(b"e")))
            .collect();
        let durable = rsm_core::Durable {
            hard_state: HardState {
                epoch: Epoch(2),
                ..HardState::default()
            },
            snapshot: None,
            entries,
        };
        let mut r = rsm_consensus::Raft::restore(config(1, &[1, 2, 3]), durable).unwrap();
        let fx = tick_n(&mut r, 20);
        persist_all(&mut r, &fx);
        let fx = recv(&mut r, 2, grant(3));
        assert_eq!(r.status().role, Role::Leader);
        assert!(sends(&fx).iter().any(|(to, m)| *to == NodeId(3)
            && matches!(
                m,
                RaftMessage::AppendEntries {
                    prev_index: LogIndex(5),
                    ..
                }
            )));
        // Follower 3 holds entries 2..=5 of term 2 from a leader that failed.
        let refuse = RaftMessage::AppendEntriesResponse {
            term: Term(3),
            success: false,
            index: LogIndex(5),
            hint_index: LogIndex(2),
            hint_term: Some(Term(2)),
        };
        let fx = recv(&mut r, 3, refuse);
        assert!(matches!(
            sends(&fx)[0],
            (
                NodeId(3),
                RaftMessage::AppendEntries {
                    prev_index: LogIndex(1),
                    prev_term: Term(1),
                    ..
                }
            )
        ));
        let p = r.progress(NodeId(3)).unwrap();
        assert_eq!((p.state, p.next_index), (ProgressState::Probe, LogIndex(2)));
        let stale = RaftMessage::AppendEntriesResponse {
            term: Term(3),
            success: false,
            index: LogIndex(4),
            hint_index: LogIndex(2),
            hint_term: None,
        };
        assert!(
            recv(&mut r, 3, stale).is_empty(),
            "a refusal of an old probe is ignored"
        );
    }

    #[test]
    fn a_follower_whose_log_went_backwards_is_probed_again_from_its_hint() {
        let mut r = committed_leader();
        for _ in 0..2 {
            let fx = step(
                &mut r,
                Input::Propose {
                    req: RequestId(1),
                    command: Bytes::from_static(b"x"),
                },
            );
            persist_all(&mut r, &fx);
        }
        recv(&mut r, 2, ack(1, 3));
        assert_eq!(r.progress(NodeId(2)).unwrap().match_index, LogIndex(3));
        // Follower 2 loses its disk and answers the leader's probe at its old match index
        // with an empty log: it lacks entry 3 and would take entry 1 next.
        let refuse = |index| RaftMessage::AppendEntriesResponse {
            term: Term(1),
            success: false,
            index: LogIndex(index),
            hint_index: LogIndex(1),
            hint_term: None,
        };
        // A refused append stays in flight; the next heartbeat round falls back to
        // probing at the match index.
        let proposed = step(
            &mut r,
            Input::Propose {
                req: RequestId(2),
                command: Bytes::from_static(b"y"),
            },
        );
        persist_all(&mut r, &proposed);
        assert!(
            recv(&mut r, 2, refuse(3)).is_empty(),
            "a refusal at the match index in the pipelined state is taken for an old one"
        );
        for _ in 0..10 {
            step(&mut r, Input::Tick);
            if r.progress(NodeId(2)).unwrap().state == ProgressState::Probe {
                break;
            }
        }
        let p = r.progress(NodeId(2)).unwrap();
        assert_eq!((p.state, p.next_index), (ProgressState::Probe, LogIndex(4)));
        let echo = RaftMessage::HeartbeatResponse {
            term: Term(1),
            read_round: 0,
            sent_tick: 0,
            log_behind: false,
        };
        let fx = recv(&mut r, 2, echo);
        assert!(sends(&fx).iter().any(|(to, m)| *to == NodeId(2)
            && matches!(
                m,
                RaftMessage::AppendEntries {
                    prev_index: LogIndex(3),
                    ..
                }
            )));
        let fx = recv(&mut r, 2, refuse(3));
        let p = r.progress(NodeId(2)).unwrap();
        assert_eq!(
            (p.state, p.match_index, p.next_index),
            (ProgressState::Probe, LogIndex(0), LogIndex(1)),
            "the leader forgets the match it remembered and searches from the hint"
        );
        assert!(matches!(
            &sends(&fx)[..],
            [(
                NodeId(2),
                RaftMessage::AppendEntries {
                    prev_index: LogIndex(0),
                    ..
                }
            )]
        ));
        let last = r.status().last_index;
        recv(&mut r, 2, ack(1, last.0));
        let p = r.progress(NodeId(2)).unwrap();
        assert_eq!(p.state, ProgressState::Replicate);
        assert_eq!(p.match_index, r.status().last_index);
        assert!(
            r.status().commit >= LogIndex(3),
            "the commit index never went back"
        );
    }

    #[test]
    fn a_wiped_follower_catches_up_by_entries_or_snapshot() {
        // Idle: no entry is proposed after the wipe, so only heartbeats reach the victim;
        // its answer that it lacks the commit index they carry is what starts the search.
        for (compact, idle) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut c = Cluster::with_voters(&[1, 2, 3], |c| {
                if compact {
                    c.snapshot_entries_threshold = 4;
                }
            });
            let leader = c.stable_leader(200).expect("a leader");
            let victim = if leader == NodeId(3) {
                NodeId(2)
            } else {
                NodeId(3)
            };
            for k in 0..10u8 {
                c.propose(leader, &[k]);
                c.run(1);
            }
            // The victim's disk is wiped while the cluster runs on: it restarts blank.
            let h = c.hosts.get_mut(&victim).unwrap();
            h.durable = rsm_core::Durable::default();
            c.restart(victim);
            c.take_effects(victim);
            if !idle {
                for k in 10..20u8 {
                    c.propose(leader, &[k]);
                    c.run(1);
                }
            }
            c.run(60);
            let commit = c.status(leader).commit;
            let least = if idle { LogIndex(11) } else { LogIndex(21) };
            assert!(
                commit >= least,
                "compact={compact} idle={idle}: commit {commit}"
            );
            assert_eq!(
                c.hosts[&victim].applied, commit,
                "compact={compact} idle={idle}: the wiped follower caught up"
            );
            assert_eq!(c.hosts[&victim].digest, c.hosts[&leader].digest);
            let installed = c
                .take_effects(victim)
                .iter()
                .any(|e| matches!(e, Effect::InstallSnapshot { .. }));
            assert_eq!(
                installed, compact,
                "caught up by snapshot only when compacted"
            );
        }
    }

    #[test]
    fn pipelining_is_bounded_by_the_inflight_window() {
        let mut c = config(1, &[1, 2, 3]);
        c.inflight_msgs_max = 2;
        c.msg_entries_max = 1;
        // Follower 2 acknowledges the no-op: it enters the pipelined state.
        let mut r = committed_leader_with(c);
        assert_eq!(
            r.progress(NodeId(2)).unwrap().state,
            ProgressState::Replicate
        );
        let mut appends_to_2 = 0;
        for k in 0..5 {
            let fx = step(
                &mut r,
                Input::Propose {
                    req: RequestId(k),
                    command: Bytes::from_static(b"x"),
                },
            );
            let fx2 = persist_all(&mut r, &fx);
            for (to, m) in sends(&fx).into_iter().chain(sends(&fx2)) {
                if to == NodeId(2) && matches!(m, RaftMessage::AppendEntries { .. }) {
                    appends_to_2 += 1;
                }
            }
        }
        assert_eq!(appends_to_2, 2, "two messages fill the window");
        let fx = recv(&mut r, 2, ack(1, 2));
        let more = sends(&fx)
            .into_iter()
            .filter(|(to, _)| *to == NodeId(2))
            .count();
        assert_eq!(more, 1, "one acknowledged message frees one slot");
    }

    #[test]
    fn the_inflight_window_is_also_bounded_in_bytes() {
        let mut c = config(1, &[1, 2]);
        c.inflight_bytes_max = 1000;
        c.msg_entries_max = 1;
        let mut r = committed_leader_with(c);
        let mut sent = 0;
        for k in 0..6 {
            let fx = step(
                &mut r,
                Input::Propose {
                    req: RequestId(k),
                    command: Bytes::from(vec![0u8; 400]),
                },
            );
            let more = persist_all(&mut r, &fx);
            sent += sends(&fx).len() + sends(&more).len();
        }
        assert_eq!(sent, 3, "three 424-byte entries reach the 1000-byte window");
    }

    #[test]
    fn proposals_arriving_while_a_write_is_in_flight_leave_as_one_batch() {
        let mut r = committed_leader();
        let fx = step(
            &mut r,
            Input::Propose {
                req: RequestId(1),
                command: Bytes::from_static(b"a"),
            },
        );
        assert_eq!(persists(&fx).len(), 1, "idle leader writes at once");
        let mut batched = Vec::new();
        for k in 2..=4 {
            batched.extend(step(
                &mut r,
                Input::Propose {
                    req: RequestId(k),
                    command: Bytes::from_static(b"b"),
                },
            ));
        }
        assert!(persists(&batched).is_empty());
        assert_eq!(
            batched
                .iter()
                .filter(|e| matches!(e, Effect::Proposed { .. }))
                .count(),
            3
        );
        let fx = persist_all(&mut r, &fx);
        match &persists(&fx)[..] {
            [(_, Persist::Append { entries })] => assert_eq!(entries.len(), 3),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_message_never_exceeds_the_size_limit_but_always_carries_one_entry() {
        let mut c = config(1, &[1, 2]);
        c.msg_bytes_max = 100;
        let mut r = committed_leader_with(c);
        let fx = step(
            &mut r,
            Input::Propose {
                req: RequestId(1),
                command: Bytes::from(vec![0u8; 300]),
            },
        );
        match &sends(&fx)[0].1 {
            RaftMessage::AppendEntries { entries, .. } => assert_eq!(entries.len(), 1),
            other => panic!("unexpected {other:?}"),
        }
    }
}

mod s5_4_safety {
    use super::*;

    #[test]
    fn a_vote_is_refused_to_a_candidate_with_a_less_up_to_date_log() {
        let mut c = config(3, &[1, 2, 3]);
        c.pre_vote = true;
        let mut r = replica(c);
        recv(&mut r, 1, append(2, (0, 0), &[(1, 1), (2, 2)], 0));
        tick_n(&mut r, 30);
        let fx = recv(&mut r, 2, vote_req(3, 5, 1));
        assert!(first_is_refusal(&fx));
        let fx = recv(&mut r, 2, vote_req(3, 2, 2));
        assert!(first_is_grant(&fx));
    }

    #[test]
    fn entries_of_an_earlier_term_commit_only_with_one_of_the_current_term() {
        // Replica 1 holds an entry of term 1 that it never committed, then wins term 2.
        let mut r = replica(config(1, &[1, 2, 3]));
        let fx = recv(&mut r, 2, append(1, (0, 0), &[(1, 1)], 0));
        persist_all(&mut r, &fx);
        let fx = tick_until_candidate(&mut r);
        persist_all(&mut r, &fx);
        let fx = recv(&mut r, 3, grant(2));
        persist_all(&mut r, &fx);
        assert_eq!(r.status().role, Role::Leader);
        assert_eq!(
            r.status().last_index,
            LogIndex(2),
            "no-op of term 2 at index 2"
        );
        recv(&mut r, 3, ack(2, 1));
        assert_eq!(
            r.status().commit,
            LogIndex(0),
            "a quorum on index 1 (term 1) does not commit it"
        );
        let fx = recv(&mut r, 3, ack(2, 2));
        assert_eq!(r.status().commit, LogIndex(2));
        assert_eq!(applied_indexes(&fx), vec![1, 2]);
    }

    #[test]
    fn the_leader_counts_its_own_log_only_once_durable() {
        let mut r = replica(config(1, &[1, 2, 3]));
        let fx = tick_n(&mut r, 20);
        persist_all(&mut r, &fx);
        let became = recv(&mut r, 2, grant(1));
        recv(&mut r, 2, ack(1, 1));
        assert_eq!(
            r.status().commit,
            LogIndex(0),
            "the no-op is not durable at the leader"
        );
        let fx = persist_all(&mut r, &became);
        assert_eq!(r.status().commit, LogIndex(1));
        assert_eq!(applied_indexes(&fx), vec![1]);
    }

    #[test]
    fn the_apply_window_waits_for_the_host_to_report_applied() {
        let mut c = config(1, &[1]);
        c.apply_lag_entries_max = 2;
        let mut r = replica(c);
        let mut applied = Vec::new();
        for _ in 0..100 {
            let fx = step(&mut r, Input::Tick);
            applied.extend(applied_indexes(&persist_settle(&mut r, fx)));
            if r.status().role == Role::Leader {
                break;
            }
        }
        for k in 0..4 {
            let fx = step(
                &mut r,
                Input::Propose {
                    req: RequestId(k),
                    command: Bytes::from_static(b"v"),
                },
            );
            applied.extend(applied_indexes(&persist_settle(&mut r, fx)));
        }
        assert_eq!(r.status().commit, LogIndex(5));
        assert_eq!(applied, vec![1, 2], "two entries fill the window");
        let fx = step(
            &mut r,
            Input::Applied {
                through: LogIndex(2),
            },
        );
        assert_eq!(applied_indexes(&fx), vec![3, 4]);
        let fx = step(
            &mut r,
            Input::Applied {
                through: LogIndex(4),
            },
        );
        assert_eq!(applied_indexes(&fx), vec![5]);
    }

    #[test]
    fn applied_entries_are_delivered_once_in_order() {
        let mut r = committed_leader();
        let mut applied = Vec::new();
        for k in 0..3 {
            let fx = step(
                &mut r,
                Input::Propose {
                    req: RequestId(k),
                    command: Bytes::from_static(b"v"),
                },
            );
            applied.extend(applied_indexes(&persist_all(&mut r, &fx)));
            let last = r.status().last_index.0;
            let fx = recv(&mut r, 2, ack(1, last));
            applied.extend(applied_indexes(&fx));
            let fx = recv(&mut r, 3, ack(1, last));
            applied.extend(applied_indexes(&fx));
        }
        assert_eq!(applied, vec![2, 3, 4]);
    }
}
