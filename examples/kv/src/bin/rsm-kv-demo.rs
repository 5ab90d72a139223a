//! `rsm-kv-demo`: a 3-node cluster on loopback, a client workload, the leader killed
//! half-way and restarted, and a report ending with the linearizability verdict.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rsm_check::{Verdict, check};
use rsm_core::NodeId;
use rsm_examples::progress::ProgressLine;
use rsm_kv::flags::{self, CompletionsArg, fraction};
use rsm_kv::history::Recorder;
use rsm_kv::workload::{self, Percentiles, Progress, SampleOutcome, WorkloadConfig};
use rsm_kv::{LocalCluster, embedded_server, tool_main};
use tokio::time::sleep;

/// The leader is killed once this fraction of the operations is done.
const KILL_AT_FRACTION: f64 = 0.4;
const LEADER_WAIT: Duration = Duration::from_secs(30);
const CATCH_UP_WAIT: Duration = Duration::from_secs(30);

/// A 3-node replicated key-value cluster on loopback under a client workload; the leader
/// is killed with SIGKILL part-way and restarted, and the report ends with the
/// linearizability verdict of the recorded history.
#[derive(Parser, Debug)]
#[command(name = "rsm-kv-demo", version)]
struct Options {
    /// Concurrent client sessions
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,
    /// Operations in all
    #[arg(long, default_value_t = 20_000)]
    ops: u64,
    /// Distinct keys
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
    /// Bytes per written value
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Fraction of operations that are reads, from 0 to 1
    #[arg(long, default_value_t = 0.3, value_parser = fraction)]
    read_ratio: f64,
    /// How long the killed leader stays down (e.g. 500ms, 2s)
    #[arg(long, default_value = "1s", value_parser = flags::duration)]
    restart_after: Duration,
    /// Pass even if the linearizability check is inconclusive (its search budget ran out)
    #[arg(long)]
    allow_inconclusive: bool,
    #[command(flatten)]
    completions: CompletionsArg,
}

fn main() -> ExitCode {
    tool_main(|o: &Options| &o.completions, demo)
}

async fn demo(options: Options) -> Result<bool, Box<dyn std::error::Error>> {
    // Dropped on every way out of this function: the servers are killed, the data removed.
    let mut cluster = LocalCluster::start(embedded_server()?, 3, None, Vec::new())?;
    println!(
        "rsm-kv demo: 3 Raft servers on 127.0.0.1, fsync on, data in {}",
        cluster.data_root().display()
    );
    let first_leader = cluster
        .wait_for_leader(LEADER_WAIT)
        .await
        .ok_or("no leader was elected in 30 s")?;
    println!(
        "leader elected: {first_leader}; running {} operations from {} clients ({} keys, {}-byte values, {:.0}% reads)",
        options.ops,
        options.clients,
        options.keys,
        options.value_size,
        options.read_ratio * 100.0
    );

    let recorder = Arc::new(Recorder::new());
    let progress = Arc::new(Progress::default());
    let mut client = cluster.client_config();
    client.attempt_timeout = Duration::from_secs(1);
    let config = WorkloadConfig {
        clients: options.clients as usize,
        ops: options.ops,
        value_size: options.value_size,
        read_ratio: options.read_ratio,
        cas_ratio: 0.1,
        delete_ratio: 0.05,
        keys: options.keys,
        seed: 7,
        record_history: true,
        client,
    };
    let run = tokio::spawn(workload::run(config, recorder.clone(), progress.clone()));

    let kill_at = (options.ops as f64 * KILL_AT_FRACTION) as u64;
    let mut killed: Option<(NodeId, u64)> = None;
    let mut killed_after_ops = 0;
    let mut restarted: Option<u64> = None;
    let mut note = String::new();
    let line = ProgressLine::new(options.ops, "ops");
    while !run.is_finished() {
        line.update(progress.done(), summary(&progress, &recorder, &note));
        if killed.is_none() && progress.done() >= kill_at {
            let leader = cluster
                .wait_for_leader(Duration::from_secs(5))
                .await
                .unwrap_or(first_leader);
            cluster.kill(leader)?;
            killed = Some((leader, recorder.now()));
            killed_after_ops = progress.done();
            note = format!("  leader {leader} killed");
        }
        if let Some((victim, at)) = killed
            && restarted.is_none()
            && recorder.now() - at >= options.restart_after.as_nanos() as u64
        {
            cluster.restart(victim)?;
            restarted = Some(recorder.now());
            note = format!("  leader {victim} killed, restarted");
        }
        sleep(Duration::from_millis(100)).await;
    }
    let report = run.await?;
    line.finish(&format!(
        "{}/{} ops {}",
        progress.done().min(options.ops),
        options.ops,
        summary(&progress, &recorder, &note)
    ));
    if let Some((victim, _)) = killed
        && restarted.is_none()
    {
        cluster.restart(victim)?;
        restarted = Some(recorder.now());
    }

    // The restarted server must rejoin and catch up with the others.
    let caught_up = match killed {
        Some((victim, _)) => catch_up(&cluster, victim, &recorder).await,
        None => None,
    };

    let history = recorder.history();
    let verdict = check(&history);
    let ok = report.count(SampleOutcome::Ok, false);
    let writes = report.samples.iter().filter(|s| s.write).count();
    println!();
    println!("report");
    println!(
        "  operations       {} ({} writes, {} reads): {} ok, {} failed, {} outcome unknown",
        report.samples.len(),
        writes,
        report.samples.len() - writes,
        ok,
        report.count(SampleOutcome::Failed, false),
        report.count(SampleOutcome::Unknown, false),
    );
    println!(
        "  throughput       {:.0} ops/s over {:.2} s",
        report.throughput(false),
        report.elapsed.as_secs_f64()
    );
    let all = report.latency(false);
    println!("  latency          {}", percentiles(&all));
    println!("  write latency    {}", percentiles(&report.latency(true)));
    match killed {
        Some((victim, at)) => {
            println!(
                "  fault            leader {victim} killed with SIGKILL after {killed_after_ops} operations, restarted {} later",
                millis(restarted.map_or(0, |r| r - at))
            );
            match report.first_write_acknowledged_after(at) {
                Some(done) => println!(
                    "  recovery         {} from the kill to the first acknowledged write invoked after it",
                    millis(done - at)
                ),
                None => println!("  recovery         no write was acknowledged after the kill"),
            }
            match caught_up {
                Some((index, at)) => println!(
                    "  rejoin           {victim} had caught up with its peers at index {} {} after its restart",
                    index.get(),
                    millis(at - restarted.unwrap_or(at))
                ),
                None => println!("  rejoin           {victim} did not catch up within 30 s"),
            }
        }
        None => println!("  fault            the workload ended before the leader could be killed"),
    }
    let linearizable = verdict.passes(options.allow_inconclusive);
    match &verdict {
        Verdict::Linearizable => println!(
            "  linearizability  linearizable ({} operations checked by rsm_check)",
            history.len()
        ),
        Verdict::Inconclusive { .. } if options.allow_inconclusive => {
            println!("  linearizability  {verdict} (counted as a pass: --allow-inconclusive)")
        }
        other => println!("  linearizability  {other}"),
    }
    Ok(linearizable && caught_up.is_some())
}

/// Wait until `victim` has applied as far as every other server; the index and when, on
/// the recorder's clock.
async fn catch_up(
    cluster: &LocalCluster,
    victim: NodeId,
    recorder: &Recorder,
) -> Option<(rsm_core::LogIndex, u64)> {
    let started = std::time::Instant::now();
    while started.elapsed() < CATCH_UP_WAIT {
        let statuses = cluster.statuses(Duration::from_millis(500)).await;
        let highest = statuses.values().map(|s| s.applied).max();
        if statuses.len() == cluster.ids().len()
            && let (Some(victim), Some(highest)) = (statuses.get(&victim), highest)
            && victim.applied == highest
        {
            return Some((highest, recorder.now()));
        }
        sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Throughput and error counts, e.g. `5400 ops/s, 0 failed, 3 unknown  leader n1 killed`.
fn summary(progress: &Progress, recorder: &Recorder, note: &str) -> String {
    let (failed, unknown) = progress.errors();
    let seconds = recorder.now() as f64 / 1e9;
    format!(
        "{:.0} ops/s, {failed} failed, {unknown} unknown{note}",
        progress.done() as f64 / seconds.max(1e-9),
    )
}

fn percentiles(p: &Percentiles) -> String {
    format!(
        "p50 {}  p99 {}  p99.9 {}  max {}  ({} acknowledged)",
        duration(p.p50),
        duration(p.p99),
        duration(p.p999),
        duration(p.max),
        p.count
    )
}

fn duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn millis(ns: u64) -> String {
    format!("{} ms", ns / 1_000_000)
}
