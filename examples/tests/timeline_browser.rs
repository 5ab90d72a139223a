//! The HTML timeline of a violating seed, loaded in a headless Chromium: after its script
//! has run, the page shows the violation marker and a label for every node's lane, and
//! the labels have been moved along with the view's scroll so that they stay visible.
//!
//! It needs Chromium (Debian's `chromium` package), so it is ignored by a plain
//! `cargo test`; `make browser-test` (part of `make test`) installs Chromium when it is
//! missing and runs it. `RSM_CHROMIUM` names another browser binary. One page load.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rsm_examples::registry;
use rsm_sim::{self as sim, SimOptions};

/// The longest a page load may take before the test fails (a hang, not a speed limit).
const BROWSER_WAIT: Duration = Duration::from_secs(120);

/// The DOM of `page` after its scripts ran, as Chromium dumps it.
fn rendered_dom(page: &Path, profile: &Path) -> String {
    let browser = std::env::var("RSM_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {browser} (make browser-deps): {e}"));
    let started = Instant::now();
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut dom).map(|_| dom)
    });
    loop {
        if let Some(status) = child.try_wait().expect("wait for the browser") {
            assert!(status.success(), "{browser} exited with {status}");
            break;
        }
        if started.elapsed() > BROWSER_WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{browser} did not finish within {BROWSER_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().expect("reader").expect("the DOM is text")
}

#[test]
#[ignore = "needs Chromium: run by `make browser-test`"]
fn the_timeline_of_a_violating_seed_shows_the_violation_and_the_lane_labels() {
    let protocol = registry::find("even-quorum").expect("registered");
    let opts = SimOptions {
        keep_trace: true,
        ..SimOptions::default()
    };
    let run = (0..1_000)
        .map(|seed| (protocol.run)(seed, &opts))
        .find(|run| run.violation.is_some())
        .expect("even-quorum is caught within 1,000 seeds");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("timeline.html");
    let mut html = Vec::new();
    sim::write_html("timeline", &run.trace, &mut html).unwrap();
    std::fs::write(&page, html).unwrap();

    let dom = rendered_dom(&page, &dir.path().join("profile"));

    // The violation: the banner the script fills in, and the marker line on the lanes.
    let invariant = run.violation.as_ref().unwrap().invariant.to_string();
    assert!(
        dom.contains("VIOLATION at t=") && dom.contains(&invariant),
        "the banner names the violation"
    );
    assert!(
        dom.contains(r#"id="violation-marker""#),
        "no violation marker"
    );
    // A label for every node's lane, inside the group that follows the scroll.
    let group = dom
        .split(r#"<g id="lane-labels""#)
        .nth(1)
        .expect("a lane-label group");
    let group = &group[..group.find("</g>").expect("the group ends")];
    for n in 1..=run.swarm.nodes {
        assert!(
            group.contains(&format!(">n{n}</text>")),
            "no label for n{n} in {group}"
        );
    }
    // The view opens scrolled to the violation; the labels moved with it.
    let shift: f64 = group
        .split("translate(")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .and_then(|x| x.parse().ok())
        .expect("the labels are translated");
    assert!(
        shift > 0.0,
        "the view is scrolled to the violation and the labels follow it"
    );
}
