//! Latency benchmark: runs the create/seal/lookup/rename/unlink phases, one transaction per op.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::store::{Engine, MetaStore, Result};
use crate::workload::{self, Inode};

/// The phases, in the order they run against one database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Create,
    Seal,
    Lookup,
    Rename,
    Unlink,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Create,
        Phase::Seal,
        Phase::Lookup,
        Phase::Rename,
        Phase::Unlink,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Seal => "seal",
            Phase::Lookup => "lookup",
            Phase::Rename => "rename",
            Phase::Unlink => "unlink",
        }
    }
}

/// Latency summary of one phase of one run.
#[derive(Clone, Copy, Debug)]
pub struct PhaseStats {
    pub mean_us: f64,
    pub p99_us: f64,
}

/// Run `phases` (a prefix of [`Phase::ALL`]) with `ops` operations each on a fresh database in
/// `dir`, returning one summary per phase.
pub fn run_once(engine: Engine, dir: &Path, phases: &[Phase], ops: u64) -> Result<Vec<PhaseStats>> {
    let scratch = tempfile::Builder::new()
        .prefix("meta-bench-")
        .tempdir_in(dir)?;
    let mut store = engine.open(&scratch.path().join("meta.db"))?;
    phases
        .iter()
        .map(|&phase| run_phase(store.as_mut(), phase, ops))
        .collect()
}

fn run_phase(store: &mut dyn MetaStore, phase: Phase, ops: u64) -> Result<PhaseStats> {
    let order = match phase {
        Phase::Lookup => workload::shuffled(ops, 0x10_0c_0a),
        _ => (0..ops).collect(),
    };
    let mut latencies = Vec::with_capacity(order.len());
    let started = Instant::now();
    for op in order {
        let before = Instant::now();
        run_op(store, phase, op)?;
        latencies.push(before.elapsed());
    }
    let total = started.elapsed();
    Ok(summarize(total, &mut latencies))
}

fn run_op(store: &mut dyn MetaStore, phase: Phase, op: u64) -> Result<()> {
    let (parent, name) = (workload::parent_of(op), workload::created_name(op));
    let ino = workload::file_ino(op);
    match phase {
        Phase::Create => store.create(parent, &name, ino, &Inode::new_file(op)),
        Phase::Seal => store.seal(ino, workload::sealed_size(op), &workload::blob_hash(op)),
        Phase::Lookup => match store.lookup(parent, &name)? {
            Some((found, inode)) if found == ino && inode.blob == workload::blob_hash(op) => Ok(()),
            other => Err(format!("lookup {parent}/{name}: unexpected {other:?}").into()),
        },
        Phase::Rename => store.rename(
            parent,
            &name,
            workload::renamed_parent(op),
            &workload::renamed_name(op),
        ),
        Phase::Unlink => store.unlink(workload::renamed_parent(op), &workload::renamed_name(op)),
    }
}

fn summarize(total: Duration, latencies: &mut [Duration]) -> PhaseStats {
    latencies.sort_unstable();
    let p99_index = (latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1));
    PhaseStats {
        mean_us: total.as_secs_f64() * 1e6 / latencies.len().max(1) as f64,
        p99_us: latencies
            .get(p99_index)
            .map_or(0.0, |d| d.as_secs_f64() * 1e6),
    }
}

/// Median of a non-empty slice (the lower middle element for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[(sorted.len() - 1) / 2]
}
