//! Pins on blobs that a deploy is packaging: they stay on disk until the
//! deploy ends, even if the user deletes the files meanwhile.

use std::sync::Arc;

use super::MetaStore;

#[must_use = "the blobs are only kept while the pins live"]
pub struct BlobPins {
    meta: Arc<MetaStore>,
    sha256s: Vec<String>,
}

impl BlobPins {
    pub(super) fn new(meta: Arc<MetaStore>, sha256s: Vec<String>) -> BlobPins {
        BlobPins { meta, sha256s }
    }
}

impl Drop for BlobPins {
    fn drop(&mut self) {
        self.meta.unpin(&self.sha256s);
    }
}

impl std::fmt::Debug for BlobPins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobPins({} blobs)", self.sha256s.len())
    }
}
