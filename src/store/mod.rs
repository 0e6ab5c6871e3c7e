//! The content-addressed store on disk: immutable blobs named by SHA-256,
//! and temp files for content being written.

mod blobs;

pub use blobs::{hash_file, object_path, BlobInfo, ContentStore};
