//! The content-addressed store on disk: immutable blobs named by SHA-256,
//! temp files for content being written, and each app's manifest.

mod blobs;
pub mod manifest;

pub use blobs::{hash_file, BlobInfo, ContentStore};
