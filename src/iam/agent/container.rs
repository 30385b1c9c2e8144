//! The container-credentials endpoint, as EKS Pod Identity serves it on
//! 169.254.170.23:80: `GET /v1/credentials` with the pod's projected service-account
//! token in `Authorization`, answered with
//! `{"AccessKeyId","SecretAccessKey","Token","AccountId","Expiration"}`, which every AWS
//! SDK's container provider reads (`AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`).
//!
//! Identity comes from the token (TokenReview, [`super::token`]), never from the address
//! alone: hostNetwork pods get their own role, and a token presented from another pod's
//! address is refused.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;
use serde::Serialize;

use super::Agent;
use super::credentials::{GetError, Served, StsFault};
use super::metadata::{client_ip, json, text, timestamp};
use super::token::{self, TokenCache};

pub const CREDENTIALS_PATH: &str = "/v1/credentials";

/// The JSON EKS Pod Identity answers with.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub token: &'a str,
    pub account_id: &'a str,
    pub expiration: String,
}

impl<'a> ContainerCredentials<'a> {
    pub fn new(served: &'a Served, role_arn: &'a str) -> Self {
        ContainerCredentials {
            access_key_id: &served.creds.access_key_id,
            secret_access_key: &served.creds.secret_access_key,
            token: &served.creds.session_token,
            account_id: role_arn.split(':').nth(4).unwrap_or_default(),
            expiration: timestamp(served.creds.expiration),
        }
    }
}

pub struct ContainerServer {
    agent: Arc<Agent>,
    tokens: TokenCache,
}

impl ContainerServer {
    pub fn new(agent: Arc<Agent>, tokens: TokenCache) -> Self {
        ContainerServer { agent, tokens }
    }

    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }

    async fn credentials(&self, ip: IpAddr, headers: &HeaderMap) -> Response {
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let identity = match token::from_header(header) {
            Ok(t) => self.tokens.identify(t).await,
            Err(e) => Err(e),
        };
        self.agent
            .metrics
            .token_check(identity.as_ref().err().map_or("valid", |d| d.label()));
        let identity = match identity {
            Ok(id) => id,
            Err(denial) => {
                tracing::info!(%ip, denial = denial.label(), detail = %denial, "container-credentials request refused");
                return text(denial.status(), denial.to_string());
            }
        };
        let who = match self.agent.identify_token(ip, &identity).await {
            Ok(who) => who,
            Err(denial) => {
                tracing::info!(%ip, pod = %format!("{}/{}", identity.namespace, identity.pod_name), denial = denial.label(), detail = %denial, "container-credentials request denied");
                return text(denial.status(), denial.to_string());
            }
        };
        match self
            .agent
            .cache
            .get(&who.key, &identity.pod_uid, self.agent.config.fetch_wait)
            .await
        {
            Ok(served) => match serde_json::to_string(&ContainerCredentials::new(
                &served,
                &who.resolved.role_arn,
            )) {
                Ok(body) => json(body),
                Err(e) => text(500, e.to_string()),
            },
            Err(e) => {
                if let (Some(pod), GetError::Sts(StsFault::AccessDenied(msg))) = (&who.pod, &e) {
                    self.agent.event(pod, "AssumeRoleDenied", msg.clone());
                }
                tracing::warn!(%ip, role = %who.resolved.role_arn, error = %e, "no credentials to serve");
                text(e.status(), e.to_string())
            }
        }
    }
}

pub fn router(server: Arc<ContainerServer>) -> Router {
    Router::new().fallback(handle).with_state(server)
}

async fn handle(
    State(server): State<Arc<ContainerServer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let response = match (uri.path(), &method) {
        (CREDENTIALS_PATH, &Method::GET) => server.credentials(client_ip(peer), &headers).await,
        (CREDENTIALS_PATH, _) => text(405, "use GET"),
        _ => text(404, "not found"),
    };
    let class = if uri.path() == CREDENTIALS_PATH {
        "v1/credentials"
    } else {
        "other"
    };
    server
        .agent
        .metrics
        .request(class, response.status().as_u16());
    response
}
