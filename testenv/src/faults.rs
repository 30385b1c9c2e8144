//! An AWS fault proxy between the SDK and moto, on loopback.
//!
//! Point a process's `AWS_ENDPOINT_URL` at [`FaultProxy::url`] and every AWS call goes
//! through it. With faults off it forwards each request unchanged. With faults on, each call
//! may, by a seeded random draw:
//! - be **throttled**: answered with the service's own throttling error in its own protocol
//!   (ELBv2, IAM, STS: `Throttling` in query XML; EC2: `RequestLimitExceeded` (503);
//!   Route 53: `Throttling` in REST XML; ACM: `ThrottlingException` in JSON), without
//!   reaching moto;
//! - fail with a **5xx** (`InternalFailure`/`ServiceUnavailable`), without reaching moto;
//! - for mutating calls, be **applied but its response lost**: forwarded to moto, which
//!   applies it, and then answered with a 500, so the caller cannot know it succeeded;
//! - be **delayed** by up to the configured latency.
//!
//! Faults are switched at run time ([`FaultProxy::set`]) and every injection is counted
//! ([`FaultProxy::stats`]). The proxy serves from the caller's tokio runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::net::{TcpListener, TcpStream};

/// Creates ELBv2 answers, when repeated with the same parameters, with the resource the
/// first call made, but moto answers with a second one of the same name. Losing their
/// responses would test moto, not us, so the random draw never does (`lose_next` still can).
const NOT_IDEMPOTENT_IN_MOTO: &[&str] = &["CreateLoadBalancer", "CreateListener"];

/// What to inject, as probabilities per call (0.0 to 1.0).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    pub throttle: f64,
    pub server_error: f64,
    /// Of mutating calls only: applied by moto, then answered with a 500.
    pub lost_response: f64,
    /// Each call waits a random time up to this.
    pub max_latency: Duration,
}

impl Faults {
    pub const NONE: Faults = Faults {
        throttle: 0.0,
        server_error: 0.0,
        lost_response: 0.0,
        max_latency: Duration::ZERO,
    };
}

/// What the proxy did, in total and per `service:Operation`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub calls: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub lost_responses: u64,
    /// Calls per `service:Operation`, faults included.
    pub by_operation: BTreeMap<String, u64>,
}

impl Stats {
    pub fn injected(&self) -> u64 {
        self.throttled + self.server_errors + self.lost_responses
    }
}

struct State {
    faults: Faults,
    /// Operations whose next calls lose their responses, whatever the draw: (name, count).
    lose_next: Vec<(String, u32)>,
    rng: StdRng,
    stats: Stats,
    /// Operations whose request bodies are kept, and the bodies kept.
    record: Vec<String>,
    recorded: Vec<(String, String)>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The AWS protocol of a call, from its signing scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// ELBv2, IAM, STS.
    Query,
    Ec2,
    /// Route 53.
    RestXml,
    /// ACM.
    Json,
}

/// The service (signing name) and operation of a request.
fn identify(req: &axum::http::request::Parts, body: &[u8]) -> (String, String, Protocol, bool) {
    let service = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string();
    let protocol = match service.as_str() {
        "ec2" => Protocol::Ec2,
        "route53" => Protocol::RestXml,
        "acm" => Protocol::Json,
        _ => Protocol::Query,
    };
    let operation = match protocol {
        Protocol::Query | Protocol::Ec2 => std::str::from_utf8(body)
            .ok()
            .and_then(|b| b.split('&').find_map(|kv| kv.strip_prefix("Action=")))
            .unwrap_or("Unknown")
            .to_string(),
        Protocol::Json => req
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("Unknown")
            .to_string(),
        Protocol::RestXml => format!("{} {}", req.method, route53_resource(req.uri.path())),
    };
    let mutating = match protocol {
        Protocol::RestXml => req.method != axum::http::Method::GET,
        _ => [
            "Create",
            "Delete",
            "Modify",
            "Register",
            "Deregister",
            "Add",
            "Remove",
            "Set",
            "Authorize",
            "Revoke",
            "Change",
            "Put",
            "Tag",
            "Untag",
            "Attach",
            "Detach",
            "Update",
            "Import",
            "Request",
        ]
        .iter()
        .any(|p| operation.starts_with(p)),
    };
    (service, operation, protocol, mutating)
}

/// `/2013-04-01/hostedzone/Z1/rrset` → `hostedzone/rrset`: the resource without its IDs.
fn route53_resource(path: &str) -> String {
    path.split('/')
        .skip(2)
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join("/")
}

/// An error response as the service sends it.
fn error(protocol: Protocol, status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let (content_type, body) = match protocol {
        Protocol::Query | Protocol::RestXml => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
                if status.is_server_error() {
                    "Receiver"
                } else {
                    "Sender"
                }
            ),
        ),
        Protocol::Ec2 => (
            "text/xml",
            format!(
                "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
            ),
        ),
        Protocol::Json => (
            "application/x-amz-json-1.1",
            format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}"),
        ),
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    r
}

fn throttled(protocol: Protocol) -> Response<Body> {
    match protocol {
        Protocol::Ec2 => error(
            protocol,
            StatusCode::SERVICE_UNAVAILABLE,
            "RequestLimitExceeded",
            "Request limit exceeded.",
        ),
        Protocol::Json => error(
            protocol,
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        ),
        _ => error(
            protocol,
            StatusCode::BAD_REQUEST,
            "Throttling",
            "Rate exceeded",
        ),
    }
}

fn server_error(protocol: Protocol) -> Response<Body> {
    match protocol {
        Protocol::Ec2 => error(
            protocol,
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "An internal error has occurred (injected)",
        ),
        _ => error(
            protocol,
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "An internal error has occurred (injected)",
        ),
    }
}

/// What one call draws.
enum Draw {
    Forward,
    Throttle,
    ServerError,
    Lose,
}

async fn forward(upstream: SocketAddr, req: Request<Body>) -> Result<Response<Body>> {
    let (mut parts, body) = req.into_parts();
    let bytes = body.collect().await.context("request body")?.to_bytes();
    parts
        .headers
        .insert("host", HeaderValue::from_str(&upstream.to_string())?);
    let req = Request::from_parts(parts, http_body_util::Full::new(bytes));
    let stream = TcpStream::connect(upstream)
        .await
        .context("connect to moto")?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.context("moto request")?;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.context("moto response")?.to_bytes();
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (moto's URL, `http://127.0.0.1:port`) with faults off;
    /// `seed` fixes every draw.
    pub async fn start(upstream: &str, seed: u64) -> Result<FaultProxy> {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .context("moto URL")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            faults: Faults::NONE,
            lose_next: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            stats: Stats::default(),
            record: Vec::new(),
            recorded: Vec::new(),
        }));
        let handler_state = state.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let state = handler_state.clone();
            async move { Self::handle(&state, upstream, req).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FaultProxy { addr, state, task })
    }

    async fn handle(
        state: &Mutex<State>,
        upstream: SocketAddr,
        req: Request<Body>,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let bytes = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return Response::new(Body::empty()),
        };
        let (service, operation, protocol, mutating) = identify(&parts, &bytes);
        let (draw, delay) = {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            let f = st.faults;
            st.stats.calls += 1;
            if st.record.contains(&operation) {
                let body = String::from_utf8_lossy(&bytes).into_owned();
                st.recorded.push((operation.clone(), body));
            }
            *st.stats
                .by_operation
                .entry(format!("{service}:{operation}"))
                .or_default() += 1;
            let delay = if f.max_latency.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_millis(st.rng.random_range(0..=f.max_latency.as_millis() as u64))
            };
            let x: f64 = st.rng.random();
            let forced = st
                .lose_next
                .iter_mut()
                .find(|(op, n)| *op == operation && *n > 0)
                .map(|(_, n)| *n -= 1)
                .is_some();
            let draw = if forced {
                st.stats.lost_responses += 1;
                Draw::Lose
            } else if x < f.throttle {
                st.stats.throttled += 1;
                Draw::Throttle
            } else if x < f.throttle + f.server_error {
                st.stats.server_errors += 1;
                Draw::ServerError
            } else if mutating
                && !NOT_IDEMPOTENT_IN_MOTO.contains(&operation.as_str())
                && x < f.throttle + f.server_error + f.lost_response
            {
                st.stats.lost_responses += 1;
                Draw::Lose
            } else {
                Draw::Forward
            };
            (draw, delay)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let req = Request::from_parts(parts, Body::from(bytes));
        match draw {
            Draw::Throttle => throttled(protocol),
            Draw::ServerError => server_error(protocol),
            Draw::Lose => {
                let _ = forward(upstream, req).await;
                server_error(protocol)
            }
            Draw::Forward => match forward(upstream, req).await {
                Ok(r) => r,
                Err(e) => error(
                    protocol,
                    StatusCode::BAD_GATEWAY,
                    "ProxyError",
                    &format!("{e:#}"),
                ),
            },
        }
    }

    /// The URL to use as `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches faults (from the next call on).
    pub fn set(&self, faults: Faults) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).faults = faults;
    }

    /// The next `n` calls of `operation` (e.g. `CreateRule`) are applied and their responses
    /// lost, whatever the probabilities.
    pub fn lose_next(&self, operation: &str, n: u32) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lose_next
            .push((operation.to_string(), n));
    }

    /// From now on, keeps the request bodies of `operation` calls (e.g. `AssumeRole`, to
    /// read the parameters a client sent).
    pub fn record(&self, operation: &str) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record
            .push(operation.to_string());
    }

    /// The request bodies of recorded `operation` calls, oldest first.
    pub fn recorded(&self, operation: &str) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recorded
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, body)| body.clone())
            .collect()
    }

    pub fn stats(&self) -> Stats {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stats
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route53_resources_drop_their_ids() {
        assert_eq!(
            route53_resource("/2013-04-01/hostedzone/Z123/rrset"),
            "hostedzone/rrset"
        );
        assert_eq!(route53_resource("/2013-04-01/hostedzone"), "hostedzone");
    }
}
