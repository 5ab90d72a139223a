//! What happened during a run, event by event: the determinism digest, the short tail
//! printed with a violation, and the full trace written as JSON lines.
//!
//! Everything a person reads shows time in ticks (the unit of every timeout and of the
//! report), with one decimal for the finer simulator time units (`t=173.7`), and values
//! as the text the clients wrote (`put "c1.23"`). The digest is taken over the compact
//! encoding, which keeps the exact time units and the checker's value numbers.

use std::fmt;
use std::io::{self, Write};

use serde::{Serialize, Serializer};

use rsm_check::{Call, Outcome, Ret};
use rsm_core::{Epoch, LogIndex, NodeId, PersistSeq, Role};

use super::client::value_text;
use super::swarm::TICK_UNITS;

/// A simulator time (in time units) in ticks, as printed: `173.7`.
pub fn ticks_text(units: u64) -> String {
    format!("{:.1}", units as f64 / TICK_UNITS as f64)
}

/// A time in simulator units: a number of ticks in JSON (and any human-readable format),
/// the exact units in the compact encoding the digest is taken over.
#[derive(Copy, Clone)]
struct Ticks(u64);

impl Serialize for Ticks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_f64(self.0 as f64 / TICK_UNITS as f64)
        } else {
            s.serialize_u64(self.0)
        }
    }
}

fn ticks<S: Serializer>(units: &u64, s: S) -> Result<S::Ok, S::Error> {
    Ticks(*units).serialize(s)
}

fn ticks_each<S: Serializer>(units: &[u64], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(units.iter().map(|u| Ticks(*u)))
}

/// A value as printed: the text the client wrote, quoted, or `absent`.
fn value_shown(v: Option<u64>) -> String {
    match v {
        Some(v) => format!("\"{}\"", value_text(v)),
        None => "absent".into(),
    }
}

/// A client's request as printed: `read`, `put "c1.23"`, `delete`, `cas "c1.2" -> "c1.23"`.
pub fn call_text(call: &Call) -> String {
    match call {
        Call::Read => "read".into(),
        Call::Write(Some(v)) => format!("put {}", value_shown(Some(*v))),
        Call::Write(None) => "delete".into(),
        Call::Cas { expected, new } => {
            format!("cas {} -> {}", value_shown(*expected), value_shown(*new))
        }
    }
}

/// How an operation ended, as printed: `ok "c1.23"`, `ok swapped`, `failed`, ...
pub fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok(Ret::Read(v)) => format!("ok {}", value_shown(*v)),
        Outcome::Ok(Ret::Written) => "ok".into(),
        Outcome::Ok(Ret::Cas(true)) => "ok swapped".into(),
        Outcome::Ok(Ret::Cas(false)) => "ok not swapped".into(),
        Outcome::Fail => "failed".into(),
        Outcome::Indeterminate => "indeterminate (it may have happened)".into(),
    }
}

fn call_json<S: Serializer>(call: &Call, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&call_text(call))
    } else {
        call.serialize(s)
    }
}

fn outcome_json<S: Serializer>(outcome: &Outcome, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&outcome_text(outcome))
    } else {
        outcome.serialize(s)
    }
}

/// One thing that happened at simulated time `at`.
#[derive(Clone, Debug, Serialize)]
pub struct Event<M> {
    /// Simulator time, in time units ([`TICK_UNITS`] to a tick; written in ticks).
    #[serde(serialize_with = "ticks")]
    pub at: u64,
    /// The node it happened at, if any.
    pub node: Option<NodeId>,
    /// What happened.
    pub kind: EventKind<M>,
}

/// The kinds of events a run records.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind<M> {
    /// A message left `node` for `to`; `arrive` lists when each copy will arrive (empty:
    /// lost or blocked).
    Send {
        /// The recipient.
        to: NodeId,
        /// Message number, shared by the matching `Deliver`.
        id: u64,
        /// Arrival times of each copy.
        #[serde(serialize_with = "ticks_each")]
        arrive: Vec<u64>,
        /// Why nothing arrives, when `arrive` is empty.
        dropped: Option<&'static str>,
        /// The message.
        msg: M,
    },
    /// A message arrived at `node`.
    Deliver {
        /// The sender.
        from: NodeId,
        /// The message number given at `Send`.
        id: u64,
        /// When it was sent.
        #[serde(serialize_with = "ticks")]
        sent: u64,
    },
    /// A persist was queued on the node's disk.
    Persist {
        /// Its number.
        seq: PersistSeq,
    },
    /// An fsync completed.
    Synced {
        /// Everything through this number is durable.
        through: PersistSeq,
    },
    /// The node applied committed entries.
    Apply {
        /// First index applied.
        first: LogIndex,
        /// Last index applied.
        last: LogIndex,
    },
    /// The node's role, epoch or leader changed.
    Role {
        /// New role.
        role: Role,
        /// Epoch.
        epoch: Epoch,
        /// Believed leader.
        leader: Option<NodeId>,
    },
    /// The node crashed, losing its unsynced writes.
    Crash {
        /// Unsynced writes lost.
        lost_writes: usize,
        /// Whether the last write reached the disk torn.
        torn: bool,
    },
    /// The node restarted from its durable state.
    Restart,
    /// The node stopped running until `until`.
    Pause {
        /// When it resumes.
        #[serde(serialize_with = "ticks")]
        until: u64,
    },
    /// The set of cut links changed (empty: healed).
    Partition {
        /// Which fault made the change.
        fault: &'static str,
        /// Cut directed links.
        cut: Vec<(NodeId, NodeId)>,
    },
    /// An administrative request: a membership change or a leadership transfer.
    Admin {
        /// What was asked.
        what: String,
    },
    /// A client invoked an operation.
    Invoke {
        /// The client.
        client: u64,
        /// The key.
        key: u64,
        /// The operation.
        #[serde(serialize_with = "call_json")]
        call: Call,
    },
    /// A client's operation ended.
    Complete {
        /// The client.
        client: u64,
        /// The key.
        key: u64,
        /// How it ended.
        #[serde(serialize_with = "outcome_json")]
        outcome: Outcome,
    },
    /// Faults stopped: the liveness phase began.
    LivenessPhase,
    /// An invariant failed; the run stops here.
    Violation {
        /// The invariant's name.
        invariant: &'static str,
        /// What was seen.
        detail: String,
    },
}

impl<M: fmt::Debug> fmt::Display for Event<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={:<7}", ticks_text(self.at))?;
        match self.node {
            Some(n) => write!(f, " {n:<4}")?,
            None => write!(f, " {:<4}", "-")?,
        }
        match &self.kind {
            EventKind::Send {
                to,
                id,
                arrive,
                dropped,
                msg,
            } => {
                let msg = shorten(format!("{msg:?}"));
                match dropped {
                    Some(why) => write!(f, " send #{id} -> {to} {why}: {msg}"),
                    None => {
                        let arrive: Vec<String> = arrive.iter().map(|u| ticks_text(*u)).collect();
                        write!(
                            f,
                            " send #{id} -> {to} arrives [{}]: {msg}",
                            arrive.join(", ")
                        )
                    }
                }
            }
            EventKind::Deliver { from, id, sent } => {
                write!(f, " recv #{id} <- {from} (sent t={})", ticks_text(*sent))
            }
            EventKind::Persist { seq } => write!(f, " persist {seq}"),
            EventKind::Synced { through } => write!(f, " fsync through {through}"),
            EventKind::Apply { first, last } => write!(f, " apply {first}..={last}"),
            EventKind::Role {
                role,
                epoch,
                leader,
            } => write!(f, " role {role:?} {epoch} leader {leader:?}"),
            EventKind::Crash { lost_writes, torn } => {
                write!(f, " CRASH lost {lost_writes} unsynced writes, torn {torn}")
            }
            EventKind::Restart => write!(f, " restart"),
            EventKind::Pause { until } => write!(f, " pause until t={}", ticks_text(*until)),
            EventKind::Partition { fault, cut } => {
                write!(f, " {fault}: cut {}", render_links(cut))
            }
            EventKind::Admin { what } => write!(f, " admin {what}"),
            EventKind::Invoke { client, key, call } => {
                write!(
                    f,
                    " client {client} invokes {} on key {key}",
                    call_text(call)
                )
            }
            EventKind::Complete {
                client,
                key,
                outcome,
            } => write!(f, " client {client} key {key} -> {}", outcome_text(outcome)),
            EventKind::LivenessPhase => write!(f, " faults stop, liveness phase begins"),
            EventKind::Violation { invariant, detail } => {
                write!(f, " VIOLATION {invariant}: {detail}")
            }
        }
    }
}

/// Characters of a message shown in a one-line event; the JSON trace keeps it whole.
pub const MESSAGE_SHOWN_CHARS_MAX: usize = 160;

fn shorten(mut s: String) -> String {
    if let Some((cut, _)) = s.char_indices().nth(MESSAGE_SHOWN_CHARS_MAX) {
        s.truncate(cut);
        s.push_str(" ...");
    }
    s
}

fn render_links(cut: &[(NodeId, NodeId)]) -> String {
    if cut.is_empty() {
        return "none (healed)".into();
    }
    let parts: Vec<String> = cut.iter().map(|(a, b)| format!("{a}->{b}")).collect();
    parts.join(" ")
}

/// A 64-bit FNV-1a hash over every event of a run: two runs with equal digests recorded
/// the same events, byte for byte.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Digest(u64);

impl Digest {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// The digest of nothing.
    pub fn new() -> Self {
        Self(Self::OFFSET)
    }

    /// Fold `bytes` in.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// The hash value.
    pub fn value(self) -> u64 {
        self.0
    }
}

impl Default for Digest {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Write a run's trace ([`RunResult::trace`](super::RunResult::trace)) as JSON lines, one
/// event per line.
pub fn write_json_lines(trace: &[String], out: &mut impl Write) -> io::Result<()> {
    for line in trace {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        let mut d = Digest::new();
        assert_eq!(d.value(), 0xcbf2_9ce4_8422_2325);
        d.update(b"a");
        assert_eq!(d.value(), 0xaf63_dc4c_8601_ec8c);
        let mut d = Digest::new();
        d.update(b"foobar");
        assert_eq!(d.value(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn json_lines_are_one_object_per_event() {
        let events = [
            Event::<u32> {
                at: 3,
                node: Some(NodeId(1)),
                kind: EventKind::Crash {
                    lost_writes: 2,
                    torn: true,
                },
            },
            Event {
                at: 4,
                node: None,
                kind: EventKind::Partition {
                    fault: "heal",
                    cut: vec![],
                },
            },
        ];
        let trace: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        let mut out = Vec::new();
        write_json_lines(&trace, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            r#"{"at":0.3,"node":1,"kind":{"type":"crash","lost_writes":2,"torn":true}}"#
        );
        assert!(events[0].to_string().contains("CRASH lost 2"));
    }

    #[test]
    fn people_read_ticks_and_the_values_clients_wrote() {
        let value = (1 << 32) | 23;
        let invoke = Event::<u32> {
            at: 1737,
            node: None,
            kind: EventKind::Invoke {
                client: 1,
                key: 4,
                call: Call::Cas {
                    expected: None,
                    new: Some(value),
                },
            },
        };
        let complete = Event::<u32> {
            at: 1740,
            node: None,
            kind: EventKind::Complete {
                client: 1,
                key: 4,
                outcome: Outcome::Ok(Ret::Read(Some(value))),
            },
        };
        assert_eq!(
            invoke.to_string(),
            r#"t=173.7   -    client 1 invokes cas absent -> "c1.23" on key 4"#
        );
        assert_eq!(
            complete.to_string(),
            r#"t=174.0   -    client 1 key 4 -> ok "c1.23""#
        );
        assert_eq!(
            serde_json::to_string(&complete).unwrap(),
            r#"{"at":174.0,"node":null,"kind":{"type":"complete","client":1,"key":4,"outcome":"ok \"c1.23\""}}"#
        );
        // The digest's encoding keeps exact units and numbers.
        let compact = postcard::to_allocvec(&complete).unwrap();
        assert_eq!(compact[0], 0xcc, "1740 as a varint starts 0xcc");
        assert!(!String::from_utf8_lossy(&compact).contains("c1.23"));
    }
}
