//! Static configuration of one VSR replica: identity, timeouts in ticks, and every bound.

use rsm_core::{Membership, NodeId};

use crate::ConfigError;

/// Everything a VSR replica needs to know before its first input. Timeouts are counted in
/// ticks (`Input::Tick`); sizes in bytes as counted by `Entry::size_bytes`.
#[derive(Clone, Debug, PartialEq)]
pub struct VsrConfig {
    /// This replica's id.
    pub id: NodeId,
    /// The membership a replica without a snapshot or configuration entries starts from.
    pub membership: Membership,
    /// Seed of the PRNG that draws the view-change timeouts.
    pub seed: u64,
    /// Shortest view-change timeout. Also how long a backup that heard from its primary
    /// refuses to join another replica's view change, and how long a primary keeps its
    /// view without hearing from a quorum.
    pub election_ticks_min: u64,
    /// Timeouts are drawn uniformly from `[election_ticks_min, election_ticks_max)`.
    pub election_ticks_max: u64,
    /// A primary sends `Commit` (the heartbeat) this often; view-change messages are
    /// retransmitted at the same rate.
    pub heartbeat_ticks: u64,
    /// Serve reads from the primary's lease instead of a confirmation round.
    pub lease_reads: bool,
    /// Ticks subtracted from the lease to cover clock-rate differences between replicas.
    pub lease_drift_ticks: u64,
    /// Largest command payload a request may carry.
    pub proposal_bytes_max: usize,
    /// A primary refuses requests while this many bytes are prepared but not committed.
    pub uncommitted_bytes_max: usize,
    /// A primary gathers requests into one batch while its previous write is in flight;
    /// the batch leaves at the latest when it holds this many entries.
    pub batch_entries_max: usize,
    /// The same bound as `batch_entries_max`, in bytes.
    pub batch_bytes_max: usize,
    /// Largest `Prepare` payload (at least one entry is always sent).
    pub msg_bytes_max: usize,
    /// Most entries in one `Prepare`.
    pub msg_entries_max: usize,
    /// Most `Prepare` messages in flight to one backup.
    pub inflight_msgs_max: usize,
    /// Most entry bytes in flight to one backup.
    pub inflight_bytes_max: usize,
    /// Most entries in one `Apply` effect.
    pub apply_batch_entries_max: usize,
    /// Most entries emitted in `Apply` but not yet reported by `Input::Applied`.
    pub apply_lag_entries_max: u64,
    /// Ask for a snapshot once this many applied entries follow the last one.
    pub snapshot_entries_threshold: u64,
    /// Size of one snapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot a backup takes from a primary.
    pub snapshot_bytes_max: usize,
    /// Most reads waiting at a primary for their confirmation round.
    pub reads_pending_max: usize,
}

impl VsrConfig {
    /// Defaults suited to a tick of about 10 ms: a view change after 10 to 20 silent
    /// ticks, `Commit` every 2, lease reads off.
    pub fn new(id: NodeId, membership: Membership, seed: u64) -> Self {
        Self {
            id,
            membership,
            seed,
            election_ticks_min: 10,
            election_ticks_max: 20,
            heartbeat_ticks: 2,
            lease_reads: false,
            lease_drift_ticks: 2,
            proposal_bytes_max: 1 << 20,
            uncommitted_bytes_max: 64 << 20,
            batch_entries_max: 1024,
            batch_bytes_max: 1 << 20,
            msg_bytes_max: 1 << 20,
            msg_entries_max: 1024,
            inflight_msgs_max: 64,
            inflight_bytes_max: 16 << 20,
            apply_batch_entries_max: 1024,
            apply_lag_entries_max: 1 << 16,
            snapshot_entries_threshold: 10_000,
            snapshot_chunk_bytes: 1 << 20,
            snapshot_bytes_max: 1 << 30,
            reads_pending_max: 4096,
        }
    }

    /// The configuration mix the deterministic simulator runs VSR with: the defaults, with
    /// small snapshot, chunk, message and window limits so that trimming, chunked snapshot
    /// transfer and flow control all happen, and lease reads in a quarter of the runs.
    /// Options every node must share depend only on `run_seed`.
    pub fn swarm(run_seed: u64, id: NodeId, membership: &Membership, seed: u64) -> Self {
        let mut c = VsrConfig::new(id, membership.clone(), seed);
        c.snapshot_entries_threshold = 20 + run_seed % 44;
        c.snapshot_chunk_bytes = 80 + (run_seed % 5) as usize * 120;
        c.msg_entries_max = 4 + (run_seed % 6) as usize * 12;
        c.inflight_msgs_max = 3 + (run_seed % 4) as usize * 4;
        c.batch_entries_max = 12;
        c.lease_reads = run_seed % 4 == 2;
        c
    }

    /// Check the relations between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.heartbeat_ticks > 0
            && self.heartbeat_ticks < self.election_ticks_min
            && self.election_ticks_min < self.election_ticks_max)
        {
            return Err(ConfigError::Timeouts);
        }
        if self.lease_reads && self.lease_drift_ticks >= self.election_ticks_min {
            return Err(ConfigError::Lease);
        }
        let limits = [
            ("proposal_bytes_max", self.proposal_bytes_max as u64),
            ("uncommitted_bytes_max", self.uncommitted_bytes_max as u64),
            ("batch_entries_max", self.batch_entries_max as u64),
            ("batch_bytes_max", self.batch_bytes_max as u64),
            ("msg_bytes_max", self.msg_bytes_max as u64),
            ("msg_entries_max", self.msg_entries_max as u64),
            ("inflight_msgs_max", self.inflight_msgs_max as u64),
            ("inflight_bytes_max", self.inflight_bytes_max as u64),
            (
                "apply_batch_entries_max",
                self.apply_batch_entries_max as u64,
            ),
            ("apply_lag_entries_max", self.apply_lag_entries_max),
            (
                "snapshot_entries_threshold",
                self.snapshot_entries_threshold,
            ),
            ("snapshot_chunk_bytes", self.snapshot_chunk_bytes as u64),
            ("snapshot_bytes_max", self.snapshot_bytes_max as u64),
            ("reads_pending_max", self.reads_pending_max as u64),
        ];
        if let Some((name, _)) = limits.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::ZeroLimit(name));
        }
        self.membership.check()?;
        Ok(())
    }
}
