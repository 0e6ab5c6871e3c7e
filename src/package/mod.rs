//! Packaging helpers shared by the backends: ignore rules, deterministic archives.

pub mod ignore;
pub mod tar;
