//! Partial partitions: topologies where some links work and others do not (the chained,
//! quorum-loss and constrained-election scenarios of the Omni-Paxos paper). The cluster
//! must settle on a leader connected to a quorum whenever a connected quorum containing an
//! electable node exists, and then keep it. Raft (with pre-vote and check-quorum) must not
//! even bump its term once settled; Multi-Paxos must keep its leader and ballot.

mod common;

use common::*;
use rsm_consensus::Paxos;
use rsm_core::{Epoch, NodeId, Replica};

/// Cut both directions of every listed link.
fn cut<R: Replica>(c: &mut Cluster<R>, links: &[(u64, u64)])
where
    R::Config: HasId,
{
    for &(a, b) in links {
        c.cut.insert((NodeId(a), NodeId(b)));
        c.cut.insert((NodeId(b), NodeId(a)));
    }
}

/// The highest term (or ballot) any replica has reached.
fn max_term<R: Replica>(c: &Cluster<R>) -> Epoch
where
    R::Config: HasId,
{
    c.hosts
        .values()
        .map(|h| h.raft.status().epoch)
        .max()
        .unwrap_or_default()
}

/// What "no more elections" means once settled: Raft's pre-vote keeps every replica's
/// term; a Paxos acceptor cut off from the leader may raise its own ballot (it cannot win
/// while the others hear the leader), but the leader keeps its ballot.
#[derive(Copy, Clone, Debug)]
enum Calm {
    Terms,
    LeaderBallot,
}

/// The newest epoch that counts for `calm`.
fn newest<R: Replica>(c: &Cluster<R>, calm: Calm) -> Epoch
where
    R::Config: HasId,
{
    match calm {
        Calm::Terms => max_term(c),
        Calm::LeaderBallot => c
            .leaders()
            .into_iter()
            .map(|l| c.status(l).epoch)
            .max()
            .unwrap_or_default(),
    }
}

/// Run until one leader exists; then demand that it keeps leading, that nothing is
/// re-elected (`calm`) for `calm_rounds` rounds, and that a proposal at it commits.
fn assert_settles<R: Replica>(
    c: &mut Cluster<R>,
    calm: Calm,
    settle_rounds: usize,
    calm_rounds: usize,
) -> NodeId
where
    R::Config: HasId,
{
    let mut settled = None;
    for _ in 0..settle_rounds {
        c.run(1);
        let leaders = c.leaders();
        if leaders.len() == 1 {
            // Leaders of stale terms can linger in a minority; demand the newest term.
            let l = leaders[0];
            if c.status(l).epoch == newest(c, calm) {
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
        .find(|&l| c.status(l).epoch == newest(c, calm));
    let leader = leader.expect("a leader of the newest term");
    let term = newest(c, calm);
    c.run(calm_rounds);
    assert_eq!(newest(c, calm), term, "no term bumps once settled");
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

fn paxos_cluster(n: u64, seed_salt: u64) -> Cluster<Paxos> {
    let voters: Vec<u64> = (1..=n).collect();
    Cluster::paxos(&voters, |c| c.seed ^= seed_salt)
}

fn elect<R: Replica>(c: &mut Cluster<R>) -> NodeId
where
    R::Config: HasId,
{
    c.stable_leader(500).expect("initial election")
}

#[test]
fn a_healthy_cluster_never_bumps_its_term() {
    healthy(cluster);
}

#[test]
fn paxos_a_healthy_cluster_keeps_its_ballot() {
    healthy(paxos_cluster);
}

fn healthy<R: Replica>(cluster: fn(u64, u64) -> Cluster<R>)
where
    R::Config: HasId,
{
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
            println!("{n} nodes, salt {salt}: {bumps} epoch bumps in 1000 healthy rounds");
            assert_eq!(bumps, 0);
            assert_eq!(c.leaders(), vec![leader]);
        }
    }
}

#[test]
fn chained_topology_keeps_or_regains_a_leader() {
    chained(cluster, Calm::Terms);
}

#[test]
fn paxos_chained_topology_keeps_or_regains_a_leader() {
    chained(paxos_cluster, Calm::LeaderBallot);
}

fn chained<R: Replica>(cluster: fn(u64, u64) -> Cluster<R>, calm: Calm)
where
    R::Config: HasId,
{
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
        let leader = assert_settles(&mut c, calm, 500, 300);
        assert!(leader != NodeId(b) || first == NodeId(b));
    }
}

#[test]
fn quorum_loss_makes_the_leader_step_down_and_the_majority_elect() {
    quorum_loss(cluster, Calm::Terms);
}

#[test]
fn paxos_quorum_loss_makes_the_leader_step_down_and_the_majority_elect() {
    quorum_loss(paxos_cluster, Calm::LeaderBallot);
}

fn quorum_loss<R: Replica>(cluster: fn(u64, u64) -> Cluster<R>, calm: Calm)
where
    R::Config: HasId,
{
    // The leader keeps a link to one follower only; the other three are fully connected.
    for salt in 0..10 {
        let mut c = cluster(5, salt);
        let old = elect(&mut c);
        let others: Vec<u64> = (1..=5).filter(|&i| i != old.0).collect();
        let keep = others[0];
        let links: Vec<(u64, u64)> = others[1..].iter().map(|&o| (old.0, o)).collect();
        cut(&mut c, &links);
        let leader = assert_settles(&mut c, calm, 500, 300);
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
        let settled = assert_settles(&mut c, Calm::Terms, 800, 300);
        assert_ne!(settled, NodeId(1), "node 1's log is too old to win");
    }
}

#[test]
fn an_isolated_node_rejoins_without_disturbing_the_leader() {
    isolated_rejoin(cluster, Calm::Terms);
}

/// A Paxos node cut off for long raised its ballot while it campaigned alone; when it
/// comes back, the leader runs phase 1 above that ballot and keeps leading.
#[test]
fn paxos_an_isolated_node_rejoins_and_the_leader_keeps_leading() {
    isolated_rejoin(paxos_cluster, Calm::LeaderBallot);
}

fn isolated_rejoin<R: Replica>(cluster: fn(u64, u64) -> Cluster<R>, calm: Calm)
where
    R::Config: HasId,
{
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
        let campaigned_alone = c.status(victim).epoch > c.status(leader).epoch;
        c.heal();
        c.run(200);
        match calm {
            Calm::Terms => assert_eq!(max_term(&c), term, "pre-vote kept the term"),
            Calm::LeaderBallot => assert!(campaigned_alone, "it raised its ballot alone"),
        }
        assert_eq!(c.leaders(), vec![leader]);
        assert_eq!(c.status(victim).commit, c.status(leader).commit);
    }
}

/// The constrained election of the Omni-Paxos paper: node 1 falls behind while isolated,
/// then the cut moves so that 1 reaches everyone but 2 and 3 cannot reach each other.
/// Phase 1 recovers the log, so any node reaching a quorum may lead; what must not happen
/// is 2 and 3 preempting each other through node 1 forever.
#[test]
fn paxos_constrained_election_settles() {
    for salt in 0..10 {
        let mut c = paxos_cluster(3, salt);
        let leader = elect(&mut c);
        let behind = if leader == NodeId(1) {
            NodeId(2)
        } else {
            NodeId(1)
        };
        c.isolate(behind);
        for k in 0..5 {
            c.propose(leader, &[k]);
            c.run(3);
        }
        c.heal();
        let others: Vec<u64> = (1..=3).filter(|&i| i != behind.0).collect();
        cut(&mut c, &[(others[0], others[1])]);
        let settled = assert_settles(&mut c, Calm::LeaderBallot, 800, 300);
        c.run(20);
        assert_eq!(
            c.status(behind).commit,
            c.status(settled).commit,
            "the node that fell behind caught up"
        );
    }
}
