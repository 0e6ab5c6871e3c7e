//! Packaging helpers shared by the backends: deterministic archives and
//! fingerprints. (The ignore rules sit on the ground floor, in `crate::ignore`.)

pub mod fingerprint;
pub use crate::ignore;
pub mod tar;
pub mod zip;
