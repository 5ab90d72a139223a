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
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{CommandFactory, Parser, ValueEnum};
use clap_complete::Shell;
use rsm_check::Verdict;
use rsm_examples::progress::ProgressLine;
use rsm_examples::registry::{self, Protocol};
use rsm_sim::{self as sim, LivenessHeal, Report, RunResult, SimOptions};

/// Failure reports printed in full; later violating seeds are listed in the summary only.
const FAILURES_PRINTED_MAX: usize = 3;

/// Run the deterministic simulator over a range of seeds and print a report.
///
/// Each seed fixes the cluster size, the fault mix and every random choice; invariants
/// are checked on every step and the client history is checked for linearizability at the
/// end. The exit status is 1 if any seed violated something, 2 on a usage error.
#[derive(Parser, Debug)]
#[command(name = "rsm-sim", version)]
struct Cli {
    /// The protocol to run
    #[arg(long, env = "RSM_PROTOCOL", required = true, value_parser = protocol_parser())]
    protocol: Option<&'static Protocol>,
    /// The seeds to run, A inclusive to B exclusive
    #[arg(long, value_name = "A..B", default_value = "0..100", value_parser = seed_range)]
    seeds: Range<u64>,
    /// Run this one seed (and print its digest) instead of --seeds
    #[arg(long, value_name = "N", conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Write the trace of a violating seed (of the seed, with --seed) as JSON lines and an
    /// HTML timeline into this directory
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
    /// What the liveness phase repairs: every fault, or only enough for a quorum
    #[arg(long, value_enum, default_value_t = Heal::All)]
    liveness_heal: Heal,
    /// Length of the fault phase, in ticks
    #[arg(long, value_name = "TICKS", default_value_t = SimOptions::default().fault_ticks)]
    fault_ticks: u64,
    /// Ticks allowed after the faults stop for every operation to complete and every
    /// replica to converge
    #[arg(long, value_name = "TICKS", default_value_t = SimOptions::default().liveness_ticks_max)]
    liveness_ticks: u64,
    /// Operations each client starts during the fault phase, at most
    #[arg(long, value_name = "N", default_value_t = SimOptions::default().ops_per_client)]
    ops_per_client: u32,
    /// Pass a seed whose linearizability check is inconclusive (a search budget ran out)
    #[arg(long)]
    allow_inconclusive: bool,
    /// Print a shell completion script (bash, elvish, fish, powershell, zsh) and exit
    #[arg(long, value_name = "SHELL", exclusive = true)]
    completions: Option<Shell>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Heal {
    /// Heal every fault
    All,
    /// Heal a quorum; faults outside it go on
    Quorum,
}

/// `--protocol`: one of the registered names, each listed with its one-line description.
fn protocol_parser() -> impl TypedValueParser<Value = &'static Protocol> {
    let names = registry::protocols()
        .iter()
        .map(|p| PossibleValue::new(p.name).help(p.about));
    PossibleValuesParser::new(names)
        .try_map(|name| registry::find(&name).ok_or(format!("no protocol `{name}`")))
}

/// `A..B`: the seeds from A up to, not including, B.
fn seed_range(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}` is not a range like 0..1000"))?;
    let number = |v: &str| {
        v.trim()
            .parse::<u64>()
            .map_err(|e| format!("`{v}` in `{s}`: {e}"))
    };
    let (a, b) = (number(a)?, number(b)?);
    if a >= b {
        return Err(format!("`{s}` is empty: the end is not above the start"));
    }
    Ok(a..b)
}

impl Cli {
    fn seeds(&self) -> Range<u64> {
        match self.seed {
            Some(seed) => seed..seed.saturating_add(1),
            None => self.seeds.clone(),
        }
    }

    fn options(&self) -> SimOptions {
        let mut opts = SimOptions {
            fault_ticks: self.fault_ticks,
            liveness_ticks_max: self.liveness_ticks,
            liveness_heal: match self.liveness_heal {
                Heal::All => LivenessHeal::All,
                Heal::Quorum => LivenessHeal::Quorum,
            },
            ops_per_client: self.ops_per_client,
            ..SimOptions::default()
        };
        if self.allow_inconclusive {
            opts.history_check = Some(sim::linearizable_or_inconclusive);
        }
        opts
    }
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
        rsm_check::write_html_labeled(&title, &failure, &sim::HISTORY_LABELS, &mut w)?;
        w.flush()?;
        println!("counterexample: {}", page.display());
    }
    Ok((jsonl, html))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    if let Some(shell) = cli.completions {
        let mut command = Cli::command();
        clap_complete::generate(shell, &mut command, "rsm-sim", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    // clap requires --protocol and accepts only registered names.
    let Some(protocol) = cli.protocol else {
        return ExitCode::from(2);
    };
    let name = protocol.name;
    let seeds = cli.seeds();
    let single = cli.seed.is_some();
    let args_opts = cli.options();
    println!(
        "rsm-sim: protocol {name}, seeds {}..{}",
        seeds.start, seeds.end
    );
    let mut report = Report::new();
    let mut failing = Vec::new();
    let started = Instant::now();
    let mut opts = args_opts.clone();
    opts.keep_trace = single && cli.trace_dir.is_some();
    let progress = (!single).then(|| ProgressLine::new(seeds.end - seeds.start, "seeds"));
    for seed in seeds.clone() {
        let run = (protocol.run)(seed, &opts);
        report.add(seed, &run.stats, run.violation.as_ref());
        if run.violation.is_some() {
            if failing.len() < FAILURES_PRINTED_MAX {
                let text = format!("\n{}", run.failure_report(name));
                match &progress {
                    Some(progress) => progress.print(&text),
                    None => print!("{text}"),
                }
            }
            failing.push(seed);
        }
        if let Some(progress) = &progress {
            let violating = failing.len();
            progress.update(seed - seeds.start + 1, format!("{violating} violating"));
        }
        if single {
            println!("seed {seed}: digest {}", run.digest);
            if let Some(dir) = &cli.trace_dir {
                match write_trace(dir, name, &run) {
                    Ok((j, h)) => println!("trace: {} and {}", j.display(), h.display()),
                    Err(e) => eprintln!("error: writing the trace: {e}"),
                }
            }
        }
    }
    let elapsed = started.elapsed();
    if let Some(progress) = &progress {
        progress.finish(&format!(
            "ran {} seeds in {:.2} s: {} violating",
            seeds.end - seeds.start,
            elapsed.as_secs_f64(),
            failing.len()
        ));
    }
    println!("\n{}", report.render(elapsed.as_secs_f64()));
    if let (Some(&first), Some(dir)) = (failing.first(), &cli.trace_dir)
        && !single
    {
        // Re-run the first failing seed with the full trace kept.
        let mut opts = args_opts.clone();
        opts.keep_trace = true;
        let run = (protocol.run)(first, &opts);
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
