//! End to end: a server's client port resists abuse and says what it did.
//!
//! Each test starts one single-node server with small client-port limits, abuses its
//! client port through raw sockets, and checks the server's own accounting (its status)
//! and that it keeps serving. Time limits here only turn a hang into a failure; nothing
//! asserts how fast anything is.

use std::time::Duration;

use bytes::Bytes;
use rsm_core::{Codec, NodeId};
use rsm_kv::wire::{
    ByteBudget, ClientPortStatus, PortRefusal, RemoteError, Request, Response, read_frame,
    write_frame,
};
use rsm_kv::{KvClient, LocalCluster, ServerProgram};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

const STEP_LIMIT: Duration = Duration::from_secs(20);
const FRAME_BYTES_MAX: usize = 64 << 10;
const BUDGET_BYTES: usize = 1 << 20;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One server with `flags` added to small frame and budget limits, once it leads.
async fn start(flags: &str) -> LocalCluster {
    let program = ServerProgram {
        program: env!("CARGO_BIN_EXE_rsm-kv-server").into(),
        args: Vec::new(),
    };
    let limits = format!(
        "--frame-bytes-max {FRAME_BYTES_MAX} --client-buffered-bytes-max {BUDGET_BYTES} {flags}"
    );
    let args = limits.split_whitespace().map(String::from).collect();
    let cluster = LocalCluster::start(program, 1, None, args).unwrap();
    cluster
        .wait_for_leader(STEP_LIMIT)
        .await
        .expect("the server leads");
    cluster
}

fn addr(cluster: &LocalCluster) -> std::net::SocketAddr {
    cluster.client_addrs()[&NodeId(1)]
}

/// The client port's status, through a connection of its own.
async fn port_status(cluster: &LocalCluster) -> ClientPortStatus {
    let mut client = KvClient::new(cluster.client_config());
    client.status(NodeId(1)).await.unwrap().client_port
}

/// Send one request on a raw connection and read the answer.
async fn ask(stream: &mut TcpStream, request: &Request) -> Response {
    let codec = Codec::new(FRAME_BYTES_MAX);
    let (read, mut write) = stream.split();
    write_frame(&mut write, &codec, &mut Vec::new(), request)
        .await
        .unwrap();
    let mut charge = ByteBudget::unlimited().charge();
    let mut read = BufReader::new(read);
    let answer = read_frame(&mut read, &codec, &mut charge);
    timeout(STEP_LIMIT, answer).await.unwrap().unwrap()
}

/// Wait until the server closes `stream` (reading whatever it says first).
async fn closed_by_server(stream: &mut TcpStream) -> Vec<u8> {
    let mut said = Vec::new();
    timeout(STEP_LIMIT, stream.read_to_end(&mut said))
        .await
        .expect("the server closes the connection")
        .unwrap();
    said
}

fn server_log(cluster: &LocalCluster) -> String {
    std::fs::read_to_string(cluster.data_root().join("n1.log")).unwrap_or_default()
}

async fn put_and_get(cluster: &LocalCluster, i: u64) {
    let mut client = KvClient::new(cluster.client_config());
    let (key, value) = (Bytes::from(format!("k{i}")), Bytes::from(format!("v{i}")));
    client.put(key.clone(), value.clone()).await.unwrap();
    assert_eq!(client.get(key).await.unwrap(), Some(value));
}

#[test]
fn frames_cost_what_arrived_and_an_oversized_frame_is_refused_with_a_reason() {
    runtime().block_on(async {
        let cluster = start("--client-handshake-timeout 60s").await;
        let header = Codec::new(FRAME_BYTES_MAX).header(FRAME_BYTES_MAX).unwrap();

        // 40 connections each announce a full frame (2.5 MiB in all, over the 1 MiB
        // budget) and send 3 bytes of it.
        let mut silent = Vec::new();
        for _ in 0..40 {
            let mut stream = TcpStream::connect(addr(&cluster)).await.unwrap();
            stream.write_all(&header).await.unwrap();
            stream.write_all(b"abc").await.unwrap();
            silent.push(stream);
        }
        let status = loop {
            let status = port_status(&cluster).await;
            if status.buffered_bytes >= 40 * 3 {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.connections > 40, "{status:?}");
        assert!(
            status.buffered_bytes <= 40 * 4096,
            "buffers follow what arrived, not what was announced: {status:?}"
        );
        assert_eq!(status.refused_budget_full, 0, "{status:?}");
        put_and_get(&cluster, 1).await;

        // A header over the frame limit gets a typed refusal, then the connection closes.
        let mut oversized = TcpStream::connect(addr(&cluster)).await.unwrap();
        let too_big = Codec::new(u32::MAX as usize)
            .header(FRAME_BYTES_MAX + 1)
            .unwrap();
        oversized.write_all(&too_big).await.unwrap();
        let said = closed_by_server(&mut oversized).await;
        let (answer, _) = Codec::new(FRAME_BYTES_MAX)
            .decode::<Response>(&said)
            .unwrap();
        assert_eq!(
            answer,
            Response::Failed(RemoteError::Refused(PortRefusal::FrameTooLarge {
                len: (FRAME_BYTES_MAX + 1) as u64,
                max_bytes: FRAME_BYTES_MAX as u64,
            }))
        );

        // Connections that send whole frames fill the budget; the one that would overrun
        // it is refused, and the budget is never exceeded.
        let body = vec![0u8; FRAME_BYTES_MAX - 8];
        let mut senders = Vec::new();
        for _ in 0..20 {
            let mut stream = TcpStream::connect(addr(&cluster)).await.unwrap();
            // The server may refuse and close before all of it is written.
            let _ = stream.write_all(&header).await;
            let _ = stream.write_all(&body).await;
            senders.push(stream);
        }
        let status = loop {
            let status = port_status(&cluster).await;
            if status.refused_budget_full > 0 {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            status.buffered_bytes_peak <= BUDGET_BYTES as u64,
            "{status:?}"
        );
        assert_eq!(status.refused_oversized, 1, "{status:?}");
        put_and_get(&cluster, 2).await;

        // Each refusal left a line in the server's log, naming the node and the client.
        let log = server_log(&cluster);
        for what in ["over the frame limit", "budget is full"] {
            let line = log
                .lines()
                .find(|l| l.contains(what))
                .unwrap_or_else(|| panic!("a line about `{what}`:\n{log}"));
            assert!(
                line.starts_with("node=1 ") && line.contains("client=127.0.0.1:"),
                "{line}"
            );
        }
    });
}

#[test]
fn connections_that_say_nothing_are_closed_after_their_timeout() {
    runtime().block_on(async {
        let cluster = start("--client-handshake-timeout 300ms --client-idle-timeout 300ms").await;
        // One connection never sends a request; another sends one, then goes quiet.
        let mut mute = TcpStream::connect(addr(&cluster)).await.unwrap();
        let mut quiet = TcpStream::connect(addr(&cluster)).await.unwrap();
        assert!(matches!(
            ask(&mut quiet, &Request::Status).await,
            Response::Status(_)
        ));
        assert!(closed_by_server(&mut mute).await.is_empty());
        assert!(closed_by_server(&mut quiet).await.is_empty());
        let status = port_status(&cluster).await;
        assert!(status.closed_handshake_timeout >= 1, "{status:?}");
        assert!(status.closed_idle_timeout >= 1, "{status:?}");
        put_and_get(&cluster, 1).await;

        // A client whose pooled connection the server closed for idleness notices before
        // sending, so even a single attempt succeeds.
        let mut client = KvClient::new(cluster.client_config());
        client.status(NodeId(1)).await.unwrap();
        // Every other client here has hung up, so the next idle close is this one's.
        let closed = status.closed_idle_timeout;
        while port_status(&cluster).await.closed_idle_timeout <= closed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        client.status(NodeId(1)).await.unwrap();
    });
}

#[test]
fn at_the_connection_limit_a_newcomer_sheds_the_idlest_connection() {
    runtime().block_on(async {
        let cluster = start("--client-connections-max 4 --client-idle-timeout 60s").await;
        // Wait until the connections of the leader search are gone.
        while port_status(&cluster).await.connections > 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Four connections, each answered once, in order: the first is the idlest.
        let mut open = Vec::new();
        for _ in 0..4 {
            let mut stream = TcpStream::connect(addr(&cluster)).await.unwrap();
            assert!(matches!(
                ask(&mut stream, &Request::Status).await,
                Response::Status(_)
            ));
            open.push(stream);
        }
        // A fifth connection is served, and the first is closed for it.
        let status = port_status(&cluster).await;
        assert_eq!(status.shed_idle, 1, "{status:?}");
        assert!(closed_by_server(&mut open[0]).await.is_empty());
        // The others still answer.
        for stream in &mut open[1..] {
            assert!(matches!(
                ask(stream, &Request::Status).await,
                Response::Status(_)
            ));
        }
        let status = port_status(&cluster).await;
        assert_eq!(status.refused_connection_limit, 0, "{status:?}");
    });
}
