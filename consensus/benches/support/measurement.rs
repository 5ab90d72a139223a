//! The measurement shared by the bench binaries that report entries per second and
//! allocations per committed entry (rsm's and raft-rs's on the same loop): a global
//! allocator that counts allocations and reallocations, and the warm-up, timing and table
//! every row goes through, so the figures compared side by side are taken the same way.
//! Included by path, so each binary counts its own allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counts allocations so that the figure covers the whole hot path, host loop included.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The number of entries each row commits: the first command-line argument, or 200,000.
pub fn entries_arg() -> u64 {
    std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000)
}

/// Print the table for 16-byte and 1 KiB payloads with 1, 64 and 256 proposals in flight.
/// For each row, `new_loop(payload_bytes)` builds a fresh cluster loop and
/// `run(&mut loop, entries, window)` commits `entries` entries; a warm-up of a tenth of the
/// entries grows buffers to their steady state before the measured run.
pub fn print_table<L>(
    entries: u64,
    mut new_loop: impl FnMut(usize) -> L,
    mut run: impl FnMut(&mut L, u64, u64),
) {
    println!("| payload | in flight | entries/s | allocations per entry |");
    println!("|---|---|---|---|");
    for payload in [16usize, 1024] {
        for window in [1u64, 64, 256] {
            let mut cluster = new_loop(payload);
            run(&mut cluster, entries / 10 + 1, window);
            let allocs_before = ALLOCATIONS.load(Ordering::Relaxed);
            let start = Instant::now();
            run(&mut cluster, entries, window);
            let secs = start.elapsed().as_secs_f64();
            let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
            println!(
                "| {payload} B | {window} | {:.0} | {:.2} |",
                entries as f64 / secs,
                allocs as f64 / entries as f64
            );
        }
    }
}
