//! How a node may start on its storage.
//!
//! A member that restarts without the log and the votes it had promised can undo writes the
//! cluster acknowledged, and from the inside a lost disk looks just like a new one. So
//! blank storage is never taken for a member's: starting on it is an operator's explicit
//! choice (bootstrapping a new cluster, or joining one that has already added the node),
//! and a plain restart on it is refused. Hosts that keep storage (the KV server's data
//! directory, the simulator's disks) mark it when a node first starts on it and apply
//! [`StartMode::check`] before every start.

/// What an operator says a node's start is for.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum StartMode {
    /// Restart an existing member: the storage must hold what it made durable.
    #[default]
    Restart,
    /// Start a member of a new cluster: the storage must be blank.
    Bootstrap,
    /// Start a node the cluster has already added (as a learner) through reconfiguration,
    /// with nothing of its own: it learns everything from the leader. The storage must be
    /// blank.
    Join,
}

/// The safe way back for a member whose storage lost data.
pub const REJOIN_PROCEDURE: &str = "remove the node from the cluster, add it back as a \
    learner, start it to join on blank storage, let it catch up, then promote it";

/// Why a node may not start on its storage.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// A restart found blank storage: the member lost its log and its votes (a wiped or
    /// replaced disk), or this is a new node that needs an explicit start.
    #[error(
        "the storage is blank, so this is no restart: a new node bootstraps a cluster or \
         joins one that added it; if this member lost its data, {REJOIN_PROCEDURE}"
    )]
    Blank,
    /// A bootstrap or join found storage that already holds a node's data.
    #[error("{mode:?} is for blank storage, but this storage holds a node's data: restart it")]
    NotBlank {
        /// The start asked for.
        mode: StartMode,
    },
}

impl StartMode {
    /// Whether a node may start this way on storage that is `blank` (nothing was ever
    /// made durable on it, and no node ever started on it).
    pub fn check(self, blank: bool) -> Result<(), StartError> {
        match (self, blank) {
            (StartMode::Restart, true) => Err(StartError::Blank),
            (StartMode::Bootstrap | StartMode::Join, false) => {
                Err(StartError::NotBlank { mode: self })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_storage_needs_an_explicit_start_and_only_blank_storage_takes_one() {
        assert_eq!(StartMode::Restart.check(true), Err(StartError::Blank));
        assert_eq!(StartMode::Restart.check(false), Ok(()));
        for mode in [StartMode::Bootstrap, StartMode::Join] {
            assert_eq!(mode.check(true), Ok(()));
            assert_eq!(mode.check(false), Err(StartError::NotBlank { mode }));
        }
        assert!(StartError::Blank.to_string().contains(REJOIN_PROCEDURE));
    }
}
