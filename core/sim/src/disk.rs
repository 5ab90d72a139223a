//! A simulated disk: writes land in a volatile queue and become durable only when a
//! (group-committed) fsync completes. A crash loses every unsynced write; optionally a
//! prefix of them reached the platter first, the last one torn.

use std::collections::VecDeque;

use rsm_core::{Durable, Persist, PersistError, PersistSeq, Prng, StartError, StartMode, Storage};

/// Unsynced writes a disk holds before the simulator calls the automaton broken: a
/// replica that never waits for `Persisted` would otherwise grow this without bound.
pub const DISK_PENDING_MAX: usize = 100_000;

/// One node's disk.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    durable: Durable,
    pending: VecDeque<(PersistSeq, Persist)>,
    synced_through: PersistSeq,
    /// The number of the last write queued in this incarnation.
    queued: PersistSeq,
    /// The highest sequence number the fsync in flight covers, if one is in flight.
    in_flight: Option<PersistSeq>,
    /// Whether a node ever started on this disk (a server's stamped data directory): a
    /// wiped disk is a new one, unmarked.
    marked: bool,
}

/// What a crash did to the unsynced writes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashDamage {
    /// Unsynced writes dropped entirely.
    pub lost: usize,
    /// Unsynced writes that reached the disk whole before the crash.
    pub survived: usize,
    /// Whether the next write reached the disk torn (an append or accept keeping a
    /// prefix of its entries).
    pub torn: bool,
}

impl Disk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Start a node on this disk the way `mode` says, marking it, unless the contract's
    /// rule refuses (a restart on a blank disk, a bootstrap or join on a used one).
    pub fn start(&mut self, mode: StartMode) -> Result<(), StartError> {
        mode.check(!self.marked)?;
        self.marked = true;
        Ok(())
    }

    /// What survives a crash right now.
    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    /// Writes issued but not yet durable.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The highest persist number made durable in this incarnation.
    pub fn synced_through(&self) -> PersistSeq {
        self.synced_through
    }

    /// Queue a write. It becomes durable when a later fsync covering it completes.
    pub fn queue(&mut self, seq: PersistSeq, op: Persist) {
        self.queued = seq;
        self.pending.push_back((seq, op));
    }

    /// Start an fsync covering everything queued so far, unless one is in flight or there
    /// is nothing to sync. Returns whether an fsync started (the caller schedules its
    /// completion after the disk's latency).
    pub fn start_sync(&mut self) -> bool {
        if self.in_flight.is_some() {
            return false;
        }
        match self.pending.back() {
            Some(&(last, _)) => {
                self.in_flight = Some(last);
                true
            }
            None => false,
        }
    }

    /// Complete the fsync in flight: every write it covers becomes durable, in order.
    /// Returns the new durable sequence number, or `None` if no fsync was in flight.
    /// A write that the reference semantics refuse is an automaton bug and is returned.
    pub fn finish_sync(&mut self) -> Option<Result<PersistSeq, PersistError>> {
        let through = self.in_flight.take()?;
        while let Some((seq, _)) = self.pending.front() {
            if *seq > through {
                break;
            }
            let (seq, op) = self.pending.pop_front().expect("front exists");
            if let Err(e) = self.durable.apply(&op) {
                return Some(Err(e));
            }
            self.synced_through = seq;
        }
        Some(Ok(self.synced_through))
    }

    /// Crash: drop the volatile queue. With `tear`, a random prefix of the unsynced writes
    /// reaches the disk first and the write after it may be torn (an append keeps a
    /// non-empty proper prefix of its entries). Persist numbering restarts with the next
    /// incarnation.
    pub fn crash(&mut self, rng: &mut Prng, tear: bool) -> CrashDamage {
        self.in_flight = None;
        let mut damage = CrashDamage::default();
        let pending = std::mem::take(&mut self.pending);
        let total = pending.len();
        let keep = if tear {
            rng.range(0, total as u64 + 1) as usize
        } else {
            0
        };
        let mut iter = pending.into_iter();
        for (_, op) in iter.by_ref().take(keep) {
            // A refused write cannot reach the disk; it is reported when synced normally,
            // and here it simply does not survive.
            if self.durable.apply(&op).is_ok() {
                damage.survived += 1;
            }
        }
        if tear && let Some((_, op)) = iter.next() {
            // A multi-entry write tears after some of its entries, whichever kind it is.
            let torn = match op {
                Persist::Append { entries } if entries.len() >= 2 => {
                    let cut = rng.range(1, entries.len() as u64) as usize;
                    Some(Persist::Append {
                        entries: entries[..cut].to_vec(),
                    })
                }
                Persist::Accept { entries } if entries.len() >= 2 => {
                    let cut = rng.range(1, entries.len() as u64) as usize;
                    Some(Persist::Accept {
                        entries: entries[..cut].to_vec(),
                    })
                }
                _ => None,
            };
            if let Some(torn) = torn {
                damage.torn = self.durable.apply(&torn).is_ok();
            }
        }
        damage.lost = total - damage.survived;
        self.synced_through = PersistSeq(0);
        self.queued = PersistSeq(0);
        damage
    }
}

/// The disk as the reference host sees it: writes are queued in order (numbered like the
/// replica's persists, from 1 per incarnation), and the simulator completes fsyncs on its
/// own schedule with [`Disk::start_sync`] and [`Disk::finish_sync`]. A `sync` asked for
/// by the host makes everything queued durable at once.
impl Storage for Disk {
    type Error = PersistError;

    fn write(&mut self, op: &Persist) -> Result<(), PersistError> {
        self.queue(self.queued.next(), op.clone());
        Ok(())
    }

    fn sync(&mut self) -> Result<(), PersistError> {
        self.in_flight = None;
        if self.start_sync() {
            self.finish_sync().unwrap_or(Ok(self.synced_through))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsm_core::{Bytes, Entry, Epoch, HardState, LogIndex};

    fn append(first: u64, n: u64) -> Persist {
        Persist::Append {
            entries: (first..first + n)
                .map(|i| Entry::command(LogIndex(i), Epoch(1), Bytes::from(vec![i as u8])))
                .collect(),
        }
    }

    #[test]
    fn unsynced_writes_are_lost_on_crash() {
        let mut d = Disk::new();
        d.queue(PersistSeq(1), append(1, 2));
        assert!(d.start_sync());
        assert_eq!(d.finish_sync(), Some(Ok(PersistSeq(1))));
        d.queue(PersistSeq(2), append(3, 2));
        d.queue(
            PersistSeq(3),
            Persist::HardState(HardState {
                epoch: Epoch(4),
                ..HardState::default()
            }),
        );
        let damage = d.crash(&mut Prng::new(1), false);
        assert_eq!(damage.lost, 2);
        assert_eq!(d.durable().last_index(), LogIndex(2));
        assert_eq!(d.durable().hard_state.epoch, Epoch(0));
        assert_eq!(d.pending_len(), 0);
    }

    #[test]
    fn group_commit_covers_only_writes_issued_before_it_started() {
        let mut d = Disk::new();
        d.queue(PersistSeq(1), append(1, 1));
        assert!(d.start_sync());
        assert!(!d.start_sync(), "one fsync at a time");
        d.queue(PersistSeq(2), append(2, 1));
        assert_eq!(d.finish_sync(), Some(Ok(PersistSeq(1))));
        assert_eq!(d.durable().last_index(), LogIndex(1));
        assert!(d.start_sync());
        assert_eq!(d.finish_sync(), Some(Ok(PersistSeq(2))));
        assert_eq!(d.finish_sync(), None);
    }

    #[test]
    fn torn_append_keeps_a_proper_prefix() {
        let mut torn_seen = false;
        for seed in 0..64 {
            let mut d = Disk::new();
            d.queue(PersistSeq(1), append(1, 5));
            let damage = d.crash(&mut Prng::new(seed), true);
            let last = d.durable().last_index().0;
            if damage.torn {
                torn_seen = true;
                assert!((1..5).contains(&last), "torn keeps 1..=4 of 5, kept {last}");
            } else {
                assert!(last == 0 || last == 5, "whole or nothing, kept {last}");
            }
            // Whatever survived is a prefix of what was written, in order.
            for (k, e) in d.durable().entries.iter().enumerate() {
                assert_eq!(e.index, LogIndex(k as u64 + 1));
            }
        }
        assert!(torn_seen, "some seed tears the append");
    }

    #[test]
    fn a_torn_accept_keeps_a_prefix_of_its_slots_and_every_slot_below() {
        let slots = |idx: &[u64]| Persist::Accept {
            entries: idx
                .iter()
                .map(|&i| Entry::command(LogIndex(i), Epoch(2), Bytes::from(vec![i as u8])))
                .collect(),
        };
        let mut torn_seen = false;
        for seed in 0..64 {
            let mut d = Disk::new();
            d.queue(PersistSeq(1), slots(&[2, 9]));
            assert!(d.start_sync());
            assert_eq!(d.finish_sync(), Some(Ok(PersistSeq(1))));
            d.queue(PersistSeq(2), slots(&[4, 5, 12]));
            let damage = d.crash(&mut Prng::new(seed), true);
            let held: Vec<u64> = d.durable().entries.iter().map(|e| e.index.0).collect();
            assert!(
                held.starts_with(&[2]) && held.contains(&9),
                "durable slots survive"
            );
            if damage.torn {
                torn_seen = true;
                assert!(held == [2, 4, 9] || held == [2, 4, 5, 9], "kept {held:?}");
            }
        }
        assert!(torn_seen, "some seed tears the accept");
    }

    #[test]
    fn a_snapshot_keeps_the_accepted_slots_above_it_through_sync_and_crash() {
        let slot = |i: u64, epoch: u64| Entry::command(LogIndex(i), Epoch(epoch), Bytes::new());
        let mut d = Disk::new();
        d.queue(
            PersistSeq(1),
            Persist::Accept {
                entries: vec![slot(3, 1), slot(8, 2), slot(12, 2)],
            },
        );
        // The snapshot's epoch differs from the slot the log holds at its index: the
        // higher slots stay all the same.
        d.queue(
            PersistSeq(2),
            Persist::Snapshot {
                meta: rsm_core::SnapshotMeta {
                    index: LogIndex(8),
                    epoch: Epoch(3),
                    ..Default::default()
                },
                data: Bytes::new(),
            },
        );
        assert!(d.start_sync());
        assert_eq!(d.finish_sync(), Some(Ok(PersistSeq(2))));
        d.queue(PersistSeq(3), Persist::Truncate { from: LogIndex(9) });
        d.crash(&mut Prng::new(7), false);
        assert_eq!(d.durable().snapshot_index(), LogIndex(8));
        assert_eq!(d.durable().entries, vec![slot(12, 2)]);
    }

    #[test]
    fn a_blank_disk_takes_only_an_explicit_start_and_a_used_one_only_a_restart() {
        let mut d = Disk::new();
        assert_eq!(d.start(StartMode::Restart), Err(StartError::Blank));
        assert_eq!(d.start(StartMode::Join), Ok(()));
        assert_eq!(
            d.start(StartMode::Bootstrap),
            Err(StartError::NotBlank {
                mode: StartMode::Bootstrap
            })
        );
        d.crash(&mut Prng::new(3), false);
        assert_eq!(
            d.start(StartMode::Restart),
            Ok(()),
            "a crash keeps the mark"
        );
    }

    #[test]
    fn invalid_write_is_reported_at_sync() {
        let mut d = Disk::new();
        d.queue(PersistSeq(1), append(3, 1));
        assert!(d.start_sync());
        assert!(matches!(
            d.finish_sync(),
            Some(Err(PersistError::Gap { .. }))
        ));
    }
}
