//! Compact, deterministic text for log excerpts, shared by every tool that prints them
//! (the scripts' transcripts, the protocols' message printers), so that a run of entries
//! reads the same everywhere: `i5..7 t2`.

use crate::entry::Entry;
use crate::ids::Epoch;

/// `i5` for one index, `i5..7` for a range, `i-` for none.
pub fn index_range(entries: &[Entry]) -> String {
    match (entries.first(), entries.last()) {
        (Some(a), Some(b)) if a.index == b.index => format!("i{}", a.index.0),
        (Some(a), Some(b)) => format!("i{}..{}", a.index.0, b.index.0),
        _ => "i-".to_string(),
    }
}

/// The epochs of `entries`: one value when they agree (`t2`), else each in turn
/// (`t1 t1 t2`). `epoch_prefix` is the protocol's letter for its epoch.
pub fn epochs(entries: &[Entry], epoch_prefix: &str) -> String {
    let first = entries.first().map(|e| e.epoch);
    if entries.iter().all(|e| Some(e.epoch) == first) {
        return first.map_or_else(String::new, |e| epoch(e, epoch_prefix));
    }
    let parts: Vec<String> = entries
        .iter()
        .map(|e| epoch(e.epoch, epoch_prefix))
        .collect();
    parts.join(" ")
}

/// `i5..7 t2`: the index range and epochs of a run of entries.
pub fn entries(entries: &[Entry], epoch_prefix: &str) -> String {
    if entries.is_empty() {
        return "i-".to_string();
    }
    format!("{} {}", index_range(entries), epochs(entries, epoch_prefix))
}

/// An epoch with the protocol's letter: `t3`, `v3`, `e3`.
pub fn epoch(e: Epoch, epoch_prefix: &str) -> String {
    format!("{epoch_prefix}{}", e.0)
}
