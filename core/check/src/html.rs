//! A failure drawn for a person: one self-contained HTML page in the style of the
//! simulator's timeline. Each client is a lane, each operation a bar from its invocation to
//! its completion (open-ended when indeterminate); the operations of the longest partial
//! linearization carry their position in it, and the completion no linearization reaches
//! is marked with a red line. The page carries its data and script inline and loads
//! nothing, so it opens from disk with no server.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::history::{Operation, Outcome};
use super::{Failure, Labels, ShrinkState};

/// Write `failure` as one HTML page titled `title`.
pub fn write_html(title: &str, failure: &Failure, out: &mut impl Write) -> io::Result<()> {
    write_html_labeled(title, failure, &Labels::PLAIN, out)
}

/// [`write_html`] with the operations' values printed through `labels` (which must print
/// only digits, letters, `.` and `-`, so that the page's data needs no escaping).
pub fn write_html_labeled(
    title: &str,
    failure: &Failure,
    labels: &Labels,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut data = String::from("[\n");
    for (k, op) in failure.ops.iter().enumerate() {
        let order = failure.linearized.iter().position(|l| l == op);
        let complete = match op.outcome {
            Outcome::Indeterminate => "null".to_string(),
            _ => axis_time(op.complete, labels),
        };
        let _ = writeln!(
            data,
            "{{\"client\":{},\"invoke\":{},\"complete\":{},\"label\":\"{}\",\"order\":{},\"stuck\":{}}}{}",
            op.client,
            axis_time(op.invoke, labels),
            complete,
            label(op, labels),
            order.map_or_else(|| "null".to_string(), |o| (o + 1).to_string()),
            failure.stuck.as_ref() == Some(op),
            if k + 1 < failure.ops.len() { "," } else { "" }
        );
    }
    data.push(']');
    let shrink = match failure.shrink {
        ShrinkState::Skipped => "not shrunk",
        ShrinkState::Done => "shrunk",
        ShrinkState::TimedOut => "shrinking timed out",
    };
    let summary = format!(
        "key {}: {} of its {} operations admit no linearization ({shrink}); the longest \
         partial linearization has {} operations",
        failure.key,
        failure.ops.len(),
        failure.key_ops,
        failure.linearized.len()
    );
    let (head, tail) = page_frame(title, &HEADER.replace("@SUMMARY@", &escape_html(&summary)));
    out.write_all(head.as_bytes())?;
    out.write_all(SCRIPT.replace("@OPS@", &data).as_bytes())?;
    out.write_all(tail.as_bytes())
}

/// A time as the page's axis places it: in the unit `labels` prints times in when that
/// text is a number, so the axis, the bars and the log read as the text report does.
fn axis_time(t: u64, labels: &Labels) -> String {
    let text = (labels.time)(t);
    let text = text.trim();
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => text.to_string(),
        _ => t.to_string(),
    }
}

/// What the operation did, in a few characters (only digits, letters and `-> =?` beside
/// the values, so it needs no escaping inside the page's JSON).
fn label(op: &Operation, labels: &Labels) -> String {
    op.what(labels, " ?")
}

/// The frame every rsm page shares: the style, a sticky header with the title, a
/// scrollable SVG drawing, a log below it, and the script helpers `NS`, `svg` and
/// `el(name, attrs, title)`. `head` ends inside the page's `<script>` element, where the
/// caller writes its data and drawing code; `tail` closes the page.
///
/// `header_html` follows the title inside the header (summary, controls, legend); it is
/// written as is, so it must already be escaped.
pub fn page_frame(title: &str, header_html: &str) -> (String, &'static str) {
    let head = FRAME_HEAD
        .replace("@TITLE@", &escape_html(title))
        .replace("@HEADER@", header_html);
    (head, FRAME_TAIL)
}

/// `s` with the characters that mean something in HTML escaped.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const FRAME_HEAD: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>@TITLE@</title>
<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 8px 12px; background: #f4f4f4; border-bottom: 1px solid #ccc; position: sticky; top: 0; z-index: 2; }
header h1 { font-size: 15px; margin: 0 0 4px 0; }
header label { margin-right: 12px; }
header input[type=number] { width: 90px; }
#violation, #summary { color: #b00; font-weight: bold; }
#wrap { overflow-x: auto; border-bottom: 1px solid #ccc; }
svg text { font: 11px monospace; }
#log { font: 12px monospace; white-space: pre; padding: 8px 12px; max-height: 40vh; overflow-y: auto; }
#log .bad { background: #fdd; color: #900; font-weight: bold; }
#log .sel { background: #ffd; }
.legend span { display: inline-block; margin-right: 14px; }
.sw { display: inline-block; width: 12px; height: 12px; vertical-align: middle; margin-right: 4px; border: 1px solid #888; }
</style>
</head>
<body>
<header>
<h1>@TITLE@</h1>
@HEADER@
</header>
<div id="wrap"><svg id="svg" xmlns="http://www.w3.org/2000/svg"></svg></div>
<div id="log"></div>
<script>
const NS = "http://www.w3.org/2000/svg";
const svg = document.getElementById("svg");
function el(name, attrs, title) {
  const x = document.createElementNS(NS, name);
  for (const k in attrs) x.setAttribute(k, attrs[k]);
  if (title) { const t = document.createElementNS(NS, "title"); t.textContent = title; x.appendChild(t); }
  svg.appendChild(x);
  return x;
}
"##;

const FRAME_TAIL: &str = "</script>\n</body>\n</html>\n";

const HEADER: &str = r##"<div id="summary">@SUMMARY@</div>
<label>px per unit <input id="scale" type="number" min="0.01" step="0.05"></label>
<button id="redraw">draw</button>
<div class="legend">
<span><i class="sw" style="background:#9cc7e8"></i>in the longest partial linearization (#order)</span>
<span><i class="sw" style="background:#ddd"></i>not linearized</span>
<span><i class="sw" style="background:#f6c6c6"></i>no linearization completes it</span>
<span><i class="sw" style="background:#fff;border-style:dashed"></i>indeterminate (open-ended)</span>
</div>"##;

const SCRIPT: &str = r##"const OPS = @OPS@;
(function () {
  const LANE = 40, TOP = 40, LEFT = 80;
  const clients = [...new Set(OPS.map(o => o.client))].sort((a, b) => a - b);
  const lane = new Map(clients.map((c, i) => [c, i]));
  const first = Math.min(...OPS.map(o => o.invoke));
  const last = Math.max(...OPS.map(o => o.complete == null ? o.invoke : o.complete));
  const end = last + Math.max(5, (last - first) * 0.05);
  const stuck = OPS.find(o => o.stuck);
  document.getElementById("scale").value = Math.max(0.01, Math.min(40, 1400 / Math.max(1, end - first))).toFixed(2);
  function describe(o) {
    return "client " + o.client + " [" + o.invoke + ", " + (o.complete == null ? "?" : o.complete) + "] " + o.label +
      (o.order != null ? "  #" + o.order : "") + (o.stuck ? "  <- no linearization completes this" : "");
  }
  function draw() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const scale = Number(document.getElementById("scale").value) || 1;
    const X = t => LEFT + (t - first) * scale;
    const Y = c => TOP + lane.get(c) * LANE;
    const width = X(end) + 40;
    svg.setAttribute("width", width);
    svg.setAttribute("height", TOP + clients.length * LANE + 20);
    for (const c of clients) {
      el("line", { x1: LEFT, x2: width - 20, y1: Y(c) + LANE / 2 - 4, y2: Y(c) + LANE / 2 - 4, stroke: "#eee" });
      el("text", { x: 8, y: Y(c) + 4 }).textContent = "client " + c;
    }
    const step = Math.max(1, Math.pow(10, Math.ceil(Math.log10(80 / scale))));
    for (let t = Math.ceil(first / step) * step; t <= end; t += step) {
      el("line", { x1: X(t), x2: X(t), y1: TOP - 20, y2: TOP - 14, stroke: "#666" });
      el("text", { x: X(t) + 2, y: TOP - 22 }).textContent = "t=" + t;
    }
    for (const o of OPS) {
      const a = X(o.invoke), b = X(o.complete == null ? end : o.complete), y = Y(o.client) - 10;
      const fill = o.stuck ? "#f6c6c6" : o.order != null ? "#9cc7e8" : "#ddd";
      const attrs = { x: a, y, width: Math.max(2, b - a), height: 20, fill, stroke: "#555" };
      if (o.complete == null) attrs["stroke-dasharray"] = "4 3";
      el("rect", attrs, describe(o));
      el("text", { x: a + 3, y: y + 14 }, describe(o)).textContent = (o.order != null ? "#" + o.order + " " : "") + o.label;
    }
    if (stuck) {
      el("line", { x1: X(stuck.complete), x2: X(stuck.complete), y1: TOP - 14, y2: TOP + clients.length * LANE, stroke: "#c00", "stroke-width": 3 },
        "t=" + stuck.complete + ": no linearization gets past here");
    }
    const log = document.getElementById("log");
    log.textContent = "";
    for (const o of OPS) {
      const line = document.createElement("div");
      line.textContent = describe(o);
      if (o.stuck) line.className = "bad";
      log.appendChild(line);
    }
  }
  document.getElementById("redraw").onclick = draw;
  draw();
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Call, Ret};

    #[test]
    fn page_embeds_every_operation_and_marks_the_stuck_one() {
        let w = Operation {
            client: 1,
            key: 0,
            call: Call::Write(Some(1)),
            invoke: 0,
            complete: 10,
            outcome: Outcome::Ok(Ret::Written),
        };
        let r = Operation {
            client: 2,
            call: Call::Read,
            invoke: 20,
            complete: 30,
            outcome: Outcome::Ok(Ret::Read(None)),
            ..w
        };
        let failure = Failure {
            key: 0,
            ops: vec![w, r],
            key_ops: 2,
            stuck: Some(r),
            linearized: vec![w],
            shrink: ShrinkState::Done,
        };
        let mut out = Vec::new();
        write_html("key <0>", &failure, &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.contains("<title>key &lt;0&gt;</title>"));
        assert!(page.contains(r#""label":"write 1 ok","order":1,"stuck":false"#));
        assert!(page.contains(r#""label":"read = nil","order":null,"stuck":true"#));
        assert!(
            !page.contains("src=") && !page.contains("href="),
            "nothing loaded"
        );

        // A recorder's own names for values and times, in the page and in the text.
        let labels = Labels {
            value: |v| format!("v{v}x"),
            time: |t| format!("{}.5", t / 10),
        };
        let mut out = Vec::new();
        write_html_labeled("key 0", &failure, &labels, &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.contains(r#""label":"write v1x ok""#), "{page}");
        // The axis reads in the recorder's unit: the write runs from 0.5 to 1.5.
        assert!(
            page.contains(r#"{"client":1,"invoke":0.5,"complete":1.5,"#),
            "{page}"
        );
        let text = failure.describe(&labels);
        assert!(
            text.contains("[   0.5,    1.5] client 1 key 0: write v1x ok"),
            "{text}"
        );
        assert!(
            text.contains("! [   2.5,    3.5] client 2 key 0: read = nil"),
            "{text}"
        );
        assert_eq!(failure.to_string(), failure.describe(&Labels::PLAIN));
        assert!(
            failure
                .to_string()
                .contains("[     0,     10] client 1 key 0: write 1 ok")
        );
    }
}
