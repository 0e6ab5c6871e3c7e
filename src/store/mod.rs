//! The content-addressed store on disk: immutable blobs named by SHA-256
//! (or, for files with holes, by a sparse form of it), temp files for
//! content being written, and lost+found for content that nothing names at
//! mount.

mod blobs;
pub mod lost_found;
mod sparse;

pub use blobs::{hash_file, hash_open_file, object_path, BlobInfo, ContentStore};
pub use lost_found::{lost_found_dir, SetAside, LOST_FOUND_DIR};
pub use sparse::{blob_name, looks_sparse, parse_blob_name, read_full_at, seek, BlobReader};
