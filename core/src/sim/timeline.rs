//! A self-contained HTML timeline of a run (filled in below).

use std::io::{self, Write};

/// Write `trace` (JSON lines from [`RunResult::trace`](super::RunResult::trace)) as one
/// HTML page that opens in a browser with no server.
pub fn write_html(title: &str, trace: &[String], out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "<!doctype html><title>{}</title><pre>", escape(title))?;
    for line in trace {
        writeln!(out, "{}", escape(line))?;
    }
    writeln!(out, "</pre>")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
