//! Static configuration of one Raft replica: identity, timeouts in ticks, and every bound.

use rsm_core::{Membership, NodeId, QuorumError, RestoreError};

/// Everything a replica needs to know before its first input. Timeouts are counted in
/// ticks (`Input::Tick`); sizes in bytes as counted by `Entry::size_bytes`.
#[derive(Clone, Debug, PartialEq)]
pub struct RaftConfig {
    /// This replica's id.
    pub id: NodeId,
    /// The membership a replica without a snapshot or configuration entries starts from.
    pub membership: Membership,
    /// Seed of the PRNG that draws election timeouts.
    pub seed: u64,
    /// Shortest election timeout. Also the check-quorum period, the vote-stickiness window
    /// and the leadership-transfer deadline.
    pub election_ticks_min: u64,
    /// Election timeouts are drawn uniformly from `[election_ticks_min, election_ticks_max)`.
    pub election_ticks_max: u64,
    /// A leader sends heartbeats this often.
    pub heartbeat_ticks: u64,
    /// Run a pre-vote round before a real election (thesis §9.6), so that a node that
    /// cannot win does not disturb the cluster by raising the term.
    pub pre_vote: bool,
    /// A leader steps down once `election_ticks_min` ticks have passed since the last tick
    /// at which it had heard from a whole quorum (its election counts as contact with
    /// everyone): a leader isolated from the moment it was elected steps down exactly
    /// `election_ticks_min` ticks later, and one cut off later, `election_ticks_min` ticks
    /// after the last tick a quorum had been heard. (Lease reads do not rely on this
    /// timing: a lease is measured from the acknowledgements themselves.)
    pub check_quorum: bool,
    /// Vote stickiness (thesis §4.2.3): a voter that heard from a leader within
    /// `election_ticks_min` ignores vote requests (and their higher term) from candidates
    /// that do not come from a leadership transfer, so a server that was cut off cannot
    /// unseat a healthy leader when it returns. Lease reads require it.
    pub vote_stickiness: bool,
    /// Serve reads from the leader's lease instead of a heartbeat round. Requires
    /// `check_quorum` and `vote_stickiness`.
    pub lease_reads: bool,
    /// Ticks subtracted from the lease to cover clock-rate differences between replicas.
    pub lease_drift_ticks: u64,
    /// Election priority: a voter refuses a candidate whose log is exactly as up to date as
    /// its own but whose priority is lower, so higher-priority nodes tend to lead.
    pub priority: u64,
    /// Largest command payload a proposal may carry.
    pub proposal_bytes_max: usize,
    /// A leader refuses proposals while this many bytes are appended but not committed.
    pub uncommitted_bytes_max: usize,
    /// A leader accumulates proposals into one append while its previous write is in
    /// flight; it writes and sends the batch at the latest when it holds this many entries.
    pub batch_entries_max: usize,
    /// The same bound as `batch_entries_max`, in bytes.
    pub batch_bytes_max: usize,
    /// Largest AppendEntries payload (at least one entry is always sent).
    pub msg_bytes_max: usize,
    /// Most entries in one AppendEntries message.
    pub msg_entries_max: usize,
    /// Most AppendEntries messages in flight to one follower.
    pub inflight_msgs_max: usize,
    /// Most entry bytes in flight to one follower.
    pub inflight_bytes_max: usize,
    /// Most entries in one `Apply` effect.
    pub apply_batch_entries_max: usize,
    /// Most entries emitted in `Apply` but not yet reported by `Input::Applied`.
    pub apply_lag_entries_max: u64,
    /// Ask for a snapshot once this many applied entries follow the last one.
    pub snapshot_entries_threshold: u64,
    /// Size of one InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot a follower accepts from a leader.
    pub snapshot_bytes_max: usize,
    /// Most reads waiting for confirmation (at a leader) or for an answer (forwarded by a
    /// follower).
    pub reads_pending_max: usize,
}

/// Why a configuration cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The election timeout range is empty or shorter than the heartbeat interval.
    #[error(
        "election timeouts must satisfy heartbeat_ticks < election_ticks_min < election_ticks_max"
    )]
    Timeouts,
    /// Lease reads are unsafe without check-quorum and vote stickiness, or the drift
    /// margin eats the lease.
    #[error(
        "lease_reads requires check_quorum, vote_stickiness and lease_drift_ticks < election_ticks_min"
    )]
    Lease,
    /// A size or window is zero.
    #[error("limit `{0}` must be positive")]
    ZeroLimit(&'static str),
    /// The membership's quorum sizes do not make a valid quorum system.
    #[error("invalid quorum system: {0}")]
    Quorum(#[from] QuorumError),
    /// A node id is too large for the protocol's epochs (Paxos ballots show their node in
    /// the last three decimal digits).
    #[error("node ids must be at most 999 for this protocol")]
    NodeIdTooLarge,
}

impl From<ConfigError> for RestoreError {
    fn from(e: ConfigError) -> Self {
        let (field, rule) = match e {
            ConfigError::Timeouts => (
                "election_ticks_min",
                "heartbeat_ticks < election_ticks_min < election_ticks_max",
            ),
            ConfigError::Lease => (
                "lease_reads",
                "requires check_quorum, vote_stickiness and lease_drift_ticks < election_ticks_min",
            ),
            ConfigError::ZeroLimit(field) => (field, "must be positive"),
            ConfigError::NodeIdTooLarge => ("id", "node ids must be at most 999"),
            ConfigError::Quorum(q) => return RestoreError::Quorum(q),
        };
        RestoreError::InvalidConfig { field, rule }
    }
}

impl RaftConfig {
    /// The configuration mix the deterministic simulator runs Raft with: the defaults,
    /// with small snapshot, chunk, message and window limits so that compaction, chunked
    /// snapshot transfer and flow control all happen, and with pre-vote, check-quorum and
    /// lease reads varied by `run_seed`. Options every node must share (lease reads rely on
    /// every voter's stickiness) depend only on `run_seed`, never on the node's own `seed`.
    pub fn swarm(run_seed: u64, id: NodeId, membership: &Membership, seed: u64) -> Self {
        let mut c = RaftConfig::new(id, membership.clone(), seed);
        c.snapshot_entries_threshold = 24 + run_seed % 40;
        c.snapshot_chunk_bytes = 64 + (run_seed % 7) as usize * 96;
        c.msg_entries_max = 8 + (run_seed % 5) as usize * 16;
        c.inflight_msgs_max = 2 + (run_seed % 3) as usize * 6;
        c.batch_entries_max = 16;
        // Most runs keep the defaults (pre-vote, check-quorum and stickiness on); some turn
        // each off, and a quarter read from the leader's lease, which requires check-quorum
        // and stickiness.
        c.pre_vote = run_seed % 8 != 3;
        c.check_quorum = run_seed % 8 != 5;
        c.vote_stickiness = run_seed % 8 != 6;
        c.lease_reads = run_seed % 4 == 1 && c.check_quorum && c.vote_stickiness;
        c
    }

    /// Defaults suited to a tick of about 10 ms: elections after 10 to 20 ticks,
    /// heartbeats every 2, pre-vote, check-quorum and vote stickiness on, lease reads off.
    pub fn new(id: NodeId, membership: Membership, seed: u64) -> Self {
        Self {
            id,
            membership,
            seed,
            election_ticks_min: 10,
            election_ticks_max: 20,
            heartbeat_ticks: 2,
            pre_vote: true,
            check_quorum: true,
            vote_stickiness: true,
            lease_reads: false,
            lease_drift_ticks: 2,
            priority: 0,
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

    /// Check the relations between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.heartbeat_ticks > 0
            && self.heartbeat_ticks < self.election_ticks_min
            && self.election_ticks_min < self.election_ticks_max)
        {
            return Err(ConfigError::Timeouts);
        }
        if self.lease_reads
            && (!self.check_quorum
                || !self.vote_stickiness
                || self.lease_drift_ticks >= self.election_ticks_min)
        {
            return Err(ConfigError::Lease);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RaftConfig {
        RaftConfig::new(NodeId(1), Membership::new([NodeId(1)]), 0)
    }

    #[test]
    fn defaults_are_valid_and_relations_are_checked() {
        assert_eq!(base().validate(), Ok(()));
        let mut c = base();
        c.election_ticks_max = c.election_ticks_min;
        assert_eq!(c.validate(), Err(ConfigError::Timeouts));
        let mut c = base();
        c.lease_reads = true;
        c.check_quorum = false;
        assert_eq!(c.validate(), Err(ConfigError::Lease));
        let mut c = base();
        c.lease_reads = true;
        c.lease_drift_ticks = c.election_ticks_min;
        assert_eq!(c.validate(), Err(ConfigError::Lease));
        let mut c = base();
        c.lease_reads = true;
        c.vote_stickiness = false;
        assert_eq!(c.validate(), Err(ConfigError::Lease));
        let mut c = base();
        c.inflight_bytes_max = 0;
        assert_eq!(
            c.validate(),
            Err(ConfigError::ZeroLimit("inflight_bytes_max"))
        );
    }
}
