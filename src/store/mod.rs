//! The content-addressed store on disk: immutable blobs named by SHA-256,
//! temp files for content being written, and lost+found for content that
//! nothing names at mount.

mod blobs;
pub mod lost_found;

pub use blobs::{hash_file, BlobInfo, ContentStore};
pub use lost_found::{lost_found_dir, SetAside, LOST_FOUND_DIR};
