//! The push request's body, `{"data":"<base64 of the tar>"}`, streamed.
//!
//! A blocking thread writes the tar through a SHA-256 counter and a base64
//! encoder into a small bounded channel; the channel is the request body.
//! Memory stays at a few chunks whatever the app's size, and the digest of
//! exactly the bytes sent is known when the body ends. Packaging and sending
//! are one stream, so progress counts only the body's bytes, as sent.

use std::io::{self, Write};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::write::EncoderWriter;
use base64::Engine;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::package::tar::TarPackage;
use crate::progress::{count_stream, ByteCounter};

const PREFIX: &[u8] = br#"{"data":""#;
const SUFFIX: &[u8] = br#""}"#;
/// Bytes per body chunk, and chunks in flight: bounds the memory used.
const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

/// What the writer thread saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarDigest {
    pub len: u64,
    /// base64 (standard, padded) of the SHA-256 of the tar: ByteNite's `hash` form.
    pub sha256_base64: String,
}

#[derive(Debug)]
pub enum WriteFailure {
    /// The request stopped reading (connection error, early answer).
    Abandoned,
    /// Reading a blob failed: the deploy fails locally, not on the network.
    Io(io::Error),
}

pub struct StreamedBody {
    pub body: reqwest::Body,
    /// The JSON body's exact length, for `Content-Length`.
    pub content_length: u64,
    /// The body's bytes the request has taken so far.
    pub sent: ByteCounter,
    pub writer: JoinHandle<Result<TarDigest, WriteFailure>>,
}

/// Length of the JSON body for a tar of `tar_len` bytes.
pub fn body_length(tar_len: u64) -> u64 {
    PREFIX.len() as u64 + tar_len.div_ceil(3) * 4 + SUFFIX.len() as u64
}

/// Starts writing `package` (`tar_len` bytes long) into a streamed body.
pub fn stream_body(package: Arc<TarPackage>, tar_len: u64) -> StreamedBody {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let writer = tokio::task::spawn_blocking(move || {
        let err_tx = tx.clone();
        let result = write_body(&package, tx);
        result.map_err(|err| {
            if err_tx.is_closed() {
                WriteFailure::Abandoned
            } else {
                // Make the body fail, so the server never sees a truncated
                // archive as a complete request.
                let _ = err_tx.blocking_send(Err(io::Error::new(err.kind(), err.to_string())));
                WriteFailure::Io(err)
            }
        })
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let sent = ByteCounter::new();
    StreamedBody {
        body: reqwest::Body::wrap_stream(count_stream(stream, sent.clone())),
        content_length: body_length(tar_len),
        sent,
        writer,
    }
}

fn write_body(package: &TarPackage, tx: mpsc::Sender<io::Result<Bytes>>) -> io::Result<TarDigest> {
    let mut sink = ChunkSender {
        tx,
        buf: Vec::with_capacity(CHUNK),
    };
    sink.write_all(PREFIX)?;
    let mut hashing = HashingWriter {
        inner: EncoderWriter::new(sink, &STANDARD),
        hasher: Sha256::new(),
        len: 0,
    };
    package.write(&mut hashing)?;
    let HashingWriter {
        mut inner,
        hasher,
        len,
    } = hashing;
    let mut sink = inner.finish()?;
    sink.write_all(SUFFIX)?;
    sink.flush()?;
    Ok(TarDigest {
        len,
        sha256_base64: STANDARD.encode(hasher.finalize()),
    })
}

/// Base64 of the SHA-256 of `bytes`, as ByteNite reports an archive's hash.
pub fn hash_base64(bytes: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(bytes))
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Cuts what it is given into chunks and hands them to the request.
struct ChunkSender {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChunkSender {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped reading"))
    }
}

impl Write for ChunkSender {
    /// Always takes all of `buf`: base64's encoder answers a short write
    /// with `Ok(0)` on its next call, which `write_all` treats as an error.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= CHUNK {
            self.send_buffer()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tar::{TarBody, TarItem};

    fn package(size: usize) -> TarPackage {
        let mut package = TarPackage::new();
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        package.insert(TarItem {
            path: "app/data.bin".into(),
            mode: 0o644,
            body: TarBody::Bytes(data),
        });
        package
    }

    #[tokio::test]
    async fn body_is_json_with_the_base64_tar_and_its_digest() {
        // Large enough for several chunks, odd enough to need padding.
        let package = Arc::new(package(700_001));
        let mut tar = Vec::new();
        let tar_len = package.write(&mut tar).unwrap();
        let streamed = stream_body(package.clone(), tar_len);
        let body_len = streamed.content_length;
        let body = axum::body::to_bytes(axum::body::Body::new(streamed.body), usize::MAX)
            .await
            .unwrap();
        let digest = streamed.writer.await.unwrap().unwrap();
        assert_eq!(body.len() as u64, body_len);
        assert_eq!(streamed.sent.get(), body_len, "every byte taken is counted");
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let decoded = STANDARD.decode(value["data"].as_str().unwrap()).unwrap();
        assert_eq!(decoded, tar);
        assert_eq!(digest.len, tar_len);
        assert_eq!(digest.sha256_base64, hash_base64(&tar));
    }

    #[test]
    fn body_length_counts_base64_padding() {
        assert_eq!(body_length(0), 11);
        assert_eq!(body_length(1), 15);
        assert_eq!(body_length(3), 15);
        assert_eq!(body_length(4), 19);
    }

    #[tokio::test]
    async fn a_dropped_body_stops_the_writer() {
        let package = Arc::new(package(3_000_000));
        let tar_len = package.size().unwrap();
        let streamed = stream_body(package, tar_len);
        drop(streamed.body);
        let result = streamed.writer.await.unwrap();
        assert!(matches!(result, Err(WriteFailure::Abandoned)), "{result:?}");
    }
}
