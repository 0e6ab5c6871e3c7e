//! A file whose blob is gone from the store: the engine names bytes that
//! are not on disk (deleted by hand, or a damaged state directory). That
//! is an I/O error of the file, never "no such file": the name exists.

use std::fs::File;
use std::io;

use super::{path_from, Ino, Tree, TreeError, TreeResult, ROOT_INO};
use crate::meta::Txn;

impl Tree {
    /// Opens the blob `sha256` of `ino` for reading, under the engine's
    /// read view `txn` (so the path can be named if it is missing).
    pub(super) fn open_blob(&self, txn: &Txn, ino: Ino, sha256: &str) -> TreeResult<File> {
        File::open(self.store.blob_path(sha256))
            .map_err(|err| missing_blob(err, || path_from(txn, ROOT_INO, ino), sha256))
    }

    /// Maps an error reading the blob `sha256` of `ino` with no engine
    /// view held.
    pub(super) fn blob_error(&self, err: io::Error, ino: Ino, sha256: &str) -> TreeError {
        missing_blob(
            err,
            || {
                self.meta
                    .read()
                    .ok()
                    .and_then(|txn| path_from(&txn, ROOT_INO, ino))
            },
            sha256,
        )
    }
}

fn missing_blob(err: io::Error, path: impl FnOnce() -> Option<String>, sha256: &str) -> TreeError {
    if err.kind() != io::ErrorKind::NotFound {
        return TreeError::Io(err);
    }
    let path = path().unwrap_or_else(|| String::from("(a file with no name left)"));
    tracing::error!(
        path = %path,
        blob = sha256,
        "the content of {path} is missing from the state directory (blob {sha256}); reads fail with EIO. `pushfs fsck` on the unmounted state directory tells whether lost+found holds it"
    );
    TreeError::Io(io::Error::from_raw_os_error(libc::EIO))
}
