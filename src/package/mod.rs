//! Packaging helpers shared by the backends: ignore rules, deterministic archives.

pub mod fingerprint;
pub mod ignore;
pub mod tar;
pub mod zip;
