//! The RDMA verbs backend: each side registers its half for remote writes and a staging
//! copy of the peer's half; slots and counters are assembled in staging and carried into
//! the peer's memory with RDMA WRITEs on a reliable-connected queue pair. The queue pair
//! numbers, addresses and keys travel over the TCP control socket after the hellos.
//!
//! A reliable connection places writes in the order they were posted, so a counter written
//! after its slots is never seen before them: the ordering `publish` promises.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsm_core::{Codec, decode_body};
use rustix::mm::{MapFlags, ProtFlags};
use serde::{Deserialize, Serialize};
use sideway::ibverbs::AccessFlags;
use sideway::ibverbs::address::{AddressHandleAttribute, Gid};
use sideway::ibverbs::completion::{
    ExtendedCompletionQueue, GenericCompletionQueue, WorkCompletionStatus,
};
use sideway::ibverbs::device::{DeviceInfo, DeviceList};
use sideway::ibverbs::device_context::{DeviceContext, Mtu};
use sideway::ibverbs::memory_region::MemoryRegion;
use sideway::ibverbs::protection_domain::ProtectionDomain;
use sideway::ibverbs::queue_pair::{
    ExtendedQueuePair, PostSendGuard, QueuePair, QueuePairAttribute, QueuePairState,
    SetScatterGatherEntry, WorkRequestFlags,
};

use crate::backend::{Backend, SETUP_BYTES_MAX, read_frame, write_all};
use crate::error::{RdmaError, Refusal, Refused};
use crate::ring::{Half, Layout, RingMemory, Word};

/// How long a posted write may take to complete before the connection is reset. A
/// reliable connection retries on its own for far less than this.
const WRITE_COMPLETION_TIMEOUT: Duration = Duration::from_secs(5);
/// Work requests in flight per connection beyond one per ring slot (counter writes).
const SEND_WR_SPARE: usize = 16;

/// The verbs backend: one opened RDMA device port, addressed over TCP for the handshake.
pub struct Verbs {
    context: Arc<DeviceContext>,
    pd: Arc<ProtectionDomain>,
    device: String,
    port: u8,
    gid_index: u8,
    lid: u16,
    mtu: Mtu,
}

impl std::fmt::Debug for Verbs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verbs")
            .field("device", &self.device)
            .field("port", &self.port)
            .field("gid_index", &self.gid_index)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: String) -> RdmaError {
    RdmaError::Unavailable(what)
}

impl Verbs {
    /// Open `device` (the first one found when `None`) at `port` (usually 1), using GID
    /// table entry `gid_index` (0 on InfiniBand; the RoCE v2 entry on Ethernet).
    ///
    /// Fails with [`RdmaError::Unavailable`], naming what is missing, where libibverbs
    /// cannot be loaded, no RDMA device exists, or the device or port cannot be opened.
    pub fn open(device: Option<&str>, port: u8, gid_index: u8) -> Result<Self, RdmaError> {
        let list = DeviceList::new().map_err(|e| {
            let cause = std::error::Error::source(&e).map_or(String::new(), |c| format!(": {c}"));
            unavailable(format!(
                "the verbs transport cannot list RDMA devices ({e}{cause}): no RDMA device, or \
                 libibverbs (rdma-core) has no provider for one on this machine"
            ))
        })?;
        let names: Vec<String> = list.iter().map(|d| d.name()).collect();
        let found = match device {
            Some(name) => list.iter().find(|d| d.name() == name).ok_or_else(|| {
                unavailable(format!(
                    "RDMA device `{name}` not found; this machine has {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            })?,
            None => list.iter().next().ok_or_else(|| {
                unavailable(
                    "no RDMA device found (ibv_get_device_list lists none): the verbs transport \
                     needs an InfiniBand or RoCE adapter, or a soft-RoCE (rdma_rxe) device; nodes \
                     on one machine can use the shared-memory transport instead"
                        .to_string(),
                )
            })?,
        };
        let name = found.name();
        let context = found
            .open()
            .map_err(|e| unavailable(format!("cannot open RDMA device `{name}`: {e}")))?;
        let attr = context
            .query_port(port)
            .map_err(|e| unavailable(format!("cannot query port {port} of `{name}`: {e}")))?;
        let pd = context.alloc_pd().map_err(|e| {
            unavailable(format!(
                "cannot allocate a protection domain on `{name}`: {e}"
            ))
        })?;
        Ok(Self {
            context,
            pd,
            device: name,
            port,
            gid_index,
            lid: attr.lid(),
            mtu: attr.active_mtu(),
        })
    }
}

/// Page-aligned anonymous memory, unmapped on drop.
#[derive(Debug)]
struct Pages {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by this value and reached only through `Half`s.
unsafe impl Send for Pages {}
// SAFETY: as above; `Half` accesses are atomics or raw copies.
unsafe impl Sync for Pages {}

impl Pages {
    fn new(len: usize) -> io::Result<Self> {
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(io::ErrorKind::InvalidData)?;
        Ok(Self { ptr, len })
    }

    fn half(&self) -> Half {
        // SAFETY: the whole mapping, page-aligned; the owner keeps `Pages` alive longer.
        unsafe { Half::new(self.ptr, self.len) }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// What each side tells the other to connect the queue pairs and address its half.
#[derive(Copy, Clone, Debug, Serialize, Deserialize)]
struct VerbsSetup {
    slot_bytes: u32,
    slots: u32,
    lid: u16,
    gid: Gid,
    qp_number: u32,
    psn: u32,
    addr: u64,
    rkey: u32,
}

/// The send side of one queue pair and its completions.
struct Sender {
    qp: ExtendedQueuePair,
    cq: Arc<ExtendedCompletionQueue>,
    in_flight: usize,
    in_flight_max: usize,
}

impl Sender {
    /// Reap completions; with `for_room`, wait until a work request may be posted.
    fn reap(&mut self, for_room: bool) -> io::Result<()> {
        let deadline = Instant::now() + WRITE_COMPLETION_TIMEOUT;
        loop {
            if let Ok(poller) = self.cq.start_poll() {
                for wc in poller {
                    if wc.status() != WorkCompletionStatus::Success as u32 {
                        return Err(io::Error::other(format!(
                            "RDMA write failed with work completion status {}",
                            wc.status()
                        )));
                    }
                    self.in_flight = self.in_flight.saturating_sub(1);
                }
            }
            if !for_room || self.in_flight < self.in_flight_max {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "RDMA writes did not complete",
                ));
            }
            std::hint::spin_loop();
        }
    }
}

/// One connection's registered memory and queue pair.
pub struct VerbsMemory {
    local: Half,
    staging: Half,
    remote_addr: u64,
    remote_rkey: u32,
    sender: Mutex<Sender>,
    // Deregistered before the pages they cover are unmapped (fields drop in order).
    _local_mr: Arc<MemoryRegion>,
    staging_mr: Arc<MemoryRegion>,
    _local_pages: Pages,
    _staging_pages: Pages,
}

impl std::fmt::Debug for VerbsMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerbsMemory")
            .field("remote_addr", &self.remote_addr)
            .finish_non_exhaustive()
    }
}

impl VerbsMemory {
    /// Carry staged bytes `[offset, offset + len)` into the peer's half.
    fn write(&self, offset: usize, len: usize) -> io::Result<()> {
        let mut sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        sender.reap(true)?;
        let mut guard = sender.qp.start_post_send();
        let wr = guard
            .construct_wr(offset as u64, WorkRequestFlags::Signaled)
            .setup_write(self.remote_rkey, self.remote_addr + offset as u64);
        // SAFETY: the range is inside the registered staging pages (the ring checks its
        // offsets against the half), which live as long as this value.
        unsafe {
            wr.setup_sge(
                self.staging_mr.lkey(),
                self.staging.as_ptr() as u64 + offset as u64,
                len as u32,
            );
        }
        guard.post().map_err(io::Error::other)?;
        sender.in_flight += 1;
        sender.reap(false)
    }
}

impl RingMemory for VerbsMemory {
    fn local(&self) -> &Half {
        &self.local
    }

    fn staging(&self) -> &Half {
        &self.staging
    }

    fn push(&self, offset: usize, len: usize) -> io::Result<()> {
        self.write(offset, len)
    }

    fn publish(&self, word: Word, value: u64) -> io::Result<()> {
        let staged = self.staging.word(word);
        staged.store(value, Ordering::Release);
        let offset = staged.as_ptr() as usize - self.staging.as_ptr() as usize;
        self.write(offset, 8)
    }
}

fn refused(doing: &str, e: impl std::fmt::Display) -> Refused {
    Refused::new(Refusal::RingSetup, format!("{doing}: {e}"))
}

impl Verbs {
    /// Both sides run the same exchange; the dialer speaks first.
    fn establish(
        &self,
        stream: &mut TcpStream,
        layout: Layout,
        deadline: Instant,
        dialer: bool,
    ) -> Result<VerbsMemory, Refused> {
        let half_bytes = layout.half_bytes();
        let local_pages = Pages::new(half_bytes).map_err(|e| refused("mapping the ring", e))?;
        let staging_pages =
            Pages::new(half_bytes).map_err(|e| refused("mapping the staging copy", e))?;
        // SAFETY: both ranges are whole mappings that outlive their registrations (see
        // the field order of VerbsMemory).
        let (local_mr, staging_mr) = unsafe {
            (
                self.pd
                    .reg_mr(
                        local_pages.ptr.as_ptr() as usize,
                        half_bytes,
                        AccessFlags::LocalWrite | AccessFlags::RemoteWrite,
                    )
                    .map_err(|e| refused("registering the ring", e))?,
                self.pd
                    .reg_mr(
                        staging_pages.ptr.as_ptr() as usize,
                        half_bytes,
                        AccessFlags::LocalWrite,
                    )
                    .map_err(|e| refused("registering the staging copy", e))?,
            )
        };
        let in_flight_max = layout.slots + SEND_WR_SPARE;
        let cq = self
            .context
            .create_cq_builder()
            .setup_cqe(in_flight_max as u32)
            .build_ex()
            .map_err(|e| refused("creating a completion queue", e))?;
        let mut qp = self
            .pd
            .create_qp_builder()
            .setup_send_cq(GenericCompletionQueue::from(cq.clone()))
            .setup_recv_cq(GenericCompletionQueue::from(cq.clone()))
            .setup_max_send_wr(in_flight_max as u32)
            .setup_max_recv_wr(1)
            .build_ex()
            .map_err(|e| refused("creating a queue pair", e))?;
        let mut attr = QueuePairAttribute::new();
        attr.setup_state(QueuePairState::Init)
            .setup_pkey_index(0)
            .setup_port(self.port)
            .setup_access_flags(AccessFlags::LocalWrite | AccessFlags::RemoteWrite);
        qp.modify(&attr)
            .map_err(|e| refused("initialising the queue pair", e))?;
        let gid = self
            .context
            .query_gid(self.port, self.gid_index.into())
            .map_err(|e| refused("reading the GID", e))?;
        let ours = VerbsSetup {
            slot_bytes: layout.slot_bytes as u32,
            slots: layout.slots as u32,
            lid: self.lid,
            gid,
            qp_number: qp.qp_number(),
            // Any 24-bit start works; a varying one keeps a stale packet of an earlier
            // connection from matching.
            psn: (local_pages.ptr.as_ptr() as usize as u32 ^ qp.qp_number()) & 0x00FF_FFFF,
            addr: local_pages.ptr.as_ptr() as u64,
            rkey: local_mr.rkey(),
        };
        let theirs = if dialer {
            send_setup(stream, &ours, deadline)?;
            read_setup(stream, deadline)?
        } else {
            let theirs = read_setup(stream, deadline)?;
            send_setup(stream, &ours, deadline)?;
            theirs
        };
        if (theirs.slot_bytes, theirs.slots) != (ours.slot_bytes, ours.slots) {
            return Err(Refused::new(
                Refusal::RingSetup,
                format!(
                    "peer offers {} slots of {} bytes, this node is configured for {} of {}",
                    theirs.slots, theirs.slot_bytes, ours.slots, ours.slot_bytes
                ),
            ));
        }
        let mut attr = QueuePairAttribute::new();
        attr.setup_state(QueuePairState::ReadyToReceive)
            .setup_path_mtu(self.mtu)
            .setup_dest_qp_num(theirs.qp_number)
            .setup_rq_psn(theirs.psn)
            .setup_max_dest_read_atomic(0)
            .setup_min_rnr_timer(12);
        let mut ah = AddressHandleAttribute::new();
        ah.setup_dest_lid(theirs.lid)
            .setup_port(self.port)
            .setup_service_level(0)
            .setup_grh_src_gid_index(self.gid_index)
            .setup_grh_dest_gid(&theirs.gid)
            .setup_grh_hop_limit(1);
        attr.setup_address_vector(&ah);
        qp.modify(&attr)
            .map_err(|e| refused("connecting the queue pair (ready to receive)", e))?;
        let mut attr = QueuePairAttribute::new();
        attr.setup_state(QueuePairState::ReadyToSend)
            .setup_sq_psn(ours.psn)
            .setup_timeout(14)
            .setup_retry_cnt(7)
            .setup_rnr_retry(7)
            .setup_max_read_atomic(0);
        qp.modify(&attr)
            .map_err(|e| refused("connecting the queue pair (ready to send)", e))?;
        Ok(VerbsMemory {
            local: local_pages.half(),
            staging: staging_pages.half(),
            remote_addr: theirs.addr,
            remote_rkey: theirs.rkey,
            sender: Mutex::new(Sender {
                qp,
                cq,
                in_flight: 0,
                in_flight_max,
            }),
            _local_mr: local_mr,
            staging_mr,
            _local_pages: local_pages,
            _staging_pages: staging_pages,
        })
    }
}

fn send_setup(
    stream: &mut TcpStream,
    setup: &VerbsSetup,
    deadline: Instant,
) -> Result<(), Refused> {
    let mut frame = Vec::new();
    Codec::new(SETUP_BYTES_MAX)
        .encode(setup, &mut frame)
        .map_err(|e| refused("encoding the queue pair setup", e))?;
    write_all(stream, &frame, deadline).map_err(|e| {
        Refused::new(
            Refusal::HandshakeIncomplete,
            format!("sending the queue pair setup: {e}"),
        )
    })
}

fn read_setup(stream: &mut TcpStream, deadline: Instant) -> Result<VerbsSetup, Refused> {
    let body = read_frame(stream, SETUP_BYTES_MAX, &[], deadline)?;
    decode_body(&body)
        .map_err(|e| Refused::new(Refusal::Malformed, format!("queue pair setup: {e}")))
}

impl Backend for Verbs {
    type Addr = SocketAddr;
    type Listener = TcpListener;
    type Stream = TcpStream;
    type Memory = VerbsMemory;

    fn listen(&self, addr: &SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        Ok((listener, bound))
    }

    fn accept(&self, listener: &TcpListener) -> io::Result<TcpStream> {
        let (stream, _) = listener.accept()?;
        stream.set_nonblocking(false)?;
        // Doorbells are single bytes that must not wait for more.
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn connect(&self, addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let stream = TcpStream::connect_timeout(addr, timeout)?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn offer(
        &self,
        stream: &mut TcpStream,
        layout: Layout,
        deadline: Instant,
    ) -> Result<VerbsMemory, Refused> {
        self.establish(stream, layout, deadline, true)
    }

    fn take(
        &self,
        stream: &mut TcpStream,
        layout: Layout,
        deadline: Instant,
    ) -> Result<VerbsMemory, Refused> {
        self.establish(stream, layout, deadline, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These machines have no RDMA device: starting must fail at once, saying so.
    #[test]
    fn without_a_device_open_names_what_is_missing() {
        match Verbs::open(None, 1, 0) {
            Ok(verbs) => eprintln!("an RDMA device exists here: {verbs:?}"),
            Err(RdmaError::Unavailable(why)) => {
                eprintln!("as expected: {why}");
                assert!(
                    why.contains("RDMA device") || why.contains("libibverbs"),
                    "{why}"
                )
            }
            Err(other) => panic!("expected Unavailable, got {other}"),
        }
    }

    #[test]
    fn a_missing_named_device_is_named() {
        if let Err(RdmaError::Unavailable(why)) = Verbs::open(Some("rsm-no-such-dev0"), 1, 0) {
            assert!(
                why.contains("rsm-no-such-dev0") || why.contains("libibverbs"),
                "{why}"
            );
        }
    }
}
