//! Byte counters that a reader or a body stream advances as data passes.
//!
//! The counter is shared (an atomic behind an `Arc`) because the bytes move
//! on a blocking thread or inside the HTTP client, while whoever reports
//! them runs elsewhere and only reads the number.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::{Stream, StreamExt};

/// A count of bytes, shared between the code moving them and its observer.
#[derive(Debug, Clone, Default)]
pub struct ByteCounter(Arc<AtomicU64>);

impl ByteCounter {
    pub fn new() -> ByteCounter {
        ByteCounter::default()
    }

    pub fn add(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Starts over, for a request that is sent again from its first byte.
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Counts every byte read through it.
pub struct CountingReader<R> {
    inner: R,
    counter: ByteCounter,
}

impl<R> CountingReader<R> {
    pub fn new(inner: R, counter: ByteCounter) -> CountingReader<R> {
        CountingReader { inner, counter }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.add(n as u64);
        Ok(n)
    }
}

/// `stream` with every chunk counted as the consumer takes it. For a
/// request body that is when the HTTP client hands it to the connection,
/// so the count runs at most a socket buffer ahead of the server.
pub fn count_stream<S, B, E>(stream: S, counter: ByteCounter) -> impl Stream<Item = Result<B, E>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    stream.inspect(move |item| {
        if let Ok(chunk) = item {
            counter.add(chunk.as_ref().len() as u64);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_counts_what_it_reads_and_passes_it_through() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let counter = ByteCounter::new();
        let mut reader = CountingReader::new(data.as_slice(), counter.clone());
        let mut first = [0u8; 100];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(counter.get(), 100);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(counter.get(), 10_000);
        assert_eq!([&first[..], &rest[..]].concat(), data);
    }

    #[test]
    fn a_failed_read_counts_nothing() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let counter = ByteCounter::new();
        let mut reader = CountingReader::new(Broken, counter.clone());
        assert!(reader.read(&mut [0u8; 8]).is_err());
        assert_eq!(counter.get(), 0);
    }

    #[tokio::test]
    async fn a_stream_counts_chunks_as_they_are_taken_and_skips_errors() {
        let chunks: Vec<Result<Vec<u8>, &str>> =
            vec![Ok(vec![1; 300]), Err("broken"), Ok(vec![2; 700])];
        let counter = ByteCounter::new();
        let mut stream = Box::pin(count_stream(futures::stream::iter(chunks), counter.clone()));
        assert_eq!(counter.get(), 0, "nothing is counted before it is taken");
        assert_eq!(stream.next().await.unwrap().unwrap().len(), 300);
        assert_eq!(counter.get(), 300);
        assert!(stream.next().await.unwrap().is_err());
        assert_eq!(counter.get(), 300);
        stream.next().await.unwrap().unwrap();
        assert!(stream.next().await.is_none());
        assert_eq!(counter.get(), 1000);
        counter.reset();
        assert_eq!(counter.get(), 0);
    }
}
