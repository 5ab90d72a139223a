//! `rsm-sim`: run the deterministic simulator over a range of seeds and print a report.
//!
//! ```text
//! rsm-sim --protocol sequencer --seeds 0..1000
//! rsm-sim --protocol ack-before-replicate --seed 17 --trace-dir target/sim-trace
//! ```
//!
//! A seed whose linearizability check is inconclusive (a search budget ran out) fails,
//! unless `--allow-inconclusive` is given. With `--trace-dir`, a seed whose history is not
//! linearizable also gets its counterexample drawn as `…-linearizability.html`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use rsm_check::Verdict;
use rsm_examples::registry::{self, Protocol};
use rsm_sim::{self as sim, LivenessHeal, Report, RunResult, SimOptions};

/// Failure reports printed in full; later violating seeds are listed in the summary only.
const FAILURES_PRINTED_MAX: usize = 3;

struct Args {
    protocol: &'static Protocol,
    seeds: std::ops::Range<u64>,
    trace_dir: Option<PathBuf>,
    opts: SimOptions,
}

fn usage() -> String {
    let mut s = String::from(
        "usage: rsm-sim --protocol NAME (--seeds A..B | --seed N) [--trace-dir DIR]\n\
         \x20             [--liveness-heal all|quorum] [--fault-ticks T] [--liveness-ticks T]\n\
         \x20             [--ops-per-client N] [--allow-inconclusive]\n\nprotocols:\n",
    );
    for p in registry::protocols() {
        s.push_str(&format!("  {:<22} {}\n", p.name, p.about));
    }
    s
}

fn parse_u64(flag: &str, v: Option<String>) -> Result<u64, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
}

fn parse() -> Result<Args, String> {
    let mut protocol = None;
    let mut seeds = 0..100;
    let mut trace_dir = None;
    let mut opts = SimOptions::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--protocol" => {
                let name = it.next().ok_or("--protocol needs a value")?;
                protocol =
                    Some(registry::find(&name).ok_or_else(|| format!("unknown protocol {name}"))?);
            }
            "--seeds" => {
                let v = it.next().ok_or("--seeds needs A..B")?;
                let (a, b) = v.split_once("..").ok_or("--seeds needs A..B")?;
                let a = parse_u64("--seeds", Some(a.into()))?;
                let b = parse_u64("--seeds", Some(b.into()))?;
                seeds = a..b;
            }
            "--seed" => {
                let s = parse_u64("--seed", it.next())?;
                seeds = s..s.saturating_add(1);
            }
            "--trace-dir" => {
                trace_dir = Some(PathBuf::from(it.next().ok_or("--trace-dir needs a value")?))
            }
            "--liveness-heal" => {
                opts.liveness_heal = match it.next().as_deref() {
                    Some("all") => LivenessHeal::All,
                    Some("quorum") => LivenessHeal::Quorum,
                    _ => return Err("--liveness-heal needs all or quorum".into()),
                };
            }
            "--fault-ticks" => opts.fault_ticks = parse_u64(&flag, it.next())?,
            "--liveness-ticks" => opts.liveness_ticks_max = parse_u64(&flag, it.next())?,
            "--ops-per-client" => {
                opts.ops_per_client = u32::try_from(parse_u64(&flag, it.next())?)
                    .map_err(|_| "--ops-per-client too large")?;
            }
            "--allow-inconclusive" => {
                opts.history_check = Some(sim::linearizable_or_inconclusive);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let protocol = protocol.ok_or("--protocol is required")?;
    Ok(Args {
        protocol,
        seeds,
        trace_dir,
        opts,
    })
}

fn write_trace(dir: &Path, protocol: &str, run: &RunResult) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let base = format!("{protocol}-seed-{}", run.seed);
    let jsonl = dir.join(format!("{base}.jsonl"));
    let html = dir.join(format!("{base}.html"));
    let mut w = BufWriter::new(File::create(&jsonl)?);
    sim::write_json_lines(&run.trace, &mut w)?;
    w.flush()?;
    let mut w = BufWriter::new(File::create(&html)?);
    let title = format!("rsm-sim {protocol} seed {}", run.seed);
    sim::write_html(&title, &run.trace, &mut w)?;
    w.flush()?;
    let failed_linearizability = run
        .violation
        .as_ref()
        .is_some_and(|v| v.invariant == sim::Invariant::Linearizability);
    if failed_linearizability
        && let Verdict::NotLinearizable(failure) =
            rsm_check::check_with(&run.history, &sim::linearizability_config())
    {
        let page = dir.join(format!("{base}-linearizability.html"));
        let mut w = BufWriter::new(File::create(&page)?);
        let title = format!("rsm-sim {protocol} seed {}: not linearizable", run.seed);
        rsm_check::write_html(&title, &failure, &mut w)?;
        w.flush()?;
        println!("counterexample: {}", page.display());
    }
    Ok((jsonl, html))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}\n");
            }
            eprint!("{}", usage());
            return ExitCode::from(2);
        }
    };
    let name = args.protocol.name;
    let single = args.seeds.end - args.seeds.start == 1;
    println!(
        "rsm-sim: protocol {name}, seeds {}..{}",
        args.seeds.start, args.seeds.end
    );
    let mut report = Report::new();
    let mut failing = Vec::new();
    let started = Instant::now();
    let mut opts = args.opts.clone();
    opts.keep_trace = single && args.trace_dir.is_some();
    for seed in args.seeds.clone() {
        let run = (args.protocol.run)(seed, &opts);
        report.add(seed, &run.stats, run.violation.as_ref());
        if run.violation.is_some() {
            if failing.len() < FAILURES_PRINTED_MAX {
                print!("\n{}", run.failure_report(name));
            }
            failing.push(seed);
        }
        if single {
            println!("seed {seed}: digest {}", run.digest);
            if let Some(dir) = &args.trace_dir {
                match write_trace(dir, name, &run) {
                    Ok((j, h)) => println!("trace: {} and {}", j.display(), h.display()),
                    Err(e) => eprintln!("error: writing the trace: {e}"),
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("\n{}", report.render(elapsed));
    if let (Some(&first), Some(dir)) = (failing.first(), &args.trace_dir)
        && !single
    {
        // Re-run the first failing seed with the full trace kept.
        let mut opts = args.opts.clone();
        opts.keep_trace = true;
        let run = (args.protocol.run)(first, &opts);
        match write_trace(dir, name, &run) {
            Ok((j, h)) => println!("trace of seed {first}: {} and {}", j.display(), h.display()),
            Err(e) => eprintln!("error: writing the trace: {e}"),
        }
    }
    if failing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
