//! The wire codec: serde with a compact binary body (postcard), inside a frame of
//! `[version: u8][body length: u32 little-endian][body]`.
//!
//! [`encode_body`] and [`decode_body`] are the one place the body encoding is chosen, so
//! it can be swapped without touching callers. Decoding never panics and never allocates
//! more than the frame it was given allows.

use serde::{Serialize, de::DeserializeOwned};

use crate::error::CodecError;

/// The frame format version this build writes and accepts.
pub const FRAME_VERSION: u8 = 1;
/// Bytes in a frame header: version byte plus a 4-byte length.
pub const FRAME_HEADER_BYTES: usize = 5;
/// The default maximum body size of one frame (16 MiB).
pub const FRAME_BYTES_MAX_DEFAULT: usize = 16 << 20;

/// Encode `value` as a bare body (no frame).
pub fn encode_body<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let taken = std::mem::take(out);
    match postcard::to_extend(value, taken) {
        Ok(v) => {
            *out = v;
            Ok(())
        }
        Err(e) => Err(CodecError::Malformed(e.to_string())),
    }
}

/// Decode a bare body that must be consumed exactly.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    match postcard::take_from_bytes::<T>(body) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(CodecError::TrailingBytes(rest.len())),
        Err(e) => Err(CodecError::Malformed(e.to_string())),
    }
}

/// Frames values with a version byte, a length prefix and a maximum body size.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    frame_bytes_max: usize,
}

impl Default for Codec {
    fn default() -> Self {
        Self::new(FRAME_BYTES_MAX_DEFAULT)
    }
}

impl Codec {
    /// A codec that refuses bodies longer than `frame_bytes_max` (capped at `u32::MAX`).
    pub fn new(frame_bytes_max: usize) -> Self {
        Self {
            frame_bytes_max: frame_bytes_max.min(u32::MAX as usize),
        }
    }

    /// The maximum body size.
    pub fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max
    }

    /// Append one frame holding `value` to `out`. On error `out` is left as it was.
    pub fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let start = out.len();
        out.push(FRAME_VERSION);
        out.extend_from_slice(&[0; 4]);
        if let Err(e) = encode_body(value, out) {
            out.truncate(start);
            return Err(e);
        }
        match self.header(out.len() - start - FRAME_HEADER_BYTES) {
            Ok(header) => {
                out[start..start + FRAME_HEADER_BYTES].copy_from_slice(&header);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// The header of a frame whose body (already encoded, for example with
    /// [`encode_body`]) is `body_len` bytes long: for transports that write the header
    /// and the body separately.
    pub fn header(&self, body_len: usize) -> Result<[u8; FRAME_HEADER_BYTES], CodecError> {
        if body_len > self.frame_bytes_max {
            return Err(CodecError::TooLarge {
                len: body_len,
                max_bytes: self.frame_bytes_max,
            });
        }
        let mut header = [FRAME_VERSION, 0, 0, 0, 0];
        header[1..].copy_from_slice(&(body_len as u32).to_le_bytes());
        Ok(header)
    }

    /// Read a frame header from the front of `buf`: the body length, once the header is
    /// complete and valid. Lets a transport reject an oversized frame before reading it.
    pub fn peek_len(&self, buf: &[u8]) -> Result<usize, CodecError> {
        if buf.len() < FRAME_HEADER_BYTES {
            return Err(CodecError::Incomplete {
                needed: FRAME_HEADER_BYTES - buf.len(),
            });
        }
        if buf[0] != FRAME_VERSION {
            return Err(CodecError::BadVersion {
                found: buf[0],
                expected: FRAME_VERSION,
            });
        }
        let len = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > self.frame_bytes_max {
            return Err(CodecError::TooLarge {
                len,
                max_bytes: self.frame_bytes_max,
            });
        }
        Ok(len)
    }

    /// Decode one frame from the front of `buf`, returning the value and the number of
    /// bytes consumed. `Incomplete` means: call again with more bytes.
    pub fn decode<T: DeserializeOwned>(&self, buf: &[u8]) -> Result<(T, usize), CodecError> {
        let len = self.peek_len(buf)?;
        let total = FRAME_HEADER_BYTES + len;
        if buf.len() < total {
            return Err(CodecError::Incomplete {
                needed: total - buf.len(),
            });
        }
        let value = decode_body(&buf[FRAME_HEADER_BYTES..total])?;
        Ok((value, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;
    use crate::ids::{Epoch, LogIndex};
    use bytes::Bytes;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_concatenated_frames() {
        let c = Codec::default();
        let a = Entry::command(LogIndex(7), Epoch(3), Bytes::from_static(b"hello"));
        let b = Entry::noop(LogIndex(8), Epoch(3));
        let mut buf = Vec::new();
        c.encode(&a, &mut buf).unwrap();
        c.encode(&b, &mut buf).unwrap();
        let (x, n): (Entry, _) = c.decode(&buf).unwrap();
        let (y, m): (Entry, _) = c.decode(&buf[n..]).unwrap();
        assert_eq!((x, y), (a, b));
        assert_eq!(n + m, buf.len());
    }

    #[test]
    fn oversized_frames_are_refused_both_ways() {
        let small = Codec::new(8);
        let mut buf = Vec::new();
        let big = vec![7u8; 64];
        assert!(matches!(
            small.encode(&big, &mut buf),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(
            buf.is_empty(),
            "a refused encode leaves the buffer as it was"
        );
        Codec::default().encode(&big, &mut buf).unwrap();
        assert!(matches!(
            small.decode::<Vec<u8>>(&buf),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn bad_version_incomplete_and_trailing() {
        let c = Codec::default();
        let mut buf = Vec::new();
        c.encode(&5u64, &mut buf).unwrap();
        assert_eq!(
            c.decode::<u64>(&buf[..3]),
            Err(CodecError::Incomplete { needed: 2 })
        );
        let mut bad = buf.clone();
        bad[0] = 9;
        assert!(matches!(
            c.decode::<u64>(&bad),
            Err(CodecError::BadVersion { found: 9, .. })
        ));
        let mut trailing = Vec::new();
        c.encode(&(5u64, 6u64), &mut trailing).unwrap();
        assert!(matches!(
            c.decode::<u64>(&trailing),
            Err(CodecError::TrailingBytes(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let c = Codec::new(1024);
            let _ = c.decode::<Entry>(&bytes);
            let _ = c.decode::<Vec<Entry>>(&bytes);
            let _ = decode_body::<crate::Durable>(&bytes);
        }

        #[test]
        fn arbitrary_bodies_behind_valid_headers_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..256)
        ) {
            let mut frame = vec![FRAME_VERSION];
            frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
            frame.extend_from_slice(&body);
            let _ = Codec::default().decode::<crate::Persist>(&frame);
        }
    }
}
