//! STUB: deterministic tar writer (ByteNite work).
