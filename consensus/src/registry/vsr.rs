//! Viewstamped Replication in the registry.

use rsm_core::{Membership, NodeId, View};

use super::{OptionError, OptionValue, Options, Protocol, configure, count, size, switch};
use crate::{Vsr, VsrConfig, VsrMessage};

/// Viewstamped Replication (Revisited), as the tools see it. Options name [`VsrConfig`]'s
/// fields.
#[derive(Copy, Clone, Debug)]
pub struct VsrProtocol;

impl Protocol for VsrProtocol {
    const NAME: &'static str = "vsr";
    const ABOUT: &'static str = "rsm-consensus Viewstamped Replication (Revisited): round-robin primaries, pipelined prepares, view change choosing the largest (last normal view, op), quorum-confirmed and lease reads, snapshots, reconfiguration";
    const EPOCH_PREFIX: &'static str = "v";

    type Replica = Vsr;

    fn config(
        id: NodeId,
        membership: Membership,
        seed: u64,
        options: &Options,
    ) -> Result<VsrConfig, OptionError> {
        let defaults = VsrConfig::new(id, membership, seed);
        configure(defaults, "VSR", options, set_option, VsrConfig::validate)
    }

    fn swarm_config(run_seed: u64, id: NodeId, membership: &Membership, seed: u64) -> VsrConfig {
        VsrConfig::swarm(run_seed, id, membership, seed)
    }

    fn message(msg: &VsrMessage) -> String {
        let v = |v: &View| format!("v{}", v.0);
        let entries = |es: &[rsm_core::Entry]| {
            if es.is_empty() {
                String::new()
            } else {
                format!(" [{}]", rsm_core::text::entries(es, "v"))
            }
        };
        match msg {
            VsrMessage::Prepare {
                view,
                prev,
                prev_view,
                entries: es,
                commit,
                start_op,
            } => format!(
                "Prepare({} prev=i{}/v{}{} commit=i{} start=i{})",
                v(view),
                prev.0,
                prev_view.0,
                entries(es),
                commit.0,
                start_op.0
            ),
            VsrMessage::PrepareOk {
                view,
                op,
                synced,
                ok,
            } => {
                let verdict = match (ok, synced) {
                    (true, true) => "ok",
                    (true, false) => "joining",
                    (false, _) => "refused",
                };
                format!("PrepareOk({} {verdict} i{})", v(view), op.0)
            }
            VsrMessage::Commit {
                view,
                commit,
                read_round,
                sent_tick,
            } => format!(
                "Commit({} commit=i{} round={read_round} tick={sent_tick})",
                v(view),
                commit.0
            ),
            VsrMessage::CommitOk {
                view,
                read_round,
                sent_tick,
            } => format!("CommitOk({} round={read_round} tick={sent_tick})", v(view)),
            VsrMessage::StartViewChange {
                view,
                handover,
                primary,
            } => format!(
                "StartViewChange({} primary={}{})",
                v(view),
                primary.map_or("-".to_string(), |p| p.to_string()),
                if *handover { " handover" } else { "" }
            ),
            VsrMessage::DoViewChange {
                view,
                last_normal,
                op,
                commit,
                primary,
            } => format!(
                "DoViewChange({} normal={} op=i{} commit=i{} to={primary})",
                v(view),
                v(last_normal),
                op.0,
                commit.0
            ),
            VsrMessage::GetState { view, after } => {
                format!("GetState({} after=i{})", v(view), after.0)
            }
            VsrMessage::NewState {
                view,
                after,
                entries: es,
            } => match es {
                Some(es) => format!("NewState({} after=i{}{})", v(view), after.0, entries(es)),
                None => format!("NewState({} after=i{} trimmed)", v(view), after.0),
            },
            VsrMessage::Snapshot {
                view,
                meta,
                offset,
                data,
                done,
            } => format!(
                "Snapshot({} i{}/v{} {} bytes@{offset}{})",
                v(view),
                meta.index.0,
                meta.epoch.0,
                data.len(),
                if *done { " done" } else { "" }
            ),
            VsrMessage::SnapshotReply {
                view,
                index,
                next_offset,
                done,
            } => format!(
                "SnapshotReply({} i{} next={next_offset}{})",
                v(view),
                index.0,
                if *done { " done" } else { "" }
            ),
        }
    }
}

/// Set one field of `c` by name.
fn set_option(c: &mut VsrConfig, name: &str, value: &OptionValue) -> Result<(), OptionError> {
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
                protocol: "VSR",
                name: name.to_string(),
            });
        }
    }
    Ok(())
}
