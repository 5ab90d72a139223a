//! What a node publishes about itself for readers on other threads: the replica's status,
//! the node's and the storage's counters, and whether it has stopped.
//!
//! The node refreshes one shared record at every sync (once per batch in the runner, not
//! per input) and when it stops; a reader takes a short lock and a copy. So a server can
//! answer a status request, or a test wait for a role, without a round trip through the
//! node loop and without wrapping the replica or the storage.

use std::sync::{Arc, Mutex, PoisonError};

use rsm_core::{Status, StorageStats};

use crate::node_core::NodeStats;

/// One node's state as last published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// The replica's own status: role, epoch, leader, commit and applied index, log end,
    /// membership.
    pub status: Status,
    /// The node's counters.
    pub stats: NodeStats,
    /// The storage's counters ([`rsm_core::Storage::stats`]).
    pub storage: StorageStats,
    /// Client requests accepted and not yet answered.
    pub pending_requests: usize,
    /// Ticks seen so far.
    pub ticks: u64,
    /// True once the node has stopped; nothing is published after that.
    pub stopped: bool,
}

/// A shared, read-only view of a node's [`NodeStatus`]. Cheap to clone; every clone reads
/// the same record.
#[derive(Clone, Debug)]
pub struct StatusView {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    latest: Mutex<NodeStatus>,
    /// Closed when the node stops or is dropped; nothing is ever sent on it.
    stopped: async_channel::Receiver<()>,
}

impl StatusView {
    /// A copy of what the node last published.
    pub fn get(&self) -> NodeStatus {
        self.shared
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// True once the node has stopped, or was dropped without stopping.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.is_closed()
    }

    /// Resolve once the node has stopped, or was dropped without stopping.
    pub async fn stopped(&self) {
        // Only closing ends the wait: no value is ever sent.
        let _ = self.shared.stopped.recv().await;
    }
}

/// The writing end, owned by the node.
#[derive(Debug)]
pub(crate) struct StatusPublisher {
    shared: Arc<Shared>,
    /// Dropped (closing the channel) when the node publishes that it stopped.
    stopped: Option<async_channel::Sender<()>>,
}

impl StatusPublisher {
    pub(crate) fn new() -> Self {
        let (tx, rx) = async_channel::bounded(1);
        Self {
            shared: Arc::new(Shared {
                latest: Mutex::new(NodeStatus::default()),
                stopped: rx,
            }),
            stopped: Some(tx),
        }
    }

    pub(crate) fn view(&self) -> StatusView {
        StatusView {
            shared: self.shared.clone(),
        }
    }

    /// Replace the record; a record that says `stopped` is the last one.
    pub(crate) fn publish(&mut self, status: NodeStatus) {
        if self.stopped.is_none() {
            return;
        }
        let stopped = status.stopped;
        *self
            .shared
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = status;
        if stopped {
            self.stopped = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsm_core::{NodeId, Role};
    use std::task::{Context, Waker};

    fn status(role: Role, stopped: bool) -> NodeStatus {
        NodeStatus {
            status: Status {
                id: NodeId(1),
                role,
                ..Status::default()
            },
            stopped,
            ..NodeStatus::default()
        }
    }

    #[test]
    fn every_view_reads_the_latest_record_and_nothing_after_the_stop() {
        let mut publisher = StatusPublisher::new();
        let view = publisher.view();
        let other = view.clone();
        assert_eq!(view.get(), NodeStatus::default());
        publisher.publish(status(Role::Leader, false));
        assert_eq!(other.get().status.role, Role::Leader);
        assert!(!other.is_stopped());
        publisher.publish(status(Role::Follower, true));
        assert!(view.is_stopped());
        publisher.publish(status(Role::Candidate, false));
        assert_eq!(view.get(), status(Role::Follower, true));
    }

    #[test]
    fn waiting_for_the_stop_ends_when_the_node_stops_or_is_dropped() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut publisher = StatusPublisher::new();
        let view = publisher.view();
        let mut wait = Box::pin(view.stopped());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        publisher.publish(status(Role::Follower, true));
        assert!(wait.as_mut().poll(&mut cx).is_ready());

        let dropped = StatusPublisher::new();
        let view = dropped.view();
        drop(dropped);
        assert!(view.is_stopped());
        assert!(Box::pin(view.stopped()).as_mut().poll(&mut cx).is_ready());
    }
}
