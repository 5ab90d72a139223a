//! rsm-examples: runnable rsm programs and the replicas they drive.
//!
//! The `rsm-sim` binary runs the deterministic simulator ([`rsm_sim`]) over a range
//! of seeds for any protocol in the [`registry`] and prints a report. The library holds a
//! correct reference replicas ([`sequencer::Sequencer`], [`elected::Elected`]) and deliberately unsafe ones
//! ([`buggy`]) that show the simulator finds real bugs. Nothing here touches the network
//! or a clock except the binary's report timing, and [`progress`] draws on a terminal.

#![warn(missing_docs)]

pub mod buggy;
pub mod elected;
pub mod log;
pub mod progress;
pub mod registry;
pub mod sequencer;
