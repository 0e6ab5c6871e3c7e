//! A request body read no faster than a given rate: a slow network, for
//! tests that watch an upload while it is under way.

use std::time::Duration;

use axum::body::Body;
use futures::StreamExt;

/// `body`, each chunk held back as long as `rate()` bytes a second allow
/// (0: not at all). The rate is asked again for every chunk, so a test can
/// slow an upload down to watch it and then let it finish at full speed.
/// The server reads the body that slowly, so the client's sends back up
/// behind it as on a slow link.
pub fn throttled(body: Body, rate: impl Fn() -> u64 + Send + Sync + 'static) -> Body {
    let paced = futures::stream::unfold(
        (body.into_data_stream(), rate),
        |(mut stream, rate)| async move {
            let item = stream.next().await?;
            let len = item.as_ref().map_or(0, |chunk| chunk.len() as u64);
            let per_sec = rate();
            if per_sec > 0 {
                tokio::time::sleep(Duration::from_secs_f64(len as f64 / per_sec as f64)).await;
            }
            Some((item, (stream, rate)))
        },
    );
    Body::from_stream(paced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use tokio::time::Instant;

    fn body_of(data: &[u8]) -> Body {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            data.chunks(1_000).map(|c| Ok(c.to_vec())).collect();
        Body::from_stream(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn a_body_takes_at_least_as_long_as_its_rate_says_and_stays_whole() {
        let data: Vec<u8> = (0..30_000u32).map(|i| (i % 253) as u8).collect();
        let started = Instant::now();
        let body = throttled(body_of(&data), || 100_000);
        let read = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(read.as_ref(), data.as_slice());
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn lifting_the_limit_lets_the_rest_through_at_once() {
        let data = vec![9u8; 1_000_000];
        let rate = Arc::new(AtomicU64::new(1_000));
        let limit = rate.clone();
        let mut stream =
            throttled(body_of(&data), move || limit.load(Ordering::SeqCst)).into_data_stream();
        // The first chunk alone would take a second at 1000 bytes a second.
        rate.store(0, Ordering::SeqCst);
        let mut read = 0;
        let all = async {
            while let Some(chunk) = stream.next().await {
                read += chunk.unwrap().len();
            }
        };
        tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .expect("the rate is asked for each chunk, not once");
        assert_eq!(read, data.len());
    }
}
