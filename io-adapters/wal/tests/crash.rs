//! Crash simulation and damage by byte-level edits of a real log directory: the newest
//! record torn at every byte offset, single bit flips in the middle and at the tail, and
//! the faults that lose durable data (a missing or shortened segment, a segment from
//! another directory, a hard state ahead of the log), each refused with the file named.

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
    /// The newest segment file and the offset after its last record, after each prefix of
    /// ops.
    ends: Vec<(PathBuf, u64)>,
}

fn write_each(config: WalConfig, ops: &[Persist]) -> Written {
    let dir = scratch();
    let (mut wal, _) = Wal::open(dir.path(), config.clone()).unwrap();
    let mut model = Durable::default();
    let newest = |dir: &tempfile::TempDir, wal: &Wal| {
        let path = segment_files(dir.path()).pop().unwrap();
        assert_eq!(wal.segments().last(), Some(&wal.tail().0));
        (path, wal.tail().1)
    };
    let mut states = vec![model.clone()];
    let mut ends = vec![newest(&dir, &wal)];
    for op in ops {
        write_synced(&mut wal, &mut model, std::slice::from_ref(op));
        states.push(model.clone());
        ends.push(newest(&dir, &wal));
    }
    Written {
        dir,
        config,
        states,
        ends,
    }
}

/// Tear the last op's record at every byte: keep its first bytes and zero the rest, as a
/// write that reached the disk only in part leaves it. Recover, and check that exactly the
/// durable prefix comes back, that the file keeps its length and that the recovered log
/// takes new writes.
fn cut_every_byte_of_the_last_record(config: WalConfig, ops: &[Persist]) {
    let w = write_each(config, ops);
    let n = ops.len();
    let (segment, end) = w.ends[n].clone();
    let start = if w.ends[n - 1].0 == segment {
        w.ends[n - 1].1
    } else {
        // The last op opened a new segment, whose header and base were synced at creation.
        base_end(&segment)
    };
    let file_bytes = file_len(&segment);
    assert!(end > start);
    let saved = save(w.dir.path());
    for len in start..=end {
        restore(w.dir.path(), &saved);
        // Zeroing bytes that were zeros already (a record may end in some) tears nothing.
        let untouched = std::fs::read(&segment).unwrap()[len as usize..end as usize]
            .iter()
            .all(|&b| b == 0);
        zero(&segment, len, end);
        let expected = if untouched {
            &w.states[n]
        } else {
            &w.states[n - 1]
        };
        let (mut wal, durable) = Wal::open(w.dir.path(), w.config.clone())
            .unwrap_or_else(|e| panic!("cut at {len}: {e}"));
        assert_eq!(&durable, expected, "cut at {len}");
        assert_eq!(file_len(&segment), file_bytes, "a segment keeps its length");
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
    cut_every_byte_of_the_last_record(test_config(), &with_last(append(7, 3, 2)));
}

#[test]
fn a_torn_overwriting_append_keeps_the_old_suffix() {
    cut_every_byte_of_the_last_record(test_config(), &with_last(append(3, 1, 2)));
}

#[test]
fn a_torn_truncation_keeps_the_old_suffix() {
    cut_every_byte_of_the_last_record(
        test_config(),
        &with_last(Persist::Truncate { from: LogIndex(2) }),
    );
}

#[test]
fn a_torn_hard_state_keeps_the_old_one() {
    cut_every_byte_of_the_last_record(test_config(), &with_last(hard_state(2, 3)));
}

#[test]
fn a_torn_snapshot_record_keeps_the_old_image_and_drops_the_file() {
    cut_every_byte_of_the_last_record(test_config(), &with_last(snapshot(4, 1)));
}

#[test]
fn a_torn_first_write_to_a_new_segment_keeps_the_segment() {
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
    let w = write_each(test_config(), &ops);
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
    let w = write_each(test_config(), &ops);
    let saved = save(w.dir.path());
    let n = ops.len();
    let (segment, start) = w.ends[n - 1].clone();
    for offset in start..w.ends[n].1 {
        for bit in [0, 7] {
            restore(w.dir.path(), &saved);
            flip_bit(&segment, offset, bit);
            let before = file_len(&segment);
            let (_, durable) = Wal::open(w.dir.path(), w.config.clone()).unwrap();
            assert_eq!(durable, w.states[n - 1], "flip at {offset}.{bit}");
            assert_eq!(file_len(&segment), before);
            let bytes = std::fs::read(&segment).unwrap();
            assert!(
                bytes[start as usize..].iter().all(|&b| b == 0),
                "the torn record is erased"
            );
        }
    }
}

#[test]
fn a_flipped_bit_in_a_segment_header_or_base_is_corruption() {
    let ops = with_last(hard_state(2, 2));
    let w = write_each(test_config(), &ops);
    let saved = save(w.dir.path());
    let segment = w.ends[0].0.clone();
    flip_bit(&segment, 3, 1);
    expect_corrupt(w.dir.path(), &w.config, 1, 0);
    restore(w.dir.path(), &saved);
    flip_bit(&segment, 25, 4);
    expect_corrupt(w.dir.path(), &w.config, 1, 0);
    restore(w.dir.path(), &saved);
    flip_bit(&segment, 41, 4);
    expect_corrupt(w.dir.path(), &w.config, 1, 36);
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
    // Where the first segment's records end, and where its last record starts.
    let mut in_first = w.ends.iter().filter(|(p, _)| *p == first).map(|(_, l)| *l);
    let len = in_first.clone().max().unwrap();
    let last_start = in_first.by_ref().filter(|l| *l < len).max().unwrap();
    flip_bit(&first, len - 1, 0);
    expect_corrupt(w.dir.path(), &w.config, 1, last_start);
    restore(w.dir.path(), &saved);
    zero(&first, len - 1, len);
    expect_corrupt(w.dir.path(), &w.config, 1, last_start);
    // Erased at a record boundary: the next segment knows how long this one was.
    restore(w.dir.path(), &saved);
    zero(&first, last_start, len);
    let kind = expect_corrupt(w.dir.path(), &w.config, 2, 36);
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
        Err(WalError::MissingSegment { segment: 2, .. })
    ));
}

/// Open must fail, naming `file`, and leave every file as it was.
fn expect_refused(dir: &std::path::Path, config: &WalConfig, file: &std::path::Path) -> WalError {
    let before = save(dir);
    let err = Wal::open(dir, config.clone()).expect_err("damage must be refused");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err} names {}",
        file.display()
    );
    assert_eq!(save(dir), before, "a refused recovery changes no file");
    err
}

#[test]
fn a_missing_newest_segment_is_refused_not_taken_for_a_shorter_log() {
    let (w, _) = several_segments();
    let files = segment_files(w.dir.path());
    let newest = files.last().unwrap();
    std::fs::remove_file(newest).unwrap();
    let err = expect_refused(w.dir.path(), &w.config, newest);
    assert!(
        matches!(err, WalError::MissingSegment { segment, newest: n, .. }
            if segment == n && segment == files.len() as u64),
        "{err}"
    );
    assert!(err.to_string().contains("lost"), "{err}");
}

#[test]
fn a_segment_cut_short_is_refused_even_by_one_byte_inside_a_synced_record() {
    let ops = with_last(append(7, 2, 2));
    let w = write_each(test_config(), &ops);
    let saved = save(w.dir.path());
    let (segment, end) = w.ends[ops.len()].clone();
    let file_bytes = file_len(&segment);
    // By a few bytes, through the last synced record, and down to the records' end.
    for len in [file_bytes - 3, end - 3, end] {
        restore(w.dir.path(), &saved);
        cut(&segment, len);
        let err = expect_refused(w.dir.path(), &w.config, &segment);
        assert!(
            matches!(err, WalError::SegmentLength { expected, found, .. }
                if expected == file_bytes && found == len),
            "{err}"
        );
    }
    // Grown: something was appended to it.
    restore(w.dir.path(), &saved);
    cut(&segment, file_bytes + 1);
    expect_refused(w.dir.path(), &w.config, &segment);
}

#[test]
fn a_segment_from_another_directory_is_refused() {
    let ops = with_last(append(7, 2, 2));
    let ours = write_each(test_config(), &ops);
    // The same writes in another directory: byte for byte the same records, but
    // another log id.
    let theirs = write_each(test_config(), &ops);
    let (segment, _) = ours.ends[ops.len()].clone();
    let foreign = theirs.dir.path().join(segment.file_name().unwrap());
    std::fs::copy(&foreign, &segment).unwrap();
    let err = expect_refused(ours.dir.path(), &ours.config, &segment);
    assert!(matches!(err, WalError::ForeignSegment { .. }), "{err}");
    // A manifest copied along with it names the other log, which this segment's
    // neighbours do not belong to; a lone copied manifest likewise.
    let (w, _) = several_segments();
    let (other, _) = several_segments();
    std::fs::copy(
        other.dir.path().join("MANIFEST"),
        w.dir.path().join("MANIFEST"),
    )
    .unwrap();
    let first = segment_files(w.dir.path())[0].clone();
    let err = expect_refused(w.dir.path(), &w.config, &first);
    assert!(matches!(err, WalError::ForeignSegment { .. }), "{err}");
}

#[test]
fn a_directory_without_its_manifest_or_with_a_damaged_one_is_refused() {
    let (w, _) = several_segments();
    let saved = save(w.dir.path());
    let manifest = w.dir.path().join("MANIFEST");
    std::fs::remove_file(&manifest).unwrap();
    let err = expect_refused(w.dir.path(), &w.config, w.dir.path());
    assert!(matches!(err, WalError::MissingManifest { .. }), "{err}");
    restore(w.dir.path(), &saved);
    flip_bit(&manifest, 20, 2);
    let err = expect_refused(w.dir.path(), &w.config, &manifest);
    assert!(matches!(err, WalError::BadManifest { .. }), "{err}");
}

#[test]
fn leftovers_of_an_interrupted_rotation_or_compaction_are_removed_and_strays_refused() {
    let (w, _) = several_segments();
    let files = segment_files(w.dir.path());
    let n = files.len() as u64;
    let name = |seq: u64| w.dir.path().join(format!("{seq:020}.wal"));
    // A rotation that created the next segment but crashed before listing it.
    std::fs::write(name(n + 1), b"half made").unwrap();
    let (wal, durable) = Wal::open(w.dir.path(), w.config.clone()).unwrap();
    assert_eq!(durable, *w.states.last().unwrap());
    assert_eq!(wal.segments(), (1..=n).collect::<Vec<_>>());
    drop(wal);
    assert!(!name(n + 1).exists());
    // Anything further out is not ours to delete.
    std::fs::write(name(n + 2), b"stray").unwrap();
    let err = expect_refused(w.dir.path(), &w.config, &name(n + 2));
    assert!(matches!(err, WalError::StraySegment { .. }), "{err}");
}

/// Rewrite segment `path` without the record at `[from, to)`, re-sealing every record
/// after it at its new offset: a record that vanished without a trace.
fn excise_record(path: &std::path::Path, from: u64, to: u64) {
    let bytes = std::fs::read(path).unwrap();
    let log = &bytes[16..24];
    let seq = &bytes[8..16];
    let (from, to) = (from as usize, to as usize);
    let mut out = bytes[..from].to_vec();
    let mut at = to;
    while at + 9 <= bytes.len() && bytes[at + 8] != 0 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let offset = out.len() as u64;
        let mut position = log.to_vec();
        position.extend_from_slice(seq);
        position.extend_from_slice(&offset.to_le_bytes());
        position.push(bytes[at + 8]);
        let body = &bytes[at + 9..at + 9 + len];
        let crc = crc32c::crc32c_append(crc32c::crc32c(&position), body);
        out.extend_from_slice(&bytes[at..at + 4]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.push(bytes[at + 8]);
        out.extend_from_slice(body);
        at += 9 + len;
    }
    out.resize(bytes.len(), 0);
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_hard_state_ahead_of_the_log_is_refused() {
    let commit = |c| {
        Persist::HardState(rsm_core::HardState {
            epoch: Epoch(1),
            commit: LogIndex(c),
            ..Default::default()
        })
    };
    let ops = vec![append(1, 4, 1), append(5, 2, 1), commit(6)];
    let w = write_each(test_config(), &ops);
    // The second append's record disappears; the hard state after it still says 6.
    let (segment, from) = w.ends[1].clone();
    excise_record(&segment, from, w.ends[2].1);
    let err = expect_refused(w.dir.path(), &w.config, w.dir.path());
    assert!(
        matches!(
            err,
            WalError::HardStateAhead {
                commit: 6,
                last_index: 4,
                ..
            }
        ),
        "{err}"
    );
    // And the log never writes such a state itself.
    let dir = scratch();
    let (mut wal, _) = Wal::open(dir.path(), test_config()).unwrap();
    let mut model = Durable::default();
    write_synced(&mut wal, &mut model, &[append(1, 4, 1), commit(3)]);
    for op in [commit(5), Persist::Truncate { from: LogIndex(3) }] {
        assert!(matches!(
            wal.write(&op),
            Err(WalError::CommitBeyondLog { .. })
        ));
    }
    write_synced(
        &mut wal,
        &mut model,
        &[Persist::Truncate { from: LogIndex(4) }],
    );
    drop(wal);
    assert_eq!(Wal::open(dir.path(), test_config()).unwrap().1, model);
}
