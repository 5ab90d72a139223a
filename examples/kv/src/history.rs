//! Recording what clients saw, for the linearizability checker.
//!
//! The checker works on small integers: a key is its number in the workload, and every
//! written value carries a unique `u64` in its first eight bytes (little-endian), padded
//! to the value size the workload asks for.

use std::sync::Mutex;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use rsm_check::{History, Operation};

/// The value bytes for value id `id`, at least 8 bytes long.
pub fn encode_value(id: u64, size: usize) -> Bytes {
    let mut value = BytesMut::with_capacity(size.max(8));
    value.put_u64_le(id);
    value.resize(size.max(8), b'.');
    value.freeze()
}

/// The value id carried by `bytes`, or `u64::MAX` for bytes no workload wrote (so that a
/// read of foreign data can never be explained by a write).
pub fn decode_value(bytes: &[u8]) -> u64 {
    match bytes.first_chunk::<8>() {
        Some(id) => u64::from_le_bytes(*id),
        None => u64::MAX,
    }
}

/// Collects operations from many clients, timestamped in nanoseconds since it was made.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Operation>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder whose clock starts now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the recorder was made: the clock of invoke and complete times.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Add one finished (or abandoned) operation.
    pub fn record(&self, op: Operation) {
        self.ops
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(op);
    }

    /// The history recorded so far.
    pub fn history(&self) -> History {
        let ops = self
            .ops
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        History { ops }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_id_at_any_size() {
        for size in [0, 8, 100] {
            let v = encode_value(0xdead_beef_0000_0042, size);
            assert_eq!(v.len(), size.max(8));
            assert_eq!(decode_value(&v), 0xdead_beef_0000_0042);
        }
        assert_eq!(decode_value(b"short"), u64::MAX);
    }
}
