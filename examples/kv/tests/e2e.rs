//! End to end, over TCP and over shared-memory rings, under Raft and under Multi-Paxos: three
//! `rsm-kv-server` processes serve a client workload while
//! the leader is killed with SIGKILL and restarted, and a follower is paused with SIGSTOP
//! and resumed. The recorded history, closed by a final read of every key, must be
//! linearizable (so no acknowledged write was lost), and every server must catch up.
//!
//! Time limits here only turn a hang into a failure; nothing asserts how fast anything is.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rsm_check::{Call, Operation, Outcome, Ret, check};
use rsm_core::NodeId;
use rsm_kv::history::{Recorder, decode_value};
use rsm_kv::workload::{self, Progress, SampleOutcome, WorkloadConfig};
use rsm_kv::{KvClient, LocalCluster, ServerProgram};
use tokio::time::{Instant, sleep};

/// The whole test fails rather than hangs past this.
const TEST_LIMIT: Duration = Duration::from_secs(60);
/// The longest wait for any one step (an election, some progress, a catch-up).
const STEP_LIMIT: Duration = Duration::from_secs(20);
const KEYS: u64 = 8;
/// Acknowledged operations each phase must see before the next fault.
const OPS_PER_PHASE: u64 = 60;

#[test]
fn leader_restart_and_paused_follower_keep_the_history_linearizable() {
    run_e2e(Vec::new());
}

/// The same scenario with the servers connected by shared-memory rings (rsm-rdma).
#[test]
fn the_same_holds_over_shared_memory_rings() {
    let sockets = tempfile::tempdir().unwrap();
    let dir = sockets.path().display().to_string();
    run_e2e(vec![
        "--transport".into(),
        "shm".into(),
        "--shm-dir".into(),
        dir,
    ]);
}

/// The same scenario under Multi-Paxos: the server finds it in the protocol registry and
/// runs it with no code of its own.
#[test]
fn the_same_holds_under_multi_paxos() {
    run_e2e(vec!["--protocol".into(), "paxos".into()]);
}

/// The same scenario under Viewstamped Replication, found in the registry the same way.
#[test]
fn the_same_holds_under_viewstamped_replication() {
    run_e2e(vec!["--protocol".into(), "vsr".into()]);
}

fn run_e2e(extra_args: Vec<String>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The cluster is created on this thread, so its children die with it even if the
    // test is torn down abruptly; its Drop kills them and removes the data on any exit.
    let program = ServerProgram {
        program: env!("CARGO_BIN_EXE_rsm-kv-server").into(),
        args: Vec::new(),
    };
    let mut cluster = LocalCluster::start(program, 3, None, extra_args).unwrap();
    let outcome =
        runtime.block_on(async { tokio::time::timeout(TEST_LIMIT, scenario(&mut cluster)).await });
    let logs = server_logs(&cluster);
    drop(cluster);
    if outcome.is_err() {
        panic!("the scenario did not finish within {TEST_LIMIT:?}\n{logs}");
    }
}

async fn scenario(cluster: &mut LocalCluster) {
    let leader = cluster
        .wait_for_leader(STEP_LIMIT)
        .await
        .expect("a leader is elected");

    let recorder = Arc::new(Recorder::new());
    let progress = Arc::new(Progress::default());
    let mut client = cluster.client_config();
    client.attempt_timeout = Duration::from_millis(500);
    client.op_timeout = Duration::from_secs(5);
    let config = WorkloadConfig {
        clients: 4,
        ops: 5_000,
        value_size: 32,
        read_ratio: 0.3,
        cas_ratio: 0.2,
        delete_ratio: 0.1,
        keys: KEYS,
        seed: 11,
        record_history: true,
        client: client.clone(),
    };
    let run = tokio::spawn(workload::run(config, recorder.clone(), progress.clone()));
    wait_for_progress(&progress, OPS_PER_PHASE).await;

    // 1. The leader dies without warning; a new one must take over.
    cluster.kill(leader).unwrap();
    wait_for_progress(&progress, OPS_PER_PHASE).await;
    let new_leader = cluster
        .wait_for_leader(STEP_LIMIT)
        .await
        .expect("a new leader is elected");
    assert_ne!(new_leader, leader, "a killed server cannot lead");

    // 2. It comes back with what it had synced and rejoins.
    cluster.restart(leader).unwrap();
    wait_for_progress(&progress, OPS_PER_PHASE).await;

    // 3. A follower freezes for a while (longer than an election timeout), then thaws.
    let current = cluster.wait_for_leader(STEP_LIMIT).await.expect("a leader");
    let follower = *cluster
        .ids()
        .iter()
        .find(|id| **id != current)
        .expect("a follower");
    cluster.pause(follower).unwrap();
    sleep(Duration::from_millis(800)).await;
    wait_for_progress(&progress, OPS_PER_PHASE).await;
    cluster.resume(follower).unwrap();
    wait_for_progress(&progress, OPS_PER_PHASE).await;

    progress.stop();
    let report = run.await.expect("the workload finishes");
    assert!(
        report.count(SampleOutcome::Ok, true) >= OPS_PER_PHASE as usize,
        "writes were acknowledged"
    );

    // Close the history with a read of every key, so that a lost acknowledged write
    // would have to be explained by a later write that never happened.
    let mut reader = KvClient::new(client);
    for key in 0..KEYS {
        let invoke = recorder.now();
        let value = reader
            .get(Bytes::from(format!("k{key}")))
            .await
            .expect("the final read succeeds");
        recorder.record(Operation {
            client: u64::MAX,
            key,
            call: Call::Read,
            invoke,
            complete: recorder.now(),
            outcome: Outcome::Ok(Ret::Read(value.map(|v| decode_value(&v)))),
        });
    }
    let history = recorder.history();
    eprintln!(
        "{} operations: {} acknowledged, {} failed, {} unknown",
        history.len(),
        report.count(SampleOutcome::Ok, false),
        report.count(SampleOutcome::Failed, false),
        report.count(SampleOutcome::Unknown, false)
    );
    let verdict = check(&history);
    assert!(
        verdict.is_linearizable(),
        "{verdict}\n({} operations)",
        history.len()
    );

    // Every server, the restarted and the paused one included, reaches the same state.
    wait_until_converged(cluster).await;
}

async fn wait_for_progress(progress: &Progress, ops: u64) {
    let target = progress.done() + ops;
    let deadline = Instant::now() + STEP_LIMIT;
    while progress.done() < target {
        assert!(
            Instant::now() < deadline,
            "no progress: {} of {target} operations done",
            progress.done()
        );
        sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until_converged(cluster: &LocalCluster) {
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        let statuses = cluster.statuses(Duration::from_millis(500)).await;
        let applied: Vec<_> = statuses.values().map(|s| s.applied).collect();
        if statuses.len() == 3 && applied.windows(2).all(|w| w[0] == w[1]) {
            let ids: Vec<NodeId> = statuses.keys().copied().collect();
            assert_eq!(ids, cluster.ids());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "servers did not converge: {statuses:?}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

fn server_logs(cluster: &LocalCluster) -> String {
    cluster
        .ids()
        .iter()
        .map(|id| {
            let path = cluster.data_root().join(format!("n{}.log", id.get()));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            format!("--- {id} log ---\n{text}")
        })
        .collect()
}
