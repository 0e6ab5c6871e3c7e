//! The `pushfs` command: mount, demo, emulate, status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use pushfs::config::{Config, Env};
use pushfs::emulator::{Emulators, DEFAULT_PORTS};
use pushfs::mount::Mounted;

#[derive(Parser)]
#[command(
    name = "pushfs",
    version,
    about = "Deploy apps by copying folders into a FUSE mount"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct MountArgs {
    /// Config file (default ~/.config/pushfs/config.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where blobs, manifests and deploy states live (default ~/.local/share/pushfs).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Quiet time after the last change before a deploy starts.
    #[arg(long)]
    settle_ms: Option<u64>,
    /// Let other users use the mount (non-root needs user_allow_other in /etc/fuse.conf).
    #[arg(long)]
    allow_other: bool,
    /// Start a new, empty metadata database when meta.db is missing or
    /// empty beside stored files (they go to lost+found, nothing is deleted).
    #[arg(long)]
    new_state: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Mount pushfs and stay in the foreground until Ctrl-C or SIGTERM.
    Mount {
        mountpoint: PathBuf,
        #[command(flatten)]
        args: MountArgs,
    },
    /// Start the three emulators on loopback and mount pushfs against them.
    Demo {
        /// Where to mount (default /tmp/pushfs-demo).
        mountpoint: Option<PathBuf>,
        #[arg(long)]
        settle_ms: Option<u64>,
    },
    /// Run the ByteNite, Flux and Cloud Foundry emulators on loopback.
    Emulate {
        #[arg(long, default_value_t = DEFAULT_PORTS[0])]
        bytenite_port: u16,
        #[arg(long, default_value_t = DEFAULT_PORTS[1])]
        flux_port: u16,
        #[arg(long, default_value_t = DEFAULT_PORTS[2])]
        cf_port: u16,
    },
    /// Show every app's deploy state (of one mount, or of all pushfs mounts).
    Status {
        mountpoint: Option<PathBuf>,
        /// One JSON document: every mount, every app, its whole status.json.
        #[arg(long)]
        json: bool,
        /// Redraw the table until Ctrl-C, with a progress bar for each upload.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
    },
    /// Check an unmounted state directory: list what lost+found holds and
    /// whose files it was. Without options nothing is changed. Exit codes
    /// as fsck(8): 0 clean, 1 fixed, 4 problems left, 8 operational error.
    Fsck {
        state_dir: PathBuf,
        /// Move lost blobs the database names back into the store.
        #[arg(long)]
        restore: bool,
        /// Write lost blobs to DIR/<backend>/<app>/<path> by every path
        /// that names them (the database, kept trees, a damaged copy).
        #[arg(long, value_name = "DIR")]
        restore_to: Option<PathBuf>,
        /// Delete everything lost+found holds (after any restore).
        #[arg(long)]
        purge: bool,
    },
    /// Stop the pushfs serving MOUNTPOINT as Ctrl-C would, and wait for it.
    Unmount {
        mountpoint: PathBuf,
        /// How long to wait for files still open under the mount.
        #[arg(long, default_value_t = 60)]
        timeout_s: u64,
    },
}

/// The subcommands, so that `pushfs SOURCE MOUNTPOINT -o …` (fstab) is told apart.
const SUBCOMMANDS: &[&str] = &[
    "mount", "demo", "emulate", "status", "fsck", "unmount", "help",
];

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PUSHFS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("pushfs=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let env: Env = std::env::vars().collect();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if pushfs::fstab::is_fstab_form(&args, SUBCOMMANDS) {
        return finish(run_fstab(&args, &env));
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mount { mountpoint, args } => run_mount(&mountpoint, args, &env),
        Command::Demo {
            mountpoint,
            settle_ms,
        } => run_demo(mountpoint, settle_ms, &env),
        Command::Emulate {
            bytenite_port,
            flux_port,
            cf_port,
        } => run_emulate([bytenite_port, flux_port, cf_port]),
        Command::Status {
            mountpoint,
            json,
            watch,
        } => run_status(mountpoint, json, watch),
        Command::Fsck {
            state_dir,
            restore,
            restore_to,
            purge,
        } => run_fsck(
            &state_dir,
            &pushfs::fsck::FsckOptions {
                restore,
                restore_to,
                purge,
            },
        ),
        Command::Unmount {
            mountpoint,
            timeout_s,
        } => run_unmount(&mountpoint, Duration::from_secs(timeout_s)),
    };
    finish(result)
}

fn finish(result: Result<ExitCode, String>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("pushfs: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The fstab form: starts `pushfs mount` in the background with its log in
/// the state directory, and returns once the mount is up (mount(8) waits
/// for this process; the mount must outlive it).
fn run_fstab(args: &[String], env: &Env) -> Result<ExitCode, String> {
    use std::os::unix::process::CommandExt;
    let request = pushfs::fstab::parse(args).map_err(|e| e.to_string())?;
    let mut config = Config::load(request.config.as_deref(), env).map_err(|e| e.to_string())?;
    if let Some(dir) = &request.state_dir {
        config.state_dir = dir.clone();
    }
    let mountpoint = request
        .mountpoint
        .canonicalize()
        .map_err(|e| format!("mount point {}: {e}", request.mountpoint.display()))?;
    pushfs::private_files::create_private_dir_all(&config.state_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.state_dir.display()))?;
    let log_path = config.state_dir.join("pushfs.log");
    let log = pushfs::private_files::private_file_options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut mount = std::process::Command::new(exe);
    mount
        .arg("mount")
        .arg(&mountpoint)
        .arg("--state-dir")
        .arg(&config.state_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        // Its own process group: the end of mount(8)'s session must not stop it.
        .process_group(0);
    if let Some(path) = &request.config {
        mount.arg("--config").arg(path);
    }
    if let Some(ms) = request.settle_ms {
        mount.arg("--settle-ms").arg(ms.to_string());
    }
    if request.allow_other {
        mount.arg("--allow-other");
    }
    let mut child = mount
        .spawn()
        .map_err(|e| format!("cannot start pushfs mount: {e}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !pushfs::fs::mount::is_mount_point(&mountpoint) {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(format!(
                "pushfs mount exited with {status}; its log ({}) ends:\n{}",
                log_path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "pushfs did not mount {} within 30 s; see {}",
                mountpoint.display(),
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_fsck(state_dir: &Path, options: &pushfs::fsck::FsckOptions) -> Result<ExitCode, String> {
    match pushfs::fsck::run(state_dir, options) {
        Ok(report) => {
            print!("{}", report.text);
            Ok(ExitCode::from(report.code))
        }
        Err(err) => {
            eprintln!("pushfs fsck: {err}");
            Ok(ExitCode::from(pushfs::fsck::OPERATIONAL_ERROR))
        }
    }
}

fn run_unmount(mountpoint: &Path, limit: Duration) -> Result<ExitCode, String> {
    use pushfs::unmount::{stop, Stopped};
    let owners = pushfs::unmount::owners(mountpoint);
    if !owners.is_empty() {
        eprintln!(
            "pushfs: stopping pushfs (pid {}); it waits for files still open under {}",
            owners
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            mountpoint.display()
        );
    }
    match stop(mountpoint, limit).map_err(|e| e.to_string())? {
        Stopped::Exited(_) => eprintln!("pushfs: {} unmounted", mountpoint.display()),
        Stopped::Detached => eprintln!(
            "pushfs: no process served {}; the mount was detached",
            mountpoint.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

async fn until_signal() {
    StopSignals::new().next().await;
}

/// SIGINT and SIGTERM, as one stream.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> StopSignals {
        use tokio::signal::unix::{signal, SignalKind};
        StopSignals {
            interrupt: signal(SignalKind::interrupt()).expect("SIGINT handler"),
            terminate: signal(SignalKind::terminate()).expect("SIGTERM handler"),
        }
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// How a mount's life ended.
enum Ending {
    /// SIGINT or SIGTERM: unmount.
    Signal,
    /// The kernel ended the session: an external umount, or a failure.
    SessionEnded,
}

/// Serves until a signal or the end of the FUSE session. After a signal,
/// waits until no file is open, so no writer loses its file or sees the
/// mount vanish; a second signal stops at once.
async fn serve(mounted: &Mounted, settle: Duration) -> Ending {
    let mut signals = StopSignals::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = signals.next() => break,
            _ = tick.tick() => if mounted.session_ended() { return Ending::SessionEnded },
        }
    }
    // A copy that is still going would go on writing beneath the mount
    // point once it is gone: wait until nothing is open and the kernel
    // has asked nothing for the settle time.
    let quiet = |m: &Mounted| m.open_handles() == 0 && m.tree.quiet_for() >= settle;
    if quiet(mounted) {
        return Ending::Signal;
    }
    let open = mounted.open_handles();
    eprintln!(
        "pushfs: waiting until no file is open ({open} are) and nothing is written for {} before unmounting (Ctrl-C again to stop now)",
        humantime::format_duration(settle)
    );
    tracing::info!(open, "stop requested; waiting for the mount to be quiet");
    loop {
        tokio::select! {
            _ = signals.next() => {
                eprintln!("pushfs: stopping now; files still being written are recovered at the next mount");
                return Ending::Signal;
            }
            _ = tick.tick() => {
                if mounted.session_ended() {
                    return Ending::SessionEnded;
                }
                if quiet(mounted) {
                    return Ending::Signal;
                }
            }
        }
    }
}

/// Runs a mount to its end: unmounts on a signal, winds down after an
/// external unmount, and fails loudly if the session broke.
fn run_to_end(
    rt: &tokio::runtime::Runtime,
    mounted: Mounted,
    settle: Duration,
) -> Result<ExitCode, String> {
    let mountpoint = mounted.mountpoint.clone();
    match rt.block_on(serve(&mounted, settle)) {
        Ending::Signal => {
            mounted.unmount();
            Ok(ExitCode::SUCCESS)
        }
        Ending::SessionEnded => match mounted.finish_after_session_end() {
            Ok(()) => {
                tracing::info!(mountpoint = %mountpoint.display(), "unmounted by an external umount");
                eprintln!("pushfs: {} was unmounted; stopped", mountpoint.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => Err(format!(
                "the FUSE session of {} broke: {err}; deploys stop and resume at the next mount",
                mountpoint.display()
            )),
        },
    }
}

fn run_mount(mountpoint: &Path, args: MountArgs, env: &Env) -> Result<ExitCode, String> {
    let mut config = Config::load(args.config.as_deref(), env).map_err(|e| e.to_string())?;
    if let Some(dir) = args.state_dir {
        config.state_dir = dir;
    }
    if let Some(ms) = args.settle_ms {
        config.settle = Duration::from_millis(ms);
    }
    config.allow_other |= args.allow_other;
    config.new_state = args.new_state;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let rt = runtime()?;
    let mounted =
        Mounted::start(&config, mountpoint, rt.handle().clone()).map_err(|e| e.to_string())?;
    eprintln!(
        "pushfs: mounted at {} (Ctrl-C to unmount)",
        mountpoint.display()
    );
    run_to_end(&rt, mounted, config.settle)
}

fn run_demo(
    mountpoint: Option<PathBuf>,
    settle_ms: Option<u64>,
    env: &Env,
) -> Result<ExitCode, String> {
    let mountpoint = mountpoint.unwrap_or_else(|| PathBuf::from("/tmp/pushfs-demo"));
    std::fs::create_dir_all(&mountpoint)
        .map_err(|e| format!("cannot create {}: {e}", mountpoint.display()))?;
    let rt = runtime()?;
    // Fixed ports if free, so `pushfs emulate` and the demo look alike; any free port otherwise.
    let emulators = rt
        .block_on(async {
            match Emulators::start(DEFAULT_PORTS).await {
                Ok(e) => Ok(e),
                Err(_) => Emulators::start([0, 0, 0]).await,
            }
        })
        .map_err(|e| format!("cannot start the emulators: {e}"))?;
    let state = tempfile::Builder::new()
        .prefix("pushfs-demo-state-")
        .tempdir()
        .map_err(|e| format!("cannot create a state directory: {e}"))?;
    let mut config = Config::with_state_dir(state.path());
    if let Some(ms) = settle_ms.or_else(|| env.get("PUSHFS_SETTLE_MS").and_then(|v| v.parse().ok()))
    {
        config.settle = Duration::from_millis(ms);
    }
    emulators.configure_clients(&mut config);
    let mounted =
        Mounted::start(&config, &mountpoint, rt.handle().clone()).map_err(|e| e.to_string())?;
    let m = mountpoint.display();
    eprintln!(
        "pushfs demo: mounted at {m}\n\
         emulators: bytenite {} | flux {} | cf {}\n\
         try:\n  cp -r examples/bytenite-hello {m}/bytenite/\n  cat {m}/bytenite/bytenite-hello/.pushfs/wait\n\
         \x20 cp -r examples/cf-hello {m}/cf/\n  cat {m}/cf/cf-hello/.pushfs/wait\n\
         \x20 curl \"$(cat {m}/cf/cf-hello/.pushfs/url)\"    # the app, through the emulator's router\n\
         Ctrl-C to stop (the demo's state is thrown away).",
        emulators.bytenite.url, emulators.flux.url, emulators.cf.url
    );
    let ended = run_to_end(&rt, mounted, config.settle);
    drop(emulators);
    ended
}

fn run_emulate(ports: [u16; 3]) -> Result<ExitCode, String> {
    let rt = runtime()?;
    let emulators = rt
        .block_on(Emulators::start(ports))
        .map_err(|e| format!("cannot start the emulators: {e}"))?;
    let config_dir = std::env::temp_dir().join(format!("pushfs-emulate-{}", std::process::id()));
    let config_path = emulators
        .write_client_config(&config_dir)
        .map_err(|e| format!("cannot write the client config: {e}"))?;
    println!("bytenite emulator: {}", emulators.bytenite.url);
    println!("flux emulator:     {}", emulators.flux.url);
    println!("cf emulator:       {}", emulators.cf.url);
    println!("client config:     {}", config_path.display());
    println!(
        "mount against it:  pushfs mount /mnt/deploy --config {}",
        config_path.display()
    );
    println!("fault injection:   curl -X POST <url>/_emulator/faults -d '{{\"fail_next\":2,\"status\":503}}'");
    println!("Ctrl-C to stop.");
    rt.block_on(until_signal());
    drop(emulators);
    let _ = std::fs::remove_dir_all(&config_dir);
    Ok(ExitCode::SUCCESS)
}

fn run_status(mountpoint: Option<PathBuf>, json: bool, watch: bool) -> Result<ExitCode, String> {
    use pushfs::status_report::{gather, table};
    // A skipped mount is noted once, not at every redraw of --watch.
    let noted = std::cell::Cell::new(false);
    let read_all = || -> Result<Vec<_>, String> {
        let gathered = gather(mountpoint.as_deref()).map_err(|e| e.to_string())?;
        if !noted.replace(true) {
            for note in &gathered.skipped {
                eprintln!("pushfs status: {note}");
            }
        }
        Ok(gathered.reports)
    };
    if json {
        let reports = read_all()?;
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !watch {
        print!("{}", table(&read_all()?));
        return Ok(ExitCode::SUCCESS);
    }
    pushfs::status_watch::watch(read_all).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}
