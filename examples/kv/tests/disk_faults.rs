//! End to end: a stopped server whose disk lost data refuses to start, and the cluster
//! keeps every acknowledged write. The newest write-ahead-log segment of a killed follower
//! is deleted (the fault that once let a node rejoin with an older log and vote); the
//! follower must refuse to start, naming the file, while the other two serve every write
//! acknowledged before and after. Then its directory is wiped: a restart without a start
//! flag is refused too, with the safe procedure in the message.
//!
//! Time limits here only turn a hang into a failure; nothing asserts how fast anything is.

use std::time::Duration;

use bytes::Bytes;
use rsm_core::NodeId;
use rsm_kv::{KvClient, LocalCluster, ServerProgram};

const STEP_LIMIT: Duration = Duration::from_secs(20);
const WRITES_PER_PHASE: u64 = 20;

fn key(i: u64) -> Bytes {
    Bytes::from(format!("k{i}"))
}

fn value(i: u64) -> Bytes {
    Bytes::from(format!("v{i}"))
}

async fn put_all(client: &mut KvClient, range: std::ops::Range<u64>) {
    for i in range {
        client
            .put(key(i), value(i))
            .await
            .unwrap_or_else(|e| panic!("put {i}: {e}"));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    let builder = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    builder.unwrap()
}

fn server_program() -> ServerProgram {
    let program = env!("CARGO_BIN_EXE_rsm-kv-server").into();
    ServerProgram {
        program,
        args: Vec::new(),
    }
}

fn server_log(cluster: &LocalCluster, id: NodeId) -> String {
    let path = cluster.data_root().join(format!("n{}.log", id.get()));
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_node_missing_its_newest_segment_refuses_to_start_and_no_write_is_lost() {
    let runtime = runtime();
    let program = server_program();
    let mut cluster = LocalCluster::start(program, 3, None, Vec::new()).unwrap();
    let leader = runtime
        .block_on(cluster.wait_for_leader(STEP_LIMIT))
        .expect("a leader is elected");
    let victim = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let mut config = cluster.client_config();
    config.op_timeout = STEP_LIMIT;
    let mut client = KvClient::new(config);
    runtime.block_on(put_all(&mut client, 0..WRITES_PER_PHASE));

    cluster.kill(victim).unwrap();
    runtime.block_on(put_all(&mut client, WRITES_PER_PHASE..2 * WRITES_PER_PHASE));
    let wal = cluster.data_dir(victim).unwrap().join("wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segments.sort();
    let newest = segments.pop().expect("the victim wrote a segment");
    std::fs::remove_file(&newest).unwrap();

    cluster.restart(victim).unwrap();
    let status = cluster
        .wait_exit(victim, STEP_LIMIT)
        .unwrap()
        .unwrap_or_else(|| panic!("{victim} started without its newest segment"));
    assert!(!status.success());
    let log = server_log(&cluster, victim);
    assert!(
        log.contains(&newest.display().to_string()) && log.contains("is missing"),
        "the refusal names the missing file:\n{log}"
    );

    // The other two still hold, and serve, every acknowledged write, and take more.
    runtime.block_on(async {
        put_all(&mut client, 2 * WRITES_PER_PHASE..3 * WRITES_PER_PHASE).await;
        for i in 0..3 * WRITES_PER_PHASE {
            let got = client.get(key(i)).await.unwrap();
            assert_eq!(got, Some(value(i)), "acknowledged write {i}");
        }
    });

    // A wiped directory is not taken for a new node either.
    std::fs::remove_dir_all(cluster.data_dir(victim).unwrap()).unwrap();
    cluster.restart(victim).unwrap();
    let status = cluster
        .wait_exit(victim, STEP_LIMIT)
        .unwrap()
        .unwrap_or_else(|| panic!("{victim} started on a wiped directory"));
    assert!(!status.success());
    let log = server_log(&cluster, victim);
    assert!(
        log.contains("is empty or missing") && log.contains("learner"),
        "the refusal explains the safe procedure:\n{log}"
    );
}

#[test]
fn a_torn_write_at_the_end_of_the_log_is_cut_and_the_cut_is_logged() {
    let runtime = runtime();
    let program = server_program();
    let mut cluster = LocalCluster::start(program, 1, None, Vec::new()).unwrap();
    let mut config = cluster.client_config();
    config.op_timeout = STEP_LIMIT;
    let mut client = KvClient::new(config.clone());
    runtime.block_on(async {
        cluster.wait_for_leader(STEP_LIMIT).await.expect("it leads");
        put_all(&mut client, 0..WRITES_PER_PHASE).await;
    });
    let node = NodeId(1);
    cluster.kill(node).unwrap();

    // A write in flight at the crash: bytes after the last record of the newest segment
    // (which keeps its length), as a half-written record leaves them.
    let wal = cluster.data_dir(node).unwrap().join("wal");
    let newest = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .max()
        .expect("a segment");
    let mut bytes = std::fs::read(&newest).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).expect("records") + 1;
    let torn = 24.min(bytes.len() - end);
    assert!(torn > 0, "room after the last record");
    bytes[end..end + torn].fill(0xA5);
    std::fs::write(&newest, &bytes).unwrap();

    cluster.restart(node).unwrap();
    runtime.block_on(async {
        cluster
            .wait_for_leader(STEP_LIMIT)
            .await
            .expect("it leads again");
        let mut client = KvClient::new(config);
        for i in 0..WRITES_PER_PHASE {
            assert_eq!(
                client.get(key(i)).await.unwrap(),
                Some(value(i)),
                "write {i}"
            );
        }
    });
    let log = server_log(&cluster, node);
    let line = log
        .lines()
        .find(|l| l.contains("cut a torn write"))
        .unwrap_or_else(|| panic!("the cut is logged:\n{log}"));
    assert!(line.starts_with("node=1 "), "{line}");
    assert!(line.contains(&newest.display().to_string()), "{line}");
    assert!(line.contains(&format!("offset={end}")), "{line}");
}
