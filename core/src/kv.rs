//! The reference key-value state machine: get, put, delete and compare-and-swap under
//! exactly-once sessions. The simulator's clients, the examples and the Python module use
//! it; the linearizability checker models the same operations.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::codec::{decode_body, encode_body};
use crate::error::CodecError;
use crate::ids::LogIndex;
use crate::session::{SessionCheck, SessionHeader, SessionTable};
use crate::state_machine::{Queryable, StateMachine};

/// One key-value operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvOp {
    /// Read a key.
    Get {
        /// The key.
        key: Bytes,
    },
    /// Write a key.
    Put {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// Remove a key.
    Delete {
        /// The key.
        key: Bytes,
    },
    /// Set `key` to `new` (absent if `None`) if its value is `expected` (absent if `None`).
    Cas {
        /// The key.
        key: Bytes,
        /// The value the key must hold.
        expected: Option<Bytes>,
        /// The value to store.
        new: Option<Bytes>,
    },
}

impl KvOp {
    /// The key the operation touches.
    pub fn key(&self) -> &Bytes {
        match self {
            KvOp::Get { key }
            | KvOp::Put { key, .. }
            | KvOp::Delete { key }
            | KvOp::Cas { key, .. } => key,
        }
    }
}

/// A command as replicated: session header plus operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCommand {
    /// Who sent it, and its sequence number.
    pub session: SessionHeader,
    /// What to do.
    pub op: KvOp,
}

impl KvCommand {
    /// Encode for `Input::Propose`.
    pub fn encode(&self) -> Bytes {
        let mut v = Vec::with_capacity(32);
        encode_body(self, &mut v).expect("KvCommand always serializes");
        Bytes::from(v)
    }

    /// Decode a proposed command.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        decode_body(bytes)
    }
}

/// The result of a key-value operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvResponse {
    /// The value read (for `Get`).
    Value(Option<Bytes>),
    /// A `Put` or `Delete` took effect.
    Done,
    /// A `Cas`: whether it swapped, and the value found.
    Cas {
        /// Whether the swap happened.
        swapped: bool,
        /// The value before the operation.
        current: Option<Bytes>,
    },
    /// The command could not be decoded; nothing changed.
    Malformed,
    /// The command is older than the session's last command; nothing changed.
    Stale,
    /// The client's session was evicted; the outcome of this command is unknown.
    SessionExpired,
}

/// The key-value store: a map and a session table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    data: BTreeMap<Bytes, Bytes>,
    sessions: SessionTable<KvResponse>,
    applied: LogIndex,
}

impl KvStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Read a key directly (for reads served after a `ReadReady`).
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.data.get(key)
    }

    /// The last applied index.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the store has no keys.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Execute `op` without any session logic.
    pub fn execute(&mut self, op: &KvOp) -> KvResponse {
        match op {
            KvOp::Get { key } => KvResponse::Value(self.data.get(key).cloned()),
            KvOp::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                KvResponse::Done
            }
            KvOp::Delete { key } => {
                self.data.remove(key);
                KvResponse::Done
            }
            KvOp::Cas { key, expected, new } => {
                let current = self.data.get(key).cloned();
                let swapped = current == *expected;
                if swapped {
                    match new {
                        Some(v) => self.data.insert(key.clone(), v.clone()),
                        None => self.data.remove(key),
                    };
                }
                KvResponse::Cas { swapped, current }
            }
        }
    }

    /// Apply a decoded command under its session.
    pub fn apply_command(&mut self, index: LogIndex, cmd: &KvCommand) -> KvResponse {
        self.applied = self.applied.max(index);
        match self.sessions.check(cmd.session) {
            SessionCheck::Duplicate(r) => r.clone(),
            SessionCheck::Stale => KvResponse::Stale,
            SessionCheck::Expired => KvResponse::SessionExpired,
            SessionCheck::New => {
                let r = self.execute(&cmd.op);
                self.sessions.record(cmd.session, index, r.clone());
                r
            }
        }
    }
}

/// A key-value read: the value of the key, if any.
impl Queryable for KvStore {
    type Query = Bytes;
    type Answer = Option<Bytes>;

    fn query(&self, key: &Bytes) -> Option<Bytes> {
        self.get(key).cloned()
    }
}

impl StateMachine for KvStore {
    type Response = KvResponse;

    fn apply(&mut self, index: LogIndex, command: &Bytes) -> KvResponse {
        match KvCommand::decode(command) {
            Ok(cmd) => self.apply_command(index, &cmd),
            Err(_) => {
                self.applied = self.applied.max(index);
                KvResponse::Malformed
            }
        }
    }

    fn snapshot(&self) -> Bytes {
        let mut v = Vec::new();
        encode_body(self, &mut v).expect("KvStore always serializes");
        Bytes::from(v)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), CodecError> {
        *self = decode_body(snapshot)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ClientId;

    fn cmd(client: u64, seq: u64, op: KvOp) -> Bytes {
        KvCommand {
            session: SessionHeader {
                client: ClientId(client),
                seq,
            },
            op,
        }
        .encode()
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn put_get_cas_delete() {
        let mut kv = KvStore::new();
        assert_eq!(
            kv.apply(
                LogIndex(1),
                &cmd(
                    1,
                    1,
                    KvOp::Put {
                        key: b("k"),
                        value: b("v1")
                    }
                )
            ),
            KvResponse::Done
        );
        assert_eq!(
            kv.apply(
                LogIndex(2),
                &cmd(
                    1,
                    2,
                    KvOp::Cas {
                        key: b("k"),
                        expected: Some(b("v0")),
                        new: Some(b("x"))
                    }
                )
            ),
            KvResponse::Cas {
                swapped: false,
                current: Some(b("v1"))
            }
        );
        assert_eq!(
            kv.apply(
                LogIndex(3),
                &cmd(
                    1,
                    3,
                    KvOp::Cas {
                        key: b("k"),
                        expected: Some(b("v1")),
                        new: Some(b("v2"))
                    }
                )
            ),
            KvResponse::Cas {
                swapped: true,
                current: Some(b("v1"))
            }
        );
        assert_eq!(
            kv.apply(LogIndex(4), &cmd(1, 4, KvOp::Get { key: b("k") })),
            KvResponse::Value(Some(b("v2")))
        );
        assert_eq!(
            kv.apply(LogIndex(5), &cmd(1, 5, KvOp::Delete { key: b("k") })),
            KvResponse::Done
        );
        assert_eq!(kv.get(b"k"), None);
    }

    #[test]
    fn retried_command_applies_once() {
        let mut kv = KvStore::new();
        let put = cmd(
            7,
            1,
            KvOp::Put {
                key: b("k"),
                value: b("a"),
            },
        );
        kv.apply(LogIndex(1), &put);
        kv.apply(
            LogIndex(2),
            &cmd(
                8,
                1,
                KvOp::Put {
                    key: b("k"),
                    value: b("b"),
                },
            ),
        );
        // The retry of client 7's first command must not overwrite client 8's write.
        assert_eq!(kv.apply(LogIndex(3), &put), KvResponse::Done);
        assert_eq!(kv.get(b"k"), Some(&b("b")));
    }

    #[test]
    fn malformed_command_changes_nothing_and_snapshot_round_trips() {
        let mut kv = KvStore::new();
        kv.apply(
            LogIndex(1),
            &cmd(
                1,
                1,
                KvOp::Put {
                    key: b("a"),
                    value: b("1"),
                },
            ),
        );
        assert_eq!(
            kv.apply(LogIndex(2), &Bytes::from_static(&[0xff, 0xff, 0xff])),
            KvResponse::Malformed
        );
        let snap = kv.snapshot();
        let mut other = KvStore::new();
        other.restore(&snap).unwrap();
        assert_eq!(other, kv);
        assert!(other.restore(&[1, 2, 3]).is_err());
        assert_eq!(other, kv, "a failed restore leaves the state unchanged");
    }
}
