//! Where the ZelID's private key comes from: a key file only its owner can
//! read (`[flux] private_key_file`), or `PUSHFS_FLUX_KEY` (the WIF itself, or
//! a path to a key file when the value contains `/`; base58 has no `/`).

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::signer::FluxSigner;
use super::FluxConfig;
use crate::backend::DeployError;

/// A WIF private key held in memory. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WifSecret(String);

impl WifSecret {
    pub fn new(wif: impl Into<String>) -> Self {
        WifSecret(wif.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WifSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WifSecret(<redacted>)")
    }
}

fn not_configured(missing: String) -> DeployError {
    DeployError::NotConfigured {
        backend: "flux",
        missing,
    }
}

/// Builds the signer from the configuration: an in-memory key (environment,
/// demo) wins over the key file.
pub fn load_signer(config: &FluxConfig) -> Result<FluxSigner, DeployError> {
    if let Some(secret) = &config.private_key {
        return FluxSigner::from_wif(secret.expose())
            .map_err(|e| not_configured(format!("PUSHFS_FLUX_KEY is {e}")));
    }
    match &config.private_key_file {
        Some(path) => load_key_file(path),
        None => Err(not_configured(
            "no ZelID key: set [flux] private_key_file (a file holding the WIF private key, mode 0600) or PUSHFS_FLUX_KEY".to_string(),
        )),
    }
}

fn load_key_file(path: &Path) -> Result<FluxSigner, DeployError> {
    let shown = path.display();
    let meta = fs::metadata(path)
        .map_err(|e| not_configured(format!("cannot read key file {shown}: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    // Like ssh: a private key open to group or others is refused outright.
    if mode & 0o077 != 0 {
        return Err(not_configured(format!(
            "key file {shown} is accessible by group or others (mode {mode:04o}); run: chmod 600 {shown}"
        )));
    }
    let text = fs::read_to_string(path)
        .map_err(|e| not_configured(format!("cannot read key file {shown}: {e}")))?;
    FluxSigner::from_wif(text.trim())
        .map_err(|e| not_configured(format!("key file {shown} is {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn";

    fn with_file(mode: u32, text: &str) -> (tempfile::TempDir, FluxConfig) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zelid.wif");
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let config = FluxConfig {
            private_key_file: Some(path),
            ..FluxConfig::default()
        };
        (dir, config)
    }

    #[test]
    fn private_key_file_is_read() {
        let (_dir, config) = with_file(0o600, &format!("{KEY}\n"));
        assert_eq!(
            load_signer(&config).unwrap().address(),
            "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH"
        );
    }

    #[test]
    fn readable_key_file_is_refused() {
        let (_dir, config) = with_file(0o644, KEY);
        let err = load_signer(&config).unwrap_err();
        assert!(matches!(err, DeployError::NotConfigured { .. }));
        let text = err.to_string();
        assert!(
            text.contains("chmod 600") && text.contains("0644"),
            "{text}"
        );
        assert!(!text.contains(KEY));
    }

    #[test]
    fn bad_key_and_missing_key_never_echo_the_secret() {
        let bad = "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWX";
        let (_dir, config) = with_file(0o600, bad);
        let text = load_signer(&config).unwrap_err().to_string();
        assert!(
            text.contains("not a valid WIF") && !text.contains(bad),
            "{text}"
        );
        let config = FluxConfig {
            private_key: Some(WifSecret::new(bad)),
            ..FluxConfig::default()
        };
        assert!(!load_signer(&config).unwrap_err().to_string().contains(bad));
        assert!(load_signer(&FluxConfig::default())
            .unwrap_err()
            .to_string()
            .contains("private_key_file"));
        assert_eq!(
            format!("{:?}", WifSecret::new(KEY)),
            "WifSecret(<redacted>)"
        );
    }
}
