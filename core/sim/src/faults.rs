//! The fault vocabulary, how partitions are shaped, and how many of each were injected.

use std::fmt;

use rsm_core::{NodeId, Prng};

use super::network::Network;

/// Every kind of fault the simulator injects.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A message was dropped in transit.
    MessageLoss,
    /// A message was delivered twice.
    MessageDuplicate,
    /// The cluster was split in two groups that cannot talk.
    Partition,
    /// Some links were cut in one direction only.
    OneWayPartition,
    /// The leader was cut off from everyone.
    IsolateLeader,
    /// Two majorities that share one node were cut apart (the bridge talks to both).
    OverlappingMajorities,
    /// Every link was restored.
    Heal,
    /// A node crashed, losing unsynced writes.
    Crash,
    /// A crash kept part of the unsynced writes and tore the last one.
    TornWrite,
    /// A crashed node restarted from its durable state.
    Restart,
    /// A node stopped ticking and receiving for a while.
    Pause,
    /// The leader was asked to change the membership.
    Reconfigure,
    /// The leader was asked to hand over leadership.
    TransferLeadership,
    /// A node's disk was wiped (after the node was removed from the membership); it came
    /// back blank as a learner to catch up and be promoted.
    Wipe,
}

impl FaultKind {
    /// Every kind, in report order.
    pub const ALL: [FaultKind; 14] = [
        FaultKind::MessageLoss,
        FaultKind::MessageDuplicate,
        FaultKind::Partition,
        FaultKind::OneWayPartition,
        FaultKind::IsolateLeader,
        FaultKind::OverlappingMajorities,
        FaultKind::Heal,
        FaultKind::Crash,
        FaultKind::TornWrite,
        FaultKind::Restart,
        FaultKind::Pause,
        FaultKind::Reconfigure,
        FaultKind::TransferLeadership,
        FaultKind::Wipe,
    ];

    /// A stable, short name.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::MessageLoss => "message-loss",
            FaultKind::MessageDuplicate => "message-duplicate",
            FaultKind::Partition => "partition",
            FaultKind::OneWayPartition => "one-way-partition",
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::OverlappingMajorities => "overlapping-majorities",
            FaultKind::Heal => "heal",
            FaultKind::Crash => "crash",
            FaultKind::TornWrite => "torn-write",
            FaultKind::Restart => "restart",
            FaultKind::Pause => "pause",
            FaultKind::Reconfigure => "reconfigure",
            FaultKind::TransferLeadership => "transfer-leadership",
            FaultKind::Wipe => "wipe",
        }
    }
}

/// How many faults of each kind were injected.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts([u64; FaultKind::ALL.len()]);

impl FaultCounts {
    /// Count one more `kind`.
    pub fn add(&mut self, kind: FaultKind) {
        self.0[kind as usize] += 1;
    }

    /// The count for `kind`.
    pub fn get(&self, kind: FaultKind) -> u64 {
        self.0[kind as usize]
    }

    /// Add another run's counts.
    pub fn merge(&mut self, other: &FaultCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// Sum over all kinds.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for k in FaultKind::ALL {
            let n = self.get(k);
            if n == 0 {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{} {n}", k.name())?;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// Replace the network's cut links with a freshly drawn partition of `kind`. `leader` is
/// the node that currently leads, if any. Returns the kind actually applied (isolating a
/// leader falls back to a random split when there is none).
pub fn partition(
    net: &mut Network,
    kind: FaultKind,
    nodes: &[NodeId],
    leader: Option<NodeId>,
    rng: &mut Prng,
) -> FaultKind {
    net.heal();
    let mut shuffled = nodes.to_vec();
    rng.shuffle(&mut shuffled);
    match (kind, leader) {
        (FaultKind::IsolateLeader, Some(l)) => {
            let rest: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != l).collect();
            net.cut_between(&[l], &rest);
            FaultKind::IsolateLeader
        }
        (FaultKind::OneWayPartition, _) => {
            let cuts = rng.range(1, nodes.len() as u64 + 1);
            for _ in 0..cuts {
                let a = *rng.pick(nodes).expect("non-empty cluster");
                let b = *rng.pick(nodes).expect("non-empty cluster");
                net.cut_one_way(a, b);
            }
            FaultKind::OneWayPartition
        }
        (FaultKind::OverlappingMajorities, _) if nodes.len() >= 3 => {
            // Two groups of a majority each that share exactly one bridge node when the
            // size is odd (more when even): the bridge hears both sides, the sides do
            // not hear each other.
            let majority = nodes.len() / 2 + 1;
            let left = &shuffled[..majority];
            let right = &shuffled[nodes.len() - majority..];
            let only_left: Vec<NodeId> = left
                .iter()
                .copied()
                .filter(|n| !right.contains(n))
                .collect();
            let only_right: Vec<NodeId> = right
                .iter()
                .copied()
                .filter(|n| !left.contains(n))
                .collect();
            net.cut_between(&only_left, &only_right);
            FaultKind::OverlappingMajorities
        }
        _ => {
            let cut = rng.range(1, nodes.len() as u64) as usize;
            net.cut_between(&shuffled[..cut], &shuffled[cut..]);
            FaultKind::Partition
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::LinkFaults;

    fn ids(n: u64) -> Vec<NodeId> {
        (1..=n).map(NodeId).collect()
    }

    #[test]
    fn isolate_leader_cuts_it_off_both_ways() {
        let mut net = Network::new(LinkFaults::default());
        let kind = partition(
            &mut net,
            FaultKind::IsolateLeader,
            &ids(5),
            Some(NodeId(3)),
            &mut Prng::new(1),
        );
        assert_eq!(kind, FaultKind::IsolateLeader);
        for n in ids(5) {
            if n != NodeId(3) {
                assert!(!net.is_connected(NodeId(3), n) && !net.is_connected(n, NodeId(3)));
                assert!(net.is_connected(n, NodeId(if n == NodeId(1) { 2 } else { 1 })));
            }
        }
    }

    #[test]
    fn overlapping_majorities_leave_a_bridge() {
        for seed in 0..20 {
            let mut net = Network::new(LinkFaults::default());
            partition(
                &mut net,
                FaultKind::OverlappingMajorities,
                &ids(5),
                None,
                &mut Prng::new(seed),
            );
            let nodes = ids(5);
            // Exactly one node hears everyone.
            let bridges: Vec<NodeId> = nodes
                .iter()
                .copied()
                .filter(|&a| {
                    nodes
                        .iter()
                        .all(|&b| net.is_connected(a, b) && net.is_connected(b, a))
                })
                .collect();
            assert_eq!(bridges.len(), 1, "seed {seed}");
            assert!(net.is_partitioned());
        }
    }

    #[test]
    fn counts_add_merge_and_print() {
        let mut a = FaultCounts::default();
        a.add(FaultKind::Crash);
        a.add(FaultKind::Crash);
        let mut b = FaultCounts::default();
        b.add(FaultKind::Heal);
        a.merge(&b);
        assert_eq!(a.total(), 3);
        assert_eq!(a.to_string(), "heal 1, crash 2");
        assert_eq!(FaultCounts::default().to_string(), "none");
    }
}
