//! `rsm-kv-load`: a closed-loop load generator. Each client session issues one operation
//! at a time; the report gives throughput, latency percentiles and the leader's fsync
//! batching. Without `--servers` it starts its own 3-node loopback cluster (fsync on);
//! with `--etcd` it drives an etcd member's JSON gateway with puts instead, for a
//! side-by-side figure.

mod etcd;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rsm_check::check;
use rsm_kv::flags::{self, CompletionsArg, ServerAddrs, fraction};
use rsm_kv::history::{Recorder, encode_value};
use rsm_kv::wire::ServerStatus;
use rsm_kv::workload::{self, Percentiles, Progress, SampleOutcome, WorkloadConfig};
use rsm_kv::{ClientConfig, KvClient, LocalCluster, embedded_server, tool_main};
use tokio::task::JoinSet;

const LEADER_WAIT: Duration = Duration::from_secs(30);

/// A closed-loop load generator for the replicated key-value service: each client session
/// issues one operation at a time. Without --servers it starts its own 3-node loopback
/// cluster (fsync on).
#[derive(Parser, Debug)]
#[command(name = "rsm-kv-load", version)]
struct Options {
    /// Concurrent client sessions
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,
    /// Operations in all
    #[arg(long, default_value_t = 20_000)]
    ops: u64,
    /// Bytes per written value
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Fraction of operations that are reads, from 0 to 1
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    read_ratio: f64,
    /// Distinct keys
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
    /// Record the history and check it for linearizability
    #[arg(long)]
    check: bool,
    /// Drive a running cluster (the servers' client addresses, each with its node id or
    /// bare) instead of starting one
    #[arg(long, env = "RSM_SERVERS", value_name = "[ID=]HOST:PORT,...")]
    servers: Option<ServerAddrs>,
    /// Where the started servers keep their data (without --servers) [default: a temporary
    /// directory]
    #[arg(long, env = "RSM_DATA_DIR", value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Drive an etcd member's v3 JSON gateway with puts instead (ignores the rsm flags)
    #[arg(long, value_name = "HOST:PORT", value_parser = flags::resolve)]
    etcd: Option<SocketAddr>,
    #[command(flatten)]
    completions: CompletionsArg,
}

fn main() -> ExitCode {
    tool_main(
        |o: &Options| &o.completions,
        async |options: Options| match options.etcd {
            Some(addr) => load_etcd(&options, addr).await,
            None => load_rsm(&options).await,
        },
    )
}

async fn load_rsm(options: &Options) -> Result<bool, Box<dyn std::error::Error>> {
    // Kept alive (and killed on drop) for the whole run when we started it.
    let cluster;
    let client = match &options.servers {
        Some(servers) => identified(servers.client_config()).await,
        None => {
            cluster =
                LocalCluster::start(embedded_server()?, 3, options.data_dir.clone(), Vec::new())?;
            cluster
                .wait_for_leader(LEADER_WAIT)
                .await
                .ok_or("no leader was elected in 30 s")?;
            ClientConfig::new(cluster.client_addrs())
        }
    };
    let leader = find_leader(&client)
        .await
        .ok_or("no server says it leads")?;
    println!(
        "rsm-kv-load: {} clients, {} ops, {}-byte values, read ratio {:.2}, {} keys, leader {}",
        options.clients,
        options.ops,
        options.value_size,
        options.read_ratio,
        options.keys,
        leader.id
    );
    let config = WorkloadConfig {
        clients: options.clients as usize,
        ops: options.ops,
        value_size: options.value_size,
        read_ratio: options.read_ratio,
        cas_ratio: 0.0,
        delete_ratio: 0.0,
        keys: options.keys,
        seed: 1,
        record_history: options.check,
        client: client.clone(),
    };
    let recorder = Arc::new(Recorder::new());
    let report = workload::run(config, recorder.clone(), Arc::new(Progress::default())).await;
    let after = status_of(&client, leader.id).await;

    println!(
        "  throughput   {:.0} ops/s, {:.0} writes/s over {:.2} s",
        report.throughput(false),
        report.throughput(true),
        report.elapsed.as_secs_f64()
    );
    println!("  writes       {}", percentiles(&report.latency(true)));
    let reads = Percentiles::of(
        report
            .samples
            .iter()
            .filter(|s| !s.write && s.outcome == SampleOutcome::Ok)
            .map(|s| s.complete_ns - s.invoke_ns)
            .collect(),
    );
    if reads.count > 0 {
        println!("  reads        {}", percentiles(&reads));
    }
    println!(
        "  errors       {} failed, {} outcome unknown",
        report.count(SampleOutcome::Failed, false),
        report.count(SampleOutcome::Unknown, false)
    );
    if let Some(after) = after {
        let seconds = report.elapsed.as_secs_f64().max(1e-9);
        let syncs = after.wal_syncs - leader.wal_syncs;
        let entries = after.wal_entries_synced - leader.wal_entries_synced;
        println!(
            "  leader disk  {:.0} fsyncs/s ({:.0} group commits/s), {:.1} entries per group commit",
            (after.wal_fsyncs - leader.wal_fsyncs) as f64 / seconds,
            syncs as f64 / seconds,
            entries as f64 / syncs.max(1) as f64
        );
    }
    if options.check {
        let verdict = check(&recorder.history());
        println!("  history      {verdict}");
        return Ok(verdict.is_linearizable());
    }
    Ok(true)
}

/// `config` with every server given by address only named by its node id (those that
/// do not answer are left out), so that each can be asked for its status.
async fn identified(mut config: ClientConfig) -> ClientConfig {
    let mut client = KvClient::new(config.clone());
    client.identify_servers().await;
    config.servers = client.servers().clone();
    config.addresses.clear();
    config
}

/// The status of the server that says it leads, with the highest epoch.
async fn find_leader(config: &ClientConfig) -> Option<ServerStatus> {
    let mut client = KvClient::new(config.clone());
    let mut best: Option<ServerStatus> = None;
    for id in config.servers.keys() {
        if let Ok(status) = client.status(*id).await
            && status.role == rsm_core::Role::Leader
            && best.as_ref().is_none_or(|b| status.epoch > b.epoch)
        {
            best = Some(status);
        }
    }
    best
}

async fn status_of(config: &ClientConfig, id: rsm_core::NodeId) -> Option<ServerStatus> {
    KvClient::new(config.clone()).status(id).await.ok()
}

async fn load_etcd(
    options: &Options,
    addr: SocketAddr,
) -> Result<bool, Box<dyn std::error::Error>> {
    println!(
        "rsm-kv-load: etcd gateway at {addr}, {} clients, {} puts, {}-byte values, {} keys",
        options.clients, options.ops, options.value_size, options.keys
    );
    let issued = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for index in 0..options.clients {
        let issued = issued.clone();
        let (ops, keys, value_size) = (options.ops, options.keys.max(1), options.value_size);
        tasks.spawn(async move {
            let mut client = etcd::EtcdClient::new(addr);
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            let mut n = 0u64;
            while issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < ops {
                n += 1;
                let key = format!("k{}", (index * 7919 + n) % keys);
                let value = encode_value(((index + 1) << 32) | n, value_size);
                let invoke = Instant::now();
                match client.put(key.as_bytes(), &value).await {
                    Ok(()) => latencies.push(invoke.elapsed().as_nanos() as u64),
                    Err(_) => failures += 1,
                }
            }
            (latencies, failures)
        });
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    while let Some(joined) = tasks.join_next().await {
        let (mut part, failed) = joined?;
        latencies.append(&mut part);
        failures += failed;
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "  throughput   {:.0} writes/s over {elapsed:.2} s",
        latencies.len() as f64 / elapsed
    );
    println!(
        "  writes       {}",
        percentiles(&Percentiles::of(latencies))
    );
    println!("  errors       {failures} failed");
    Ok(failures == 0)
}

fn percentiles(p: &Percentiles) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  ({} acknowledged)",
        ms(p.p50),
        ms(p.p99),
        ms(p.p999),
        ms(p.max),
        p.count
    )
}
