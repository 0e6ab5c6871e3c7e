//! Per-app deploy lifecycle: settle timer, snapshot, single-flight queue,
//! retries and persisted state; drives a [`crate::backend::Backend`].

pub mod snapshot;
