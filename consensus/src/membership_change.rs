//! The rules of a membership change every leader-based protocol here shares: when a
//! leader may start one, and which configuration entry it proposes (the target itself for
//! a change of at most one voter, else the joint configuration that leads to it).

use rsm_core::{LogIndex, Membership, RejectReason};

/// Why a leader may not start moving to `target` now: the target is invalid, or a change
/// is under way (`current`, in force since `at`, is undecided or joint), or the leader has
/// not yet decided an entry of its own epoch (`opened`). `None` when it may.
pub(crate) fn change_refusal(
    current: &Membership,
    at: LogIndex,
    commit: LogIndex,
    opened: bool,
    target: &Membership,
) -> Option<RejectReason> {
    if target.voters.is_empty() || target.is_joint() {
        Some(RejectReason::InvalidConfig(
            "the target needs voters and no outgoing half".into(),
        ))
    } else if let Err(e) = target.check() {
        Some(RejectReason::InvalidConfig(e.to_string()))
    } else if at > commit || current.is_joint() || !opened {
        Some(RejectReason::ConfigChangeInProgress)
    } else {
        None
    }
}

/// The configuration entry that starts the move from `current` to `target`: `target`
/// (without learners that are also voters) when at most one voter changes, else the joint
/// configuration; `None` if `current` is itself joint.
pub(crate) fn next_configuration(
    current: &Membership,
    mut target: Membership,
) -> Option<Membership> {
    let voters = target.voters.clone();
    target.learners.retain(|id| !voters.contains(id));
    let changed_voters = current.voters.symmetric_difference(&target.voters).count();
    if changed_voters <= 1 {
        Some(target)
    } else {
        current.enter_joint(&target)
    }
}
