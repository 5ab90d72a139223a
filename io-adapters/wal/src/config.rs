//! Configuration: every buffer and file size the log uses is bounded here.

use crate::error::WalError;
use crate::record::{RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};

/// Bounds and sizes of a [`Wal`](crate::Wal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalConfig {
    /// Segment files are created at this length (the part not yet written holds zeros),
    /// and a new one is started when a record does not fit. A segment made for one record
    /// larger than that is created long enough for it.
    pub segment_bytes_max: u64,
    /// The largest record body written. Appends are split across records to fit; one entry
    /// that cannot fit is refused with [`WalError::EntryTooLarge`].
    pub record_bytes_max: u64,
    /// Encoded records are gathered in memory and handed to the operating system once this
    /// many bytes are pending (or at the next sync). It may be exceeded by one record.
    pub write_buffer_bytes_max: usize,
    /// The largest snapshot written or read back.
    pub snapshot_bytes_max: u64,
}

/// Default [`WalConfig::segment_bytes_max`]: 64 MiB.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 << 20;
/// Default [`WalConfig::record_bytes_max`]: 16 MiB, the core codec's default frame limit.
pub const RECORD_BYTES_MAX_DEFAULT: u64 = rsm_core::FRAME_BYTES_MAX_DEFAULT as u64;
/// Default [`WalConfig::write_buffer_bytes_max`]: 1 MiB.
pub const WRITE_BUFFER_BYTES_MAX_DEFAULT: usize = 1 << 20;
/// Default [`WalConfig::snapshot_bytes_max`]: 4 GiB.
pub const SNAPSHOT_BYTES_MAX_DEFAULT: u64 = 4 << 30;

/// The smallest accepted `record_bytes_max`: room for hard states and snapshot metadata.
const RECORD_BYTES_MIN: u64 = 256;

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT,
            record_bytes_max: RECORD_BYTES_MAX_DEFAULT,
            write_buffer_bytes_max: WRITE_BUFFER_BYTES_MAX_DEFAULT,
            snapshot_bytes_max: SNAPSHOT_BYTES_MAX_DEFAULT,
        }
    }
}

impl WalConfig {
    pub(crate) fn validate(&self) -> Result<(), WalError> {
        if self.record_bytes_max < RECORD_BYTES_MIN {
            return Err(WalError::Config(format!(
                "record_bytes_max is {} but must be at least {RECORD_BYTES_MIN}",
                self.record_bytes_max
            )));
        }
        // The length field is 32 bits, and a base record may carry a hard state and
        // snapshot metadata of up to one record each.
        if self.base_body_bytes_max() > u64::from(u32::MAX) {
            return Err(WalError::Config(format!(
                "record_bytes_max is {} but must be below {}",
                self.record_bytes_max,
                u32::MAX / 2 - 64
            )));
        }
        if self.segment_bytes_max < SEGMENT_HEADER_BYTES as u64 + RECORD_HEADER_BYTES as u64 {
            return Err(WalError::Config(format!(
                "segment_bytes_max is {} but must hold at least a header and one record",
                self.segment_bytes_max
            )));
        }
        if self.write_buffer_bytes_max == 0 {
            return Err(WalError::Config(
                "write_buffer_bytes_max must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The largest record body ever written: a base record combines a hard state and a
    /// snapshot reference, each of which fits in one record.
    pub(crate) fn base_body_bytes_max(&self) -> u64 {
        self.record_bytes_max.saturating_mul(2).saturating_add(64)
    }

    /// The largest segment file recovery reads into memory: a full segment, or a header, a
    /// base record and one record of the largest size (a segment always takes one record
    /// after its base).
    pub(crate) fn segment_read_bytes_max(&self) -> u64 {
        let one = RECORD_HEADER_BYTES as u64 + self.base_body_bytes_max();
        self.segment_bytes_max
            .max(SEGMENT_HEADER_BYTES as u64 + one.saturating_mul(2))
    }
}
