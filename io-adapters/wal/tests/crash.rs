//! Crash simulation: the newest record cut at every byte offset, and single bit flips in
//! the middle and at the tail of the log.

mod support;

use std::path::PathBuf;

use rsm_core::{Bytes, Durable, Epoch, LogIndex, Membership, NodeId, Persist, SnapshotMeta};
use rsm_wal::{CorruptKind, Wal, WalConfig, WalError};
use support::*;

fn snapshot(index: u64, epoch: u64) -> Persist {
    Persist::Snapshot {
        meta: SnapshotMeta {
            index: LogIndex(index),
            epoch: Epoch(epoch),
            membership: Membership::new([NodeId(1), NodeId(2)]),
        },
        data: Bytes::from_static(b"the state machine"),
    }
}

/// A log in a scratch directory with each op written and synced on its own.
struct Written {
    dir: tempfile::TempDir,
    config: WalConfig,
    /// The reference state after each prefix of ops: `states[k]` after the first `k`.
    states: Vec<Durable>,
    /// The newest segment file and its length after each prefix of ops.
    ends: Vec<(PathBuf, u64)>,
}

fn write_each(config: WalConfig, ops: &[Persist]) -> Written {
    let dir = scratch();
    let (mut wal, _) = Wal::open(dir.path(), config.clone()).unwrap();
    let mut model = Durable::default();
    let newest = |dir: &tempfile::TempDir| {
        let path = segment_files(dir.path()).pop().unwrap();
        let len = file_len(&path);
        (path, len)
    };
    let mut states = vec![model.clone()];
    let mut ends = vec![newest(&dir)];
    for op in ops {
        write_synced(&mut wal, &mut model, std::slice::from_ref(op));
        states.push(model.clone());
        ends.push(newest(&dir));
    }
    Written {
        dir,
        config,
        states,
        ends,
    }
}

/// Cut the newest segment at every length between its size before the last op and its
/// size after, recover, and check that exactly the durable prefix comes back and that the
/// recovered log takes new writes.
fn cut_every_byte_of_the_last_record(config: WalConfig, ops: &[Persist]) {
    let w = write_each(config, ops);
    let n = ops.len();
    let (segment, end) = w.ends[n].clone();
    let start = if w.ends[n - 1].0 == segment {
        w.ends[n - 1].1
    } else {
        0 // the last op opened a new segment: cut through its header and base record too
    };
    assert!(end > start);
    let saved = save(w.dir.path());
    for len in start..=end {
        restore(w.dir.path(), &saved);
        cut(&segment, len);
        let expected = if len == end {
            &w.states[n]
        } else {
            &w.states[n - 1]
        };
        let (mut wal, durable) = Wal::open(w.dir.path(), w.config.clone())
            .unwrap_or_else(|e| panic!("cut at {len}: {e}"));
        assert_eq!(&durable, expected, "cut at {len}");
        assert_eq!(
            files_with_extension(w.dir.path(), "snap"),
            usize::from(expected.snapshot.is_some()),
            "cut at {len}: a snapshot file no durable record names is removed"
        );
        let mut model = expected.clone();
        write_synced(&mut wal, &mut model, &[hard_state(99, 9)]);
        drop(wal);
        let (_, reopened) = Wal::open(w.dir.path(), w.config.clone()).unwrap();
        assert_eq!(reopened, model, "cut at {len}, then written");
    }
}

fn prefix() -> Vec<Persist> {
    vec![append(1, 4, 1), hard_state(1, 1), append(5, 2, 1)]
}

fn with_last(last: Persist) -> Vec<Persist> {
    let mut ops = prefix();
    ops.push(last);
    ops
}

#[test]
fn a_torn_append_recovers_the_durable_prefix() {
    cut_every_byte_of_the_last_record(WalConfig::default(), &with_last(append(7, 3, 2)));
}

#[test]
fn a_torn_overwriting_append_keeps_the_old_suffix() {
    cut_every_byte_of_the_last_record(WalConfig::default(), &with_last(append(3, 1, 2)));
}

#[test]
fn a_torn_truncation_keeps_the_old_suffix() {
    cut_every_byte_of_the_last_record(
        WalConfig::default(),
        &with_last(Persist::Truncate { from: LogIndex(2) }),
    );
}

#[test]
fn a_torn_hard_state_keeps_the_old_one() {
    cut_every_byte_of_the_last_record(WalConfig::default(), &with_last(hard_state(2, 3)));
}

#[test]
fn a_torn_snapshot_record_keeps_the_old_image_and_drops_the_file() {
    cut_every_byte_of_the_last_record(WalConfig::default(), &with_last(snapshot(4, 1)));
}

#[test]
fn a_torn_first_write_to_a_new_segment_removes_or_cuts_it() {
    let config = small_config();
    let mut ops = Vec::new();
    // Append one entry at a time until one of them opens a new segment.
    for i in 1.. {
        ops.push(append(i, 1, 1));
        let w = write_each(config.clone(), &ops);
        if w.ends[i as usize].0 != w.ends[i as usize - 1].0 {
            break;
        }
    }
    cut_every_byte_of_the_last_record(config, &ops);
}

fn expect_corrupt(
    dir: &std::path::Path,
    config: &WalConfig,
    segment: u64,
    offset: u64,
) -> CorruptKind {
    let before = save(dir);
    match Wal::open(dir, config.clone()) {
        Err(WalError::Corrupt {
            segment: s,
            offset: o,
            kind,
        }) => {
            assert_eq!((s, o), (segment, offset), "{kind}");
            assert_eq!(save(dir), before, "a failed recovery changes no file");
            kind
        }
        other => panic!("expected corruption at {segment}:{offset}, got {other:?}"),
    }
}

#[test]
fn a_flipped_bit_in_the_middle_is_reported_at_its_record() {
    let ops = with_last(hard_state(2, 2));
    let w = write_each(WalConfig::default(), &ops);
    let saved = save(w.dir.path());
    // The second op's record sits between the sizes after the first and second ops.
    let (segment, start) = w.ends[1].clone();
    let end = w.ends[2].1;
    for offset in start..end {
        restore(w.dir.path(), &saved);
        flip_bit(&segment, offset, (offset % 8) as u32);
        expect_corrupt(w.dir.path(), &w.config, 1, start);
    }
}

#[test]
fn a_flipped_bit_in_the_last_record_is_a_torn_tail() {
    let ops = with_last(append(7, 2, 2));
    let w = write_each(WalConfig::default(), &ops);
    let saved = save(w.dir.path());
    let n = ops.len();
    let (segment, start) = w.ends[n - 1].clone();
    for offset in start..w.ends[n].1 {
        for bit in [0, 7] {
            restore(w.dir.path(), &saved);
            flip_bit(&segment, offset, bit);
            let (_, durable) = Wal::open(w.dir.path(), w.config.clone()).unwrap();
            assert_eq!(durable, w.states[n - 1], "flip at {offset}.{bit}");
            assert_eq!(file_len(&segment), start);
        }
    }
}

#[test]
fn a_flipped_bit_in_a_segment_header_or_base_is_corruption() {
    let ops = with_last(hard_state(2, 2));
    let w = write_each(WalConfig::default(), &ops);
    let saved = save(w.dir.path());
    let segment = w.ends[0].0.clone();
    flip_bit(&segment, 3, 1);
    expect_corrupt(w.dir.path(), &w.config, 1, 0);
    restore(w.dir.path(), &saved);
    flip_bit(&segment, 25, 4);
    expect_corrupt(w.dir.path(), &w.config, 1, 20);
}

/// Several segments with tiny limits; returns the written log and the first segment.
fn several_segments() -> (Written, PathBuf) {
    let ops: Vec<Persist> = (1..=12).map(|i| append(i, 1, 1)).collect();
    let w = write_each(small_config(), &ops);
    let files = segment_files(w.dir.path());
    assert!(files.len() >= 3, "{files:?}");
    let first = files[0].clone();
    (w, first)
}

#[test]
fn damage_at_the_end_of_an_older_segment_is_corruption() {
    let (w, first) = several_segments();
    let saved = save(w.dir.path());
    let len = file_len(&first);
    // Its last record ends where the segment ends; find where that record starts.
    let last_start = w
        .ends
        .iter()
        .filter(|(p, l)| *p == first && *l < len)
        .map(|(_, l)| *l)
        .max()
        .unwrap();
    flip_bit(&first, len - 1, 0);
    expect_corrupt(w.dir.path(), &w.config, 1, last_start);
    restore(w.dir.path(), &saved);
    cut(&first, len - 1);
    expect_corrupt(w.dir.path(), &w.config, 1, last_start);
    // Cut at a record boundary: the next segment knows how long this one was.
    restore(w.dir.path(), &saved);
    cut(&first, last_start);
    let kind = expect_corrupt(w.dir.path(), &w.config, 2, 20);
    assert_eq!(
        kind,
        CorruptKind::PreviousLength {
            expected: len,
            found: last_start
        }
    );
}

#[test]
fn a_missing_middle_segment_is_reported() {
    let (w, _) = several_segments();
    let files = segment_files(w.dir.path());
    std::fs::remove_file(&files[1]).unwrap();
    assert!(matches!(
        Wal::open(w.dir.path(), w.config.clone()),
        Err(WalError::MissingSegment { segment: 2 })
    ));
}
