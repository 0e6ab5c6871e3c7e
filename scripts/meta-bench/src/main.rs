//! meta-bench: SQLite (WAL) vs redb as pushfs's metadata engine — latency per op and kill -9 test.

mod bench;
mod crash;
mod redb_store;
mod sqlite_store;
mod store;
mod workload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bench::Phase;
use store::{Engine, Result};

const USAGE: &str = "usage: meta-bench [--ops N] [--runs N] [--trials N] [--dirs D1,D2,..] \
[--engines E1,E2,..] [--skip-bench] [--skip-crash]
engines: sqlite-normal sqlite-full redb-none redb-immediate redb-nosync";

/// Command-line settings.
struct Config {
    ops: u64,
    runs: usize,
    trials: usize,
    dirs: Vec<PathBuf>,
    engines: Vec<Engine>,
    bench: bool,
    crash: bool,
}

impl Config {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Config> {
        let mut config = Config {
            ops: 20_000,
            runs: 3,
            trials: 5,
            dirs: ["/tmp", "/var/tmp", "/dev/shm"].map(PathBuf::from).to_vec(),
            engines: Engine::ALL.to_vec(),
            bench: true,
            crash: true,
        };
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--ops" => config.ops = value()?.parse()?,
                "--runs" => config.runs = value()?.parse()?,
                "--trials" => config.trials = value()?.parse()?,
                "--dirs" => config.dirs = value()?.split(',').map(PathBuf::from).collect(),
                "--engines" => {
                    config.engines = value()?
                        .split(',')
                        .map(|id| Engine::from_id(id).ok_or(format!("unknown engine {id}")))
                        .collect::<std::result::Result<_, _>>()?
                }
                "--skip-bench" => config.bench = false,
                "--skip-crash" => config.crash = false,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
            }
        }
        if config.runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        Ok(config)
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--child") {
        let engine = args.nth(1).and_then(|id| Engine::from_id(&id));
        let path = args.next();
        let (Some(engine), Some(path)) = (engine, path) else {
            return Err("usage: meta-bench --child ENGINE DB_PATH".into());
        };
        return crash::run_child(engine, Path::new(&path));
    }
    let config = Config::parse(args)?;
    println!(
        "SQLite {}, {} ops per phase",
        rusqlite::version(),
        config.ops
    );
    if config.bench {
        run_benchmarks(&config)?;
    }
    if config.crash {
        run_crash_tests(&config)?;
    }
    Ok(())
}

/// synchronous=FULL fsyncs every commit; it is only measured on `create`, for comparison.
fn phases_for(engine: Engine) -> &'static [Phase] {
    match engine {
        Engine::SqliteFull => &Phase::ALL[..1],
        _ => &Phase::ALL,
    }
}

fn run_benchmarks(config: &Config) -> Result<()> {
    println!(
        "\nµs per op, median of {} runs: mean / p99 (each op its own transaction)\n",
        config.runs
    );
    let header: Vec<&str> = Phase::ALL.iter().map(|phase| phase.name()).collect();
    println!("| engine | dir | {} |", header.join(" | "));
    println!("|---|---|{}", "---:|".repeat(header.len()));
    for dir in &config.dirs {
        for &engine in &config.engines {
            let phases = phases_for(engine);
            let mut runs = Vec::with_capacity(config.runs);
            for run in 1..=config.runs {
                let stats = bench::run_once(engine, dir, phases, config.ops)?;
                let means: Vec<String> =
                    stats.iter().map(|s| format!("{:.1}", s.mean_us)).collect();
                eprintln!(
                    "  {} {} run {run}: {}",
                    engine.id(),
                    dir.display(),
                    means.join(" ")
                );
                runs.push(stats);
            }
            let cells: Vec<String> = Phase::ALL
                .iter()
                .enumerate()
                .map(|(index, _)| {
                    if index >= phases.len() {
                        return "–".to_owned();
                    }
                    let mean: Vec<f64> = runs.iter().map(|r| r[index].mean_us).collect();
                    let p99: Vec<f64> = runs.iter().map(|r| r[index].p99_us).collect();
                    format!("{:.1} / {:.0}", bench::median(&mean), bench::median(&p99))
                })
                .collect();
            println!(
                "| {} | {} | {} |",
                engine.label(),
                dir.display(),
                cells.join(" | ")
            );
        }
    }
    Ok(())
}

fn run_crash_tests(config: &Config) -> Result<()> {
    let dir = config.dirs.first().ok_or("no --dirs given")?;
    println!(
        "\nkill -9 after ~0.5 s of commits, {} trials each, in {}\n",
        config.trials,
        dir.display()
    );
    println!("| engine | acknowledged commits per trial | lost per trial | reopen ms (max) |");
    println!("|---|---|---|---:|");
    for &engine in &config.engines {
        let mut trials = Vec::with_capacity(config.trials);
        for _ in 0..config.trials {
            let trial = crash::run_trial(engine, dir, Duration::from_millis(500))?;
            eprintln!("  {} crash: {trial:?}", engine.id());
            trials.push(trial);
        }
        let join = |values: Vec<u64>| {
            values
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let reopen_ms = trials
            .iter()
            .map(|t| t.reopen.as_secs_f64() * 1e3)
            .fold(0.0, f64::max);
        println!(
            "| {} | {} | {} | {reopen_ms:.1} |",
            engine.label(),
            join(trials.iter().map(|t| t.acknowledged).collect()),
            join(trials.iter().map(|t| t.lost).collect()),
        );
    }
    Ok(())
}
