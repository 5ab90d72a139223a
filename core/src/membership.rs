//! Cluster membership and quorum counting, shared by every protocol.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::{LogIndex, NodeId};

/// Who belongs to the cluster.
///
/// In a joint configuration (`outgoing` is non-empty) a decision needs a majority of
/// `voters` *and* a majority of `outgoing`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// Voters of the (incoming) configuration.
    pub voters: BTreeSet<NodeId>,
    /// Voters of the outgoing configuration while a joint change is in progress; empty otherwise.
    pub outgoing: BTreeSet<NodeId>,
    /// Non-voting members that receive the log.
    pub learners: BTreeSet<NodeId>,
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
            outgoing: BTreeSet::new(),
            learners: learners.into_iter().collect(),
        }
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

    /// The joint configuration that moves from `self` to `target`: `target`'s voters and
    /// learners with `self`'s voters as the outgoing half. `None` if `self` is already joint.
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
        })
    }

    /// The configuration that leaves a joint one: the incoming half alone.
    pub fn leave_joint(&self) -> Membership {
        Membership {
            voters: self.voters.clone(),
            outgoing: BTreeSet::new(),
            learners: self.learners.clone(),
        }
    }

    /// Whether the nodes for which `granted` returns true form a quorum: a majority of
    /// `voters`, and in a joint configuration also a majority of `outgoing`.
    /// An empty half never forms a quorum on its own but does not block the other half
    /// when it is the (empty) outgoing one.
    pub fn is_quorum(&self, mut granted: impl FnMut(NodeId) -> bool) -> bool {
        majority(&self.voters, &mut granted)
            && (self.outgoing.is_empty() || majority(&self.outgoing, &mut granted))
    }

    /// The outcome of a vote: `Some(true)` when the granted nodes form a quorum,
    /// `Some(false)` when the rejected ones make a quorum impossible, `None` while undecided.
    pub fn vote_result(&self, mut vote: impl FnMut(NodeId) -> Option<bool>) -> Option<bool> {
        let a = half_vote(&self.voters, &mut vote);
        let b = if self.outgoing.is_empty() {
            Some(true)
        } else {
            half_vote(&self.outgoing, &mut vote)
        };
        match (a, b) {
            (Some(true), Some(true)) => Some(true),
            (Some(false), _) | (_, Some(false)) => Some(false),
            _ => None,
        }
    }

    /// The highest index that a quorum has reached, given each voter's matched index.
    /// In a joint configuration, the lower of the two halves' quorum indexes.
    pub fn quorum_index(&self, mut matched: impl FnMut(NodeId) -> LogIndex) -> LogIndex {
        let a = half_quorum_index(&self.voters, &mut matched);
        if self.outgoing.is_empty() {
            a
        } else {
            a.min(half_quorum_index(&self.outgoing, &mut matched))
        }
    }
}

fn majority(set: &BTreeSet<NodeId>, granted: &mut impl FnMut(NodeId) -> bool) -> bool {
    if set.is_empty() {
        return false;
    }
    let yes = set.iter().filter(|&&id| granted(id)).count();
    yes > set.len() / 2
}

fn half_vote(
    set: &BTreeSet<NodeId>,
    vote: &mut impl FnMut(NodeId) -> Option<bool>,
) -> Option<bool> {
    if set.is_empty() {
        return Some(false);
    }
    let (mut yes, mut no) = (0, 0);
    for &id in set {
        match vote(id) {
            Some(true) => yes += 1,
            Some(false) => no += 1,
            None => {}
        }
    }
    let need = set.len() / 2 + 1;
    if yes >= need {
        Some(true)
    } else if no > set.len() - need {
        Some(false)
    } else {
        None
    }
}

fn half_quorum_index(
    set: &BTreeSet<NodeId>,
    matched: &mut impl FnMut(NodeId) -> LogIndex,
) -> LogIndex {
    if set.is_empty() {
        return LogIndex(0);
    }
    // At most a handful of voters: a small stack buffer keeps this allocation-free.
    let mut buf = [LogIndex(0); 16];
    if set.len() <= buf.len() {
        let n = set.len();
        for (slot, &id) in buf.iter_mut().zip(set) {
            *slot = matched(id);
        }
        let s = &mut buf[..n];
        s.sort_unstable_by(|a, b| b.cmp(a));
        s[n / 2]
    } else {
        let mut v: Vec<LogIndex> = set.iter().map(|&id| matched(id)).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v[set.len() / 2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn majority_of_three_and_four() {
        let m3 = Membership::new(ids(&[1, 2, 3]));
        assert!(m3.is_quorum(|id| id.0 <= 2));
        assert!(!m3.is_quorum(|id| id.0 == 1));
        let m4 = Membership::new(ids(&[1, 2, 3, 4]));
        assert!(
            !m4.is_quorum(|id| id.0 <= 2),
            "two of four is not a majority"
        );
        assert!(m4.is_quorum(|id| id.0 <= 3));
    }

    #[test]
    fn joint_quorum_needs_both_halves() {
        let old = Membership::new(ids(&[1, 2, 3]));
        let joint = old.enter_joint(&Membership::new(ids(&[3, 4, 5]))).unwrap();
        assert!(joint.is_joint());
        // 1,2 is a majority of the old half only.
        assert!(!joint.is_quorum(|id| id.0 <= 2));
        // 3,4 is a majority of the new half only.
        assert!(!joint.is_quorum(|id| id.0 == 3 || id.0 == 4));
        assert!(joint.is_quorum(|id| [2, 3, 4].contains(&id.0)));
        assert_eq!(joint.leave_joint(), Membership::new(ids(&[3, 4, 5])));
        assert!(joint.enter_joint(&old).is_none());
    }

    #[test]
    fn vote_result_decides_early() {
        let m = Membership::new(ids(&[1, 2, 3, 4, 5]));
        assert_eq!(m.vote_result(|id| (id.0 <= 2).then_some(true)), None);
        assert_eq!(m.vote_result(|id| (id.0 <= 3).then_some(true)), Some(true));
        assert_eq!(
            m.vote_result(|id| (id.0 <= 3).then_some(false)),
            Some(false)
        );
    }

    #[test]
    fn quorum_index_is_median_and_joint_takes_min() {
        let m = Membership::new(ids(&[1, 2, 3]));
        assert_eq!(m.quorum_index(|id| LogIndex(id.0 * 10)), LogIndex(20));
        let joint = m.enter_joint(&Membership::new(ids(&[4, 5, 6]))).unwrap();
        // Old half: 10,20,30 -> 20. New half: 40,50,60 -> 50. Joint -> 20.
        assert_eq!(joint.quorum_index(|id| LogIndex(id.0 * 10)), LogIndex(20));
    }
}
