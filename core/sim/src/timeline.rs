//! A self-contained HTML timeline of a run: one lane per node, messages as arrows,
//! crashes, pauses and partitions shaded, the failing step highlighted. The page carries
//! its data and script inline and loads nothing, so it opens from disk with no server. It
//! shares its frame with the checker's counterexample page ([`rsm_check::page_frame`]).

use std::io::{self, Write};

use rsm_check::page_frame;

/// Write `trace` (the JSON lines of [`RunResult::trace`](super::RunResult::trace)) as one
/// HTML page.
pub fn write_html(title: &str, trace: &[String], out: &mut impl Write) -> io::Result<()> {
    let (head, tail) = page_frame(title, HEADER);
    let (before, after) = SCRIPT
        .split_once("@EVENTS@")
        .expect("the script has one data slot");
    out.write_all(head.as_bytes())?;
    out.write_all(before.as_bytes())?;
    out.write_all(b"[\n")?;
    for (k, line) in trace.iter().enumerate() {
        if k > 0 {
            out.write_all(b",\n")?;
        }
        // JSON inside a script element: only "</" could end the element early.
        out.write_all(line.replace("</", "<\\/").as_bytes())?;
    }
    out.write_all(b"\n]")?;
    out.write_all(after.as_bytes())?;
    out.write_all(tail.as_bytes())
}

const HEADER: &str = r##"<div id="violation"></div>
<label>from t=<input id="from" type="number" min="0" step="any"></label>
<label>to t=<input id="to" type="number" min="0" step="any"></label>
<label>px per tick <input id="scale" type="number" min="0.5" step="0.5" value="10"></label>
<label><input id="showSends" type="checkbox" checked> messages</label>
<label><input id="showDisk" type="checkbox"> disk</label>
<button id="redraw">draw</button>
<div class="legend" id="legend">
<span>time in ticks (t=173.7: 7/10 into tick 174)</span>
<span><svg width="26" height="12"><line x1="1" y1="6" x2="22" y2="6" stroke="#678"/><path d="M19 3 L25 6 L19 9 z" fill="#678"/></svg>message</span>
<span><svg width="12" height="12"><line x1="3" y1="3" x2="9" y2="11" stroke="#c00"/></svg>message lost</span>
<span><svg width="14" height="14"><circle cx="7" cy="7" r="6" fill="#d4a017"/></svg>became leader (L e<i>epoch</i>)</span>
<span><svg width="10" height="10"><circle cx="5" cy="5" r="3.5" fill="#fff" stroke="#d4a017"/></svg>other role change</span>
<span><svg width="6" height="12"><rect x="1" y="2" width="3" height="8" fill="#2a8a2a"/></svg>applied</span>
<span><svg width="8" height="12"><rect x="3" y="3" width="2" height="6" fill="#9bd"/></svg><svg width="8" height="12"><rect x="3" y="3" width="2" height="6" fill="#36c"/></svg>persist, fsync (disk)</span>
<span><b style="color:#c00;font-family:monospace">X</b> crash</span>
<span><i class="sw" style="background:#f6c6c6"></i>down</span>
<span><i class="sw" style="background:#ddd"></i>paused</span>
<span><i class="sw" style="background:#fff3b0"></i>partitioned</span>
<span><svg width="8" height="14"><line x1="4" y1="0" x2="4" y2="14" stroke="#c00" stroke-width="3"/></svg>violation</span>
</div>"##;

const SCRIPT: &str = r##"const EVENTS = @EVENTS@;
(function () {
  // Times are in ticks; lane labels sit in a column that follows the horizontal scroll.
  const LANE = 36, TOP = 40, LEFT = 60;
  const nodeSet = new Set();
  for (const e of EVENTS) {
    if (e.node != null) nodeSet.add(e.node);
    if (e.kind.to != null) nodeSet.add(e.kind.to);
  }
  const nodes = [...nodeSet].sort((a, b) => a - b);
  const lane = new Map(nodes.map((n, i) => [n, i]));
  const end = EVENTS.length ? EVENTS[EVENTS.length - 1].at : 0;
  const bad = EVENTS.findIndex(e => e.kind.type === "violation");
  if (bad >= 0) {
    const v = EVENTS[bad];
    document.getElementById("violation").textContent =
      "VIOLATION at t=" + v.at.toFixed(1) + ": " + v.kind.invariant + ": " + v.kind.detail;
  }
  const focus = bad >= 0 ? EVENTS[bad].at : end;
  document.getElementById("from").value = Math.max(0, focus - 150);
  document.getElementById("to").value = focus + 10;
  const wrap = document.getElementById("wrap");
  let labels = null;
  function pinLabels() {
    if (labels) labels.setAttribute("transform", "translate(" + wrap.scrollLeft + ",0)");
  }
  wrap.addEventListener("scroll", pinLabels);

  // Intervals: crashes and pauses per node, partitions for everyone.
  const spans = [];
  const crashedAt = new Map();
  let partitionFrom = null, partitionCut = null;
  for (const e of EVENTS) {
    const k = e.kind;
    if (k.type === "crash") crashedAt.set(e.node, e.at);
    if (k.type === "restart" && crashedAt.has(e.node)) {
      spans.push({ node: e.node, a: crashedAt.get(e.node), b: e.at, fill: "#f6c6c6", what: "crashed" });
      crashedAt.delete(e.node);
    }
    if (k.type === "pause") spans.push({ node: e.node, a: e.at, b: k.until, fill: "#ddd", what: "paused" });
    if (k.type === "partition") {
      if (partitionFrom !== null) spans.push({ node: null, a: partitionFrom, b: e.at, fill: "#fff3b0", what: "cut " + partitionCut });
      partitionFrom = k.cut.length ? e.at : null;
      partitionCut = k.cut.map(c => "n" + c[0] + "->n" + c[1]).join(" ");
    }
  }
  for (const [n, a] of crashedAt) spans.push({ node: n, a, b: end, fill: "#f6c6c6", what: "crashed" });
  if (partitionFrom !== null) spans.push({ node: null, a: partitionFrom, b: end, fill: "#fff3b0", what: "cut " + partitionCut });

  function describe(e) {
    const k = e.kind, who = e.node != null ? "n" + e.node : "-";
    const rest = Object.entries(k).filter(([key]) => key !== "type")
      .map(([key, v]) => key + "=" + (typeof v === "string" ? v : JSON.stringify(v))).join(" ");
    return "t=" + e.at.toFixed(1) + " " + who + " " + k.type + " " + rest;
  }

  function draw() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const from = Number(document.getElementById("from").value) || 0;
    const to = Number(document.getElementById("to").value) || end;
    const scale = Number(document.getElementById("scale").value) || 1;
    const showSends = document.getElementById("showSends").checked;
    const showDisk = document.getElementById("showDisk").checked;
    const X = t => LEFT + (t - from) * scale;
    const Y = n => TOP + lane.get(n) * LANE;
    const width = LEFT + (to - from) * scale + 40;
    const height = TOP + nodes.length * LANE + 20;
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    const defs = el("defs", {});
    const marker = document.createElementNS(NS, "marker");
    for (const [k, v] of Object.entries({ id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" }))
      marker.setAttribute(k, v);
    const tip = document.createElementNS(NS, "path");
    tip.setAttribute("d", "M 0 0 L 10 5 L 0 10 z");
    tip.setAttribute("fill", "#678");
    marker.appendChild(tip);
    defs.appendChild(marker);
    for (const s of spans) {
      if (s.b < from || s.a > to) continue;
      const a = X(Math.max(s.a, from)), b = X(Math.min(s.b, to));
      if (s.node === null) el("rect", { x: a, y: TOP - LANE / 2, width: Math.max(1, b - a), height: nodes.length * LANE, fill: s.fill, opacity: 0.6 }, s.what + " t=" + s.a + ".." + s.b);
      else el("rect", { x: a, y: Y(s.node) - LANE / 2 + 3, width: Math.max(1, b - a), height: LANE - 6, fill: s.fill }, "n" + s.node + " " + s.what + " t=" + s.a + ".." + s.b);
    }
    for (const n of nodes) {
      el("line", { x1: LEFT, x2: width - 20, y1: Y(n), y2: Y(n), stroke: "#999" });
    }
    const step = Math.pow(10, Math.ceil(Math.log10(80 / scale)));
    for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
      el("line", { x1: X(t), x2: X(t), y1: TOP - LANE / 2 - 6, y2: TOP - LANE / 2, stroke: "#666" });
      el("text", { x: X(t) + 2, y: TOP - LANE / 2 - 8 }).textContent = "t=" + Number(t.toFixed(1));
    }
    EVENTS.forEach((e, i) => {
      if (e.at < from || e.at > to) return;
      const k = e.kind, title = describe(e);
      if (k.type === "deliver" && showSends && lane.has(k.from)) {
        el("line", { x1: X(Math.max(k.sent, from)), y1: Y(k.from), x2: X(e.at), y2: Y(e.node), stroke: "#678", "stroke-width": 1, "marker-end": "url(#arrow)", opacity: 0.7 }, title);
      } else if (k.type === "send" && showSends && k.dropped) {
        const x = X(e.at), y = Y(e.node), dy = lane.has(k.to) && Y(k.to) > y ? 8 : -8;
        el("line", { x1: x, y1: y, x2: x + 6, y2: y + dy, stroke: "#c00" }, title);
      } else if (k.type === "role" && k.role === "Leader") {
        el("circle", { cx: X(e.at), cy: Y(e.node), r: 6, fill: "#d4a017" }, title);
        el("text", { x: X(e.at) + 7, y: Y(e.node) - 7 }).textContent = "L e" + k.epoch;
      } else if (k.type === "role") {
        el("circle", { cx: X(e.at), cy: Y(e.node), r: 3, fill: "#fff", stroke: "#d4a017" }, title);
      } else if (k.type === "apply") {
        el("rect", { x: X(e.at) - 1, y: Y(e.node) + 5, width: 3, height: 8, fill: "#2a8a2a" }, title);
      } else if (k.type === "crash") {
        el("text", { x: X(e.at) - 4, y: Y(e.node) + 4, fill: "#c00" }, title).textContent = "X";
      } else if ((k.type === "persist" || k.type === "synced") && showDisk) {
        el("rect", { x: X(e.at) - 1, y: Y(e.node) - 12, width: 2, height: 6, fill: k.type === "synced" ? "#36c" : "#9bd" }, title);
      } else if (k.type === "violation") {
        el("line", { id: "violation-marker", x1: X(e.at), x2: X(e.at), y1: TOP - LANE / 2, y2: TOP + nodes.length * LANE, stroke: "#c00", "stroke-width": 3 }, title);
      }
    });
    // Drawn last, over everything, and moved with the scroll so they stay in view.
    labels = el("g", { id: "lane-labels" });
    labels.appendChild(el("rect", { x: 0, y: TOP - LANE / 2, width: LEFT - 8, height: nodes.length * LANE, fill: "#fff", opacity: 0.9 }));
    for (const n of nodes) {
      const label = el("text", { class: "lane-label", x: 8, y: Y(n) + 4, "font-weight": "bold" });
      label.textContent = "n" + n;
      labels.appendChild(label);
    }
    const log = document.getElementById("log");
    log.textContent = "";
    EVENTS.forEach((e, i) => {
      if (e.at < from || e.at > to) return;
      const line = document.createElement("div");
      line.textContent = "#" + i + " " + describe(e);
      if (i === bad) line.className = "bad";
      log.appendChild(line);
    });
    const badLine = log.querySelector(".bad");
    if (badLine) badLine.scrollIntoView({ block: "center" });
    wrap.scrollLeft = Math.max(0, X(focus) - 600);
    pinLabels();
  }
  document.getElementById("redraw").onclick = draw;
  draw();
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_embeds_every_event_and_escapes_script_ends() {
        let trace = vec![
            r#"{"at":1,"node":1,"kind":{"type":"restart"}}"#.to_string(),
            r#"{"at":2,"node":null,"kind":{"type":"admin","what":"</script><b>"}}"#.to_string(),
        ];
        let mut out = Vec::new();
        write_html("seed <7>", &trace, &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.contains("<title>seed &lt;7&gt;</title>"));
        assert!(page.contains(r#"{"at":1,"node":1,"kind":{"type":"restart"}},"#));
        assert!(page.contains(r#"<\/script><b>"#));
        assert_eq!(page.matches("</script>").count(), 1, "only the page's own");
        assert!(
            !page.contains("src=") && !page.contains("href="),
            "nothing loaded"
        );
    }

    #[test]
    fn the_legend_names_every_mark_and_the_time_unit() {
        let mut out = Vec::new();
        write_html("legend", &[], &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        let legend = &page[page.find(r#"id="legend""#).expect("a legend")..];
        let legend = &legend[..legend.find("</div>").expect("the legend ends")];
        for mark in [
            "time in ticks",
            "message",
            "message lost",
            "became leader",
            "other role change",
            "applied",
            "persist, fsync",
            "crash",
            "down",
            "paused",
            "partitioned",
            "violation",
        ] {
            assert!(legend.contains(mark), "`{mark}` in the legend");
        }
        // The marks the legend explains are the ones the script draws.
        for drawn in ["violation-marker", "lane-labels", "lane-label"] {
            assert!(page.contains(drawn), "{drawn}");
        }
    }
}
