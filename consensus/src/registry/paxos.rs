//! Multi-Paxos in the registry.

use rsm_core::{Ballot, Membership, NodeId};

use super::{OptionError, OptionValue, Options, Protocol, configure, count, size, switch};
use crate::{Paxos, PaxosConfig, PaxosMessage};

/// Multi-Paxos, as the tools see it. Options name [`PaxosConfig`]'s fields.
#[derive(Copy, Clone, Debug)]
pub struct PaxosProtocol;

impl Protocol for PaxosProtocol {
    const NAME: &'static str = "paxos";
    const ABOUT: &'static str = "rsm-consensus Multi-Paxos: phase 1 over all slots, pipelined phase 2, quorum-confirmed and lease reads, snapshots, reconfiguration, flexible quorums";
    const EPOCH_PREFIX: &'static str = "b";

    type Replica = Paxos;

    fn config(
        id: NodeId,
        membership: Membership,
        seed: u64,
        options: &Options,
    ) -> Result<PaxosConfig, OptionError> {
        let defaults = PaxosConfig::new(id, membership, seed);
        configure(
            defaults,
            "Paxos",
            options,
            set_option,
            PaxosConfig::validate,
        )
    }

    fn swarm_config(run_seed: u64, id: NodeId, membership: &Membership, seed: u64) -> PaxosConfig {
        PaxosConfig::swarm(run_seed, id, membership, seed)
    }

    fn message(msg: &PaxosMessage) -> String {
        let b = |b: &Ballot| format!("b{}", crate::ballot_epoch(*b).0);
        match msg {
            PaxosMessage::Prepare {
                ballot,
                commit,
                transfer,
            } => format!(
                "Prepare({} commit=i{}{})",
                b(ballot),
                commit.0,
                if *transfer { " transfer" } else { "" }
            ),
            PaxosMessage::Promise {
                ballot,
                accepted,
                commit,
                entries,
            } => {
                let mut s = format!(
                    "Promise({} accepted={} commit=i{}",
                    b(ballot),
                    b(accepted),
                    commit.0
                );
                if !entries.is_empty() {
                    s.push_str(&format!(" [{}]", rsm_core::text::entries(entries, "b")));
                }
                s + ")"
            }
            PaxosMessage::Nack {
                ballot,
                promised,
                leader,
            } => {
                let leader = leader.map_or(String::new(), |l| format!(" leader={l}"));
                format!("Nack({} promised={}{leader})", b(ballot), b(promised))
            }
            PaxosMessage::Accept {
                ballot,
                prev,
                entries,
                commit,
                sync_end,
            } => {
                let mut s = format!("Accept({} prev=i{}", b(ballot), prev.0);
                if !entries.is_empty() {
                    s.push_str(&format!(" [{}]", rsm_core::text::entries(entries, "b")));
                }
                format!("{s} commit=i{} sync=i{})", commit.0, sync_end.0)
            }
            PaxosMessage::Accepted {
                ballot,
                index,
                synced,
                ok,
            } => {
                let verdict = match (ok, synced) {
                    (true, true) => "ok",
                    (true, false) => "syncing",
                    (false, _) => "refused",
                };
                format!("Accepted({} {verdict} i{})", b(ballot), index.0)
            }
            PaxosMessage::Heartbeat {
                ballot,
                commit,
                read_round,
                sent_tick,
            } => format!(
                "Heartbeat({} commit=i{} round={read_round} tick={sent_tick})",
                b(ballot),
                commit.0
            ),
            PaxosMessage::HeartbeatReply {
                ballot,
                read_round,
                sent_tick,
            } => format!(
                "HeartbeatReply({} round={read_round} tick={sent_tick})",
                b(ballot)
            ),
            PaxosMessage::Snapshot {
                ballot,
                meta,
                offset,
                data,
                done,
            } => format!(
                "Snapshot({} i{}/e{} {} bytes@{offset}{})",
                b(ballot),
                meta.index.0,
                meta.epoch.0,
                data.len(),
                if *done { " done" } else { "" }
            ),
            PaxosMessage::SnapshotReply {
                ballot,
                index,
                next_offset,
                done,
            } => format!(
                "SnapshotReply({} i{} next={next_offset}{})",
                b(ballot),
                index.0,
                if *done { " done" } else { "" }
            ),
            PaxosMessage::TimeoutNow { ballot } => format!("TimeoutNow({})", b(ballot)),
        }
    }
}

/// Set one field of `c` by name.
fn set_option(c: &mut PaxosConfig, name: &str, value: &OptionValue) -> Result<(), OptionError> {
    let (count, size, switch) = (|v| count(name, v), |v| size(name, v), |v| switch(name, v));
    match name {
        "election_ticks_min" => c.election_ticks_min = count(value)?,
        "election_ticks_max" => c.election_ticks_max = count(value)?,
        "heartbeat_ticks" => c.heartbeat_ticks = count(value)?,
        "lease_reads" => c.lease_reads = switch(value)?,
        "lease_drift_ticks" => c.lease_drift_ticks = count(value)?,
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
                protocol: "Paxos",
                name: name.to_string(),
            });
        }
    }
    Ok(())
}
