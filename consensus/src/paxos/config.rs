//! Static configuration of one Multi-Paxos replica: identity, timeouts in ticks, and every
//! bound.

use rsm_core::{Membership, NodeId};

use crate::ConfigError;

/// The largest node id a ballot can name: a ballot is shown to the tools as one epoch
/// number, `round * 1000 + node` (so `b3002` reads as round 3 of node 2).
pub const BALLOT_NODE_MAX: u64 = 999;

/// Everything a Paxos replica needs to know before its first input. Timeouts are counted in
/// ticks (`Input::Tick`); sizes in bytes as counted by `Entry::size_bytes`.
#[derive(Clone, Debug, PartialEq)]
pub struct PaxosConfig {
    /// This replica's id (at most [`BALLOT_NODE_MAX`]).
    pub id: NodeId,
    /// The membership a replica without a snapshot or configuration entries starts from.
    pub membership: Membership,
    /// Seed of the PRNG that draws the failure detector's timeouts.
    pub seed: u64,
    /// Shortest failure-detector timeout. Also how long an acceptor that heard from a
    /// leader ignores other proposers' prepares, and how long a leader keeps leading
    /// without hearing from a phase-2 quorum.
    pub election_ticks_min: u64,
    /// Timeouts are drawn uniformly from `[election_ticks_min, election_ticks_max)`.
    pub election_ticks_max: u64,
    /// A leader sends heartbeats this often.
    pub heartbeat_ticks: u64,
    /// Serve reads from the leader's lease instead of a confirmation round.
    pub lease_reads: bool,
    /// Ticks subtracted from the lease to cover clock-rate differences between replicas.
    pub lease_drift_ticks: u64,
    /// Largest command payload a proposal may carry.
    pub proposal_bytes_max: usize,
    /// A leader refuses proposals while this many bytes are proposed but not decided.
    pub uncommitted_bytes_max: usize,
    /// A leader gathers proposals into one phase-2 batch while its previous write is in
    /// flight; the batch leaves at the latest when it holds this many entries.
    pub batch_entries_max: usize,
    /// The same bound as `batch_entries_max`, in bytes.
    pub batch_bytes_max: usize,
    /// Largest Accept payload (at least one entry is always sent).
    pub msg_bytes_max: usize,
    /// Most entries in one Accept message.
    pub msg_entries_max: usize,
    /// Most Accept messages in flight to one acceptor.
    pub inflight_msgs_max: usize,
    /// Most entry bytes in flight to one acceptor.
    pub inflight_bytes_max: usize,
    /// Most entries in one `Apply` effect.
    pub apply_batch_entries_max: usize,
    /// Most entries emitted in `Apply` but not yet reported by `Input::Applied`.
    pub apply_lag_entries_max: u64,
    /// Ask for a snapshot once this many applied entries follow the last one.
    pub snapshot_entries_threshold: u64,
    /// Size of one snapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot an acceptor takes from a leader.
    pub snapshot_bytes_max: usize,
    /// Most reads waiting at a leader for their confirmation round.
    pub reads_pending_max: usize,
}

impl PaxosConfig {
    /// Defaults suited to a tick of about 10 ms: a failure detector firing after 10 to 20
    /// silent ticks, heartbeats every 2, lease reads off.
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

    /// The configuration mix the deterministic simulator runs Paxos with: the defaults,
    /// with small snapshot, chunk, message and window limits so that trimming, chunked
    /// snapshot transfer and flow control all happen, and lease reads in a quarter of the
    /// runs. Options every node must share depend only on `run_seed`.
    pub fn swarm(run_seed: u64, id: NodeId, membership: &Membership, seed: u64) -> Self {
        let mut c = PaxosConfig::new(id, membership.clone(), seed);
        c.snapshot_entries_threshold = 24 + run_seed % 40;
        c.snapshot_chunk_bytes = 64 + (run_seed % 7) as usize * 96;
        c.msg_entries_max = 8 + (run_seed % 5) as usize * 16;
        c.inflight_msgs_max = 2 + (run_seed % 3) as usize * 6;
        c.batch_entries_max = 16;
        c.lease_reads = run_seed % 4 == 1;
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
        if self.id.0 > BALLOT_NODE_MAX || self.membership.members().any(|id| id.0 > BALLOT_NODE_MAX)
        {
            return Err(ConfigError::NodeIdTooLarge);
        }
        let limits = [
            ("proposal_bytes_max", self.proposal_bytes_max),
            ("uncommitted_bytes_max", self.uncommitted_bytes_max),
            ("batch_entries_max", self.batch_entries_max),
            ("batch_bytes_max", self.batch_bytes_max),
            ("msg_bytes_max", self.msg_bytes_max),
            ("msg_entries_max", self.msg_entries_max),
            ("inflight_msgs_max", self.inflight_msgs_max),
            ("inflight_bytes_max", self.inflight_bytes_max),
            ("apply_batch_entries_max", self.apply_batch_entries_max),
            ("apply_lag_entries_max", self.apply_lag_entries_max as usize),
            (
                "snapshot_entries_threshold",
                self.snapshot_entries_threshold as usize,
            ),
            ("snapshot_chunk_bytes", self.snapshot_chunk_bytes),
            ("snapshot_bytes_max", self.snapshot_bytes_max),
            ("reads_pending_max", self.reads_pending_max),
        ];
        if let Some((name, _)) = limits.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::ZeroLimit(name));
        }
        self.membership.check()?;
        Ok(())
    }
}
