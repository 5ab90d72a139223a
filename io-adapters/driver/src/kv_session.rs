//! Exactly-once key-value commands: a client-side session that numbers each command so
//! that the replicated session table applies it at most once, however often it is retried.

use bytes::Bytes;
use rsm_core::kv::{KvCommand, KvOp, KvResponse, KvStore};
use rsm_core::session::{ClientId, SessionHeader};

use crate::error::ClientError;
use crate::runner::Client;

/// One client session against a key-value node.
///
/// Each command gets the session's id and the next sequence number. A command whose
/// outcome is unknown (an indefinite error) is retried under the same number, up to
/// `retries_max` times; the store's session table answers a retry of an applied command
/// with its first response instead of applying it again. Use one session per logical
/// client, one command at a time: sequence numbers must reach the store in order.
#[derive(Clone, Debug)]
pub struct KvSession {
    client: Client<KvStore>,
    id: ClientId,
    last_seq: u64,
    retries_max: u32,
}

impl KvSession {
    /// A session named `id` (unique among the cluster's clients) that retries a command
    /// with an unknown outcome at most `retries_max` times.
    pub fn new(client: Client<KvStore>, id: ClientId, retries_max: u32) -> Self {
        Self {
            client,
            id,
            last_seq: 0,
            retries_max,
        }
    }

    /// The session's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The sequence number of the last command issued (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Replicate `op` exactly once and return the store's response.
    ///
    /// A definite error is returned only if no attempt could have taken effect; once an
    /// attempt ended indefinitely, the command may have been applied, so a later definite
    /// refusal is reported as that indefinite error.
    pub async fn execute(&mut self, op: KvOp) -> Result<KvResponse, ClientError> {
        self.last_seq += 1;
        let command = KvCommand {
            session: SessionHeader {
                client: self.id,
                seq: self.last_seq,
            },
            op,
        }
        .encode();
        let mut unknown: Option<ClientError> = None;
        for _ in 0..=self.retries_max {
            match self.client.propose(command.clone()).await {
                Ok(response) => return Ok(response),
                Err(error) if error.is_definite() => return Err(unknown.unwrap_or(error)),
                Err(error) => unknown = Some(error),
            }
        }
        Err(unknown.unwrap_or(ClientError::Timeout))
    }

    /// Write `value` at `key`.
    pub async fn put(&mut self, key: Bytes, value: Bytes) -> Result<KvResponse, ClientError> {
        self.execute(KvOp::Put { key, value }).await
    }

    /// Remove `key`.
    pub async fn delete(&mut self, key: Bytes) -> Result<KvResponse, ClientError> {
        self.execute(KvOp::Delete { key }).await
    }

    /// Read `key` linearizably without writing a log entry.
    pub async fn get(&self, key: Bytes) -> Result<Option<Bytes>, ClientError> {
        self.client.read(key).await
    }
}
