//! The driver's limits. Every queue the driver owns is bounded by one of these fields.

use std::time::Duration;

/// Limits of one node loop.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DriverConfig {
    /// Client requests (proposals, reads, reconfigurations) accepted but not yet answered.
    /// A request that would exceed it fails at once with a definite `Busy`.
    pub pending_requests_max: usize,
    /// A pending request not answered after this many ticks fails with an indefinite
    /// `Timeout` (it may still take effect later).
    pub request_timeout_ticks: u64,
    /// Persists written plus sends held back since the last sync: when the sum reaches
    /// this bound the core syncs on its own instead of waiting for the end of the batch.
    pub sync_batch_max: usize,
    /// Inputs the async runner takes from its queues before one group-commit sync.
    pub batch_inputs_max: usize,
    /// Capacity of the inbound message queue `NodeRunner::new` makes; a transport's
    /// delivery into a full queue is dropped (consensus tolerates loss). A loop built with
    /// `NodeRunner::with_inbound` reads the caller's channel, bounded by its maker.
    pub inbound_queue_max: usize,
    /// Capacity of the runner's client request queue; a request into a full queue fails
    /// at once with a definite `Busy`.
    pub client_queue_max: usize,
    /// A sync that takes at least this long is logged as a stall (a warning): every
    /// client answer and every acknowledgement to peers waited for it.
    pub sync_stall_warn: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            pending_requests_max: 4096,
            request_timeout_ticks: 1000,
            sync_batch_max: 4096,
            batch_inputs_max: 256,
            inbound_queue_max: 4096,
            client_queue_max: 1024,
            sync_stall_warn: Duration::from_millis(500),
        }
    }
}

impl DriverConfig {
    /// The same limits with every bound raised to at least 1, so that no queue is unusable.
    pub(crate) fn sanitized(self) -> Self {
        Self {
            pending_requests_max: self.pending_requests_max.max(1),
            request_timeout_ticks: self.request_timeout_ticks.max(1),
            sync_batch_max: self.sync_batch_max.max(1),
            batch_inputs_max: self.batch_inputs_max.max(1),
            inbound_queue_max: self.inbound_queue_max.max(1),
            client_queue_max: self.client_queue_max.max(1),
            sync_stall_warn: self.sync_stall_warn,
        }
    }
}
