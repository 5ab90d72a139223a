//! Raft at the rule level, through the scripted interaction format of `rsm_script`:
//! every script under `tests/scripts/raft/` is a golden transcript of one situation from
//! the Raft paper or thesis. `RSM_REWRITE=1 cargo test -p rsm-consensus --test scripts`
//! regenerates them; read the diff before committing it.

use std::path::Path;

use rsm_consensus::{Raft, RaftConfig, RaftMessage};
use rsm_script::{self as script, NodeSetup, Protocol};

/// Scripts Raft replicas. `create` options name `RaftConfig` fields (`pre_vote=false`,
/// `election_ticks_min=5`, `snapshot_entries_threshold=4`, ...).
struct RaftScripts;

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{key}={value} does not parse"))
}

impl Protocol for RaftScripts {
    type Replica = Raft;

    fn config(&self, setup: &NodeSetup<'_>) -> Result<RaftConfig, String> {
        let mut c = RaftConfig::new(setup.id, setup.membership.clone(), setup.seed);
        for (key, value) in setup.options {
            let v = value.as_str();
            match key.as_str() {
                "pre_vote" => c.pre_vote = parse(key, v)?,
                "check_quorum" => c.check_quorum = parse(key, v)?,
                "lease_reads" => c.lease_reads = parse(key, v)?,
                "lease_drift_ticks" => c.lease_drift_ticks = parse(key, v)?,
                "election_ticks_min" => c.election_ticks_min = parse(key, v)?,
                "election_ticks_max" => c.election_ticks_max = parse(key, v)?,
                "heartbeat_ticks" => c.heartbeat_ticks = parse(key, v)?,
                "priority" => c.priority = parse(key, v)?,
                "msg_entries_max" => c.msg_entries_max = parse(key, v)?,
                "batch_entries_max" => c.batch_entries_max = parse(key, v)?,
                "inflight_msgs_max" => c.inflight_msgs_max = parse(key, v)?,
                "snapshot_entries_threshold" => c.snapshot_entries_threshold = parse(key, v)?,
                "snapshot_chunk_bytes" => c.snapshot_chunk_bytes = parse(key, v)?,
                other => return Err(format!("unknown Raft option `{other}`")),
            }
        }
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    fn message(&self, msg: &RaftMessage) -> String {
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
                    s.push_str(&format!(" [{}]", script::render_entries(entries, "t")));
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
            } => format!(
                "HeartbeatResp({} round={read_round} tick={sent_tick})",
                t(*term)
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

    fn epoch_prefix(&self) -> &'static str {
        "t"
    }
}

#[test]
fn raft_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/raft");
    script::run_dir(&dir, || RaftScripts);
}
