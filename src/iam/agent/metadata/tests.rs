use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

use super::*;
use crate::iam::agent::credentials::{
    AssumeRequest, AssumeRole, CacheSettings, CredentialCache, Credentials, StsFault,
};
use crate::iam::agent::metrics::AgentMetrics;
use crate::iam::agent::resolve::{BindingInfo, PodInfo, Policy};
use crate::iam::agent::{Agent, AgentConfig};

const BASE: &str = "arn:aws:iam::123456789012:role/";

/// Hands out credentials whose key id names the session, or denies roles named `denied`.
struct FakeSts {
    calls: AtomicU32,
}

impl AssumeRole for FakeSts {
    fn assume_role(&self, req: AssumeRequest) -> BoxFuture<'_, Result<Credentials, StsFault>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if req.role_arn.ends_with("/denied") {
                return Err(StsFault::AccessDenied("not trusted".into()));
            }
            Ok(Credentials {
                access_key_id: format!("AKID-{}", req.session_name),
                secret_access_key: "SECRET".into(),
                session_token: "TOKEN".into(),
                expiration: SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800),
            })
        })
    }
}

struct Harness {
    addr: SocketAddr,
    agent: Arc<Agent>,
    sts: Arc<FakeSts>,
}

fn pod(uid: &str, ip: &str, role: Option<&str>) -> PodInfo {
    PodInfo {
        uid: uid.into(),
        namespace: "media".into(),
        name: format!("pod-{uid}"),
        service_account: "default".into(),
        role_annotation: role.map(str::to_string),
        ips: vec![ip.parse().unwrap()],
        phase: Some("Running".into()),
        ..PodInfo::default()
    }
}

async fn harness(require_token: bool, upstream: &str) -> Harness {
    let sts = Arc::new(FakeSts {
        calls: AtomicU32::new(0),
    });
    let metrics = AgentMetrics::new();
    let cache = CredentialCache::new(sts.clone(), CacheSettings::default(), metrics.clone());
    let agent = Arc::new(Agent::new(
        Policy {
            base_arn: BASE.into(),
            enforce_allowed_roles: true,
        },
        AgentConfig {
            pod_wait: Duration::from_millis(50),
            ..AgentConfig::for_node("node-1", Some("127.0.0.1".parse().unwrap()))
        },
        cache,
        metrics,
        None,
    ));
    // The pods' namespace allows every role of the account (restrictions are on).
    agent.set_allowed_roles("media", Some(r#"["*"]"#.into()));
    let server = Arc::new(MetadataServer::new(
        agent.clone(),
        ServerConfig {
            require_token,
            proxy_paths: DEFAULT_PROXY_PATHS.iter().map(|p| p.to_string()).collect(),
        },
        Upstream::new(upstream),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router(server).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    Harness { addr, agent, sts }
}

/// One request from source address `from` (any 127/8 address works on Linux loopback).
async fn call(
    addr: SocketAddr,
    from: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let r = crate::iam::agent::upstream::parse_response(&raw).unwrap();
    let head =
        String::from_utf8_lossy(&raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()])
            .to_string();
    (
        r.status,
        String::from_utf8_lossy(&r.body).into_owned(),
        head,
    )
}

async fn get(h: &Harness, from: &str, path: &str) -> (u16, String) {
    let (s, b, _) = call(h.addr, from, "GET", path, &[]).await;
    (s, b)
}

const CREDS: &str = "/latest/meta-data/iam/security-credentials/";

#[tokio::test]
async fn bound_pod_gets_its_role_in_ec2_json() {
    let h = harness(false, "127.0.0.1:1").await;
    h.agent
        .pods
        .upsert(pod("a", "127.0.0.2", Some("causeway-app")));
    h.agent.sync();
    assert_eq!(
        get(&h, "127.0.0.2", CREDS).await,
        (200, "causeway-app".into())
    );
    let (status, body) = get(&h, "127.0.0.2", &format!("{CREDS}causeway-app")).await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&str> = body
        .trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .map(|kv| kv.split(':').next().unwrap().trim_matches('"'))
        .collect();
    assert_eq!(
        keys,
        [
            "Code",
            "LastUpdated",
            "Type",
            "AccessKeyId",
            "SecretAccessKey",
            "Token",
            "Expiration"
        ]
    );
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["Code"], "Success");
    assert_eq!(doc["Type"], "AWS-HMAC");
    assert_eq!(doc["AccessKeyId"], "AKID-media.pod-a");
    assert_eq!(doc["Expiration"], "2100-01-01T00:00:00Z");
    let updated = doc["LastUpdated"].as_str().unwrap();
    assert_eq!(updated.len(), "2006-01-02T15:04:05Z".len(), "{updated}");
    assert!(updated.ends_with('Z'));
    // Prefetched by sync: the request did not wait for STS.
    assert_eq!(h.sts.calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.agent.metrics.cache_hits.get(), 1);
}

#[tokio::test]
async fn wrong_role_unbound_unknown_and_conflicting_pods_are_denied() {
    let h = harness(false, "127.0.0.1:1").await;
    h.agent
        .pods
        .upsert(pod("a", "127.0.0.2", Some("causeway-app")));
    h.agent.pods.upsert(pod("b", "127.0.0.3", None));
    h.agent.pods.upsert(pod("c", "127.0.0.4", Some("x")));
    h.agent.pods.upsert(pod("d", "127.0.0.4", Some("x")));
    h.agent.sync();
    assert_eq!(
        get(&h, "127.0.0.2", &format!("{CREDS}causeway-writer"))
            .await
            .0,
        403
    );
    assert_eq!(get(&h, "127.0.0.3", CREDS).await.0, 404);
    assert_eq!(
        get(&h, "127.0.0.3", &format!("{CREDS}causeway-app"))
            .await
            .0,
        404
    );
    assert_eq!(get(&h, "127.0.0.9", CREDS).await.0, 404);
    assert_eq!(get(&h, "127.0.0.4", CREDS).await.0, 409);
    // The node's own IP is a hostNetwork pod: nothing without a default role.
    assert_eq!(get(&h, "127.0.0.1", CREDS).await.0, 403);
}

#[tokio::test]
async fn config_faults_have_precise_codes() {
    let h = harness(false, "127.0.0.1:1").await;
    h.agent
        .pods
        .upsert(pod("bad", "127.0.0.2", Some("not a role")));
    h.agent
        .pods
        .upsert(pod("denied", "127.0.0.3", Some("denied")));
    h.agent
        .pods
        .upsert(pod("ns", "127.0.0.5", Some("causeway-writer")));
    h.agent.namespaces.write().unwrap().insert(
        "media".into(),
        Some(r#"["causeway-app","causeway-reader"]"#.into()),
    );
    h.agent.sync();
    assert_eq!(get(&h, "127.0.0.2", CREDS).await.0, 422);
    assert_eq!(get(&h, "127.0.0.5", CREDS).await.0, 403);
    h.agent
        .namespaces
        .write()
        .unwrap()
        .insert("media".into(), Some("causeway-*".into()));
    assert_eq!(get(&h, "127.0.0.5", CREDS).await.0, 422);
    h.agent.namespaces.write().unwrap().remove("media");
    assert_eq!(get(&h, "127.0.0.3", &format!("{CREDS}denied")).await.0, 403);
}

#[tokio::test]
async fn bindings_select_by_service_account() {
    let h = harness(false, "127.0.0.1:1").await;
    let mut p = pod("sa", "127.0.0.2", None);
    p.service_account = "uploader".into();
    h.agent.pods.upsert(p);
    h.agent.bindings.write().unwrap().insert(
        "media".into(),
        vec![BindingInfo {
            name: "uploader".into(),
            role: "causeway-reader".into(),
            service_account: Some("uploader".into()),
            ..BindingInfo::default()
        }],
    );
    h.agent.sync();
    assert_eq!(
        get(&h, "127.0.0.2", CREDS).await,
        (200, "causeway-reader".into())
    );
}

#[tokio::test]
async fn imdsv2_tokens() {
    let h = harness(true, "127.0.0.1:1").await;
    h.agent
        .pods
        .upsert(pod("a", "127.0.0.2", Some("causeway-app")));
    h.agent.sync();
    // Required: no token is 401.
    assert_eq!(get(&h, "127.0.0.2", CREDS).await.0, 401);
    // The TTL header is mandatory and bounded.
    assert_eq!(
        call(h.addr, "127.0.0.2", "PUT", TOKEN_PATH, &[]).await.0,
        400
    );
    assert_eq!(
        call(
            h.addr,
            "127.0.0.2",
            "PUT",
            TOKEN_PATH,
            &[(TOKEN_TTL_HEADER, "999999")]
        )
        .await
        .0,
        400
    );
    assert_eq!(
        call(
            h.addr,
            "127.0.0.2",
            "PUT",
            TOKEN_PATH,
            &[(TOKEN_TTL_HEADER, "60"), ("X-Forwarded-For", "1.2.3.4")]
        )
        .await
        .0,
        403
    );
    let (status, token, head) = call(
        h.addr,
        "127.0.0.2",
        "PUT",
        TOKEN_PATH,
        &[(TOKEN_TTL_HEADER, "60")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("x-aws-ec2-metadata-token-ttl-seconds: 60"),
        "{head}"
    );
    let (status, body, _) = call(
        h.addr,
        "127.0.0.2",
        "GET",
        CREDS,
        &[(TOKEN_HEADER, token.as_str())],
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "causeway-app"));
    // Tokens are bound to the IP they were issued to, and must be real.
    assert_eq!(
        call(
            h.addr,
            "127.0.0.3",
            "GET",
            CREDS,
            &[(TOKEN_HEADER, token.as_str())]
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(
            h.addr,
            "127.0.0.2",
            "GET",
            CREDS,
            &[(TOKEN_HEADER, "forged")]
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(h.addr, "127.0.0.2", "GET", TOKEN_PATH, &[]).await.0,
        405
    );
}

#[tokio::test]
async fn info_is_the_pods_role_and_other_paths_are_404_or_proxied() {
    // A stand-in for the real metadata service, on loopback.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = upstream.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let body = if req.starts_with("PUT /latest/api/token") {
                    "upstream-token".to_string()
                } else if req.contains("x-aws-ec2-metadata-token: upstream-token")
                    || req.contains("X-aws-ec2-metadata-token: upstream-token")
                {
                    "eu-west-1".to_string()
                } else {
                    let _ = s
                        .write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    let h = harness(false, &upstream_addr.to_string()).await;
    h.agent
        .pods
        .upsert(pod("a", "127.0.0.2", Some("causeway-app")));
    h.agent.sync();
    let (status, body) = get(&h, "127.0.0.2", "/latest/meta-data/iam/info").await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["InstanceProfileArn"], format!("{BASE}causeway-app"));
    assert_eq!(
        get(&h, "127.0.0.2", "/latest/meta-data/placement/region").await,
        (200, "eu-west-1".into())
    );
    for path in [
        "/latest/user-data",
        "/latest/meta-data/",
        "/latest/meta-data/hostname",
        "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance",
    ] {
        assert_eq!(get(&h, "127.0.0.2", path).await.0, 404, "{path}");
    }
}

#[tokio::test]
async fn ip_reuse_serves_the_new_pod() {
    let h = harness(false, "127.0.0.1:1").await;
    h.agent
        .pods
        .upsert(pod("old", "127.0.0.2", Some("causeway-app")));
    h.agent.sync();
    assert_eq!(get(&h, "127.0.0.2", CREDS).await.1, "causeway-app");
    let mut done = pod("old", "127.0.0.2", Some("causeway-app"));
    done.phase = Some("Succeeded".into());
    h.agent.pods.upsert(done);
    h.agent
        .pods
        .upsert(pod("new", "127.0.0.2", Some("causeway-reader")));
    h.agent.sync();
    assert_eq!(get(&h, "127.0.0.2", CREDS).await.1, "causeway-reader");
    let (_, body) = get(&h, "127.0.0.2", &format!("{CREDS}causeway-reader")).await;
    assert!(body.contains("AKID-media.pod-new"), "{body}");
    assert_eq!(
        get(&h, "127.0.0.2", &format!("{CREDS}causeway-app"))
            .await
            .0,
        403
    );
    // The old pod's session was evicted with it.
    assert_eq!(h.agent.cache.len(), 1);
}

#[test]
fn timestamps_are_whole_seconds_utc() {
    assert_eq!(
        timestamp(SystemTime::UNIX_EPOCH + Duration::from_millis(1_136_214_245_500)),
        "2006-01-02T15:04:05Z"
    );
}
