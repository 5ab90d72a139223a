//! A closed-loop client workload: many sessions, each issuing one operation at a time,
//! with latencies and (optionally) a history for the linearizability checker.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rsm_check::{Call, Operation, Outcome, Ret};
use rsm_core::Prng;
use tokio::task::JoinSet;

use crate::client::{ClientConfig, KvClient, KvError};
use crate::history::{Recorder, decode_value, encode_value};

/// What the workload does.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// Concurrent client sessions.
    pub clients: usize,
    /// Operations in total, over all clients (fewer if [`Progress::stop`] is called).
    pub ops: u64,
    /// Bytes per written value (at least 8: the value's id).
    pub value_size: usize,
    /// Fraction of operations that are reads.
    pub read_ratio: f64,
    /// Fraction of writes that are compare-and-swaps.
    pub cas_ratio: f64,
    /// Fraction of the remaining writes that are deletes.
    pub delete_ratio: f64,
    /// Keys are drawn uniformly from this many.
    pub keys: u64,
    /// Seed of the operation mix.
    pub seed: u64,
    /// Whether to record a history for the checker.
    pub record_history: bool,
    /// How clients reach the cluster.
    pub client: ClientConfig,
}

/// How an operation ended, from the client's side.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SampleOutcome {
    /// Acknowledged.
    Ok,
    /// Definitely not applied.
    Failed,
    /// Maybe applied.
    Unknown,
}

/// One operation's timing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// A write (put, delete, compare-and-swap) rather than a read.
    pub write: bool,
    /// Invocation, in the recorder's nanoseconds.
    pub invoke_ns: u64,
    /// Completion, in the recorder's nanoseconds.
    pub complete_ns: u64,
    /// How it ended.
    pub outcome: SampleOutcome,
}

/// Counters shared with whoever watches the workload (a progress bar, a fault injector).
#[derive(Debug, Default)]
pub struct Progress {
    stopped: AtomicBool,
    issued: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    unknown: AtomicU64,
}

impl Progress {
    /// Operations finished so far, whatever their outcome.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Operations that failed definitely, and with an unknown outcome.
    pub fn errors(&self) -> (u64, u64) {
        (
            self.failed.load(Ordering::Relaxed),
            self.unknown.load(Ordering::Relaxed),
        )
    }

    /// Ask every client to stop after its current operation.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    fn claim(&self, total: u64) -> bool {
        !self.stopped.load(Ordering::Relaxed) && self.issued.fetch_add(1, Ordering::Relaxed) < total
    }

    fn finish(&self, outcome: SampleOutcome) {
        match outcome {
            SampleOutcome::Ok => {}
            SampleOutcome::Failed => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
            SampleOutcome::Unknown => {
                self.unknown.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Latency percentiles of a set of operations.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// How many operations.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Percentiles {
    /// Percentiles of `latencies` (nanoseconds); all zero when empty.
    pub fn of(mut latencies: Vec<u64>) -> Self {
        if latencies.is_empty() {
            return Self::default();
        }
        latencies.sort_unstable();
        let at = |p: f64| {
            let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
            Duration::from_nanos(latencies[rank - 1])
        };
        Self {
            count: latencies.len(),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        }
    }
}

/// What a finished workload measured.
#[derive(Clone, Debug)]
pub struct WorkloadReport {
    /// Every operation, in no particular order.
    pub samples: Vec<Sample>,
    /// From the first invocation to the last completion.
    pub elapsed: Duration,
}

impl WorkloadReport {
    /// Operations with this outcome (writes only, if `writes_only`).
    pub fn count(&self, outcome: SampleOutcome, writes_only: bool) -> usize {
        self.samples
            .iter()
            .filter(|s| s.outcome == outcome && (s.write || !writes_only))
            .count()
    }

    /// Acknowledged operations per second (writes only, if `writes_only`).
    pub fn throughput(&self, writes_only: bool) -> f64 {
        self.count(SampleOutcome::Ok, writes_only) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency percentiles of acknowledged operations (writes only, if `writes_only`).
    pub fn latency(&self, writes_only: bool) -> Percentiles {
        Percentiles::of(
            self.samples
                .iter()
                .filter(|s| s.outcome == SampleOutcome::Ok && (s.write || !writes_only))
                .map(|s| s.complete_ns - s.invoke_ns)
                .collect(),
        )
    }

    /// The first acknowledged write invoked at or after `since_ns`: its completion time.
    pub fn first_write_acknowledged_after(&self, since_ns: u64) -> Option<u64> {
        self.samples
            .iter()
            .filter(|s| s.write && s.outcome == SampleOutcome::Ok && s.invoke_ns >= since_ns)
            .map(|s| s.complete_ns)
            .min()
    }
}

/// Run the workload to completion on the current tokio runtime. Operations are recorded in
/// `recorder` when the configuration asks for a history.
pub async fn run(
    config: WorkloadConfig,
    recorder: Arc<Recorder>,
    progress: Arc<Progress>,
) -> WorkloadReport {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let config = Arc::new(config);
    for index in 0..config.clients.max(1) {
        tasks.spawn(client_loop(
            index as u64,
            config.clone(),
            recorder.clone(),
            progress.clone(),
        ));
    }
    let mut samples = Vec::with_capacity(config.ops as usize);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(mut part) => samples.append(&mut part),
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
    WorkloadReport {
        samples,
        elapsed: started.elapsed(),
    }
}

async fn client_loop(
    index: u64,
    config: Arc<WorkloadConfig>,
    recorder: Arc<Recorder>,
    progress: Arc<Progress>,
) -> Vec<Sample> {
    let mut client = KvClient::new(config.client.clone());
    let mut rng = Prng::new(config.seed ^ (index + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    // The value this client last saw at each key: what its compare-and-swaps expect.
    let mut seen: HashMap<u64, Option<u64>> = HashMap::new();
    let mut written = 0u64;
    let mut samples = Vec::new();
    let value = |id: u64| encode_value(id, config.value_size);
    while progress.claim(config.ops) {
        let key = rng.range(0, config.keys.max(1));
        let key_bytes = Bytes::from(format!("k{key}"));
        let invoke = recorder.now();
        let (call, result) = if rng.chance(config.read_ratio) {
            let result = client.get(key_bytes).await;
            let result = result.map(|v| Ret::Read(v.map(|b| decode_value(&b))));
            (Call::Read, result)
        } else {
            written += 1;
            // Unique across the run: client index in the high half, a counter below.
            let id = ((index + 1) << 32) | written;
            if rng.chance(config.cas_ratio) {
                let expected = seen.get(&key).copied().flatten();
                let result = client
                    .cas(key_bytes, expected.map(value), Some(value(id)))
                    .await;
                let result = result.map(|cas| {
                    let now = if cas.swapped {
                        Some(id)
                    } else {
                        cas.current.map(|b| decode_value(&b))
                    };
                    seen.insert(key, now);
                    Ret::Cas(cas.swapped)
                });
                let new = Some(id);
                (Call::Cas { expected, new }, result)
            } else if rng.chance(config.delete_ratio) {
                let result = client.delete(key_bytes).await.map(|()| Ret::Written);
                (Call::Write(None), result)
            } else {
                let result = client
                    .put(key_bytes, value(id))
                    .await
                    .map(|()| Ret::Written);
                (Call::Write(Some(id)), result)
            }
        };
        let complete = recorder.now();
        if let Ok(Ret::Read(v)) = result {
            seen.insert(key, v);
        }
        let (outcome, sample_outcome) = match result {
            Ok(ret) => (Outcome::Ok(ret), SampleOutcome::Ok),
            Err(KvError::Failed(_)) => (Outcome::Fail, SampleOutcome::Failed),
            Err(KvError::Unknown(_)) => (Outcome::Indeterminate, SampleOutcome::Unknown),
        };
        if config.record_history {
            recorder.record(Operation {
                client: index,
                key,
                call,
                invoke,
                complete,
                outcome,
            });
        }
        samples.push(Sample {
            write: call != Call::Read,
            invoke_ns: invoke,
            complete_ns: complete,
            outcome: sample_outcome,
        });
        progress.finish(sample_outcome);
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let p = Percentiles::of((1..=1000).collect());
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50, Duration::from_nanos(500));
        assert_eq!(p.p99, Duration::from_nanos(990));
        assert_eq!(p.p999, Duration::from_nanos(999));
        assert_eq!(p.max, Duration::from_nanos(1000));
        assert_eq!(Percentiles::of(Vec::new()), Percentiles::default());
    }
}
