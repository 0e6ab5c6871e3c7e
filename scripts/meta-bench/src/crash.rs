//! kill -9 test: a child commits `create` ops and acknowledges each on stdout after the commit
//! returns; the parent SIGKILLs it and checks every acknowledged op survived.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::store::{Engine, Result};
use crate::workload::{self, Inode};

/// Outcome of one kill -9 trial.
#[derive(Debug)]
pub struct Trial {
    /// Ops the child reported as committed before it was killed.
    pub acknowledged: u64,
    /// Acknowledged ops missing after reopening the database.
    pub lost: u64,
    /// Time to reopen (and recover) the database after the kill.
    pub reopen: Duration,
}

/// Child side: commit `create` ops forever, printing each op number once its commit returned.
pub fn run_child(engine: Engine, db_path: &Path) -> Result<()> {
    let mut store = engine.open(db_path)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for op in 0.. {
        let ino = workload::file_ino(op);
        store.create(
            workload::parent_of(op),
            &child_name(op),
            ino,
            &Inode::new_file(op),
        )?;
        writeln!(out, "{op}")?;
        out.flush()?;
    }
    Ok(())
}

/// Name the child gives op `op` (the benchmark's 5-digit names would run out).
fn child_name(op: u64) -> String {
    format!("c{op:08}")
}

/// Parent side: spawn the child on a fresh database in `dir`, let it commit for `run_for` after
/// its first acknowledgement, SIGKILL it, then verify.
pub fn run_trial(engine: Engine, dir: &Path, run_for: Duration) -> Result<Trial> {
    let scratch = tempfile::Builder::new()
        .prefix("meta-crash-")
        .tempdir_in(dir)?;
    let db_path = scratch.path().join("meta.db");
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--child")
        .arg(engine.id())
        .arg(&db_path)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("child stdout not captured")?;

    let (first_ack, first_ack_rx) = mpsc::channel();
    let reader = thread::spawn(move || -> u64 {
        let mut acknowledged = 0u64;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match line.trim().parse::<u64>() {
                Ok(op) if op == acknowledged => acknowledged += 1,
                _ => break, // torn or out-of-order line: stop counting there
            }
            if acknowledged == 1 {
                let _ = first_ack.send(());
            }
        }
        acknowledged
    });

    let started = first_ack_rx.recv_timeout(Duration::from_secs(30));
    if started.is_ok() {
        thread::sleep(run_for);
    }
    child.kill()?; // SIGKILL
    child.wait()?;
    let acknowledged = reader.join().map_err(|_| "reader thread panicked")?;
    started.map_err(|_| "child never acknowledged an op")?;

    let reopen_started = Instant::now();
    let mut store = engine.open(&db_path)?;
    let reopen = reopen_started.elapsed();
    let mut lost = 0;
    for op in 0..acknowledged {
        let found = store.lookup(workload::parent_of(op), &child_name(op))?;
        if !matches!(found, Some((ino, _)) if ino == workload::file_ino(op)) {
            lost += 1;
        }
    }
    Ok(Trial {
        acknowledged,
        lost,
        reopen,
    })
}
