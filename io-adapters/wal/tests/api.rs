//! The host-facing behaviour of the log: round trips, refusals, group commit, rotation,
//! compaction, snapshots and the directory lock.

mod support;

use rsm_core::{Bytes, Durable, Epoch, LogIndex, Membership, NodeId, Persist, SnapshotMeta};
use rsm_wal::{Wal, WalConfig, WalError};
use support::*;

fn snapshot(index: u64, epoch: u64, data: &'static [u8]) -> Persist {
    Persist::Snapshot {
        meta: SnapshotMeta {
            index: LogIndex(index),
            epoch: Epoch(epoch),
            membership: Membership::new([NodeId(1), NodeId(2), NodeId(3)]),
        },
        data: Bytes::from_static(data),
    }
}

#[test]
fn a_fresh_directory_opens_empty_and_round_trips_every_kind_of_write() {
    let dir = scratch();
    let path = dir.path().join("nested/log");
    let mut model = Durable::default();
    {
        let (mut wal, durable) = Wal::open(&path, WalConfig::default()).unwrap();
        assert_eq!(durable, Durable::default());
        write_synced(
            &mut wal,
            &mut model,
            &[
                append(1, 5, 1),
                hard_state(1, 2),
                append(4, 3, 2),
                Persist::Truncate { from: LogIndex(6) },
                snapshot(3, 1, b"state at 3"),
                append(6, 2, 3),
            ],
        );
    }
    let (_, durable) = Wal::open(&path, WalConfig::default()).unwrap();
    assert_eq!(durable, model);
    assert_eq!(durable.snapshot_index(), LogIndex(3));
    assert_eq!(durable.last_index(), LogIndex(7));
}

#[test]
fn the_real_disk_works_too() {
    // Every other test runs on tmpfs when it can; this one syncs to the temporary
    // directory's own file system.
    let dir = tempfile::tempdir().unwrap();
    let mut model = Durable::default();
    {
        let (mut wal, _) = Wal::open(dir.path(), small_config()).unwrap();
        write_synced(&mut wal, &mut model, &[append(1, 8, 1), hard_state(1, 1)]);
    }
    assert_eq!(Wal::open(dir.path(), small_config()).unwrap().1, model);
}

#[test]
fn invalid_writes_fail_like_the_reference_and_change_nothing() {
    let dir = scratch();
    let mut model = Durable::default();
    let (mut wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
    write_synced(
        &mut wal,
        &mut model,
        &[append(1, 6, 1), snapshot(3, 1, b"s")],
    );
    let gap = append(9, 1, 1);
    let below = append(3, 1, 1);
    let truncate_below = Persist::Truncate { from: LogIndex(2) };
    let mut jumbled = append(4, 2, 1);
    if let Persist::Append { entries } = &mut jumbled {
        entries[1].index = LogIndex(9);
    }
    for op in [gap, below, truncate_below, jumbled] {
        let expected = model.clone().apply(&op).unwrap_err();
        match wal.write(&op) {
            Err(WalError::Persist(e)) => assert_eq!(e, expected, "{op:?}"),
            other => panic!("{op:?}: expected {expected:?}, got {other:?}"),
        }
    }
    // The log is still usable, and the refused writes left no trace.
    write_synced(&mut wal, &mut model, &[append(7, 1, 2)]);
    drop(wal);
    assert_eq!(
        Wal::open(dir.path(), WalConfig::default()).unwrap().1,
        model
    );
}

#[test]
fn one_sync_commits_a_whole_group() {
    let dir = scratch();
    let (mut wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
    for i in 1..=16 {
        wal.write(&append(i, 1, 1)).unwrap();
    }
    assert_eq!(wal.sync_count(), 0);
    wal.sync().unwrap();
    wal.sync().unwrap(); // nothing new: no second fsync
    let stats = wal.stats();
    assert_eq!(stats.syncs, 1);
    assert_eq!(wal.sync_count(), 1);
    assert_eq!(stats.entries, 16);
    assert_eq!(stats.entries_synced, 16);
    assert_eq!(stats.records, 16);
    // The same counters through the Storage trait, as a node driver publishes them.
    let published = rsm_core::Storage::stats(&wal);
    assert_eq!(
        (published.syncs, published.entries_synced),
        (stats.syncs, stats.entries_synced)
    );
    assert_eq!(published.fsyncs, stats.fsyncs);
    assert_eq!(published.bytes_written, stats.bytes);
    assert!(published.bytes_written > 0);
}

#[test]
fn unsynced_writes_are_lost_like_a_crash_would_lose_them() {
    let dir = scratch();
    let mut model = Durable::default();
    {
        let (mut wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
        write_synced(&mut wal, &mut model, &[append(1, 3, 1)]);
        wal.write(&append(4, 3, 1)).unwrap();
    }
    assert_eq!(
        Wal::open(dir.path(), WalConfig::default()).unwrap().1,
        model
    );
}

#[test]
fn segments_rotate_and_compaction_deletes_only_covered_ones() {
    let dir = scratch();
    let config = small_config();
    let mut model = Durable::default();
    let (mut wal, _) = Wal::open(dir.path(), config.clone()).unwrap();
    write_synced(&mut wal, &mut model, &[hard_state(7, 3)]);
    for i in 1..=40 {
        write_synced(&mut wal, &mut model, &[append(i, 1, 1)]);
    }
    let before = segment_files(dir.path()).len();
    assert!(before > 5, "tiny segments rotate: {before}");
    assert_eq!(wal.segments().len(), before);
    // Compaction without a snapshot deletes nothing.
    write_synced(
        &mut wal,
        &mut model,
        &[Persist::Compact {
            through: LogIndex(40),
        }],
    );
    assert_eq!(segment_files(dir.path()).len(), before);
    let created = wal.stats().segments_created;
    write_synced(
        &mut wal,
        &mut model,
        &[
            snapshot(30, 1, b"thirty"),
            Persist::Compact {
                through: LogIndex(30),
            },
        ],
    );
    let after = segment_files(dir.path()).len();
    assert!(after < before, "{after} < {before}");
    // The snapshot's record may have opened a segment of its own.
    let created = wal.stats().segments_created - created;
    assert_eq!(
        wal.stats().segments_removed,
        (before - after) as u64 + created
    );
    assert_eq!(wal.segments().len(), after);
    drop(wal);
    // The hard state written in a deleted segment survives through base records.
    let (_, durable) = Wal::open(dir.path(), config).unwrap();
    assert_eq!(durable, model);
    assert_eq!(durable.hard_state.epoch, Epoch(7));
}

fn accept(slots: &[u64], epoch: u64) -> Persist {
    Persist::Accept {
        entries: slots.iter().map(|&i| entry(i, epoch, 40)).collect(),
    }
}

#[test]
fn slot_writes_keep_their_holes_and_higher_slots_through_snapshots_compaction_and_reopen() {
    let dir = scratch();
    let config = small_config();
    let mut model = Durable::default();
    let (mut wal, _) = Wal::open(dir.path(), config.clone()).unwrap();
    // Out of order, with holes, replacing a held slot; split over tiny segments.
    write_synced(
        &mut wal,
        &mut model,
        &[
            accept(&[2, 9], 1),
            accept(&[1, 3, 9], 2),
            accept(&[20, 30], 2),
        ],
    );
    assert_eq!(wal.last_index(), LogIndex(30));
    assert_eq!(
        wal.write(&accept(&[5, 4], 2)).unwrap_err().to_string(),
        WalError::Persist(rsm_core::PersistError::NotAscending(4)).to_string()
    );
    // A snapshot at a hole whose epoch the log cannot match keeps every slot above it,
    // and compaction deletes only segments whose slots it covers.
    write_synced(
        &mut wal,
        &mut model,
        &[
            snapshot(10, 7, b"through ten"),
            Persist::Compact {
                through: LogIndex(10),
            },
        ],
    );
    assert_eq!(model.entries.len(), 2, "slots 20 and 30 stay");
    assert!(wal.stats().segments_removed > 0);
    write_synced(&mut wal, &mut model, &[accept(&[12, 25], 3)]);
    // Truncation finds the highest slot below its index.
    write_synced(
        &mut wal,
        &mut model,
        &[Persist::Truncate { from: LogIndex(21) }],
    );
    assert_eq!(wal.last_index(), LogIndex(20));
    drop(wal);
    let (wal, durable) = Wal::open(dir.path(), config).unwrap();
    assert_eq!(durable, model);
    let held: Vec<u64> = durable.entries.iter().map(|e| e.index.0).collect();
    assert_eq!(held, [12, 20]);
    assert_eq!(wal.last_index(), LogIndex(20));
}

#[test]
fn large_appends_split_across_records_and_oversized_entries_are_refused() {
    let dir = scratch();
    let config = small_config();
    let mut model = Durable::default();
    let (mut wal, _) = Wal::open(dir.path(), config.clone()).unwrap();
    let big = Persist::Append {
        entries: (1..=20).map(|i| entry(i, 1, 60)).collect(),
    };
    write_synced(&mut wal, &mut model, &[big]);
    assert!(wal.stats().records > 1);
    let huge = Persist::Append {
        entries: vec![entry(21, 1, 1000)],
    };
    assert!(matches!(
        wal.write(&huge),
        Err(WalError::EntryTooLarge { index: 21, .. })
    ));
    let huge_state = Persist::HardState(rsm_core::HardState {
        extra: Bytes::from(vec![0u8; 1000]),
        ..Default::default()
    });
    assert!(matches!(
        wal.write(&huge_state),
        Err(WalError::RecordTooLarge { .. })
    ));
    write_synced(&mut wal, &mut model, &[append(21, 1, 1)]);
    drop(wal);
    assert_eq!(Wal::open(dir.path(), config).unwrap().1, model);
}

#[test]
fn replaced_and_orphaned_snapshot_files_are_removed() {
    let dir = scratch();
    let mut model = Durable::default();
    {
        let (mut wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
        write_synced(
            &mut wal,
            &mut model,
            &[append(1, 4, 1), snapshot(2, 1, b"two")],
        );
        write_synced(&mut wal, &mut model, &[snapshot(4, 1, b"four")]);
        assert_eq!(files_with_extension(dir.path(), "snap"), 1);
        // Written but never synced: its file is durable, its record is not.
        wal.write(&snapshot(4, 1, b"four again")).unwrap();
        assert_eq!(files_with_extension(dir.path(), "snap"), 2);
    }
    let (_, durable) = Wal::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(durable, model);
    assert_eq!(files_with_extension(dir.path(), "snap"), 1);
}

#[test]
fn a_damaged_or_missing_snapshot_file_is_reported() {
    let dir = scratch();
    {
        let (mut wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
        write_synced(
            &mut wal,
            &mut Durable::default(),
            &[snapshot(2, 1, b"snapshot data")],
        );
    }
    let snap = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "snap"))
        .unwrap();
    flip_bit(&snap, 3, 0);
    assert!(matches!(
        Wal::open(dir.path(), WalConfig::default()),
        Err(WalError::BadSnapshot { .. })
    ));
    std::fs::remove_file(&snap).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), WalConfig::default()),
        Err(WalError::BadSnapshot { .. })
    ));
}

#[test]
fn a_second_opener_is_locked_out() {
    let dir = scratch();
    let (wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), WalConfig::default()),
        Err(WalError::Locked { .. })
    ));
    drop(wal);
    assert!(Wal::open(dir.path(), WalConfig::default()).is_ok());
}

#[test]
fn unusable_configurations_are_refused() {
    let dir = scratch();
    let bad = WalConfig {
        record_bytes_max: 10,
        ..WalConfig::default()
    };
    assert!(matches!(
        Wal::open(dir.path(), bad),
        Err(WalError::Config(_))
    ));
    let bad = WalConfig {
        record_bytes_max: u64::MAX,
        ..WalConfig::default()
    };
    assert!(matches!(
        Wal::open(dir.path(), bad),
        Err(WalError::Config(_))
    ));
    let bad = WalConfig {
        write_buffer_bytes_max: 0,
        ..WalConfig::default()
    };
    assert!(matches!(
        Wal::open(dir.path(), bad),
        Err(WalError::Config(_))
    ));
}
