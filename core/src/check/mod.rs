//! Linearizability checking of key-value histories.

mod history;

pub use history::{Call, History, Operation, Outcome, Ret};
