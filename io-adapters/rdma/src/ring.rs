//! The ring protocol both backends run: fixed-size slots written one-sidedly by the sender
//! into the receiver's memory, a completion counter the receiver polls, and a consumed
//! counter the receiver writes back into the sender's memory as credits.
//!
//! Each side of a connection owns one [`Half`] of the connection's memory: the ring the
//! peer writes into and three words the peer sets. Nothing in a half is written by its
//! owner except its own `Sleeping` word being cleared, so the same layout works where the
//! peer's memory can only be written, never read (RDMA).
//!
//! ```text
//! half: [Written u64 | pad][Consumed u64 | pad][Sleeping u64 | pad][slot 0][slot 1]...
//! slot: [seq u64][message_len u32][fragment_len u32][flags u32][crc32c u32][payload...]
//! ```
//!
//! `Written` counts slots the peer has filled in this half's ring; `Consumed` counts slots
//! of this side's outbound ring (in the peer's half) the peer has read, so the sender has
//! `slots - (written - consumed)` credits; `Sleeping` is set by the peer before it blocks,
//! asking for a doorbell after the next publish. A slot's `seq` is its absolute number on
//! the connection and its checksum covers the header and the payload, so a stale, torn or
//! scribbled slot is detected before anything is delivered.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};

use crate::error::{Refusal, Refused};

/// Offset of the first slot in a half: the three words come first, each on its own cache
/// line so that the two sides' writes do not contend.
const SLOTS_OFFSET: usize = 3 * CACHE_LINE_BYTES;
const CACHE_LINE_BYTES: usize = 64;
/// Halves are whole pages so that each can be mapped or registered on its own.
const PAGE_BYTES: usize = 4096;
/// The header at the start of every slot.
pub const SLOT_HEADER_BYTES: usize = 24;
/// The smallest slot accepted: a header and a useful payload.
pub const SLOT_BYTES_MIN: usize = 64;
/// The largest slot accepted.
pub const SLOT_BYTES_MAX: usize = 1 << 20;
/// The most slots one ring may have.
pub const RING_SLOTS_MAX: usize = 1 << 16;

const FLAG_FIRST: u32 = 1;
const FLAG_LAST: u32 = 2;

/// One of the three words at the start of a half.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Word {
    /// Slots the peer has written into this half's ring.
    Written,
    /// Slots of this side's outbound ring the peer has consumed (the credits returned).
    Consumed,
    /// Non-zero while the peer sleeps and wants a doorbell after the next publish.
    Sleeping,
}

impl Word {
    fn offset(self) -> usize {
        match self {
            Word::Written => 0,
            Word::Consumed => CACHE_LINE_BYTES,
            Word::Sleeping => 2 * CACHE_LINE_BYTES,
        }
    }
}

/// The geometry of one ring: both sides must agree on it (the handshake checks).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Bytes per slot, header included.
    pub slot_bytes: usize,
    /// Slots in the ring: how many the sender may have in flight before it waits.
    pub slots: usize,
}

impl Layout {
    /// Check the bounds; `None` names the field that breaks them.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if !(SLOT_BYTES_MIN..=SLOT_BYTES_MAX).contains(&self.slot_bytes)
            || !self.slot_bytes.is_multiple_of(8)
        {
            return Err("slot_bytes");
        }
        if !(2..=RING_SLOTS_MAX).contains(&self.slots) {
            return Err("ring_slots");
        }
        Ok(())
    }

    /// Payload bytes one slot carries.
    pub fn payload_bytes_max(&self) -> usize {
        self.slot_bytes - SLOT_HEADER_BYTES
    }

    /// Bytes of one half: words, slots, rounded up to whole pages.
    pub fn half_bytes(&self) -> usize {
        (SLOTS_OFFSET + self.slot_bytes * self.slots).next_multiple_of(PAGE_BYTES)
    }

    /// Slots a message of `len` bytes occupies (an empty one still takes one).
    pub fn fragments(&self, len: usize) -> usize {
        len.div_ceil(self.payload_bytes_max()).max(1)
    }

    fn slot_offset(&self, seq: u64) -> usize {
        // The remainder is below `slots`, which fits a usize.
        SLOTS_OFFSET + (seq % self.slots as u64) as usize * self.slot_bytes
    }
}

/// A view of one half of a connection's memory: a base pointer and a length, valid for as
/// long as the [`RingMemory`] that hands it out.
#[derive(Debug)]
pub struct Half {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: a Half is a pointer into memory mapped for the life of its owner; every access
// goes through atomics (words) or whole-range copies (slots), never through references.
unsafe impl Send for Half {}
// SAFETY: as above; concurrent accesses are the protocol's business, not Rust aliasing.
unsafe impl Sync for Half {}

impl Half {
    /// A view of `len` bytes at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be 8-byte aligned and valid for reads and writes of `len` bytes for
    /// the whole life of the returned value, and nothing may hold a Rust reference into
    /// that memory (other processes and devices may write it at any time).
    pub unsafe fn new(base: NonNull<u8>, len: usize) -> Self {
        debug_assert!((base.as_ptr() as usize).is_multiple_of(8));
        Self { base, len }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never, for a half of a valid layout).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The start of the view, for backends that register or post it.
    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// One of the three words.
    pub fn word(&self, word: Word) -> &AtomicU64 {
        let offset = word.offset();
        assert!(offset + 8 <= self.len, "half shorter than its words");
        // SAFETY: in bounds (checked), 8-aligned (base is, offsets are multiples of 64),
        // and an AtomicU64 may alias memory that others write atomically.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    /// Copy `dst.len()` bytes out from `offset`. Offsets come from the layout, never from
    /// the peer, so a range outside the half is a bug here.
    pub fn read(&self, offset: usize, dst: &mut [u8]) {
        assert!(offset + dst.len() <= self.len, "read outside the half");
        // SAFETY: in bounds (checked); the source is not referenced anywhere in Rust.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            )
        }
    }

    /// Copy `src` in at `offset`.
    pub fn write(&self, offset: usize, src: &[u8]) {
        assert!(offset + src.len() <= self.len, "write outside the half");
        // SAFETY: in bounds (checked); the destination is not referenced anywhere in Rust.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.as_ptr().add(offset), src.len())
        }
    }
}

/// The memory one connection runs over, as one side sees it: the one trait a backend
/// implements. The ring protocol ([`Outbound`], [`Inbound`]) is written against it alone.
///
/// `local` is this side's half (the peer writes into it). `staging` is where this side
/// assembles what it writes into the peer's half, at the same offsets: with shared memory
/// it is the peer's half itself; with RDMA it is a registered local copy that
/// [`push`](Self::push) transfers with a one-sided write.
pub trait RingMemory: Send + Sync {
    /// This side's half.
    fn local(&self) -> &Half;
    /// Where writes to the peer's half are assembled.
    fn staging(&self) -> &Half;
    /// Make staged bytes `[offset, offset + len)` visible in the peer's half.
    fn push(&self, offset: usize, len: usize) -> io::Result<()>;
    /// Set `word` in the peer's half to `value`, visible only after every earlier push.
    fn publish(&self, word: Word, value: u64) -> io::Result<()>;
}

/// The sending side of one connection: the next slot to fill, and credits.
#[derive(Debug)]
pub(crate) struct Outbound {
    layout: Layout,
    /// Slots written so far on this connection (the next slot's `seq`).
    written: u64,
    /// Whether `written` moved since the last publish.
    unpublished: bool,
}

/// A message being written, possibly over several calls while credits come back.
#[derive(Debug)]
pub(crate) struct Sending {
    pub(crate) message: Bytes,
    /// Fragments already in the ring.
    pub(crate) fragments_done: usize,
}

impl Sending {
    pub(crate) fn new(message: Bytes) -> Self {
        Self {
            message,
            fragments_done: 0,
        }
    }
}

impl Outbound {
    pub(crate) fn new(layout: Layout) -> Self {
        Self {
            layout,
            written: 0,
            unpublished: false,
        }
    }

    /// Free slots in the peer's ring. A consumed count above what was written means the
    /// peer's words cannot be trusted.
    pub(crate) fn credits(&self, mem: &dyn RingMemory) -> Result<u64, Refused> {
        let consumed = mem.local().word(Word::Consumed).load(Ordering::Acquire);
        let in_flight = self.written.checked_sub(consumed).ok_or_else(|| {
            Refused::new(
                Refusal::Overrun,
                format!("peer consumed {consumed} slots of {} written", self.written),
            )
        })?;
        Ok((self.layout.slots as u64).saturating_sub(in_flight))
    }

    /// Write as many fragments of `sending` as credits allow, copying each payload once
    /// from the message into the staged slot. Returns whether the message is complete.
    /// Nothing is visible to the peer before [`publish`](Self::publish).
    pub(crate) fn write(
        &mut self,
        mem: &dyn RingMemory,
        sending: &mut Sending,
    ) -> Result<bool, Refused> {
        let layout = self.layout;
        let total = layout.fragments(sending.message.len());
        let cap = layout.payload_bytes_max();
        let mut credits = self.credits(mem)?;
        let staging = mem.staging();
        while sending.fragments_done < total && credits > 0 {
            let i = sending.fragments_done;
            let start = i * cap;
            let end = sending.message.len().min(start + cap);
            let payload = &sending.message[start..end];
            let mut flags = 0;
            if i == 0 {
                flags |= FLAG_FIRST;
            }
            if i + 1 == total {
                flags |= FLAG_LAST;
            }
            let header = SlotHeader {
                seq: self.written,
                // The transport refuses messages above frame_bytes_max, which fits a u32.
                message_len: sending.message.len() as u32,
                fragment_len: payload.len() as u32,
                flags,
            };
            let bytes = header.encode(payload);
            let offset = layout.slot_offset(self.written);
            staging.write(offset, &bytes);
            staging.write(offset + SLOT_HEADER_BYTES, payload);
            mem.push(offset, SLOT_HEADER_BYTES + payload.len())
                .map_err(|e| Refused::new(Refusal::WriteFailed, e.to_string()))?;
            self.written += 1;
            self.unpublished = true;
            sending.fragments_done += 1;
            credits -= 1;
        }
        Ok(sending.fragments_done == total)
    }

    /// Make every slot written so far visible to the peer (bump its completion counter).
    /// Returns whether anything was published.
    pub(crate) fn publish(&mut self, mem: &dyn RingMemory) -> Result<bool, Refused> {
        if !self.unpublished {
            return Ok(false);
        }
        mem.publish(Word::Written, self.written)
            .map_err(|e| Refused::new(Refusal::WriteFailed, e.to_string()))?;
        self.unpublished = false;
        Ok(true)
    }

    /// Slots written on this connection.
    #[cfg(test)]
    pub(crate) fn written(&self) -> u64 {
        self.written
    }
}

/// A slot's header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct SlotHeader {
    seq: u64,
    message_len: u32,
    fragment_len: u32,
    flags: u32,
}

impl SlotHeader {
    /// The header bytes with the checksum over them and `payload`.
    fn encode(&self, payload: &[u8]) -> [u8; SLOT_HEADER_BYTES] {
        let mut out = [0u8; SLOT_HEADER_BYTES];
        out[0..8].copy_from_slice(&self.seq.to_le_bytes());
        out[8..12].copy_from_slice(&self.message_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.fragment_len.to_le_bytes());
        out[16..20].copy_from_slice(&self.flags.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&out[..20]), payload);
        out[20..24].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8; SLOT_HEADER_BYTES]) -> (Self, u32) {
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[0..8]);
        let header = Self {
            seq: u64::from_le_bytes(seq),
            message_len: u32_at(8),
            fragment_len: u32_at(12),
            flags: u32_at(16),
        };
        (header, u32_at(20))
    }
}

/// The receiving side of one connection: the next slot to read and the message being
/// reassembled.
#[derive(Debug)]
pub(crate) struct Inbound {
    layout: Layout,
    frame_bytes_max: usize,
    /// Slots read so far (the next slot's expected `seq`).
    read: u64,
    assembling: Option<BytesMut>,
    /// The declared length of the message being reassembled.
    assembling_len: usize,
}

impl Inbound {
    pub(crate) fn new(layout: Layout, frame_bytes_max: usize) -> Self {
        Self {
            layout,
            frame_bytes_max,
            read: 0,
            assembling: None,
            assembling_len: 0,
        }
    }

    /// Whether the peer has published slots not read yet.
    pub(crate) fn ready(&self, mem: &dyn RingMemory) -> bool {
        mem.local().word(Word::Written).load(Ordering::Acquire) != self.read
    }

    /// Read every published slot, handing each complete message to `deliver`, then return
    /// the credits. Returns how many slots were read. Any slot that fails a check resets
    /// the connection: nothing after it can be trusted.
    pub(crate) fn poll(
        &mut self,
        mem: &dyn RingMemory,
        mut deliver: impl FnMut(Bytes),
    ) -> Result<u64, Refused> {
        let written = mem.local().word(Word::Written).load(Ordering::Acquire);
        let available = written.checked_sub(self.read).unwrap_or(u64::MAX);
        if available > self.layout.slots as u64 {
            return Err(Refused::new(
                Refusal::Overrun,
                format!(
                    "peer claims {written} slots written, {} read, ring of {}",
                    self.read, self.layout.slots
                ),
            ));
        }
        for _ in 0..available {
            if let Some(message) = self.read_slot(mem.local())? {
                deliver(message);
            }
        }
        if available > 0 {
            mem.publish(Word::Consumed, self.read)
                .map_err(|e| Refused::new(Refusal::WriteFailed, e.to_string()))?;
        }
        Ok(available)
    }

    /// Read and check slot `self.read`; a complete message when it was the last fragment.
    fn read_slot(&mut self, local: &Half) -> Result<Option<Bytes>, Refused> {
        let offset = self.layout.slot_offset(self.read);
        let mut raw = [0u8; SLOT_HEADER_BYTES];
        local.read(offset, &mut raw);
        let (header, crc) = SlotHeader::decode(&raw);
        let fragment_len = header.fragment_len as usize;
        let message_len = header.message_len as usize;
        if fragment_len > self.layout.payload_bytes_max() {
            return Err(Refused::new(
                Refusal::Corrupt,
                format!(
                    "slot {} claims a {fragment_len}-byte fragment, slots carry {}",
                    self.read,
                    self.layout.payload_bytes_max()
                ),
            ));
        }
        let first = header.flags & FLAG_FIRST != 0;
        if first && message_len > self.frame_bytes_max {
            // Checked before allocating, so a lying header costs nothing.
            if crc != header_crc(&raw, local, offset, fragment_len) {
                return Err(corrupt(self.read));
            }
            return Err(Refused::new(
                Refusal::Oversized,
                format!(
                    "a {message_len}-byte message, frame_bytes_max is {}",
                    self.frame_bytes_max
                ),
            ));
        }
        let mut buf = match self.assembling.take() {
            Some(buf) if !first => buf,
            None if first => {
                self.assembling_len = message_len;
                BytesMut::with_capacity(message_len)
            }
            // A first fragment while one is open, or a continuation with none open: check
            // the slot before naming the fault, a scribble is more likely than a bad peer.
            _ => {
                if crc != header_crc(&raw, local, offset, fragment_len) {
                    return Err(corrupt(self.read));
                }
                return Err(Refused::new(
                    Refusal::Malformed,
                    format!("slot {} breaks the fragment order", self.read),
                ));
            }
        };
        let start = buf.len();
        if start + fragment_len > self.assembling_len || message_len != self.assembling_len {
            return Err(Refused::new(
                Refusal::Corrupt,
                format!("slot {} overflows its message", self.read),
            ));
        }
        buf.resize(start + fragment_len, 0);
        local.read(offset + SLOT_HEADER_BYTES, &mut buf[start..]);
        // The checksum is taken over the copy, so a slot changing while it is read is
        // caught too.
        let actual = crc32c::crc32c_append(crc32c::crc32c(&raw[..20]), &buf[start..]);
        if actual != crc {
            return Err(corrupt(self.read));
        }
        if header.seq != self.read {
            return Err(Refused::new(
                Refusal::OutOfSequence,
                format!("slot {} carries sequence number {}", self.read, header.seq),
            ));
        }
        self.read += 1;
        let last = header.flags & FLAG_LAST != 0;
        if last != (buf.len() == self.assembling_len) {
            return Err(Refused::new(
                Refusal::Malformed,
                format!(
                    "message of {} bytes ended after {} (last flag {last})",
                    self.assembling_len,
                    buf.len()
                ),
            ));
        }
        if last {
            return Ok(Some(buf.freeze()));
        }
        self.assembling = Some(buf);
        Ok(None)
    }
}

fn corrupt(slot: u64) -> Refused {
    Refused::new(Refusal::Corrupt, format!("slot {slot} fails its checksum"))
}

/// The checksum of a slot read in place (used only on paths that end the connection).
fn header_crc(raw: &[u8; SLOT_HEADER_BYTES], local: &Half, offset: usize, len: usize) -> u32 {
    let mut payload = vec![0u8; len];
    local.read(offset + SLOT_HEADER_BYTES, &mut payload);
    crc32c::crc32c_append(crc32c::crc32c(&raw[..20]), &payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShmMemory;

    fn pair(layout: Layout) -> (ShmMemory, ShmMemory) {
        ShmMemory::pair(layout).expect("a ring in memory")
    }

    const LAYOUT: Layout = Layout {
        slot_bytes: 64,
        slots: 4,
    };

    fn drain(inbound: &mut Inbound, mem: &dyn RingMemory) -> Result<Vec<Bytes>, Refused> {
        let mut out = Vec::new();
        inbound.poll(mem, |m| out.push(m))?;
        Ok(out)
    }

    fn send(out: &mut Outbound, mem: &dyn RingMemory, message: &[u8]) -> bool {
        let mut sending = Sending::new(Bytes::copy_from_slice(message));
        let done = out.write(mem, &mut sending).expect("write");
        out.publish(mem).expect("publish");
        done
    }

    #[test]
    fn layout_bounds_and_fragments() {
        assert_eq!(LAYOUT.check(), Ok(()));
        assert_eq!(LAYOUT.payload_bytes_max(), 40);
        assert_eq!(LAYOUT.fragments(0), 1);
        assert_eq!(LAYOUT.fragments(40), 1);
        assert_eq!(LAYOUT.fragments(41), 2);
        assert_eq!(LAYOUT.half_bytes(), PAGE_BYTES);
        let bad = Layout {
            slot_bytes: 63,
            ..LAYOUT
        };
        assert_eq!(bad.check(), Err("slot_bytes"));
        let bad = Layout { slots: 1, ..LAYOUT };
        assert_eq!(bad.check(), Err("ring_slots"));
    }

    #[test]
    fn the_ring_wraps_around_many_times() {
        let (a, b) = pair(LAYOUT);
        let mut out = Outbound::new(LAYOUT);
        let mut inbound = Inbound::new(LAYOUT, 1 << 20);
        for round in 0..50u32 {
            let messages: Vec<Vec<u8>> = (0..3)
                .map(|i| vec![(round * 3 + i) as u8; (round as usize * 7 + i as usize) % 41])
                .collect();
            for m in &messages {
                assert!(send(&mut out, &a, m));
            }
            assert_eq!(drain(&mut inbound, &b).expect("valid"), messages);
        }
        assert_eq!(out.written(), 150);
    }

    #[test]
    fn credits_run_out_and_come_back() {
        let (a, b) = pair(LAYOUT);
        let mut out = Outbound::new(LAYOUT);
        let mut inbound = Inbound::new(LAYOUT, 1 << 20);
        for i in 0..4u8 {
            assert!(send(&mut out, &a, &[i]));
        }
        assert_eq!(out.credits(&a).expect("sane"), 0);
        // A fifth message waits: nothing is written while no credit is left.
        let mut fifth = Sending::new(Bytes::from_static(b"five"));
        assert!(!out.write(&a, &mut fifth).expect("no fault"));
        assert_eq!(fifth.fragments_done, 0);
        assert_eq!(drain(&mut inbound, &b).expect("valid").len(), 4);
        assert_eq!(out.credits(&a).expect("sane"), 4);
        assert!(out.write(&a, &mut fifth).expect("no fault"));
        out.publish(&a).expect("publish");
        assert_eq!(drain(&mut inbound, &b).expect("valid"), vec![&b"five"[..]]);
    }

    #[test]
    fn a_message_larger_than_the_ring_streams_through_it() {
        let (a, b) = pair(LAYOUT);
        let mut out = Outbound::new(LAYOUT);
        let mut inbound = Inbound::new(LAYOUT, 1 << 20);
        let message: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut sending = Sending::new(Bytes::from(message.clone()));
        let mut received = Vec::new();
        let mut rounds = 0;
        while !out.write(&a, &mut sending).expect("write") {
            out.publish(&a).expect("publish");
            received.extend(drain(&mut inbound, &b).expect("valid"));
            rounds += 1;
        }
        out.publish(&a).expect("publish");
        received.extend(drain(&mut inbound, &b).expect("valid"));
        assert_eq!(received, vec![message]);
        assert_eq!(rounds, 1000usize.div_ceil(40) / 4);
    }

    fn fault(inbound: &mut Inbound, mem: &dyn RingMemory) -> Refusal {
        drain(inbound, mem).expect_err("a fault").reason
    }

    #[test]
    fn garbage_in_a_slot_is_corruption() {
        let (a, b) = pair(LAYOUT);
        let mut out = Outbound::new(LAYOUT);
        send(&mut out, &a, b"hello");
        // One flipped payload bit.
        let offset = LAYOUT.slot_offset(0) + SLOT_HEADER_BYTES + 1;
        let mut byte = [0u8];
        b.local().read(offset, &mut byte);
        b.local().write(offset, &[byte[0] ^ 4]);
        assert_eq!(
            fault(&mut Inbound::new(LAYOUT, 1 << 20), &b),
            Refusal::Corrupt
        );
        // A header full of noise.
        b.local()
            .write(LAYOUT.slot_offset(0), &[0xA5; SLOT_HEADER_BYTES]);
        assert_eq!(
            fault(&mut Inbound::new(LAYOUT, 1 << 20), &b),
            Refusal::Corrupt
        );
    }

    #[test]
    fn a_stale_or_skipped_slot_is_out_of_sequence() {
        let (a, b) = pair(LAYOUT);
        let mut out = Outbound::new(LAYOUT);
        let mut inbound = Inbound::new(LAYOUT, 1 << 20);
        for i in 0..4u8 {
            send(&mut out, &a, &[i]);
        }
        drain(&mut inbound, &b).expect("valid");
        // The peer bumps its counter without writing the slot: the reader finds slot 4's
        // place still holding slot 0, a valid slot from the previous lap.
        a.publish(Word::Written, 5).expect("publish");
        assert_eq!(fault(&mut inbound, &b), Refusal::OutOfSequence);
    }

    #[test]
    fn counters_beyond_the_ring_are_an_overrun() {
        let (a, b) = pair(LAYOUT);
        a.publish(Word::Written, 5).expect("publish");
        assert_eq!(
            fault(&mut Inbound::new(LAYOUT, 1 << 20), &b),
            Refusal::Overrun
        );
        // Credits returned for slots never written.
        b.publish(Word::Consumed, 3).expect("publish");
        let out = Outbound::new(LAYOUT);
        assert_eq!(out.credits(&a).map_err(|r| r.reason), Err(Refusal::Overrun));
    }

    #[test]
    fn an_oversized_message_is_refused_before_it_is_buffered() {
        let (a, b) = pair(LAYOUT);
        let mut out = Outbound::new(LAYOUT);
        send(&mut out, &a, &[1; 100]);
        assert_eq!(fault(&mut Inbound::new(LAYOUT, 99), &b), Refusal::Oversized);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_slot_bytes_never_panic_or_deliver_garbage(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 64 * 4),
            written in 0u64..8,
        ) {
            let (a, b) = pair(LAYOUT);
            b.local().write(SLOTS_OFFSET, &noise);
            a.publish(Word::Written, written).expect("publish");
            let mut inbound = Inbound::new(LAYOUT, 1 << 20);
            let mut delivered = 0;
            let result = inbound.poll(&b, |_| delivered += 1);
            if written > 0 {
                // Random bytes pass a 32-bit checksum with negligible probability.
                proptest::prop_assert!(result.is_err());
                proptest::prop_assert_eq!(delivered, 0);
            }
        }
    }
}
