//! The `rsm-sim` command as a person or a script uses it: help and version, usage errors
//! that name the flag and list the protocols, completions, and output that carries no
//! progress frames when it is not a terminal.

use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

const SIM: &str = env!("CARGO_BIN_EXE_rsm-sim");

fn command() -> Command {
    let mut command = Command::new(SIM);
    command.env_remove("RSM_PROTOCOL");
    command.timeout(Duration::from_secs(120));
    command
}

#[test]
fn help_lists_every_protocol_and_version_prints() {
    let help = command().arg("--help").assert().success();
    let out = String::from_utf8_lossy(&help.get_output().stdout).into_owned();
    for p in rsm_examples::registry::protocols() {
        assert!(out.contains(p.name), "{} in {out}", p.name);
    }
    assert!(
        out.contains("--liveness-heal") && out.contains("RSM_PROTOCOL"),
        "{out}"
    );
    command()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

/// `args` is refused as a usage error (exit 2) whose message contains each of `says`.
fn refused(args: &[&str], says: &[&str]) {
    let run = command().args(args).assert().code(2);
    let err = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    for needle in says {
        assert!(err.contains(needle), "`{needle}` for {args:?} in {err}");
    }
}

#[test]
fn usage_errors_name_the_flag_and_exit_2() {
    refused(&[], &["--protocol", "Usage:"]);
    refused(
        &["--protocol", "no-such-protocol"],
        &["--protocol", "raft", "paxos", "vsr", "ack-before-replicate"],
    );
    refused(
        &["--protocol", "raft", "--seeds", "10"],
        &["--seeds", "0..1000"],
    );
    refused(&["--protocol", "raft", "--seeds", "5..5"], &["empty"]);
    refused(
        &["--protocol", "raft", "--seed", "1", "--seeds", "0..3"],
        &["--seed"],
    );
    refused(
        &["--protocol", "raft", "--liveness-heal", "some"],
        &["--liveness-heal", "quorum"],
    );
    refused(
        &["--protocol", "raft", "--fault-ticks", "x"],
        &["--fault-ticks"],
    );
}

#[test]
fn completions_are_printed_on_request() {
    command()
        .args(["--completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("rsm-sim").and(predicate::str::contains("--protocol")));
}

#[test]
fn piped_output_has_no_progress_frames_and_one_final_line() {
    let run = command()
        .env("RSM_PROTOCOL", "sequencer")
        .args(["--seeds", "0..5", "--fault-ticks", "100"])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&run.get_output().stdout).into_owned();
    assert!(!out.contains('\r') && !out.contains('\x1b'), "{out:?}");
    assert!(out.contains("ran 5 seeds in "), "{out}");
    assert!(out.contains("0 violating"), "{out}");
    assert!(out.contains("seeds run:            5"), "{out}");
}

#[test]
fn a_violating_seed_fails_with_its_report() {
    let run = command()
        .args(["--protocol", "even-quorum", "--seeds", "0..40"])
        .assert()
        .code(1);
    let out = String::from_utf8_lossy(&run.get_output().stdout).into_owned();
    assert!(out.contains("VIOLATION at seed"), "{out}");
    assert!(out.contains("ran 40 seeds in "), "{out}");
    assert!(!out.contains(": 0 violating"), "{out}");
}
