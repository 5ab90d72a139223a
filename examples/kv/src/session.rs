//! Exactly-once key-value commands inside the server's process: a session over the node
//! loop's [`Client`] that numbers each command so that the replicated session table
//! applies it at most once, however often it is retried. ([`crate::KvClient`] does the
//! same over the network.)

use bytes::Bytes;
use rsm_core::kv::{KvCommand, KvOp, KvResponse, KvStore};
use rsm_core::session::{ClientId, SessionHeader};
use rsm_driver::{Client, ClientError};

/// One client session against a key-value node running in this process.
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use rsm_consensus::{Raft, RaftConfig};
    use rsm_core::{
        Durable, Effect, EntryKind, Input, MemStorage, Membership, NodeId, NullTransport,
        RejectReason, Replica, RestoreError, Role, Status,
    };
    use rsm_driver::{DriverConfig, IntervalTicker, NodeCore, NodeRunner, block_on};

    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn ticker() -> IntervalTicker {
        IntervalTicker::new(Duration::from_millis(1)).unwrap()
    }

    #[test]
    fn a_session_numbers_its_commands_and_reads_its_writes() {
        let config = RaftConfig::new(NodeId(1), Membership::new([NodeId(1)]), 1);
        let raft = Raft::restore(config, Durable::default()).unwrap();
        let core = NodeCore::new(
            DriverConfig::default(),
            raft,
            MemStorage::default(),
            NullTransport,
            KvStore::new(),
        );
        let (runner, handles) = NodeRunner::new(core);
        let node = runner.spawn_thread("node-1", ticker()).unwrap();
        // The lone voter elects itself after an election timeout of real ticks.
        for _ in 0..10_000 {
            if handles.status.get().status.role == Role::Leader {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }

        let mut session = KvSession::new(handles.client.clone(), ClientId(7), 3);
        assert_eq!(block_on(session.put(b("k"), b("1"))), Ok(KvResponse::Done));
        assert_eq!(block_on(session.put(b("k"), b("2"))), Ok(KvResponse::Done));
        assert_eq!(block_on(session.get(b("k"))), Ok(Some(b("2"))));
        assert_eq!(block_on(session.delete(b("k"))), Ok(KvResponse::Done));
        assert_eq!(block_on(session.get(b("k"))), Ok(None));
        assert_eq!(session.last_seq(), 3);

        handles.shutdown.shutdown();
        let stopped = node.join();
        let seqs: Vec<u64> = stopped
            .core
            .storage()
            .durable
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Command)
            .map(|e| KvCommand::decode(&e.payload).unwrap().session.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    /// Logs every proposal and commits nothing; refuses the third proposal definitely.
    #[derive(Debug)]
    struct RefuseThird(Arc<Mutex<Vec<Bytes>>>);

    impl Replica for RefuseThird {
        type Message = ();
        type Config = Arc<Mutex<Vec<Bytes>>>;

        fn restore(seen: Self::Config, _: Durable) -> Result<Self, RestoreError> {
            Ok(Self(seen))
        }

        fn step(&mut self, input: Input<()>, out: &mut Vec<Effect<()>>) {
            if let Input::Propose { req, command } = input {
                let mut seen = self.0.lock().unwrap();
                seen.push(command);
                if seen.len() >= 3 {
                    out.push(Effect::Reject {
                        req,
                        reason: RejectReason::NotLeader { hint: None },
                    });
                }
            }
        }

        fn status(&self) -> Status {
            Status::default()
        }
    }

    #[test]
    fn retries_reuse_the_number_and_an_unknown_outcome_stays_unknown() {
        // The first two attempts time out, so the command may have been applied: the
        // definite refusal of the third must not be reported as definite.
        let proposals = Arc::new(Mutex::new(Vec::new()));
        let replica = RefuseThird::restore(proposals.clone(), Durable::default()).unwrap();
        let config = DriverConfig {
            request_timeout_ticks: 2,
            ..DriverConfig::default()
        };
        let core = NodeCore::new(
            config,
            replica,
            MemStorage::default(),
            NullTransport,
            KvStore::new(),
        );
        let (runner, handles) = NodeRunner::new(core);
        let node = runner.spawn_thread("node-1", ticker()).unwrap();

        let mut session = KvSession::new(handles.client.clone(), ClientId(3), 5);
        let e = block_on(session.put(b("k"), b("v"))).unwrap_err();
        assert_eq!(e, ClientError::Timeout);
        assert!(!e.is_definite());
        let proposals = proposals.lock().unwrap();
        assert_eq!(proposals.len(), 3);
        assert!(
            proposals.iter().all(|p| *p == proposals[0]),
            "every retry carries the same session number"
        );
        handles.shutdown.shutdown();
        assert!(node.join().core.storage().durable.entries.is_empty());
    }
}
