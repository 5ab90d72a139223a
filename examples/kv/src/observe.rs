//! What the replica says about its role, published for the status request.
//!
//! The node loop owns the replica on its own thread; [`Observed`] wraps any replica and
//! copies what its `RoleChanged` and `Apply` effects announce into a [`StatusBoard`] of
//! atomics, so the client port can answer a status request without a round trip through
//! the loop. It looks at effects the replica emits anyway; only a step that applies
//! entries also asks the replica for its status (for the commit index), so the cost is
//! per applied batch, never per entry.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use rsm_core::{
    Durable, Effect, Epoch, Input, LogIndex, NodeId, Replica, RestoreError, Role, Status,
};

/// The latest role, epoch, leader, commit and applied index of one replica.
#[derive(Debug, Default)]
pub struct StatusBoard {
    role: AtomicU8,
    epoch: AtomicU64,
    /// 0 when no leader is known (node ids start at 1).
    leader: AtomicU64,
    commit: AtomicU64,
    applied: AtomicU64,
}

const ROLES: [Role; 7] = [
    Role::Follower,
    Role::PreCandidate,
    Role::Candidate,
    Role::Leader,
    Role::Learner,
    Role::Recovering,
    Role::Removed,
];

impl StatusBoard {
    /// `(role, epoch, leader, applied index)` as last announced.
    pub fn read(&self) -> (Role, Epoch, Option<NodeId>, LogIndex) {
        let role = ROLES[usize::from(self.role.load(Ordering::Relaxed)) % ROLES.len()];
        let leader = match self.leader.load(Ordering::Relaxed) {
            0 => None,
            id => Some(NodeId(id)),
        };
        (
            role,
            Epoch(self.epoch.load(Ordering::Relaxed)),
            leader,
            LogIndex(self.applied.load(Ordering::Relaxed)),
        )
    }

    /// The highest index the replica knew to be committed when it last applied entries.
    pub fn commit(&self) -> LogIndex {
        LogIndex(self.commit.load(Ordering::Relaxed))
    }

    fn set_progress(&self, status: &Status) {
        self.commit.store(status.commit.0, Ordering::Relaxed);
        self.applied.store(status.applied.0, Ordering::Relaxed);
    }

    fn set_role(&self, role: Role, epoch: Epoch, leader: Option<NodeId>) {
        let code = ROLES.iter().position(|r| *r == role).unwrap_or(0) as u8;
        self.role.store(code, Ordering::Relaxed);
        self.epoch.store(epoch.0, Ordering::Relaxed);
        self.leader
            .store(leader.map_or(0, NodeId::get), Ordering::Relaxed);
    }
}

/// How to build an [`Observed`] replica: the inner configuration and the board to write.
#[derive(Clone, Debug)]
pub struct ObservedConfig<C> {
    /// The wrapped replica's configuration.
    pub inner: C,
    /// Where announcements are published.
    pub board: Arc<StatusBoard>,
}

/// A replica whose announcements are copied to a [`StatusBoard`].
pub struct Observed<R> {
    inner: R,
    board: Arc<StatusBoard>,
}

impl<R> fmt::Debug for Observed<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observed")
            .field("board", &self.board)
            .finish_non_exhaustive()
    }
}

impl<R: Replica> Replica for Observed<R> {
    type Message = R::Message;
    type Config = ObservedConfig<R::Config>;

    fn restore(config: Self::Config, durable: Durable) -> Result<Self, RestoreError> {
        let inner = R::restore(config.inner, durable)?;
        let status = inner.status();
        config
            .board
            .set_role(status.role, status.epoch, status.leader);
        config.board.set_progress(&status);
        Ok(Self {
            inner,
            board: config.board,
        })
    }

    fn step(&mut self, input: Input<Self::Message>, out: &mut Vec<Effect<Self::Message>>) {
        let first = out.len();
        self.inner.step(input, out);
        let mut applied = false;
        for effect in &out[first..] {
            match effect {
                Effect::RoleChanged {
                    role,
                    epoch,
                    leader,
                } => {
                    self.board.set_role(*role, *epoch, *leader);
                    log_role(*role, *epoch, *leader);
                }
                Effect::TakeSnapshot { through } => {
                    tracing::info!(through = through.0, "taking a snapshot");
                }
                Effect::InstallSnapshot { meta, data } => {
                    tracing::info!(
                        through = meta.index.0,
                        epoch = meta.epoch.0,
                        bytes = data.len(),
                        "installing a snapshot received from the leader"
                    );
                }
                Effect::Apply { entries } => {
                    if let Some(last) = entries.last() {
                        self.board.applied.store(last.index.0, Ordering::Relaxed);
                        applied = true;
                    }
                }
                _ => {}
            }
        }
        if applied {
            let commit = self.inner.status().commit;
            self.board.commit.store(commit.0, Ordering::Relaxed);
        }
    }

    fn status(&self) -> Status {
        self.inner.status()
    }
}

/// One line per role change: an election started, won or lost, a leader followed.
fn log_role(role: Role, epoch: Epoch, leader: Option<NodeId>) {
    let leader = leader.map(NodeId::get);
    match role {
        Role::PreCandidate | Role::Candidate => {
            tracing::info!(?role, epoch = epoch.0, "starting an election");
        }
        Role::Leader => tracing::info!(epoch = epoch.0, "became leader"),
        Role::Removed => tracing::warn!(epoch = epoch.0, "removed from the cluster"),
        _ => tracing::info!(?role, epoch = epoch.0, ?leader, "role changed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsm_consensus::{Raft, RaftConfig};
    use rsm_core::Membership;

    #[test]
    fn a_single_voter_announces_its_leadership_on_the_board() {
        let board = Arc::new(StatusBoard::default());
        let config = ObservedConfig {
            inner: RaftConfig::new(NodeId(1), Membership::new([NodeId(1)]), 1),
            board: board.clone(),
        };
        let mut replica = Observed::<Raft>::restore(config, Durable::default()).unwrap();
        assert_eq!(board.read().0, Role::Follower);
        let mut out = Vec::new();
        for _ in 0..100 {
            replica.step(Input::Tick, &mut out);
            // Acknowledge every persist so that the lone voter counts its own vote.
            let through = out.iter().rev().find_map(|e| match e {
                Effect::Persist { seq, .. } => Some(*seq),
                _ => None,
            });
            out.clear();
            if let Some(through) = through {
                replica.step(Input::Persisted { through }, &mut out);
                out.clear();
            }
            if board.read().0 == Role::Leader {
                break;
            }
        }
        let (role, epoch, leader, _) = board.read();
        assert_eq!(role, Role::Leader);
        assert!(epoch > Epoch(0));
        assert_eq!(leader, Some(NodeId(1)));
        assert_eq!(replica.status().role, Role::Leader);
    }
}
