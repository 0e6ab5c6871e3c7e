//! The content-addressed store on disk: immutable blobs named by SHA-256
//! (or, for files with holes, by a sparse form of it), and temp files for
//! content being written.

mod blobs;
mod sparse;

pub use blobs::{hash_file, BlobInfo, ContentStore};
pub use sparse::{looks_sparse, seek, BlobReader};
