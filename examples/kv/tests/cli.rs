//! The KV binaries as a person or a script uses them: help and version, usage errors
//! that name the flag, completions, hostnames, environment variables, and the `rsm-kv`
//! client's commands and exit codes against a real three-server cluster.
//!
//! Time limits here only turn a hang into a failure; nothing asserts how fast anything is.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;
use rsm_core::NodeId;
use rsm_kv::{LocalCluster, ServerProgram};

const BINARIES: [&str; 4] = [
    env!("CARGO_BIN_EXE_rsm-kv-server"),
    env!("CARGO_BIN_EXE_rsm-kv"),
    env!("CARGO_BIN_EXE_rsm-kv-demo"),
    env!("CARGO_BIN_EXE_rsm-kv-load"),
];
const SERVER: &str = env!("CARGO_BIN_EXE_rsm-kv-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_rsm-kv");
const DEMO: &str = env!("CARGO_BIN_EXE_rsm-kv-demo");
/// The longest wait for an election.
const LEADER_WAIT: Duration = Duration::from_secs(20);

/// A command with none of the RSM_* variables of the environment the tests run in.
fn command(program: &str) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars() {
        if name.starts_with("RSM_") {
            command.env_remove(name);
        }
    }
    command.timeout(Duration::from_secs(60));
    command
}

#[test]
fn every_binary_answers_help_and_version() {
    for program in BINARIES {
        for flag in ["--help", "-h"] {
            command(program)
                .arg(flag)
                .assert()
                .success()
                .stdout(predicate::str::contains("Usage:"));
        }
        command(program)
            .arg("--version")
            .assert()
            .success()
            .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
    }
    // Help wins over whatever else is on the line, and swallows nothing.
    command(SERVER)
        .args(["--help", "foo"])
        .assert()
        .success()
        .stdout(predicate::str::contains("RSM_PEERS"));
}

#[test]
fn usage_errors_name_the_flag_and_exit_2() {
    command(SERVER)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--id").and(predicate::str::contains("Usage:")));
    command(SERVER)
        .args(["--id", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--id"));
    command(SERVER)
        .args(["--id", "1", "--peers", "1=127.0.0.1:1", "--bogus", "3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--bogus"));
    command(SERVER)
        .args(["--id", "1", "--peers", "1=no-port"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--peers").and(predicate::str::contains("no-port")));
    // The protocol is looked up in the registry, which names what it holds.
    command(SERVER)
        .args(["--id", "1", "--protocol", "zab"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("--protocol")
                .and(predicate::str::contains("registered: raft")),
        );
    command(CLIENT)
        .args(["--servers", "1=127.0.0.1:1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a command is required"));
    command(CLIENT)
        .args(["--servers", "1=127.0.0.1:1", "get"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("<KEY>"));
    command(CLIENT)
        .args(["--servers", "1=127.0.0.1:1", "frobnicate"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("frobnicate"));
    command(CLIENT)
        .args([
            "--servers",
            "1=127.0.0.1:1",
            "--timeout",
            "soon",
            "get",
            "k",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--timeout"));
    command(DEMO)
        .args(["--read-ratio", "2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--read-ratio"));
}

#[test]
fn the_demo_draws_no_progress_frames_when_piped() {
    // Whether the leader is killed before so short a workload ends decides the exit
    // status; what is checked here is the output either way.
    let run = command(DEMO)
        .args(["--ops", "300", "--clients", "2", "--restart-after", "100ms"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.code().is_some(), "the demo finished: {out}");
    assert!(!out.contains('\r') && !out.contains('\x1b'), "{out:?}");
    assert_eq!(out.matches("/300 ops ").count(), 1, "one final line: {out}");
    assert!(out.contains("300/300 ops "), "{out}");
    assert!(out.contains("linearizability"), "{out}");
}

#[test]
fn completions_are_printed_on_request() {
    for program in BINARIES {
        command(program)
            .args(["--completions", "bash"])
            .assert()
            .success()
            .stdout(predicate::str::contains("complete"));
    }
    command(CLIENT)
        .args(["--completions", "zsh"])
        .assert()
        .success()
        .stdout(predicate::str::contains("#compdef rsm-kv"));
}

#[test]
fn an_unreachable_cluster_exits_3() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    command(CLIENT)
        .args([
            "--servers",
            &format!("1=localhost:{port}"),
            "--timeout",
            "300ms",
        ])
        .args(["put", "k", "v"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("cannot connect"));
    command(CLIENT)
        .args([
            "--servers",
            &format!("1=localhost:{port}"),
            "--timeout",
            "300ms",
        ])
        .args(["--output", "json", "status"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains(r#""reachable":false"#));
}

#[test]
fn the_server_resolves_hostnames_and_reads_its_environment() {
    let data = tempfile::tempdir().unwrap();
    let mut server = std::process::Command::new(SERVER)
        .args(["--id", "1", "--peers", "1=localhost:0", "--bootstrap"])
        .env("RSM_CLIENT_LISTEN", "localhost:0")
        .env("RSM_DATA_DIR", data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let read = BufReader::new(server.stdout.take().unwrap()).read_line(&mut line);
    let _ = server.kill();
    let _ = server.wait();
    read.unwrap();
    assert!(line.contains("ready"), "{line}");
    assert!(
        data.path().join("wal").exists(),
        "the data went to RSM_DATA_DIR"
    );
}

#[test]
fn a_protocol_option_the_protocol_lacks_stops_the_start_naming_it() {
    let data = tempfile::tempdir().unwrap();
    command(SERVER)
        .args(["--id", "1", "--peers", "1=127.0.0.1:0", "--bootstrap"])
        .args([
            "--client-listen",
            "127.0.0.1:0",
            "--option",
            "gossip_ticks=5",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("gossip_ticks"));
}

/// Start three servers and wait for a leader; the id of a follower and its client
/// address as `ID=localhost:PORT`.
fn cluster() -> (LocalCluster, NodeId, String) {
    let program = ServerProgram {
        program: SERVER.into(),
        args: Vec::new(),
    };
    let cluster = LocalCluster::start(program, 3, None, Vec::new()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let leader = runtime
        .block_on(cluster.wait_for_leader(LEADER_WAIT))
        .expect("a leader is elected");
    let (follower, addr) = cluster
        .client_addrs()
        .into_iter()
        .find(|(id, _)| *id != leader)
        .expect("a follower");
    // By name, to check that the client resolves it.
    let addr = format!("{}=localhost:{}", follower.get(), addr.port());
    (cluster, follower, addr)
}

#[test]
fn the_client_follows_the_leader_from_one_follower_and_exits_as_documented() {
    let (cluster, _follower, servers) = cluster();
    let bare = servers.split_once('=').unwrap().1.to_string();
    let kv = |args: &[&str]| {
        let mut c = command(CLIENT);
        c.env("RSM_SERVERS", &servers).args(args);
        c
    };
    kv(&["put", "colour", "blue"])
        .assert()
        .success()
        .stdout("OK\n");
    kv(&["get", "colour"]).assert().success().stdout("blue\n");
    kv(&["get", "shape"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("no value"));
    kv(&["--output", "json", "get", "shape"])
        .assert()
        .code(1)
        .stdout("{\"key\":\"shape\",\"value\":null}\n");
    kv(&["cas", "colour", "red", "green"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("not swapped (found blue)"));
    kv(&["cas", "colour", "blue", "green"])
        .assert()
        .success()
        .stdout(predicate::str::contains("swapped (found blue)"));
    kv(&["cas", "shape", "-", "round"]).assert().success();
    kv(&["delete", "colour"]).assert().success();
    kv(&["get", "colour"]).assert().code(1);

    // The status of all three, learned from the one server named.
    let status = kv(&["status"]).assert().success();
    let table = String::from_utf8_lossy(&status.get_output().stdout).into_owned();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].split_whitespace().eq([
            "ID", "ADDRESS", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAG"
        ]),
        "{table}"
    );
    assert_eq!(lines.len(), 4, "{table}");
    assert_eq!(
        lines.iter().filter(|l| l.contains(" leader ")).count(),
        1,
        "{table}"
    );

    // A follower learns the commit index with the leader's next message, so the status is
    // asked again until every server reports the five writes committed (or a deadline passes).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let json = kv(&["--output", "json", "status"]).assert().success();
        let json: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
        let servers = json["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 3, "{json}");
        for server in servers {
            assert_eq!(server["reachable"], true, "{json}");
        }
        let committed = servers
            .iter()
            .all(|s| s["commit"].as_u64().is_some_and(|c| c >= 5));
        if committed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a server never reported commit >= 5: {json}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // A bare HOST:PORT works as well: the client asks the server for its id.
    for servers in [bare.clone(), format!("127.0.0.1:1,{bare}")] {
        command(CLIENT)
            .args(["--servers", &servers, "get", "shape"])
            .assert()
            .success()
            .stdout("round\n");
        let status = command(CLIENT)
            .env("RSM_SERVERS", &servers)
            .args(["--output", "json", "status"])
            .assert()
            .success();
        let json: serde_json::Value = serde_json::from_slice(&status.get_output().stdout).unwrap();
        assert_eq!(json["servers"].as_array().unwrap().len(), 3, "{json}");
    }
    drop(cluster);
}
