//! The tokio runner: a node spawned on a current-thread runtime, ticking from tokio's
//! clock, serves clients, times requests out by ticks, and stops on request.

#![cfg(feature = "tokio")]

mod common;

use std::time::Duration;

use common::{World, kv_node, kv_put};
use rsm_core::kv::KvResponse;
use rsm_core::{Bytes, LogIndex};
use rsm_driver::{ClientError, DriverConfig, NodeRunner};

fn run(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(test);
}

#[test]
fn a_spawned_node_times_requests_out_by_ticks() {
    run(async {
        let world = World::default();
        let config = DriverConfig {
            request_timeout_ticks: 5,
            ..DriverConfig::default()
        };
        // Node 1 of a cluster whose peers never answer: it commits nothing, so a proposal
        // can only end by timing out, which needs ticks from tokio's clock.
        let (runner, handles) = NodeRunner::new(kv_node(config, 1, &[1, 2, 3], &world));
        let task = runner.spawn_tokio(Duration::from_millis(1));
        assert_eq!(
            handles.client.propose(kv_put(1, 1, "k", "v")).await,
            Err(ClientError::Timeout)
        );
        handles.shutdown.shutdown();
        let stopped = task.await.unwrap();
        assert!(stopped.error.is_none());
        assert!(stopped.core.ticks() >= 5);
        assert!(world.syncs() >= 1);
    });
}

#[test]
fn a_spawned_single_node_commits_concurrent_clients() {
    run(async {
        let world = World::default();
        let (runner, handles) = NodeRunner::new(kv_node(DriverConfig::default(), 1, &[1], &world));
        let task = runner.spawn_tokio(Duration::from_millis(10));
        // Two clients, so that their sessions do not order the two commands.
        let other = handles.client.clone();
        let first = tokio::spawn(async move { other.propose(kv_put(1, 1, "k", "1")).await });
        let second = handles.client.propose(kv_put(2, 1, "k", "2")).await;
        assert_eq!(first.await.unwrap(), Ok(KvResponse::Done));
        assert_eq!(second, Ok(KvResponse::Done));
        let read = handles.client.read(Bytes::from_static(b"k")).await;
        assert!(read.unwrap().is_some());
        handles.shutdown.shutdown();
        let stopped = task.await.unwrap();
        assert_eq!(stopped.core.applied_index(), LogIndex(2));
    });
}
