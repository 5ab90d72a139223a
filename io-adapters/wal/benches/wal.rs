//! Group commit: appends of 100-byte entries, 1, 16 or 256 writes per sync, on a temporary
//! directory. Each iteration writes the batch (one `Persist::Append` of one entry per
//! write, as a host executing effects would) and syncs once.
//!
//! `disk` uses the system's temporary directory, where the sync dominates; `tmpfs` (run
//! only where /dev/shm exists) makes the sync nearly free and so shows the cost of
//! encoding, checksumming and writing.

use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rsm_core::{Bytes, Entry, Epoch, LogIndex, Persist};
use rsm_wal::{Wal, WalConfig};

const PAYLOAD_BYTES: usize = 100;

fn group_commit(c: &mut Criterion) {
    let shm = Path::new("/dev/shm");
    let mut places = vec![("disk", std::env::temp_dir())];
    if shm.is_dir() {
        places.push(("tmpfs", shm.to_owned()));
    }
    for (name, place) in places {
        group_commit_in(c, name, &place);
    }
}

fn group_commit_in(c: &mut Criterion, name: &str, place: &Path) {
    let mut group = c.benchmark_group(format!("wal_append_sync_{name}"));
    group.sample_size(20);
    let payload = Bytes::from(vec![7u8; PAYLOAD_BYTES]);
    for batch in [1u64, 16, 256] {
        let dir = tempfile::tempdir_in(place).expect("temporary directory");
        let (mut wal, _) = Wal::open(dir.path(), WalConfig::default()).expect("open");
        let mut next = 1u64;
        group.throughput(Throughput::Elements(batch));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter(|| {
                for _ in 0..batch {
                    let entry = Entry::command(LogIndex(next), Epoch(1), payload.clone());
                    wal.write(&Persist::Append {
                        entries: vec![entry],
                    })
                    .expect("write");
                    next += 1;
                }
                wal.sync().expect("sync");
            });
        });
        let stats = wal.stats();
        println!(
            "{name}, batch {batch}: {} syncs, {:.1} entries per sync",
            stats.syncs,
            stats.entries_synced as f64 / stats.syncs.max(1) as f64
        );
    }
    group.finish();
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
