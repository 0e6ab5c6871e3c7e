//! How far a running deploy has got, in bytes: the `progress` object of
//! `status.json`, and the counters that measure it.
//!
//! Ground floor: `package/` counts the bytes it reads and `backend/` the
//! bytes it sends with these types; the deploy layer shows them.

mod counter;
mod throttle;

use serde::{Deserialize, Serialize};

pub use counter::{count_stream, ByteCounter, CountingReader};
pub use throttle::Throttle;

/// What the bytes of a [`Progress`] count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressPhase {
    /// File content read into the package (tar or zip).
    Packaging,
    /// Request body handed to the connection.
    Uploading,
}

impl ProgressPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressPhase::Packaging => "packaging",
            ProgressPhase::Uploading => "uploading",
        }
    }
}

/// `status.json`'s `progress` while a deploy packages or uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub phase: ProgressPhase,
    pub bytes_done: u64,
    pub bytes_total: u64,
}
