//! Fault injection for the emulators: fail with a status (for the next N
//! API requests, or for a while), answer slowly, read request bodies slowly,
//! or drop the connection mid-response; failures can carry a `Retry-After`
//! header.
//!
//! Set in process through [`Faults::set`], or over HTTP:
//! `curl -X POST URL/_emulator/faults -d '{"fail_next":2,"status":503}'`, or
//! `-d '{"fail_for_ms":40000,"retry_after_secs":5}'` (503 for the next 40 s),
//! `-d '{"body_bytes_per_sec":1048576}'` (a 1 MiB/s upload link), or
//! `-d '{"slow_next":1,"delay_ms":90000,"slow_path":"/v2/resource_match"}'`
//! (the next resource match hangs for 90 s).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// What the next requests suffer. Counters run down as requests arrive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultPlan {
    /// Answer this many requests with `status` and a JSON error body.
    pub fail_next: u32,
    /// Answer every request with `status` for this long after the plan is set.
    pub fail_for_ms: u64,
    /// The status for `fail_next` and `fail_for_ms` (default 503).
    pub status: Option<u16>,
    /// Send `Retry-After: <secs>` with each injected failure.
    pub retry_after_secs: Option<u64>,
    /// Drop this many requests: headers go out, then the body breaks.
    pub drop_next: u32,
    /// Delay every request by this much while `slow_next` > 0.
    pub delay_ms: u64,
    pub slow_next: u32,
    /// Only requests whose path contains this (`/v2/resource_match`,
    /// `/bits`) are slowed and counted down in `slow_next`; unset, every
    /// request is.
    pub slow_path: Option<String>,
    /// Read request bodies at most this fast (0: no limit) while the plan
    /// says so: uploads take long enough to be watched. A new plan applies
    /// to bodies already being read, so clearing it lets them finish.
    pub body_bytes_per_sec: u64,
}

/// One API request as the emulator saw it arrive, before any fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub at: Instant,
    /// `PUT /v2/resource_match`: the method and the path, no query.
    pub line: String,
}

/// The request log keeps this many, the newest: a long demo must not grow.
const SEEN_KEPT: usize = 4096;

#[derive(Debug, Default)]
pub struct Faults {
    plan: Mutex<FaultPlan>,
    /// The end of `fail_for_ms`, from when the plan was set.
    failing_until: Mutex<Option<Instant>>,
    /// When each injected failure was answered, for tests of retry spacing.
    failures: Mutex<Vec<Instant>>,
    /// Every API request, in arrival order (the newest [`SEEN_KEPT`]).
    seen: Mutex<VecDeque<SeenRequest>>,
}

enum Fault {
    None,
    Fail(StatusCode, Option<u64>),
    Drop,
}

impl Faults {
    pub fn set(&self, plan: FaultPlan) {
        *self.failing_until.lock() = (plan.fail_for_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(plan.fail_for_ms));
        *self.plan.lock() = plan;
    }

    /// When each injected failure was answered, oldest first.
    pub fn failures(&self) -> Vec<Instant> {
        self.failures.lock().clone()
    }

    /// The API requests that arrived, oldest first (the control route's
    /// are not among them).
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.set(FaultPlan::default());
    }

    /// Logs the request, then takes its share of the plan: (delay, fault).
    fn take(&self, method: &str, path: &str) -> (Duration, Fault) {
        {
            let mut seen = self.seen.lock();
            if seen.len() == SEEN_KEPT {
                seen.pop_front();
            }
            seen.push_back(SeenRequest {
                at: Instant::now(),
                line: format!("{method} {path}"),
            });
        }
        let mut plan = self.plan.lock();
        let slowed = plan
            .slow_path
            .as_deref()
            .is_none_or(|part| path.contains(part));
        let delay = if plan.slow_next > 0 && slowed {
            plan.slow_next -= 1;
            Duration::from_millis(plan.delay_ms)
        } else {
            Duration::ZERO
        };
        let failing = self
            .failing_until
            .lock()
            .is_some_and(|t| Instant::now() < t);
        let fault = if plan.fail_next > 0 || failing {
            plan.fail_next = plan.fail_next.saturating_sub(u32::from(!failing));
            let code = plan.status.unwrap_or(503);
            self.failures.lock().push(Instant::now());
            Fault::Fail(
                StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                plan.retry_after_secs,
            )
        } else if plan.drop_next > 0 {
            plan.drop_next -= 1;
            Fault::Drop
        } else {
            Fault::None
        };
        (delay, fault)
    }
}

/// Adds the fault layer and the `/_emulator/faults` control route to `api`.
pub fn wrap(api: Router, faults: Arc<Faults>) -> Router {
    let control = Router::new()
        .route("/_emulator/faults", post(set_plan))
        .with_state(faults.clone());
    api.layer(middleware::from_fn_with_state(faults, inject))
        .merge(control)
}

/// Takes the plan as JSON whatever the content type, so a bare `curl -d` works.
async fn set_plan(State(faults): State<Arc<Faults>>, body: bytes::Bytes) -> Response {
    match serde_json::from_slice::<FaultPlan>(&body) {
        Ok(plan) => {
            faults.set(plan);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => (
            StatusCode::BAD_REQUEST,
            format!("not a fault plan: {err}\n"),
        )
            .into_response(),
    }
}

async fn inject(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    let (delay, fault) = faults.take(request.method().as_str(), request.uri().path());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let request = if faults.plan.lock().body_bytes_per_sec > 0 {
        let (parts, body) = request.into_parts();
        let paced = faults.clone();
        let body = super::throttle::throttled(body, move || paced.plan.lock().body_bytes_per_sec);
        Request::from_parts(parts, body)
    } else {
        request
    };
    match fault {
        Fault::None => next.run(request).await,
        Fault::Fail(status, retry_after) => {
            let body = Json(serde_json::json!({
                "code": status.as_u16(),
                "message": "fault injected by the emulator",
            }));
            let mut response = (status, body).into_response();
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, secs.into());
            }
            response
        }
        Fault::Drop => {
            let broken = futures::stream::once(async {
                Err::<bytes::Bytes, std::io::Error>(std::io::Error::other(
                    "dropped by the emulator",
                ))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(broken))
                .expect("static response parts are valid")
        }
    }
}
