//! The emulator's app records: upsert by (owner, name, version), tags, and
//! the `appApp` JSON (lowerCamelCase, int64 as strings, every field present).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::backend::bytenite::manifest::{proto_number, AppManifest};

/// One (owner, name, version) of an app, as the latest push left it.
#[derive(Debug, Clone)]
pub struct AppRecord {
    pub id: String,
    pub owner: String,
    pub user_name: String,
    pub manifest: AppManifest,
    pub status: String,
    pub is_public: bool,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    /// base64 (standard, padded) of the SHA-256 of the tar.
    pub hash: String,
    pub revision: u64,
    /// The archive as received, served at `/_emulator/apps/{id}/tar`.
    pub tar: StoredTar,
}

/// A pushed archive, kept in a temp file (deleted with its last record),
/// so a long demo session does not hold every push in memory.
#[derive(Debug, Clone)]
pub struct StoredTar(Option<Arc<tempfile::NamedTempFile>>);

impl StoredTar {
    pub fn store(bytes: &[u8]) -> std::io::Result<StoredTar> {
        use std::io::Write;
        let mut file = tempfile::Builder::new()
            .prefix("pushfs-emulated-tar-")
            .tempfile()?;
        file.write_all(bytes)?;
        Ok(StoredTar(Some(Arc::new(file))))
    }

    pub fn empty() -> StoredTar {
        StoredTar(None)
    }

    /// The archive's bytes, read back from disk.
    pub fn bytes(&self) -> std::io::Result<Vec<u8>> {
        match &self.0 {
            Some(file) => std::fs::read(file.path()),
            None => Ok(Vec::new()),
        }
    }
}

impl AppRecord {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn version(&self) -> &str {
        &self.manifest.version
    }

    /// `appApp` as grpc-gateway's protojson would write it. `base_url` makes `link`.
    pub fn to_json(&self, base_url: &str) -> Value {
        let m = &self.manifest;
        let pc = &m.platform_config;
        let dr = &m.device_requirements;
        json!({
            "id": self.id,
            "name": m.name,
            "version": m.version,
            "owner": self.owner,
            "status": self.status,
            "deviceRequirements": {
                "minCpu": proto_number(dr.min_cpu.unwrap_or(0.0)),
                "minMemory": proto_number(dr.min_memory.unwrap_or(0.0)),
                "gpu": dr.gpu,
            },
            "isPublic": self.is_public,
            "createdAt": timestamp(self.created_at),
            "updatedAt": timestamp(self.updated_at),
            "platform": m.platform,
            "hash": self.hash,
            "link": format!("{base_url}/_emulator/apps/{}/tar", self.id),
            "platformConfig": {
                "container": pc.container,
                "privateImage": pc.private_image,
                "username": pc.username,
                "token": pc.token,
                "secrets": pc.secrets,
            },
            "entrypoint": m.entrypoint,
            "revision": self.revision.to_string(),
            "description": m.description,
            "userName": self.user_name,
        })
    }
}

/// RFC 3339, UTC, milliseconds, `Z`: `2025-08-27T19:35:37.611Z`.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Now, but strictly after `previous` at millisecond precision, so
/// `updatedAt` visibly advances on every push.
fn after(previous: SystemTime) -> SystemTime {
    let now = SystemTime::now();
    let floor = previous + Duration::from_millis(1);
    now.max(floor)
}

/// A push to store: who pushed what.
pub struct Push {
    pub owner: String,
    pub user_name: String,
    pub manifest: AppManifest,
    pub hash: String,
    pub tar: StoredTar,
}

/// Creates the record, or replaces the one with the same owner, name and
/// version (same id and createdAt, revision + 1). Returns its index.
pub fn upsert(apps: &mut Vec<AppRecord>, push: Push) -> usize {
    let existing = apps.iter().position(|a| {
        a.owner == push.owner
            && a.name() == push.manifest.name
            && a.version() == push.manifest.version
    });
    match existing {
        Some(i) => {
            let app = &mut apps[i];
            app.updated_at = after(app.updated_at);
            app.revision += 1;
            app.manifest = push.manifest;
            app.hash = push.hash;
            app.tar = push.tar;
            app.user_name = push.user_name;
            i
        }
        None => {
            let now = SystemTime::now();
            apps.push(AppRecord {
                id: uuid::Uuid::new_v4().to_string(),
                owner: push.owner,
                user_name: push.user_name,
                manifest: push.manifest,
                status: "inactive".into(),
                is_public: false,
                created_at: now,
                updated_at: now,
                hash: push.hash,
                revision: 1,
                tar: push.tar,
            });
            apps.len() - 1
        }
    }
}

/// ByteNite tags: `name@major.minor` exactly, `name@major` the highest
/// minor, `name` the highest version. An app id works too.
pub fn resolve<'a>(apps: &'a [AppRecord], owner: &str, tag: &str) -> Option<&'a AppRecord> {
    let mine = apps.iter().filter(|a| a.owner == owner);
    if let Some(app) = mine.clone().find(|a| a.id == tag) {
        return Some(app);
    }
    let (name, wanted) = match tag.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (tag, None),
    };
    let numbers = |v: &str| -> (u64, u64) {
        let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
        (major.parse().unwrap_or(0), minor.parse().unwrap_or(0))
    };
    mine.filter(|a| a.name() == name)
        .filter(|a| match wanted {
            Some(w) if w.contains('.') => a.version() == w,
            Some(major) => numbers(a.version()).0.to_string() == major,
            None => true,
        })
        .max_by_key(|a| numbers(a.version()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(name: &str, version: &str) -> Push {
        Push {
            owner: "o".into(),
            user_name: "u".into(),
            manifest: AppManifest {
                name: name.into(),
                version: version.into(),
                ..AppManifest::default()
            },
            hash: "h".into(),
            tar: StoredTar::empty(),
        }
    }

    #[test]
    fn a_stored_tar_lives_on_disk_until_its_last_record_goes() {
        let tar = StoredTar::store(b"archive bytes").unwrap();
        let path = tar.0.as_ref().unwrap().path().to_path_buf();
        assert_eq!(std::fs::read(&path).unwrap(), b"archive bytes");
        let copy = tar.clone();
        drop(tar);
        assert_eq!(copy.bytes().unwrap(), b"archive bytes");
        drop(copy);
        assert!(!path.exists());
        assert!(StoredTar::empty().bytes().unwrap().is_empty());
    }

    #[test]
    fn same_name_and_version_is_a_new_revision() {
        let mut apps = Vec::new();
        let a = upsert(&mut apps, push("x", "0.1"));
        let first = apps[a].clone();
        let b = upsert(&mut apps, push("x", "0.1"));
        assert_eq!(a, b);
        assert_eq!(apps[b].id, first.id);
        assert_eq!(apps[b].revision, 2);
        assert_eq!(apps[b].created_at, first.created_at);
        assert!(apps[b].updated_at > first.updated_at);
        let c = upsert(&mut apps, push("x", "0.2"));
        assert_ne!(apps[c].id, first.id);
        assert_eq!(apps[c].revision, 1);
    }

    #[test]
    fn tags_pick_the_right_version() {
        let mut apps = Vec::new();
        for v in ["1.2", "1.10", "2.0", "0.9"] {
            upsert(&mut apps, push("x", v));
        }
        let version = |tag: &str| resolve(&apps, "o", tag).map(|a| a.version().to_string());
        assert_eq!(version("x@1.2").as_deref(), Some("1.2"));
        assert_eq!(version("x@1").as_deref(), Some("1.10"));
        assert_eq!(version("x").as_deref(), Some("2.0"));
        assert_eq!(version("x@3"), None);
        assert_eq!(
            resolve(&apps, "someone-else", "x").map(|a| a.id.clone()),
            None
        );
        let id = apps[0].id.clone();
        assert_eq!(resolve(&apps, "o", &id).map(|a| a.version()), Some("1.2"));
    }

    #[test]
    fn json_has_every_field_in_protojson_form() {
        let mut apps = Vec::new();
        upsert(&mut apps, push("x", "0.1"));
        let v = apps[0].to_json("http://h");
        assert_eq!(v["revision"], "1");
        assert_eq!(v["status"], "inactive");
        assert_eq!(v["isPublic"], false);
        assert_eq!(v["deviceRequirements"]["minCpu"], 0);
        assert_eq!(v["platformConfig"]["secrets"], json!([]));
        let created = v["createdAt"].as_str().unwrap();
        assert_eq!(created.len(), 24, "{created}");
        assert!(created.ends_with('Z'));
        assert_eq!(v.as_object().unwrap().len(), 17);
    }
}
