//! The progress of a long run as people expect it: on a terminal, a bar redrawn in place
//! and cut to the terminal's width (so a redraw never scrolls); anywhere else nothing
//! while running, so that logs and pipes get no carriage-return frames. Either way the
//! run ends with one plain line. Drawn by indicatif, which also does the terminal
//! detection and the width.

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the bar is redrawn, at most (each redraw is a write to the terminal).
pub const REDRAWS_PER_SEC_MAX: u8 = 10;

/// Characters of the bar itself; the counts and the message take the rest of the line.
const BAR_CHARS: usize = 20;

/// A progress bar on standard output.
#[derive(Debug)]
pub struct ProgressLine {
    bar: ProgressBar,
}

impl ProgressLine {
    /// A bar counting to `total` things called `unit` (`ops`, `seeds`).
    pub fn new(total: u64, unit: &str) -> Self {
        let target = ProgressDrawTarget::stdout_with_hz(REDRAWS_PER_SEC_MAX);
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let template = format!("[{{bar:{BAR_CHARS}}}] {{pos}}/{{len}} {unit} {{wide_msg}}");
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("#>-");
        bar.set_style(style);
        Self { bar }
    }

    /// Move to `position` and show `message` after the counts.
    pub fn update(&self, position: u64, message: String) {
        self.bar.set_position(position);
        self.bar.set_message(message);
    }

    /// Print `text` as it is, above the bar (which is redrawn below it).
    pub fn print(&self, text: &str) {
        self.bar.suspend(|| {
            print!("{text}");
            let _ = std::io::stdout().flush();
        });
    }

    /// Remove the bar and print `line`, on a terminal or not.
    pub fn finish(&self, line: &str) {
        self.bar.finish_and_clear();
        println!("{line}");
    }
}
