//! Hostile HTTP servers on loopback, written on raw TCP so they can send
//! what no well-behaved framework would: redirects to another origin,
//! endless bodies, control characters. A [`Witness`] on 127.0.0.2 records
//! anything a client sends where it was redirected.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the hostile server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers.
pub enum Reply {
    /// Written as is, then the connection closes.
    Raw(Vec<u8>),
    /// A 200 with a chunked body that never ends; the bytes written so far
    /// are counted in [`Hostile::endless_sent`].
    EndlessChunked,
    /// A 200 whose head promises `content-length` bytes, then sends them
    /// slowly, 64 KiB at a time.
    Huge(u64),
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Raw(
            format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }

    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::Raw(
            format!(
                "HTTP/1.1 {status} X\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .into_bytes(),
        )
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A server on 127.0.0.1 answering each request with `handler`.
pub struct Hostile {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    endless: Arc<Mutex<Endless>>,
    task: tokio::task::JoinHandle<()>,
}

/// What the endless bodies cost the server so far.
#[derive(Debug, Default, Clone, Copy)]
pub struct Endless {
    pub sent: u64,
    /// Bodies whose client hung up.
    pub ended: usize,
}

impl Hostile {
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let endless = Arc::new(Mutex::new(Endless::default()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, e) = (seen.clone(), endless.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, e, h) = (s.clone(), e.clone(), handler.clone());
                tokio::spawn(async move { serve_one(stream, s, e, h).await });
            }
        });
        Hostile {
            url,
            seen,
            endless,
            task,
        }
    }

    /// The same server over TLS, with the certificate of
    /// `tests/fixtures/tls/leaf.pem` (for 127.0.0.1, issued by `ca.pem`).
    pub async fn start_tls(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Hostile {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls;

        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
        let chain = CertificateDer::pem_file_iter(fixtures.join("leaf.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(fixtures.join("leaf.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let endless = Arc::new(Mutex::new(Endless::default()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, e) = (seen.clone(), endless.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, e, h) = (s.clone(), e.clone(), handler.clone());
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_one(stream, s, e, h).await;
                    }
                });
            }
        });
        Hostile {
            url,
            seen,
            endless,
            task,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    pub fn endless(&self) -> Endless {
        *self.endless.lock()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    seen: Arc<Mutex<Vec<Seen>>>,
    endless: Arc<Mutex<Endless>>,
    handler: Arc<Handler>,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    seen.lock().push(request.clone());
    match handler(&request) {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::EndlessChunked => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b' '; 64 * 1024];
            let framed = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk,
                b"\r\n".to_vec(),
            ]
            .concat();
            while stream.write_all(&framed).await.is_ok() {
                endless.lock().sent += framed.len() as u64;
            }
            endless.lock().ended += 1;
        }
        Reply::Huge(length) => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\n\r\n");
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b' '; 64 * 1024];
            while stream.write_all(&chunk).await.is_ok() {
                endless.lock().sent += chunk.len() as u64;
            }
            endless.lock().ended += 1;
        }
    }
}

/// Reads one request: head, then a `content-length` body.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A listener on 127.0.0.2 that records every byte it is sent: where a
/// hostile server redirects, and where nothing may arrive.
pub struct Witness {
    pub url: String,
    received: Arc<Mutex<Vec<u8>>>,
    connections: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Witness {
    pub async fn start() -> Witness {
        let listener = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (r, c) = (received.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                *c.lock() += 1;
                let r = r.clone();
                tokio::spawn(async move {
                    let mut chunk = [0u8; 8192];
                    while let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(2), stream.read(&mut chunk)).await
                    {
                        if n == 0 {
                            break;
                        }
                        r.lock().extend_from_slice(&chunk[..n]);
                    }
                    let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
                    let _ = stream.write_all(ok.as_bytes()).await;
                });
            }
        });
        Witness {
            url,
            received,
            connections,
            task,
        }
    }

    /// Asserts that no connection was made and no byte arrived.
    pub fn assert_untouched(&self) {
        let received = self.received.lock().clone();
        assert_eq!(
            *self.connections.lock(),
            0,
            "the redirect target received a connection: {:?}",
            String::from_utf8_lossy(&received)
        );
        assert!(received.is_empty());
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.task.abort();
    }
}
