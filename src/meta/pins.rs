//! Pins on blobs that a deploy is packaging: they stay on disk until the
//! deploy ends, even if the user deletes the files meanwhile.
//!
//! A deploy pins its snapshot's blobs as one set: sorted, each blob once,
//! its SHA-256 as 32 bytes and one for its form (dense or sparse). A
//! million files of few distinct contents pin a few entries, and a million
//! distinct ones 33 MB, not a hex string each.

use std::sync::Arc;

use super::MetaStore;

/// A blob's name as bytes: its SHA-256, then 1 for a sparse address
/// (`<hex>.sparse`) or 0.
pub type Sha256 = [u8; 33];

/// The key of the blob named `name` in the store, if it is a blob name.
pub(super) fn key_of(name: &str) -> Option<Sha256> {
    let (digest, sparse) = crate::store::parse_blob_name(name)?;
    let mut key = [0u8; 33];
    key[..32].copy_from_slice(&digest);
    key[32] = u8::from(sparse);
    Some(key)
}

/// The store's name of the blob keyed `key`.
pub(super) fn name_of(key: &Sha256) -> String {
    let digest: &[u8; 32] = key[..32].try_into().expect("a key starts with 32 bytes");
    crate::store::blob_name(digest, key[32] == 1)
}

/// The sets of blobs pinned by running deploys. Locked after the engine's
/// connection, never before.
#[derive(Default)]
pub(super) struct PinTable {
    sets: Vec<Arc<[Sha256]>>,
}

impl PinTable {
    /// Whether any deploy pins the blob named by this lowercase hex SHA-256.
    pub(super) fn contains(&self, sha256: &str) -> bool {
        key_of(sha256).is_some_and(|key| self.contains_key(&key))
    }

    fn contains_key(&self, key: &Sha256) -> bool {
        self.sets.iter().any(|set| set.binary_search(key).is_ok())
    }

    pub(super) fn add(&mut self, set: Arc<[Sha256]>) {
        self.sets.push(set);
    }

    /// Drops `set` and returns the blobs no other set pins.
    pub(super) fn remove<'a>(&mut self, set: &'a Arc<[Sha256]>) -> Vec<&'a Sha256> {
        if let Some(at) = self.sets.iter().position(|s| Arc::ptr_eq(s, set)) {
            self.sets.swap_remove(at);
        }
        set.iter().filter(|sha| !self.contains_key(sha)).collect()
    }
}

#[must_use = "the blobs are only kept while the pins live"]
pub struct BlobPins {
    meta: Arc<MetaStore>,
    set: Arc<[Sha256]>,
}

impl BlobPins {
    /// `sha256s` may name a blob many times; the set holds it once.
    pub(super) fn new(meta: Arc<MetaStore>, sha256s: impl IntoIterator<Item = Sha256>) -> BlobPins {
        let mut set: Vec<Sha256> = sha256s.into_iter().collect();
        set.sort_unstable();
        set.dedup();
        BlobPins {
            meta,
            set: set.into(),
        }
    }

    pub(super) fn set(&self) -> &Arc<[Sha256]> {
        &self.set
    }

    /// How many distinct blobs the pins hold.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

impl Drop for BlobPins {
    fn drop(&mut self) {
        self.meta.unpin(&self.set);
    }
}

impl std::fmt::Debug for BlobPins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobPins({} blobs)", self.set.len())
    }
}
