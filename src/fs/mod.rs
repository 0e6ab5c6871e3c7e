//! The FUSE adapter: the only code that knows fuser.
