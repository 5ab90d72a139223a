//! The apply pump: hands committed entries to the host's state machine in order, exactly
//! once, in bounded batches, and never more than a bounded lag ahead of what the host has
//! reported applied.

use rsm_core::{Effect, LogIndex};

use crate::log_window::LogWindow;

/// How far entries have been handed out (`Apply`) and applied (`Input::Applied`).
#[derive(Clone, Debug)]
pub(crate) struct ApplyPump {
    /// Highest index emitted in `Apply` (or covered by a snapshot).
    applied: LogIndex,
    /// Highest index the host reported applied.
    host_applied: LogIndex,
}

impl ApplyPump {
    /// A pump whose state machine starts at `at` (a snapshot's index, or 0).
    pub fn new(at: LogIndex) -> Self {
        Self {
            applied: at,
            host_applied: at,
        }
    }

    /// Highest index handed to the host.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// Highest index the host reported applied.
    pub fn host_applied(&self) -> LogIndex {
        self.host_applied
    }

    /// The host applied through `through`. The host cannot have applied what was never
    /// handed to it, so the report is clamped to that.
    pub fn report(&mut self, through: LogIndex) {
        let through = through.min(self.applied);
        if through > self.host_applied {
            self.host_applied = through;
        }
    }

    /// The state machine was replaced by a snapshot through `at`.
    pub fn reset(&mut self, at: LogIndex) {
        self.applied = at;
        self.host_applied = at;
    }

    /// Hand out the entries through `ready` (committed and durable) that the window
    /// allows: at most `lag_entries_max` beyond what the host applied, in `Apply` effects
    /// of at most `batch_entries_max` entries.
    pub fn pump<M>(
        &mut self,
        log: &LogWindow,
        ready: LogIndex,
        lag_entries_max: u64,
        batch_entries_max: usize,
        out: &mut Vec<Effect<M>>,
    ) {
        let window_end = LogIndex(self.host_applied.0.saturating_add(lag_entries_max));
        let target = ready.min(window_end);
        while self.applied < target {
            let hi = LogIndex(target.0.min(self.applied.0 + batch_entries_max as u64));
            let mut entries = Vec::with_capacity((hi.0 - self.applied.0) as usize);
            entries.extend(log.range(self.applied.next(), hi).cloned());
            debug_assert_eq!(
                entries.len() as u64,
                hi.0 - self.applied.0,
                "a hole below commit"
            );
            self.applied = hi;
            out.push(Effect::Apply { entries });
        }
        debug_assert!(self.host_applied <= self.applied);
    }
}
