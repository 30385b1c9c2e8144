//! The instance-metadata API as pods see it.
//!
//! - `PUT /latest/api/token` issues IMDSv2 tokens (TTL from
//!   `X-aws-ec2-metadata-token-ttl-seconds`); with `--require-imdsv2`, reads need one.
//! - `…/iam/security-credentials/` lists the pod's role; `…/<role>` returns its
//!   credentials in EC2's (and kube2iam's) JSON; any other role is 403.
//! - `…/iam/info` describes the pod's role, never the node's.
//! - A short allow-list is proxied to the real metadata service; everything else is 404.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::time::Instant;

use super::credentials::Served;
use super::resolve::Denial;
use super::upstream::Upstream;
use super::{Agent, Identified};

pub const TOKEN_PATH: &str = "/latest/api/token";
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
pub const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const CREDENTIALS_PREFIX: &str = "/latest/meta-data/iam/security-credentials/";
const INFO_PATH: &str = "/latest/meta-data/iam/info";
const MAX_TOKEN_TTL: u64 = 21_600;
const MAX_TOKENS: usize = 100_000;

/// Harmless paths proxied to the real metadata service; `--metadata-allow-path` adds more.
pub const DEFAULT_PROXY_PATHS: [&str; 4] = [
    "/latest/meta-data/placement/region",
    "/latest/meta-data/placement/availability-zone",
    "/latest/meta-data/placement/availability-zone-id",
    "/latest/dynamic/instance-identity/document",
];

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub require_token: bool,
    pub proxy_paths: Vec<String>,
}

pub struct MetadataServer {
    agent: Arc<Agent>,
    config: ServerConfig,
    upstream: Upstream,
    /// Token → (client IP, expiry). Tokens are bound to the IP they were issued to.
    tokens: Mutex<HashMap<String, (IpAddr, Instant)>>,
}

/// EC2's timestamp format, `2006-01-02T15:04:05Z` (whole seconds).
pub fn timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DateTime::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))
        .fmt(Format::DateTime)
        .unwrap_or_default()
}

/// Field order and names exactly as EC2 and kube2iam serve them.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CredentialsDocument<'a> {
    pub code: &'static str,
    pub last_updated: String,
    #[serde(rename = "Type")]
    pub type_: &'static str,
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub token: &'a str,
    pub expiration: String,
}

impl<'a> CredentialsDocument<'a> {
    pub fn new(served: &'a Served) -> Self {
        CredentialsDocument {
            code: "Success",
            last_updated: timestamp(served.last_updated),
            type_: "AWS-HMAC",
            access_key_id: &served.creds.access_key_id,
            secret_access_key: &served.creds.secret_access_key,
            token: &served.creds.session_token,
            expiration: timestamp(served.creds.expiration),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InfoDocument {
    code: &'static str,
    last_updated: String,
    instance_profile_arn: String,
    instance_profile_id: String,
}

pub(super) fn text(status: u16, body: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

pub(super) fn json(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Unwraps IPv4 addresses that arrive IPv4-mapped on a dual-stack socket.
pub(super) fn client_ip(addr: SocketAddr) -> IpAddr {
    match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        ip => ip,
    }
}

pub fn router(server: Arc<MetadataServer>) -> Router {
    Router::new().fallback(handle).with_state(server)
}

impl MetadataServer {
    pub fn new(agent: Arc<Agent>, config: ServerConfig, upstream: Upstream) -> Self {
        MetadataServer {
            agent,
            config,
            upstream,
            tokens: Mutex::default(),
        }
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, (IpAddr, Instant)>> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn issue_token(&self, ip: IpAddr, headers: &HeaderMap) -> Response {
        if headers.contains_key("x-forwarded-for") {
            // As EC2 does: a token request relayed by a proxy is refused.
            return text(403, "token requests through a proxy are refused");
        }
        let ttl = headers
            .get(TOKEN_TTL_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ttl| (1..=MAX_TOKEN_TTL).contains(ttl));
        let Some(ttl) = ttl else {
            return text(
                400,
                format!("{TOKEN_TTL_HEADER} must be 1 to {MAX_TOKEN_TTL}"),
            );
        };
        let token: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let now = Instant::now();
        {
            let mut tokens = self.tokens();
            if tokens.len() >= MAX_TOKENS {
                tokens.retain(|_, (_, until)| *until > now);
            }
            if tokens.len() >= MAX_TOKENS {
                return text(503, "too many outstanding tokens");
            }
            tokens.insert(token.clone(), (ip, now + Duration::from_secs(ttl)));
        }
        let mut response = text(200, token);
        if let Ok(v) = HeaderValue::from_str(&ttl.to_string()) {
            response.headers_mut().insert(TOKEN_TTL_HEADER, v);
        }
        response
    }

    /// `None` when the request may proceed; otherwise the 401.
    fn check_token(&self, ip: IpAddr, headers: &HeaderMap) -> Option<Response> {
        match headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) {
            Some(token) => {
                let valid = self
                    .tokens()
                    .get(token)
                    .is_some_and(|(owner, until)| *owner == ip && *until > Instant::now());
                (!valid).then(|| text(401, "invalid or expired metadata token"))
            }
            None if self.config.require_token => Some(text(
                401,
                "an IMDSv2 token is required (PUT /latest/api/token)",
            )),
            None => None,
        }
    }

    async fn identify(&self, ip: IpAddr) -> Result<Identified, Response> {
        self.agent.identify(ip).await.map_err(|d| deny(ip, &d))
    }

    async fn credentials(&self, ip: IpAddr, requested: &str) -> Response {
        let who = match self.identify(ip).await {
            Ok(who) => who,
            Err(r) => return r,
        };
        if requested != who.resolved.role_name {
            let denial = Denial::WrongRole {
                bound: who.resolved.role_name.clone(),
                requested: requested.to_string(),
            };
            if let Some(pod) = &who.pod {
                self.agent.report(pod, &denial);
            }
            return deny(ip, &denial);
        }
        let user = who.pod.as_ref().map_or("host-network", |p| p.uid.as_str());
        match self
            .agent
            .cache
            .get(&who.key, user, self.agent.config.fetch_wait)
            .await
        {
            Ok(served) => match serde_json::to_string(&CredentialsDocument::new(&served)) {
                Ok(body) => json(body),
                Err(e) => text(500, e.to_string()),
            },
            Err(e) => {
                if let (
                    Some(pod),
                    super::credentials::GetError::Sts(super::credentials::StsFault::AccessDenied(
                        msg,
                    )),
                ) = (&who.pod, &e)
                {
                    // The role's trust policy refuses us: the pod's binding is the cause.
                    self.agent.event(pod, "AssumeRoleDenied", msg.clone());
                }
                tracing::warn!(%ip, role = %who.resolved.role_arn, error = %e, "no credentials to serve");
                text(e.status(), e.to_string())
            }
        }
    }

    async fn info(&self, ip: IpAddr) -> Response {
        match self.identify(ip).await {
            Ok(who) => {
                let doc = InfoDocument {
                    code: "Success",
                    last_updated: timestamp(SystemTime::now()),
                    instance_profile_arn: who.resolved.role_arn.clone(),
                    instance_profile_id: who.resolved.role_name.clone(),
                };
                match serde_json::to_string(&doc) {
                    Ok(body) => json(body),
                    Err(e) => text(500, e.to_string()),
                }
            }
            Err(r) => r,
        }
    }

    async fn proxy(&self, path: &str) -> Response {
        match self.upstream.get(path).await {
            Ok(r) => {
                let mut response = Response::new(Body::from(r.body));
                *response.status_mut() =
                    StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
                if let Some(ct) = r.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    response.headers_mut().insert(header::CONTENT_TYPE, ct);
                }
                response
            }
            Err(e) => text(502, format!("metadata upstream: {e}")),
        }
    }
}

fn deny(ip: IpAddr, denial: &Denial) -> Response {
    tracing::info!(%ip, denial = denial.label(), detail = %denial, "metadata request denied");
    text(denial.status(), denial.to_string())
}

/// Path classes for the request metric (bounded cardinality: no role names, no raw paths).
fn path_class(path: &str) -> &'static str {
    match path {
        TOKEN_PATH => "token",
        "/latest/meta-data/iam/security-credentials"
        | "/latest/meta-data/iam/security-credentials/" => "security-credentials",
        p if p.starts_with(CREDENTIALS_PREFIX) => "security-credentials/role",
        INFO_PATH => "iam/info",
        _ => "other",
    }
}

async fn handle(
    State(server): State<Arc<MetadataServer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_string();
    let ip = client_ip(peer);
    let response = dispatch(&server, ip, &method, &path, &headers).await;
    let class = match path_class(&path) {
        "other" if server.config.proxy_paths.contains(&path) => "proxy",
        c => c,
    };
    server
        .agent
        .metrics
        .request(class, response.status().as_u16());
    response
}

async fn dispatch(
    server: &MetadataServer,
    ip: IpAddr,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Response {
    if path == TOKEN_PATH {
        return if method == Method::PUT {
            server.issue_token(ip, headers)
        } else {
            text(405, "use PUT for tokens")
        };
    }
    if method != Method::GET && method != Method::HEAD {
        return text(405, "method not allowed");
    }
    if let Some(r) = server.check_token(ip, headers) {
        return r;
    }
    match path {
        "/latest/meta-data/iam" | "/latest/meta-data/iam/" => {
            text(200, "info\nsecurity-credentials/")
        }
        "/latest/meta-data/iam/security-credentials"
        | "/latest/meta-data/iam/security-credentials/" => match server.identify(ip).await {
            Ok(who) => text(200, who.resolved.role_name),
            Err(r) => r,
        },
        INFO_PATH => server.info(ip).await,
        p if p.starts_with(CREDENTIALS_PREFIX) => {
            let requested = p[CREDENTIALS_PREFIX.len()..].trim_end_matches('/');
            server.credentials(ip, requested).await
        }
        p if server.config.proxy_paths.iter().any(|allowed| allowed == p) => server.proxy(p).await,
        _ => text(404, "not found"),
    }
}

#[cfg(test)]
mod tests;
