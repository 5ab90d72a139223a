//! The shared-memory backend: both halves of a connection in one sealed memfd that the
//! dialer creates and passes over the Unix control socket (`SCM_RIGHTS`); each process
//! maps it, reads its own half and writes the other's.
//!
//! The file is sealed against shrinking before it is passed, so a peer cannot make the
//! other process fault by truncating the mapping under it.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rsm_core::{Codec, decode_body};
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

use crate::backend::{
    Backend, SETUP_BYTES_MAX, arm, incomplete, read_frame, timed_out_or_incomplete, write_all,
};
use crate::error::{Refusal, Refused};
use crate::ring::{Half, Layout, RingMemory, Word};

/// The shared-memory backend: peers on one machine, addressed by Unix socket paths.
#[derive(Copy, Clone, Debug, Default)]
pub struct Shm;

/// What the dialer says about the memfd it passes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ShmSetup {
    slot_bytes: u32,
    slots: u32,
    file_bytes: u64,
}

/// One connection's mapping. The dialer's half comes first.
#[derive(Debug)]
pub struct ShmMemory {
    map: NonNull<u8>,
    map_bytes: usize,
    local: Half,
    remote: Half,
}

// SAFETY: the mapping is owned by this value and only reached through `Half`s.
unsafe impl Send for ShmMemory {}
// SAFETY: as above; `Half` accesses are atomics or raw copies.
unsafe impl Sync for ShmMemory {}

impl ShmMemory {
    /// Map `fd` (`2 * layout.half_bytes()` long) and take half `side` (0 for the dialer).
    fn map(fd: &OwnedFd, layout: Layout, side: usize) -> io::Result<Self> {
        let half_bytes = layout.half_bytes();
        let map_bytes = 2 * half_bytes;
        // SAFETY: a fresh shared mapping of a file at least this long (checked by both
        // callers); no Rust reference into it is ever made.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                map_bytes,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let map = NonNull::new(ptr.cast::<u8>()).ok_or(io::ErrorKind::InvalidData)?;
        // SAFETY: both halves are inside the mapping, page-aligned, and live as long as
        // `self` (unmapped in Drop, after the halves are gone from every caller).
        let half = |i: usize| unsafe { Half::new(map.add(i * half_bytes), half_bytes) };
        Ok(Self {
            map,
            map_bytes,
            local: half(side),
            remote: half(1 - side),
        })
    }
}

impl Drop for ShmMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        if let Err(e) = unsafe { rustix::mm::munmap(self.map.as_ptr().cast(), self.map_bytes) } {
            tracing::warn!(error = %e, "cannot unmap a ring");
        }
    }
}

impl RingMemory for ShmMemory {
    fn local(&self) -> &Half {
        &self.local
    }

    fn staging(&self) -> &Half {
        // Slots are assembled straight in the peer's half: the one copy of the payload.
        &self.remote
    }

    fn push(&self, _offset: usize, _len: usize) -> io::Result<()> {
        // The bytes are already in the peer's memory; `publish` orders them.
        Ok(())
    }

    fn publish(&self, word: Word, value: u64) -> io::Result<()> {
        self.remote.word(word).store(value, Ordering::Release);
        Ok(())
    }
}

/// A memfd of `file_bytes` that can no longer shrink, grow or be unsealed.
fn sealed_memfd(file_bytes: usize) -> io::Result<OwnedFd> {
    let context = |doing: &'static str| {
        move |e: rustix::io::Errno| io::Error::other(format!("{doing} the ring memfd: {e}"))
    };
    let fd = rustix::fs::memfd_create("rsm-ring", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(context("creating"))?;
    rustix::fs::ftruncate(&fd, file_bytes as u64).map_err(context("sizing"))?;
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
        .map_err(context("sealing"))?;
    Ok(fd)
}

impl ShmMemory {
    /// Both sides of one ring in this process: for tests and benchmarks of the ring alone.
    pub fn pair(layout: Layout) -> io::Result<(ShmMemory, ShmMemory)> {
        let fd = sealed_memfd(2 * layout.half_bytes())?;
        Ok((Self::map(&fd, layout, 0)?, Self::map(&fd, layout, 1)?))
    }
}

fn setup_refused(detail: String) -> Refused {
    Refused::new(Refusal::RingSetup, detail)
}

impl Backend for Shm {
    type Addr = PathBuf;
    type Listener = UnixListener;
    type Stream = UnixStream;
    type Memory = ShmMemory;

    fn listen(&self, addr: &PathBuf) -> io::Result<(UnixListener, PathBuf)> {
        remove_stale_socket(addr)?;
        let listener = UnixListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok((listener, addr.clone()))
    }

    fn accept(&self, listener: &UnixListener) -> io::Result<UnixStream> {
        let (stream, _) = listener.accept()?;
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    fn connect(&self, addr: &PathBuf, _timeout: Duration) -> io::Result<UnixStream> {
        // A local connect completes or fails at once.
        UnixStream::connect(addr)
    }

    fn offer(
        &self,
        stream: &mut UnixStream,
        layout: Layout,
        deadline: Instant,
    ) -> Result<ShmMemory, Refused> {
        let file_bytes = 2 * layout.half_bytes();
        let fd = sealed_memfd(file_bytes).map_err(|e| setup_refused(e.to_string()))?;
        let mem = ShmMemory::map(&fd, layout, 0)
            .map_err(|e| setup_refused(format!("mapping the ring: {e}")))?;
        let setup = ShmSetup {
            // Both bounded far below u32::MAX by Layout::check.
            slot_bytes: layout.slot_bytes as u32,
            slots: layout.slots as u32,
            file_bytes: file_bytes as u64,
        };
        let mut frame = Vec::new();
        Codec::new(SETUP_BYTES_MAX)
            .encode(&setup, &mut frame)
            .map_err(|e| incomplete(format!("encoding the ring setup: {e}")))?;
        arm(stream, deadline).map_err(|e| incomplete(format!("sending the ring: {e}")))?;
        let fds = [fd.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut ancillary = SendAncillaryBuffer::new(&mut space);
        ancillary.push(SendAncillaryMessage::ScmRights(&fds));
        let sent = rustix::net::sendmsg(
            &*stream,
            &[IoSlice::new(&frame)],
            &mut ancillary,
            SendFlags::NOSIGNAL,
        )
        .map_err(|e| timed_out_or_incomplete(e.into(), "sending the ring"))?;
        write_all(stream, &frame[sent..], deadline)
            .map_err(|e| timed_out_or_incomplete(e, "sending the ring"))?;
        Ok(mem)
    }

    fn take(
        &self,
        stream: &mut UnixStream,
        layout: Layout,
        deadline: Instant,
    ) -> Result<ShmMemory, Refused> {
        arm(stream, deadline).map_err(|e| incomplete(format!("receiving the ring: {e}")))?;
        let mut buf = [0u8; SETUP_BYTES_MAX];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut ancillary = RecvAncillaryBuffer::new(&mut space);
        let received = rustix::net::recvmsg(
            &*stream,
            &mut [IoSliceMut::new(&mut buf)],
            &mut ancillary,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| timed_out_or_incomplete(e.into(), "receiving the ring"))?;
        if received.bytes == 0 {
            return Err(incomplete("closed before passing the ring".into()));
        }
        let fd = ancillary.drain().find_map(|message| match message {
            RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
            _ => None,
        });
        let body = read_frame(stream, SETUP_BYTES_MAX, &buf[..received.bytes], deadline)?;
        let setup: ShmSetup = decode_body(&body)
            .map_err(|e| Refused::new(Refusal::Malformed, format!("ring setup: {e}")))?;
        let ours = ShmSetup {
            slot_bytes: layout.slot_bytes as u32,
            slots: layout.slots as u32,
            file_bytes: 2 * layout.half_bytes() as u64,
        };
        if setup != ours {
            return Err(setup_refused(format!(
                "peer offers {} slots of {} bytes, this node is configured for {} of {}",
                setup.slots, setup.slot_bytes, ours.slots, ours.slot_bytes
            )));
        }
        let fd = fd.ok_or_else(|| setup_refused("no memory file came with the setup".into()))?;
        let stat = rustix::fs::fstat(&fd)
            .map_err(|e| setup_refused(format!("inspecting the ring memfd: {e}")))?;
        if u64::try_from(stat.st_size).ok() != Some(ours.file_bytes) {
            return Err(setup_refused(format!(
                "the ring file has {} bytes, {} expected",
                stat.st_size, ours.file_bytes
            )));
        }
        let seals = rustix::fs::fcntl_get_seals(&fd)
            .map_err(|e| setup_refused(format!("the ring file is not a sealed memfd: {e}")))?;
        if !seals.contains(SealFlags::SHRINK) {
            return Err(setup_refused(
                "the ring file can still shrink under the mapping".into(),
            ));
        }
        ShmMemory::map(&fd, layout, 1).map_err(|e| setup_refused(format!("mapping the ring: {e}")))
    }

    fn unlisten(&self, addr: &PathBuf) {
        let _ = std::fs::remove_file(addr);
    }
}

/// A socket file left by a node that died is removed; one a live node answers on is not.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "a live node listens on this socket",
        )),
        Err(_) => std::fs::remove_file(path),
    }
}
