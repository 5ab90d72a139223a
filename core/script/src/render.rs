//! Compact, deterministic text for entries, persists, effects and statuses.
//!
//! Protocols use [`entries`] and [`index_range`] when they print their own messages, so
//! that a log excerpt reads the same in a message as in a `persist` or `apply` line.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use rsm_core::Membership;
use rsm_core::NodeId;
use rsm_core::RejectReason;
use rsm_core::kv::{KvCommand, KvOp};
use rsm_core::{Entry, EntryKind};
use rsm_core::{HardState, Persist, Status};

pub use rsm_core::text::{entries, epoch, index_range};

/// What an entry carries: `noop`, `x=1` (a key-value put), the command text, or the
/// configuration it installs.
pub fn payload(entry: &Entry) -> String {
    match entry.kind {
        EntryKind::Noop => "noop".to_string(),
        EntryKind::Config => match entry.membership() {
            Some(m) => format!("config {}", membership(&m)),
            None => "config <undecodable>".to_string(),
        },
        EntryKind::Command => command(&entry.payload),
    }
}

/// A command payload: a key-value command in short form, else its text, else hex.
pub fn command(bytes: &[u8]) -> String {
    if let Ok(cmd) = KvCommand::decode(bytes) {
        return match cmd.op {
            KvOp::Put { key, value } => format!("{}={}", text(&key), text(&value)),
            KvOp::Get { key } => format!("get {}", text(&key)),
            KvOp::Delete { key } => format!("del {}", text(&key)),
            KvOp::Cas { key, expected, new } => format!(
                "cas {} {}->{}",
                text(&key),
                expected.as_deref().map_or("-".into(), text),
                new.as_deref().map_or("-".into(), text)
            ),
        };
    }
    text(bytes)
}

/// UTF-8 text as is, anything else as `0x`-prefixed hex.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => {
            let mut s = String::from("0x");
            for b in bytes {
                let _ = write!(s, "{b:02x}");
            }
            s
        }
    }
}

/// `1,2,3`, or `-` for an empty set.
pub fn ids(set: &BTreeSet<NodeId>) -> String {
    if set.is_empty() {
        return "-".to_string();
    }
    let parts: Vec<String> = set.iter().map(|id| id.0.to_string()).collect();
    parts.join(",")
}

/// `voters=1,2,3 [outgoing=1,2] [learners=4]`.
pub fn membership(m: &Membership) -> String {
    let mut s = format!("voters={}", ids(&m.voters));
    if !m.outgoing.is_empty() {
        let _ = write!(s, " outgoing={}", ids(&m.outgoing));
    }
    if !m.learners.is_empty() {
        let _ = write!(s, " learners={}", ids(&m.learners));
    }
    s
}

/// `t2 vote=1 commit=i4` (`vote=-` when none); `extra` is shown as its length only.
pub fn hard_state(hs: &HardState, epoch_prefix: &str) -> String {
    let vote = hs.vote.map_or("-".to_string(), |v| v.0.to_string());
    let mut s = format!(
        "{} vote={vote} commit=i{}",
        epoch(hs.epoch, epoch_prefix),
        hs.commit.0
    );
    if !hs.extra.is_empty() {
        let _ = write!(s, " extra={}b", hs.extra.len());
    }
    s
}

/// One persist operation: `append i5..7 t2`, `accept i3/t2 i7/t2`, `truncate i5`,
/// `hard t2 vote=1 commit=i4`, `snapshot i9 t2`, `compact i9`.
pub fn persist(op: &Persist, epoch_prefix: &str) -> String {
    match op {
        Persist::Append { entries: es } => format!("append {}", entries(es, epoch_prefix)),
        // Slots may have holes, so each names its own index.
        Persist::Accept { entries: es } => {
            let mut s = "accept".to_string();
            for e in es {
                let _ = write!(s, " i{}/{}", e.index.0, epoch(e.epoch, epoch_prefix));
            }
            s
        }
        Persist::Truncate { from } => format!("truncate i{}", from.0),
        Persist::HardState(hs) => format!("hard {}", hard_state(hs, epoch_prefix)),
        Persist::Snapshot { meta, .. } => {
            format!(
                "snapshot i{} {}",
                meta.index.0,
                epoch(meta.epoch, epoch_prefix)
            )
        }
        Persist::Compact { through } => format!("compact i{}", through.0),
    }
}

/// A refusal in short form: `not-leader hint=2`, `busy`, `leadership-lost`, ...
pub fn reject(reason: &RejectReason) -> String {
    let hint = |h: &Option<NodeId>| h.map_or(String::new(), |h| format!(" hint={}", h.0));
    match reason {
        RejectReason::NotLeader { hint: h } => format!("not-leader{}", hint(h)),
        RejectReason::TransferInProgress { target } => {
            format!("transfer-in-progress to={}", target.0)
        }
        RejectReason::TooLarge { bytes, limit_bytes } => {
            format!("too-large {bytes}b>{limit_bytes}b")
        }
        RejectReason::Busy => "busy".to_string(),
        RejectReason::Removed => "removed".to_string(),
        RejectReason::ConfigChangeInProgress => "config-change-in-progress".to_string(),
        RejectReason::InvalidConfig(why) => format!("invalid-config ({why})"),
        RejectReason::NotVoter { id } => format!("not-voter {}", id.0),
        RejectReason::Unsupported => "unsupported".to_string(),
        RejectReason::LeadershipLost { hint: h } => format!("leadership-lost{}", hint(h)),
    }
}

/// `Leader t2 leader=1 commit=i5 applied=i5 last=i5 voters=1,2,3`.
pub fn status(s: &Status, epoch_prefix: &str) -> String {
    let leader = s.leader.map_or("-".to_string(), |l| l.0.to_string());
    format!(
        "{:?} {} leader={leader} commit=i{} applied=i{} last=i{} {}",
        s.role,
        epoch(s.epoch, epoch_prefix),
        s.commit.0,
        s.applied.0,
        s.last_index.0,
        membership(&s.membership)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rsm_core::kv::KvCommand;
    use rsm_core::session::{ClientId, SessionHeader};
    use rsm_core::{Epoch, LogIndex};

    #[test]
    fn entry_runs_and_payloads() {
        let es = vec![
            Entry::noop(LogIndex(5), Epoch(1)),
            Entry::command(LogIndex(6), Epoch(2), Bytes::from_static(b"hello")),
            Entry::config(
                LogIndex(7),
                Epoch(2),
                &Membership::new([NodeId(1), NodeId(2)]),
            ),
        ];
        assert_eq!(entries(&es, "t"), "i5..7 t1 t2 t2");
        assert_eq!(entries(&es[1..], "t"), "i6..7 t2");
        assert_eq!(entries(&es[..1], "v"), "i5 v1");
        assert_eq!(entries(&[], "t"), "i-");
        let shown: Vec<String> = es.iter().map(payload).collect();
        assert_eq!(shown, ["noop", "hello", "config voters=1,2"]);
        let put = KvCommand {
            session: SessionHeader {
                client: ClientId(3),
                seq: 1,
            },
            op: KvOp::Put {
                key: Bytes::from_static(b"x"),
                value: Bytes::from_static(b"1"),
            },
        };
        assert_eq!(command(&put.encode()), "x=1");
        assert_eq!(command(&[0xff, 0x00]), "0xff00");
    }

    #[test]
    fn rejects_and_hard_state() {
        assert_eq!(
            reject(&RejectReason::NotLeader {
                hint: Some(NodeId(2))
            }),
            "not-leader hint=2"
        );
        assert_eq!(
            reject(&RejectReason::LeadershipLost { hint: None }),
            "leadership-lost"
        );
        let hs = HardState {
            epoch: Epoch(3),
            vote: Some(NodeId(1)),
            commit: LogIndex(4),
            extra: Bytes::new(),
        };
        assert_eq!(
            persist(&Persist::HardState(hs), "t"),
            "hard t3 vote=1 commit=i4"
        );
    }
}
