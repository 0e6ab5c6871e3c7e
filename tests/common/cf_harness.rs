//! The cf client against the cf emulator, without a mount: an emulator on
//! loopback, a store for snapshots, and the helpers both cf API test files use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pushfs::backend::cf::{ApiChoice, CfClient, CfConfig};
use pushfs::backend::{Backend, BackendKind, DeployError, DeployOutcome, PreviousDeploy};
use pushfs::config::Config;
use pushfs::deploy::snapshot::Snapshot;
use pushfs::emulator::cf::{CfEmulator, DEMO_SPACE_GUID};
use pushfs::emulator::{serve, EmulatedApi, Running};
use pushfs::store::ContentStore;
use serde_json::json;

use super::report::Recorder;

pub const MIB: usize = 1024 * 1024;

pub struct Harness {
    pub emu: Running<CfEmulator>,
    pub tmp: tempfile::TempDir,
    pub store: ContentStore,
}

impl Harness {
    pub async fn start() -> Harness {
        let emu = serve(Arc::new(CfEmulator::new()), 0).await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        Harness { emu, tmp, store }
    }

    /// An emulator with v2 switched off, as capi-release now ships it.
    pub async fn v2_off() -> Harness {
        let h = Harness::start().await;
        h.emu.api.update_settings(|s| s.v2_enabled = false);
        h
    }

    /// The client as `pushfs demo` configures it.
    pub fn demo_config(&self) -> CfConfig {
        let mut config = Config::with_state_dir(&self.tmp.path().join("state"));
        self.emu.api.configure_client(&self.emu.url, &mut config);
        config.cf
    }

    /// The demo client, polling fast (v3 polls every 3 s by default).
    pub fn fast_config(&self) -> CfConfig {
        let mut config = self.demo_config();
        config.poll_interval_ms = Some(10);
        config
    }

    pub fn client(&self) -> CfClient {
        CfClient::new(&self.demo_config())
    }

    /// The demo client with `api = "v2"`: the bits-only flow, which pushfs
    /// takes only when told to.
    pub fn v2_client(&self) -> CfClient {
        CfClient::new(&CfConfig {
            api: ApiChoice::V2,
            ..self.demo_config()
        })
    }

    pub fn fast_client(&self) -> CfClient {
        CfClient::new(&self.fast_config())
    }

    pub fn app_dir(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join("apps").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn snapshot(&self, client: &CfClient, dir: &Path) -> Snapshot {
        Snapshot::from_dir(dir, BackendKind::Cf, &client.ignore_profile(), &self.store).unwrap()
    }

    pub async fn deploy(
        &self,
        client: &CfClient,
        dir: &Path,
    ) -> (Result<DeployOutcome, DeployError>, Recorder) {
        let snapshot = self.snapshot(client, dir);
        let recorder = Recorder::default();
        let result = tokio::time::timeout(
            Duration::from_secs(60),
            client.deploy(&snapshot, &PreviousDeploy::default(), &recorder),
        )
        .await
        .expect("a deploy finishes within a minute");
        (result, recorder)
    }
}

/// Incompressible-enough bytes, different per seed.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn write(dir: &Path, path: &str, bytes: impl AsRef<[u8]>) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

pub fn name_spec(name: &str) -> String {
    json!({"name": name, "space_guid": DEMO_SPACE_GUID}).to_string()
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
