//! Cluster membership and quorum systems, shared by every protocol.
//!
//! A configuration names its voters (and, during a joint change, the outgoing voters) and
//! how many of each half make a quorum in each [`Phase`]: a majority by default, or
//! flexible sizes (Howard, Malkhi and Spiegelman, "Flexible Paxos", 2016) where only
//! phase-1 and phase-2 quorums need to intersect. Every quorum decision of every protocol
//! goes through one function, [`Membership::quorum_value`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::QuorumError;
use crate::ids::NodeId;

/// The two kinds of decision a quorum makes.
///
/// Safety needs only that every phase-1 quorum intersects every phase-2 quorum: a new
/// leader (phase 1) then always meets some replica that acknowledged whatever an older
/// leader decided (phase 2).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Electing a leader: Raft votes, Paxos prepare/promise, a VSR view change.
    One,
    /// Deciding under a leader: committing entries (Raft append acknowledgements, Paxos
    /// accepts, VSR prepare-oks), and confirming leadership for reads and leases.
    Two,
}

/// How many voters of one configuration half make a quorum in each phase.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QuorumSizes {
    /// A majority of the half's voters in both phases.
    #[default]
    Majority,
    /// Any `phase1` voters for phase 1 and any `phase2` voters for phase 2. Valid when
    /// both are between 1 and the number of voters and `phase1 + phase2 > voters`
    /// ([`Membership::check`]).
    Flexible {
        /// Voters needed to elect a leader.
        phase1: u32,
        /// Voters needed to decide under a leader.
        phase2: u32,
    },
}

impl QuorumSizes {
    /// How many of `voters` make a quorum in `phase` (0 when there are no voters: no
    /// quorum can form).
    pub fn size(self, phase: Phase, voters: usize) -> usize {
        if voters == 0 {
            return 0;
        }
        match (self, phase) {
            (QuorumSizes::Majority, _) => voters / 2 + 1,
            (QuorumSizes::Flexible { phase1, .. }, Phase::One) => phase1 as usize,
            (QuorumSizes::Flexible { phase2, .. }, Phase::Two) => phase2 as usize,
        }
    }

    /// Whether these sizes make a valid quorum system over `voters` voters.
    pub fn check(self, voters: usize) -> Result<(), QuorumError> {
        let QuorumSizes::Flexible { phase1, phase2 } = self else {
            return Ok(());
        };
        for (phase, size) in [(Phase::One, phase1), (Phase::Two, phase2)] {
            if size == 0 || size as usize > voters {
                return Err(QuorumError::SizeOutOfRange {
                    phase,
                    size,
                    voters,
                });
            }
        }
        if (phase1 + phase2) as usize <= voters {
            return Err(QuorumError::NoIntersection {
                phase1,
                phase2,
                voters,
            });
        }
        Ok(())
    }
}

/// Who belongs to the cluster, and what makes a quorum of it.
///
/// In a joint configuration (`outgoing` is non-empty) a decision needs a quorum of
/// `voters` (sized by `quorum`) *and* a quorum of `outgoing` (sized by `outgoing_quorum`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// Voters of the (incoming) configuration.
    pub voters: BTreeSet<NodeId>,
    /// Voters of the outgoing configuration while a joint change is in progress; empty otherwise.
    pub outgoing: BTreeSet<NodeId>,
    /// Non-voting members that receive the log.
    pub learners: BTreeSet<NodeId>,
    /// Quorum sizes among `voters`.
    pub quorum: QuorumSizes,
    /// Quorum sizes among `outgoing` (majority outside a joint change).
    pub outgoing_quorum: QuorumSizes,
}

impl Membership {
    /// A simple configuration of voters and no learners.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            voters: voters.into_iter().collect(),
            ..Self::default()
        }
    }

    /// A configuration of voters and learners.
    pub fn with_learners(
        voters: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
    ) -> Self {
        Self {
            voters: voters.into_iter().collect(),
            learners: learners.into_iter().collect(),
            ..Self::default()
        }
    }

    /// The same configuration with `quorum` as the quorum sizes of its voters, checked.
    pub fn with_quorum(mut self, quorum: QuorumSizes) -> Result<Self, QuorumError> {
        self.quorum = quorum;
        self.check()?;
        Ok(self)
    }

    /// Whether both halves' quorum sizes make valid quorum systems (phase-1 and phase-2
    /// quorums intersect). Protocols check this when they are configured and before they
    /// adopt a new configuration.
    pub fn check(&self) -> Result<(), QuorumError> {
        self.quorum.check(self.voters.len())?;
        if self.is_joint() {
            self.outgoing_quorum.check(self.outgoing.len())?;
        }
        Ok(())
    }

    /// Whether a joint change is in progress.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `id` votes in either half of the configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    /// Whether `id` is a learner (and not a voter).
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id) && !self.is_voter(id)
    }

    /// Whether `id` belongs to the configuration in any role.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every member (voters of both halves and learners), ascending, without duplicates.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        let all: BTreeSet<NodeId> = self
            .voters
            .iter()
            .chain(&self.outgoing)
            .chain(&self.learners)
            .copied()
            .collect();
        all.into_iter()
    }

    /// Every voter of either half, ascending, without duplicates.
    pub fn all_voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        let all: BTreeSet<NodeId> = self.voters.iter().chain(&self.outgoing).copied().collect();
        all.into_iter()
    }

    /// The joint configuration that moves from `self` to `target`: `target`'s voters,
    /// learners and quorum sizes, with `self`'s voters and sizes as the outgoing half.
    /// `None` if `self` is already joint.
    pub fn enter_joint(&self, target: &Membership) -> Option<Membership> {
        if self.is_joint() {
            return None;
        }
        let mut learners = target.learners.clone();
        learners.retain(|id| !target.voters.contains(id));
        Some(Membership {
            voters: target.voters.clone(),
            outgoing: self.voters.clone(),
            learners,
            quorum: target.quorum,
            outgoing_quorum: self.quorum,
        })
    }

    /// The configuration that leaves a joint one: the incoming half alone.
    pub fn leave_joint(&self) -> Membership {
        Membership {
            voters: self.voters.clone(),
            outgoing: BTreeSet::new(),
            learners: self.learners.clone(),
            quorum: self.quorum,
            outgoing_quorum: QuorumSizes::default(),
        }
    }

    /// The one quorum function: the greatest value that a `phase` quorum of voters has
    /// all reached, given each voter's value. In each half it is the `q`-th largest of
    /// the voters' values (`q` the half's quorum size); in a joint configuration, the
    /// smaller of the two halves' results. `T::default()` when no quorum can form.
    ///
    /// With log indexes it is the index a quorum holds (the commit rule); with booleans
    /// (`false < true`) whether the nodes answering `true` form a quorum; with ticks, the
    /// newest time a whole quorum has confirmed.
    pub fn quorum_value<T: Ord + Copy + Default>(
        &self,
        phase: Phase,
        mut value: impl FnMut(NodeId) -> T,
    ) -> T {
        let incoming = half_value(&self.voters, self.quorum, phase, &mut value);
        if self.outgoing.is_empty() {
            incoming
        } else {
            incoming.min(half_value(
                &self.outgoing,
                self.outgoing_quorum,
                phase,
                &mut value,
            ))
        }
    }

    /// Whether the nodes for which `granted` returns true form a `phase` quorum.
    pub fn is_quorum(&self, phase: Phase, granted: impl FnMut(NodeId) -> bool) -> bool {
        self.quorum_value(phase, granted)
    }

    /// The outcome of a vote: `Some(true)` when the granted nodes form a `phase` quorum,
    /// `Some(false)` when the rejected ones make such a quorum impossible, `None` while
    /// undecided.
    pub fn vote_result(
        &self,
        phase: Phase,
        mut vote: impl FnMut(NodeId) -> Option<bool>,
    ) -> Option<bool> {
        if self.is_quorum(phase, |id| vote(id) == Some(true)) {
            Some(true)
        } else if !self.is_quorum(phase, |id| vote(id) != Some(false)) {
            Some(false)
        } else {
            None
        }
    }
}

/// [`Membership::quorum_value`] over one half.
fn half_value<T: Ord + Copy + Default>(
    set: &BTreeSet<NodeId>,
    sizes: QuorumSizes,
    phase: Phase,
    value: &mut impl FnMut(NodeId) -> T,
) -> T {
    let n = set.len();
    let q = sizes.size(phase, n);
    if q == 0 || q > n {
        return T::default();
    }
    // Clusters have a handful of voters: a small stack buffer keeps this allocation-free
    // on the commit path.
    let mut buf = [T::default(); 16];
    if n <= buf.len() {
        for (slot, &id) in buf.iter_mut().zip(set) {
            *slot = value(id);
        }
        let s = &mut buf[..n];
        s.sort_unstable_by(|a, b| b.cmp(a));
        s[q - 1]
    } else {
        let mut v: Vec<T> = set.iter().map(|&id| value(id)).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v[q - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::LogIndex;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn majority_of_three_and_four() {
        let m3 = Membership::new(ids(&[1, 2, 3]));
        assert!(m3.is_quorum(Phase::Two, |id| id.0 <= 2));
        assert!(!m3.is_quorum(Phase::Two, |id| id.0 == 1));
        let m4 = Membership::new(ids(&[1, 2, 3, 4]));
        assert!(
            !m4.is_quorum(Phase::Two, |id| id.0 <= 2),
            "two of four is not a majority"
        );
        assert!(m4.is_quorum(Phase::Two, |id| id.0 <= 3));
    }

    #[test]
    fn joint_quorum_needs_both_halves() {
        let old = Membership::new(ids(&[1, 2, 3]));
        let joint = old.enter_joint(&Membership::new(ids(&[3, 4, 5]))).unwrap();
        assert!(joint.is_joint());
        // 1,2 is a majority of the old half only.
        assert!(!joint.is_quorum(Phase::Two, |id| id.0 <= 2));
        // 3,4 is a majority of the new half only.
        assert!(!joint.is_quorum(Phase::Two, |id| id.0 == 3 || id.0 == 4));
        assert!(joint.is_quorum(Phase::Two, |id| [2, 3, 4].contains(&id.0)));
        assert_eq!(joint.leave_joint(), Membership::new(ids(&[3, 4, 5])));
        assert!(joint.enter_joint(&old).is_none());
    }

    #[test]
    fn vote_result_decides_early() {
        let m = Membership::new(ids(&[1, 2, 3, 4, 5]));
        assert_eq!(
            m.vote_result(Phase::One, |id| (id.0 <= 2).then_some(true)),
            None
        );
        assert_eq!(
            m.vote_result(Phase::One, |id| (id.0 <= 3).then_some(true)),
            Some(true)
        );
        assert_eq!(
            m.vote_result(Phase::One, |id| (id.0 <= 3).then_some(false)),
            Some(false)
        );
    }

    #[test]
    fn quorum_index_is_median_and_joint_takes_min() {
        let m = Membership::new(ids(&[1, 2, 3]));
        assert_eq!(
            m.quorum_value(Phase::Two, |id| LogIndex(id.0 * 10)),
            LogIndex(20)
        );
        let joint = m.enter_joint(&Membership::new(ids(&[4, 5, 6]))).unwrap();
        // Old half: 10,20,30 -> 20. New half: 40,50,60 -> 50. Joint -> 20.
        assert_eq!(
            joint.quorum_value(Phase::Two, |id| LogIndex(id.0 * 10)),
            LogIndex(20)
        );
    }

    #[test]
    fn flexible_quorums_are_checked_and_counted_per_phase() {
        let five = Membership::new(ids(&[1, 2, 3, 4, 5]));
        assert_eq!(
            five.clone().with_quorum(QuorumSizes::Flexible {
                phase1: 2,
                phase2: 3
            }),
            Err(QuorumError::NoIntersection {
                phase1: 2,
                phase2: 3,
                voters: 5
            })
        );
        assert!(matches!(
            five.clone().with_quorum(QuorumSizes::Flexible {
                phase1: 6,
                phase2: 2
            }),
            Err(QuorumError::SizeOutOfRange {
                phase: Phase::One,
                ..
            })
        ));
        // Elections need four, decisions two: 4 + 2 > 5.
        let m = five
            .with_quorum(QuorumSizes::Flexible {
                phase1: 4,
                phase2: 2,
            })
            .unwrap();
        assert!(m.is_quorum(Phase::Two, |id| id.0 <= 2));
        assert!(!m.is_quorum(Phase::One, |id| id.0 <= 3));
        assert!(m.is_quorum(Phase::One, |id| id.0 <= 4));
        assert_eq!(
            m.quorum_value(Phase::Two, |id| LogIndex(id.0 * 10)),
            LogIndex(40)
        );
        assert_eq!(
            m.vote_result(Phase::One, |id| (id.0 <= 2).then_some(false)),
            Some(false),
            "two refusals leave only three, short of four"
        );
    }

    #[test]
    fn joint_change_carries_each_half_its_own_sizes() {
        let old = Membership::new(ids(&[1, 2, 3]))
            .with_quorum(QuorumSizes::Flexible {
                phase1: 3,
                phase2: 1,
            })
            .unwrap();
        let joint = old.enter_joint(&Membership::new(ids(&[4, 5, 6]))).unwrap();
        assert_eq!(joint.check(), Ok(()));
        // Phase 2 needs one of the old half and a majority of the new one.
        assert!(joint.is_quorum(Phase::Two, |id| [1, 4, 5].contains(&id.0)));
        assert!(!joint.is_quorum(Phase::Two, |id| [1, 4].contains(&id.0)));
        assert_eq!(joint.leave_joint().outgoing_quorum, QuorumSizes::Majority);
    }

    #[test]
    fn no_voters_never_make_a_quorum() {
        let empty = Membership::default();
        assert!(!empty.is_quorum(Phase::Two, |_| true));
        assert_eq!(empty.vote_result(Phase::One, |_| Some(true)), Some(false));
    }
}
