//! Partial partitions: topologies where some links work and others do not. With pre-vote
//! and check-quorum, the cluster must settle on a leader connected to a quorum whenever a
//! connected quorum containing an electable node exists, and then keep it: no more term
//! bumps.

mod common;

use common::*;
use rsm_core::{Epoch, NodeId, Replica};

/// Cut both directions of every listed link.
fn cut(c: &mut Cluster, links: &[(u64, u64)]) {
    for &(a, b) in links {
        c.cut.insert((NodeId(a), NodeId(b)));
        c.cut.insert((NodeId(b), NodeId(a)));
    }
}

/// The highest term any replica has reached.
fn max_term(c: &Cluster) -> Epoch {
    c.hosts
        .values()
        .map(|h| h.raft.status().epoch)
        .max()
        .unwrap_or_default()
}

/// Run until one leader exists; then demand that it keeps leading, that no replica raises
/// its term for `calm_rounds` rounds, and that a proposal at it commits.
fn assert_settles(c: &mut Cluster, settle_rounds: usize, calm_rounds: usize) -> NodeId {
    let mut settled = None;
    for _ in 0..settle_rounds {
        c.run(1);
        let leaders = c.leaders();
        if leaders.len() == 1 {
            // Leaders of stale terms can linger in a minority; demand the newest term.
            let l = leaders[0];
            if c.status(l).epoch == max_term(c) {
                settled = Some(l);
                break;
            }
        }
    }
    settled.expect("a leader emerges");
    // Let stragglers finish the election they were in.
    c.run(40);
    let leader = c
        .leaders()
        .into_iter()
        .find(|&l| c.status(l).epoch == max_term(c));
    let leader = leader.expect("a leader of the newest term");
    let term = max_term(c);
    c.run(calm_rounds);
    assert_eq!(max_term(c), term, "no term bumps once settled");
    assert_eq!(c.leaders(), vec![leader], "the leader keeps leading");
    let before = c.status(leader).commit;
    c.propose(leader, b"after-partition");
    c.run(5);
    assert!(c.status(leader).commit > before, "a proposal commits");
    leader
}

fn cluster(n: u64, seed_salt: u64) -> Cluster {
    let voters: Vec<u64> = (1..=n).collect();
    Cluster::with_voters(&voters, |c| c.seed ^= seed_salt)
}

fn elect(c: &mut Cluster) -> NodeId {
    c.stable_leader(500).expect("initial election")
}

#[test]
fn a_healthy_cluster_never_bumps_its_term() {
    for n in [3, 5, 7] {
        for salt in 0..5 {
            let mut c = cluster(n, salt);
            let leader = elect(&mut c);
            c.run(20);
            let term = max_term(&c);
            for k in 0..50 {
                c.propose(leader, &[k]);
                c.run(20);
            }
            let bumps = max_term(&c).0 - term.0;
            println!("{n} nodes, salt {salt}: {bumps} term bumps in 1000 healthy rounds");
            assert_eq!(bumps, 0);
            assert_eq!(c.leaders(), vec![leader]);
        }
    }
}

#[test]
fn chained_topology_keeps_or_regains_a_leader() {
    // 1 - 2 - 3: the ends cannot talk. Whoever led, the middle node can reach everyone.
    for salt in 0..10 {
        let mut c = cluster(3, salt);
        let first = elect(&mut c);
        let (a, b) = match first.0 {
            2 => (1, 3),
            1 => (1, 3),
            _ => (3, 1),
        };
        cut(&mut c, &[(a, b)]);
        let leader = assert_settles(&mut c, 500, 300);
        assert!(leader != NodeId(b) || first == NodeId(b));
    }
}

#[test]
fn quorum_loss_makes_the_leader_step_down_and_the_majority_elect() {
    // The leader keeps a link to one follower only; the other three are fully connected.
    for salt in 0..10 {
        let mut c = cluster(5, salt);
        let old = elect(&mut c);
        let others: Vec<u64> = (1..=5).filter(|&i| i != old.0).collect();
        let keep = others[0];
        let links: Vec<(u64, u64)> = others[1..].iter().map(|&o| (old.0, o)).collect();
        cut(&mut c, &links);
        let leader = assert_settles(&mut c, 500, 300);
        assert_ne!(leader, old, "the leader without a quorum stepped down");
        let _ = keep;
    }
}

#[test]
fn constrained_election_elects_the_only_node_that_can_win() {
    // Node 1 falls behind while isolated, then the cut moves: 1 reaches everyone, but 2
    // and 3 cannot reach each other. Only a node with the newest log can win, and only a
    // node reaching a quorum can lead.
    for salt in 0..10 {
        let mut c = cluster(3, salt);
        let mut leader = elect(&mut c);
        if leader == NodeId(1) {
            c.input(
                leader,
                rsm_core::Input::TransferLeadership {
                    req: rsm_core::RequestId(90),
                    to: NodeId(2),
                },
            );
            c.run(30);
            leader = c.stable_leader(300).expect("transfer completes");
        }
        c.isolate(NodeId(1));
        for k in 0..5 {
            c.propose(leader, &[k]);
            c.run(3);
        }
        c.heal();
        cut(&mut c, &[(2, 3)]);
        let settled = assert_settles(&mut c, 800, 300);
        assert_ne!(settled, NodeId(1), "node 1's log is too old to win");
    }
}

#[test]
fn an_isolated_node_rejoins_without_disturbing_the_leader() {
    for salt in 0..10 {
        let mut c = cluster(5, salt);
        let leader = elect(&mut c);
        let victim = if leader == NodeId(5) {
            NodeId(4)
        } else {
            NodeId(5)
        };
        c.isolate(victim);
        c.run(200);
        let term = max_term(&c);
        c.heal();
        c.run(200);
        assert_eq!(max_term(&c), term, "pre-vote kept the term");
        assert_eq!(c.leaders(), vec![leader]);
        assert_eq!(c.status(victim).commit, c.status(leader).commit);
    }
}
