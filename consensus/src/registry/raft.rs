//! Raft in the registry.

use rsm_core::{Membership, NodeId};

use super::{OptionError, OptionValue, Options, Protocol, configure, count, size, switch};
use crate::{Raft, RaftConfig, RaftMessage};

/// Raft, as the tools see it. Options name [`RaftConfig`]'s fields.
#[derive(Copy, Clone, Debug)]
pub struct RaftProtocol;

impl Protocol for RaftProtocol {
    const NAME: &'static str = "raft";
    const ABOUT: &'static str = "rsm-consensus Raft: pre-vote, check-quorum, ReadIndex and lease reads, snapshots, joint consensus";
    const EPOCH_PREFIX: &'static str = "t";

    type Replica = Raft;

    fn config(
        id: NodeId,
        membership: Membership,
        seed: u64,
        options: &Options,
    ) -> Result<RaftConfig, OptionError> {
        let defaults = RaftConfig::new(id, membership, seed);
        configure(defaults, "Raft", options, set_option, RaftConfig::validate)
    }

    fn swarm_config(run_seed: u64, id: NodeId, membership: &Membership, seed: u64) -> RaftConfig {
        RaftConfig::swarm(run_seed, id, membership, seed)
    }

    fn message(msg: &RaftMessage) -> String {
        let t = |term: rsm_core::Term| format!("t{}", term.0);
        match msg {
            RaftMessage::RequestVote {
                term,
                pre_vote,
                last_index,
                last_term,
                transfer,
                priority,
            } => {
                let kind = if *pre_vote { "PreVote" } else { "Vote" };
                let mut s = format!(
                    "{kind}({} last=i{}/{}",
                    t(*term),
                    last_index.0,
                    t(*last_term)
                );
                if *transfer {
                    s.push_str(" transfer");
                }
                if *priority != 0 {
                    s.push_str(&format!(" priority={priority}"));
                }
                s + ")"
            }
            RaftMessage::RequestVoteResponse {
                term,
                pre_vote,
                granted,
            } => {
                let kind = if *pre_vote { "PreVoteResp" } else { "VoteResp" };
                let verdict = if *granted { "granted" } else { "rejected" };
                format!("{kind}({} {verdict})", t(*term))
            }
            RaftMessage::AppendEntries {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                let mut s = format!("App({} prev=i{}/{}", t(*term), prev_index.0, t(*prev_term));
                if !entries.is_empty() {
                    s.push_str(&format!(" [{}]", rsm_core::text::entries(entries, "t")));
                }
                format!("{s} commit=i{})", commit.0)
            }
            RaftMessage::AppendEntriesResponse {
                term,
                success: true,
                index,
                ..
            } => format!("AppResp({} ok i{})", t(*term), index.0),
            RaftMessage::AppendEntriesResponse {
                term,
                index,
                hint_index,
                hint_term,
                ..
            } => {
                let hint = hint_term.map_or(String::new(), |ht| format!("/{}", t(ht)));
                format!(
                    "AppResp({} reject i{} hint=i{}{hint})",
                    t(*term),
                    index.0,
                    hint_index.0
                )
            }
            RaftMessage::Heartbeat {
                term,
                commit,
                read_round,
                sent_tick,
            } => format!(
                "Heartbeat({} commit=i{} round={read_round} tick={sent_tick})",
                t(*term),
                commit.0
            ),
            RaftMessage::HeartbeatResponse {
                term,
                read_round,
                sent_tick,
                log_behind,
            } => format!(
                "HeartbeatResp({} round={read_round} tick={sent_tick}{})",
                t(*term),
                if *log_behind { " log-behind" } else { "" }
            ),
            RaftMessage::InstallSnapshot {
                term,
                meta,
                offset,
                data,
                done,
            } => format!(
                "Snapshot({} i{}/t{} {} bytes@{offset}{})",
                t(*term),
                meta.index.0,
                meta.epoch.0,
                data.len(),
                if *done { " done" } else { "" }
            ),
            RaftMessage::InstallSnapshotResponse {
                term,
                index,
                next_offset,
                done,
            } => format!(
                "SnapshotResp({} i{} next={next_offset}{})",
                t(*term),
                index.0,
                if *done { " done" } else { "" }
            ),
            RaftMessage::TimeoutNow { term } => format!("TimeoutNow({})", t(*term)),
            RaftMessage::ReadIndex { term, id } => format!("ReadIndex({} id={id})", t(*term)),
            RaftMessage::ReadIndexResponse { term, id, index } => {
                let at = index.map_or("refused".to_string(), |i| format!("i{}", i.0));
                format!("ReadIndexResp({} id={id} {at})", t(*term))
            }
        }
    }
}

/// Set one field of `c` by name.
fn set_option(c: &mut RaftConfig, name: &str, value: &OptionValue) -> Result<(), OptionError> {
    let (count, size, switch) = (|v| count(name, v), |v| size(name, v), |v| switch(name, v));
    match name {
        "election_ticks_min" => c.election_ticks_min = count(value)?,
        "election_ticks_max" => c.election_ticks_max = count(value)?,
        "heartbeat_ticks" => c.heartbeat_ticks = count(value)?,
        "pre_vote" => c.pre_vote = switch(value)?,
        "check_quorum" => c.check_quorum = switch(value)?,
        "vote_stickiness" => c.vote_stickiness = switch(value)?,
        "lease_reads" => c.lease_reads = switch(value)?,
        "lease_drift_ticks" => c.lease_drift_ticks = count(value)?,
        "priority" => c.priority = count(value)?,
        "proposal_bytes_max" => c.proposal_bytes_max = size(value)?,
        "uncommitted_bytes_max" => c.uncommitted_bytes_max = size(value)?,
        "batch_entries_max" => c.batch_entries_max = size(value)?,
        "batch_bytes_max" => c.batch_bytes_max = size(value)?,
        "msg_bytes_max" => c.msg_bytes_max = size(value)?,
        "msg_entries_max" => c.msg_entries_max = size(value)?,
        "inflight_msgs_max" => c.inflight_msgs_max = size(value)?,
        "inflight_bytes_max" => c.inflight_bytes_max = size(value)?,
        "apply_batch_entries_max" => c.apply_batch_entries_max = size(value)?,
        "apply_lag_entries_max" => c.apply_lag_entries_max = count(value)?,
        "snapshot_entries_threshold" => c.snapshot_entries_threshold = count(value)?,
        "snapshot_chunk_bytes" => c.snapshot_chunk_bytes = size(value)?,
        "snapshot_bytes_max" => c.snapshot_bytes_max = size(value)?,
        "reads_pending_max" => c.reads_pending_max = size(value)?,
        _ => {
            return Err(OptionError::Unknown {
                protocol: "Raft",
                name: name.to_string(),
            });
        }
    }
    Ok(())
}
