//! The one HTTP client every backend builds, and the rules its requests keep:
//! a credential never follows a redirect to another origin.
//!
//! Every answer is read through [`body`] or [`text`], which stop at
//! [`BODY_LIMIT`] while the bytes arrive: a server that sends a gigabyte,
//! or never stops, costs the mount 16 MiB at most.
//!
//! API requests carry secrets in headers (a ByteNite token, Flux's
//! `zelidauth`, a CF bearer token) or in the body (an API key, a UAA refresh
//! token). reqwest would re-send them wherever a `Location` points, so the
//! client's own policy refuses every redirect to another scheme, host or
//! port, and [`send`] follows a same-origin redirect only for a GET, which
//! carries no body and changes nothing on the server.

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use reqwest::header::LOCATION;
use reqwest::{redirect, Method, RequestBuilder, Response, Url};
use thiserror::Error;

/// The most of one answer pushfs reads. Real answers are a few KiB (a CF
/// page of 5,000 resource matches is about 1 MiB).
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// More hops than any real API needs; a loop ends here.
const MAX_REDIRECTS: usize = 5;

#[derive(Debug, Error)]
pub enum HttpError {
    #[error(
        "the server redirected {method} {from} to {location}; pushfs follows a redirect only for a GET \
         to the same scheme, host and port, because API requests carry credentials: if the new address \
         is right, put it in the backend's url"
    )]
    Redirected {
        method: Method,
        from: String,
        location: String,
    },
    /// The policy's refusal, seen by a caller that did not go through [`send`].
    #[error(
        "the server redirected a request to {location}, another scheme, host or port; pushfs does not \
         follow it, because API requests carry credentials: if the new address is right, put it in \
         the backend's url"
    )]
    CrossOrigin { location: String },
    #[error("more than {MAX_REDIRECTS} redirects from {from}; the last one pointed to {location}")]
    TooManyRedirects { from: String, location: String },
    #[error(
        "the server's answer to {url} is larger than {} MiB, the most pushfs reads of one answer; it stopped reading there",
        BODY_LIMIT / (1024 * 1024)
    )]
    BodyTooLarge { url: String },
    /// Final: the same certificate is refused on every retry.
    #[error(
        "the TLS certificate of {url} was refused ({detail}); if the server uses a private CA, \
         set ca_file = \"/path/to/ca.pem\" in the backend's section of the config; \
         skip_ssl_validation = true accepts any certificate (insecure)"
    )]
    Certificate { url: String, detail: String },
    #[error("cannot use ca_file {}: {detail}", path.display())]
    CaFile { path: PathBuf, detail: String },
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// A backend's TLS settings: `ca_file` and `skip_ssl_validation`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsSettings {
    /// PEM certificates trusted besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate; warned about at mount.
    pub skip_validation: bool,
}

/// [`client_builder`] with `tls` applied; a `ca_file` that cannot be read
/// or holds no certificate is an error naming it.
pub fn client_builder_with(tls: &TlsSettings) -> Result<reqwest::ClientBuilder, HttpError> {
    let mut builder = client_builder().danger_accept_invalid_certs(tls.skip_validation);
    if let Some(path) = &tls.ca_file {
        for certificate in read_ca_file(path)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder)
}

/// [`client_builder_with`], for a constructor that cannot fail: a bad
/// `ca_file` was refused at mount ([`read_ca_file`] in the config check),
/// so one that went bad since is logged and left out.
pub fn tls_client_builder(tls: &TlsSettings) -> reqwest::ClientBuilder {
    client_builder_with(tls).unwrap_or_else(|err| {
        tracing::error!(%err, "the TLS settings are ignored");
        client_builder().danger_accept_invalid_certs(tls.skip_validation)
    })
}

/// The certificates in a PEM file; at least one.
pub fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, HttpError> {
    let fail = |detail: String| HttpError::CaFile {
        path: path.to_path_buf(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.to_string()))?;
    if certificates.is_empty() {
        return Err(fail("it holds no PEM certificate".into()));
    }
    Ok(certificates)
}

/// The client builder every backend starts from: redirects to another
/// origin are refused, and a same-origin one is handed back to [`send`].
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().redirect(redirect::Policy::custom(|attempt| {
        let from = attempt.previous().last().cloned();
        match from {
            Some(from) if same_origin(&from, attempt.url()) => attempt.stop(),
            _ => {
                let refused = CrossOrigin {
                    location: attempt.url().to_string(),
                };
                attempt.error(refused)
            }
        }
    }))
}

/// Sends `request`, following a same-origin redirect of a GET; any other
/// redirect is an error that names its `Location`.
pub async fn send(request: RequestBuilder) -> Result<Response, HttpError> {
    let (client, request) = request.build_split();
    let mut request = request?;
    let first = shown_url(request.url());
    for _ in 0..=MAX_REDIRECTS {
        let method = request.method().clone();
        let from = request.url().clone();
        // Only a GET is ever sent again; its clone has no body to lose.
        let again = (method == Method::GET)
            .then(|| request.try_clone())
            .flatten();
        let response = match client.execute(request).await {
            Ok(response) => response,
            Err(err) => match certificate_problem(&err) {
                Some(detail) => {
                    return Err(HttpError::Certificate {
                        url: shown_url(&from),
                        detail,
                    })
                }
                None => return Err(refused_by_policy(err, &method, &from)),
            },
        };
        let Some(location) = redirect_target(&response) else {
            return Ok(response);
        };
        let target = from.join(&location);
        match (again, target) {
            (Some(mut next), Ok(target)) if same_origin(&from, &target) => {
                *next.url_mut() = target;
                request = next;
            }
            _ => {
                return Err(HttpError::Redirected {
                    method,
                    from: shown_url(&from),
                    location,
                })
            }
        }
    }
    Err(HttpError::TooManyRedirects {
        from: first,
        location: shown_url(request.url()),
    })
}

/// The whole body of `response`, refused once it passes [`BODY_LIMIT`]:
/// checked against `content-length` first, then chunk by chunk.
pub async fn body(mut response: Response) -> Result<Bytes, HttpError> {
    let too_large = |response: &Response| HttpError::BodyTooLarge {
        url: shown_url(response.url()),
    };
    if response
        .content_length()
        .is_some_and(|len| len > BODY_LIMIT as u64)
    {
        return Err(too_large(&response));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(too_large(&response));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// [`body`] as text; invalid UTF-8 becomes U+FFFD.
pub async fn text(response: Response) -> Result<String, HttpError> {
    let body = body(response).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The `Location` of a redirect, as the server wrote it; `None` for any
/// other answer (a 304 has no `Location` and is an answer).
fn redirect_target(response: &Response) -> Option<String> {
    if !response.status().is_redirection() {
        return None;
    }
    let location = response.headers().get(LOCATION)?;
    Some(shown_text(location.as_bytes()))
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A URL for a message: no query string, which may carry a parameter the
/// user would not want in a log.
fn shown_url(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_password(None);
    url.to_string()
}

fn shown_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .flat_map(char::escape_debug)
        .collect()
}

/// What rustls said about the server's certificate, when that is why the
/// request failed. rustls's error is not ours to downcast (it is wrapped
/// in an io::Error whose source skips it), so its words are looked for.
fn certificate_problem(err: &reqwest::Error) -> Option<String> {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if let Some(at) = text.find("invalid peer certificate") {
            return Some(text[at..].to_string());
        }
        source = cause.source();
    }
    None
}

/// The error our redirect policy gives reqwest, found again in its source chain.
#[derive(Debug)]
struct CrossOrigin {
    location: String,
}

impl fmt::Display for CrossOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redirect to another origin refused: {}", self.location)
    }
}

impl std::error::Error for CrossOrigin {}

fn refused_by_policy(err: reqwest::Error, method: &Method, from: &Url) -> HttpError {
    match cross_origin_location(&err) {
        Some(location) => HttpError::Redirected {
            method: method.clone(),
            from: shown_url(from),
            location,
        },
        None => HttpError::Transport(err),
    }
}

/// The refused `Location` when `err` is our policy's refusal.
pub(crate) fn cross_origin_location(err: &reqwest::Error) -> Option<String> {
    if !err.is_redirect() {
        return None;
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<CrossOrigin>() {
            return Some(shown_text(refused.location.as_bytes()));
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(
            &url("https://api.example.com/v1/x"),
            &url("https://api.example.com:443/other")
        ));
        assert!(!same_origin(
            &url("http://api.example.com/"),
            &url("https://api.example.com/")
        ));
        assert!(!same_origin(
            &url("http://127.0.0.1:8080/"),
            &url("http://127.0.0.2:8080/")
        ));
        assert!(!same_origin(
            &url("http://127.0.0.1:8080/"),
            &url("http://127.0.0.1:8081/")
        ));
    }

    #[test]
    fn a_shown_url_drops_the_query_and_password() {
        let url = Url::parse("https://u:pw@h.example/p?token=abc#f").unwrap();
        assert_eq!(shown_url(&url), "https://u@h.example/p");
    }
}
