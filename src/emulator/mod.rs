//! Loopback servers that speak each deploy API by its rules.
//!
//! Used by `pushfs emulate`, `pushfs demo` and the tests. Every emulator can
//! be told to fail (see [`faults`]) for reliability tests, in process or over
//! HTTP at `POST /_emulator/faults`.

pub mod bytenite;
pub mod cf;
pub mod faults;
pub mod flux;
mod throttle;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::Config;
pub use faults::{FaultPlan, Faults, SeenRequest};

/// One emulated API: its routes and how a client reaches it.
pub trait EmulatedApi: Send + Sync + 'static {
    /// The API's routes; fault injection and `/_emulator/*` are added around them.
    fn router(self: Arc<Self>) -> Router;
    /// Points `config`'s client for this backend at `base_url` with
    /// credentials this emulator accepts.
    fn configure_client(&self, base_url: &str, config: &mut Config);
}

/// A running emulator: its URL, its state (for assertions) and its faults.
pub struct Running<A: EmulatedApi> {
    pub url: String,
    pub api: Arc<A>,
    pub faults: Arc<Faults>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl<A: EmulatedApi> Drop for Running<A> {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves `api` on 127.0.0.1:`port` (0 picks a free port).
pub async fn serve<A: EmulatedApi>(api: Arc<A>, port: u16) -> std::io::Result<Running<A>> {
    let listener =
        TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)).await?;
    let addr = listener.local_addr()?;
    let faults = Arc::new(Faults::default());
    let app = faults::wrap(api.clone().router(), faults.clone());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(err) = server.await {
            tracing::error!(%err, "emulator stopped");
        }
    });
    Ok(Running {
        url: format!("http://{addr}"),
        api,
        faults,
        shutdown: Some(tx),
    })
}

/// The three emulators, as `pushfs demo` and the tests run them.
pub struct Emulators {
    pub bytenite: Running<bytenite::ByteniteEmulator>,
    pub flux: Running<flux::FluxEmulator>,
    pub cf: Running<cf::CfEmulator>,
}

/// Ports used by `pushfs emulate` unless told otherwise.
pub const DEFAULT_PORTS: [u16; 3] = [8701, 8702, 8703];

impl Emulators {
    /// Starts all three on loopback; `ports` of 0 pick free ports.
    pub async fn start(ports: [u16; 3]) -> std::io::Result<Emulators> {
        Ok(Emulators {
            bytenite: serve(Arc::new(bytenite::ByteniteEmulator::new()), ports[0]).await?,
            flux: serve(Arc::new(flux::FluxEmulator::new()), ports[1]).await?,
            cf: serve(Arc::new(cf::CfEmulator::new()), ports[2]).await?,
        })
    }

    /// Writes a config file for `pushfs mount --config` that points every
    /// backend at these emulators with their demo credentials (the Flux key
    /// goes to a 0600 file beside it). Returns the config file's path.
    pub fn write_client_config(
        &self,
        dir: &std::path::Path,
    ) -> std::io::Result<std::path::PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir)?;
        let key_path = dir.join("flux-demo.wif");
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&key_path)?
            .write_all(flux::DEMO_ONLY_WIF.as_bytes())?;
        let config = format!(
            "# Written by `pushfs emulate`: demo credentials of the local emulators only.\n\
             [bytenite]\nurl = {:?}\napi_key = {:?}\n\n\
             [flux]\nurl = {:?}\nprivate_key_file = {:?}\n\n\
             [cf]\nurl = {:?}\ntoken = {:?}\nspace_guid = {:?}\n\
             # the emulator's router: http://<app>.apps.localhost:<port>/\n\
             route_scheme = \"http\"\nroute_port = {}\npoll_interval_ms = 500\n",
            self.bytenite.url,
            bytenite::DEMO_API_KEY,
            self.flux.url,
            key_path.display().to_string(),
            self.cf.url,
            format!("bearer {}", cf::DEMO_TOKEN),
            cf::DEMO_SPACE_GUID,
            reqwest::Url::parse(&self.cf.url)
                .ok()
                .and_then(|u| u.port())
                .unwrap_or(80),
        );
        // 0600 like the key: it holds tokens, and pushfs warns about a
        // config file with tokens that others can read.
        let path = dir.join("config.toml");
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&path)?
            .write_all(config.as_bytes())?;
        Ok(path)
    }

    /// Points every backend of `config` at these emulators.
    pub fn configure_clients(&self, config: &mut Config) {
        self.bytenite
            .api
            .configure_client(&self.bytenite.url, config);
        self.flux.api.configure_client(&self.flux.url, config);
        self.cf.api.configure_client(&self.cf.url, config);
    }
}
