//! Each app's manifest on disk (path -> blob, size, mode, sha1), written atomically.
