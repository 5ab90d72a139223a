//! Exactly-once sessions through a running node: commands are numbered, retries of a
//! command with an unknown outcome reuse its number, and a definite refusal after an
//! unknown outcome is never reported as definite.

mod common;

use std::sync::{Arc, Mutex};
use std::thread;

use common::{
    FakeStorage, FakeTransport, Note, ScriptedReplica, ThreadNode, World, block_on,
    spawn_single_kv_node, spawn_thread,
};
use rsm_core::kv::{KvCommand, KvResponse, KvStore};
use rsm_core::session::ClientId;
use rsm_core::{Bytes, Effect, Input, NodeId, RejectReason};
use rsm_driver::{ClientError, DriverConfig, KvSession, NodeCore};

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[test]
fn a_session_numbers_its_commands_and_reads_its_writes() {
    let ThreadNode {
        join: node,
        handles,
        ..
    } = spawn_single_kv_node();

    let mut session = KvSession::new(handles.client.clone(), ClientId(7), 3);
    assert_eq!(block_on(session.put(b("k"), b("1"))), Ok(KvResponse::Done));
    assert_eq!(block_on(session.put(b("k"), b("2"))), Ok(KvResponse::Done));
    assert_eq!(block_on(session.get(b("k"))), Ok(Some(b("2"))));
    assert_eq!(block_on(session.delete(b("k"))), Ok(KvResponse::Done));
    assert_eq!(block_on(session.get(b("k"))), Ok(None));
    assert_eq!(session.last_seq(), 3);

    handles.shutdown.shutdown();
    let stopped = node.join().unwrap();
    let seqs: Vec<u64> = stopped
        .core
        .storage()
        .synced
        .entries
        .iter()
        .map(|e| KvCommand::decode(&e.payload).unwrap().session.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

#[test]
fn retries_reuse_the_number_and_an_unknown_outcome_stays_unknown() {
    // The replica logs every proposal, never commits, and refuses the third attempt
    // definitely: the first two timed out, so the command may have been applied.
    let proposals = Arc::new(Mutex::new(Vec::new()));
    let seen = proposals.clone();
    let (replica, _inputs) = ScriptedReplica::new(move |input: &Input<Note>| match input {
        Input::Propose { req, command } => {
            let mut seen = seen.lock().unwrap();
            seen.push(command.clone());
            if seen.len() < 3 {
                return vec![];
            }
            vec![Effect::Reject {
                req: *req,
                reason: RejectReason::NotLeader { hint: None },
            }]
        }
        _ => vec![],
    });
    let world = World::default();
    let core: NodeCore<_, _, _, KvStore> = NodeCore::new(
        DriverConfig {
            request_timeout_ticks: 2,
            ..DriverConfig::default()
        },
        replica,
        FakeStorage::new(world.clone()),
        FakeTransport {
            me: NodeId(1),
            world,
        },
        KvStore::new(),
    );
    let ThreadNode {
        join: node,
        handles,
        time,
    } = spawn_thread(core);

    let mut session = KvSession::new(handles.client.clone(), ClientId(3), 5);
    let attempt = thread::spawn(move || block_on(session.put(b("k"), b("v"))));
    while !attempt.is_finished() {
        assert!(time.advance_blocking(1));
    }
    let e = attempt.join().unwrap().unwrap_err();
    assert_eq!(e, ClientError::Timeout);
    assert!(!e.is_definite());

    let proposals = proposals.lock().unwrap();
    assert_eq!(proposals.len(), 3);
    assert!(
        proposals.iter().all(|p| *p == proposals[0]),
        "every retry carries the same session number"
    );
    handles.shutdown.shutdown();
    let stopped = node.join().unwrap();
    assert!(stopped.core.storage().mem.durable.entries.is_empty());
}
