//! Simulated key-value clients: one operation open at a time, retried under the same
//! session sequence number, each ending ok, failed (definitely did not happen) or
//! indeterminate (may have happened).

use std::collections::BTreeMap;

use rsm_check::{Call, Outcome, Ret};
use rsm_core::kv::{KvCommand, KvOp, KvResponse};
use rsm_core::session::{ClientId, SessionHeader};
use rsm_core::{Bytes, Epoch, LogIndex, NodeId, Prng, RequestId};

use super::swarm::ReadPath;

/// Attempts a client makes for one operation during the fault phase before giving up.
pub const ATTEMPTS_MAX: u32 = 8;

/// How long a client waits for an answer to one attempt, in time units.
pub const ATTEMPT_TIMEOUT_UNITS: u64 = 300;

/// How long a client waits before retrying after a refusal, in time units.
pub const RETRY_BACKOFF_UNITS: u64 = 15;

/// Where one attempt stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum AttemptState {
    /// Handed to a replica; no answer yet. It may take effect.
    Sent,
    /// Appended at `index` in `epoch`: it takes effect iff that index applies with `epoch`.
    Proposed { index: LogIndex, epoch: Epoch },
    /// A read barrier answered: serve after applying through the index.
    ReadAt,
    /// It certainly did not and will not take effect.
    Dead,
    /// Refused indefinitely: it may take effect.
    Maybe,
}

/// One try of an operation at one replica.
#[derive(Clone, Debug)]
pub(crate) struct Attempt {
    pub req: RequestId,
    pub node: NodeId,
    pub state: AttemptState,
}

/// The operation a client has open.
#[derive(Clone, Debug)]
pub(crate) struct PendingOp {
    pub key: u64,
    pub call: Call,
    pub seq: u64,
    pub invoke: u64,
    /// The replicated command; `None` for a read served through a barrier.
    pub command: Option<Bytes>,
    pub attempts: Vec<Attempt>,
    /// When the current attempt times out (or the next retry is due).
    pub deadline: u64,
}

/// A simulated client.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub id: u64,
    seq: u64,
    pub hint: Option<NodeId>,
    /// The value this client last saw at each key, for plausible compare-and-swaps.
    last_seen: BTreeMap<u64, Option<u64>>,
    pub op: Option<PendingOp>,
    pub ops_started: u32,
    /// Only the newest scheduled wake-up counts.
    pub wake_gen: u64,
}

/// Encode a key for the store.
pub(crate) fn key_bytes(key: u64) -> Bytes {
    Bytes::copy_from_slice(&key.to_be_bytes())
}

/// The text a client writes for the unique value `v`: `c{client}.{seq}`, the client and
/// the operation's sequence number (`c1.23`). Traces print values as this text too.
pub(crate) fn value_text(v: u64) -> String {
    format!("c{}.{}", v >> 32, v & u64::from(u32::MAX))
}

/// Decode a value the clients wrote (the text of [`value_text`]). Bytes no client wrote
/// decode to `u64::MAX`, a value never written, so the checker reports the read.
pub(crate) fn value_of(bytes: &Bytes) -> u64 {
    let parse = || {
        let text = std::str::from_utf8(bytes).ok()?.strip_prefix('c')?;
        let (client, seq) = text.split_once('.')?;
        let client: u32 = client.parse().ok()?;
        let seq: u32 = seq.parse().ok()?;
        Some(u64::from(client) << 32 | u64::from(seq))
    };
    parse().unwrap_or(u64::MAX)
}

fn value_bytes(v: u64) -> Bytes {
    Bytes::from(value_text(v))
}

impl Client {
    pub fn new(id: u64) -> Self {
        Self {
            id,
            seq: 0,
            hint: None,
            last_seen: BTreeMap::new(),
            op: None,
            ops_started: 0,
            wake_gen: 0,
        }
    }

    /// Start a new operation: a read, a write of a fresh unique value, or a
    /// compare-and-swap from the last value seen.
    pub fn start(&mut self, rng: &mut Prng, keys: u64, reads: ReadPath, now: u64) -> &PendingOp {
        debug_assert!(self.op.is_none(), "one operation at a time");
        self.seq += 1;
        self.ops_started += 1;
        let key = rng.range(0, keys.max(1));
        // Unique across clients and sequence numbers, so a read names the write it saw.
        let fresh = (self.id << 32) | self.seq;
        let kb = key_bytes(key);
        let (call, op) = match rng.range(0, 10) {
            0..=3 => (Call::Read, KvOp::Get { key: kb }),
            4..=7 => (
                Call::Write(Some(fresh)),
                KvOp::Put {
                    key: kb,
                    value: value_bytes(fresh),
                },
            ),
            _ => {
                let expected = self.last_seen.get(&key).copied().flatten();
                (
                    Call::Cas {
                        expected,
                        new: Some(fresh),
                    },
                    KvOp::Cas {
                        key: kb,
                        expected: expected.map(value_bytes),
                        new: Some(value_bytes(fresh)),
                    },
                )
            }
        };
        let command = match (call, reads) {
            (Call::Read, ReadPath::Barrier) => None,
            _ => Some(
                KvCommand {
                    session: SessionHeader {
                        client: ClientId(self.id),
                        seq: self.seq,
                    },
                    op,
                }
                .encode(),
            ),
        };
        self.op.insert(PendingOp {
            key,
            call,
            seq: self.seq,
            invoke: now,
            command,
            attempts: Vec::new(),
            deadline: now,
        })
    }

    /// Where the next attempt goes: the leader hint, else a random replica.
    pub fn target(&self, rng: &mut Prng, nodes: usize) -> NodeId {
        self.hint
            .unwrap_or_else(|| NodeId(rng.range(1, nodes as u64 + 1)))
    }

    /// The attempt for `req` of the open operation, if it is one.
    pub fn attempt_mut(&mut self, req: RequestId) -> Option<&mut Attempt> {
        self.op.as_mut()?.attempts.iter_mut().find(|a| a.req == req)
    }

    /// Remember what a completed operation showed about its key.
    pub fn observe(&mut self, key: u64, call: Call, ret: Ret) {
        match (call, ret) {
            (_, Ret::Read(v)) => {
                self.last_seen.insert(key, v);
            }
            (Call::Write(v), Ret::Written) | (Call::Cas { new: v, .. }, Ret::Cas(true)) => {
                self.last_seen.insert(key, v);
            }
            _ => {}
        }
    }
}

/// How a giving-up client reports its operation: reads never change state, so a read
/// that got no answer did not happen; a write that may have reached a log is unknown.
pub(crate) fn give_up_outcome(
    op: &PendingOp,
    superseded: impl Fn(LogIndex, Epoch) -> bool,
) -> Outcome {
    if op.call == Call::Read {
        return Outcome::Fail;
    }
    let maybe = op.attempts.iter().any(|a| match a.state {
        AttemptState::Dead => false,
        AttemptState::Proposed { index, epoch } => !superseded(index, epoch),
        AttemptState::Sent | AttemptState::ReadAt | AttemptState::Maybe => true,
    });
    if maybe {
        Outcome::Indeterminate
    } else {
        Outcome::Fail
    }
}

/// Translate the state machine's answer into the history's vocabulary. `None`: the
/// answer says nothing definite (an expired session).
pub(crate) fn ret_of(resp: &KvResponse) -> Option<Ret> {
    match resp {
        KvResponse::Value(v) => Some(Ret::Read(v.as_ref().map(value_of))),
        KvResponse::Done => Some(Ret::Written),
        KvResponse::Cas { swapped, .. } => Some(Ret::Cas(*swapped)),
        KvResponse::Malformed | KvResponse::Stale | KvResponse::SessionExpired => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_values_are_unique_and_round_trip() {
        let mut c = Client::new(3);
        let mut rng = Prng::new(1);
        let mut seen = std::collections::BTreeSet::new();
        for t in 0..50 {
            let op = c.start(&mut rng, 2, ReadPath::Log, t).clone();
            if let Call::Write(Some(v)) | Call::Cas { new: Some(v), .. } = op.call {
                assert!(seen.insert(v), "value {v} written twice");
                assert_eq!(value_of(&value_bytes(v)), v);
                assert_eq!(value_text(v), format!("c3.{}", v & 0xffff_ffff));
            }
            assert!(op.command.is_some(), "log reads are proposed too");
            c.op = None;
        }
    }

    #[test]
    fn values_are_the_text_a_client_wrote() {
        let v = (1 << 32) | 23;
        assert_eq!(value_bytes(v), Bytes::from_static(b"c1.23"));
        assert_eq!(value_of(&Bytes::from_static(b"c1.23")), v);
        for junk in [&b"c1"[..], b"x1.2", b"c1.x", b"", b"\xff"] {
            assert_eq!(value_of(&Bytes::copy_from_slice(junk)), u64::MAX);
        }
    }

    #[test]
    fn give_up_is_indeterminate_only_if_some_attempt_may_have_happened() {
        let mut c = Client::new(1);
        let mut rng = Prng::new(2);
        let mut op;
        loop {
            op = c.start(&mut rng, 1, ReadPath::Barrier, 0).clone();
            c.op = None;
            if op.call != Call::Read {
                break;
            }
        }
        let a = |state| Attempt {
            req: RequestId(1),
            node: NodeId(1),
            state,
        };
        op.attempts = vec![a(AttemptState::Dead)];
        assert_eq!(give_up_outcome(&op, |_, _| false), Outcome::Fail);
        op.attempts.push(a(AttemptState::Proposed {
            index: LogIndex(4),
            epoch: Epoch(2),
        }));
        assert_eq!(give_up_outcome(&op, |_, _| true), Outcome::Fail);
        assert_eq!(give_up_outcome(&op, |_, _| false), Outcome::Indeterminate);
        op.attempts.push(a(AttemptState::Sent));
        assert_eq!(give_up_outcome(&op, |_, _| true), Outcome::Indeterminate);
    }
}
