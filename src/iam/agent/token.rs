//! Who a service-account token belongs to: TokenReview against the apiserver, cached by
//! the token's hash until the token expires.
//!
//! A request to the container-credentials endpoint carries the pod's projected token in
//! `Authorization`. The apiserver validates it (signature, expiry, audience, and for a
//! pod-bound token that the pod still exists with that UID); the answer names the
//! namespace, service account, pod and pod UID. An expired token is refused before any
//! review (its `exp` claim is read, never trusted for anything else); refusals are
//! remembered briefly so a retrying SDK does not turn into a TokenReview flood.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use kube::api::PostParams;
use kube::{Api, Client};

use super::metrics::AgentMetrics;

/// The audience EKS Pod Identity tokens are minted for (and the SDKs send).
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";
const POD_NAME_EXTRA: &str = "authentication.kubernetes.io/pod-name";
const POD_UID_EXTRA: &str = "authentication.kubernetes.io/pod-uid";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// The pod a valid token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    pub namespace: String,
    pub service_account: String,
    pub pod_name: String,
    pub pod_uid: String,
}

/// Why a token gets no identity; every variant is a 401 (the caller must present another
/// token), except a review that could not be made (503: try again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenDenial {
    #[error("no service-account token in the Authorization header")]
    Missing,
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    #[error("the apiserver did not authenticate the token: {0}")]
    NotAuthenticated(String),
    #[error("the token is not for audience {0}")]
    WrongAudience(String),
    #[error("the token is not a service-account token bound to a pod")]
    NotPodBound,
    #[error("TokenReview failed: {0}")]
    ReviewFailed(String),
}

impl TokenDenial {
    pub fn status(&self) -> u16 {
        match self {
            TokenDenial::ReviewFailed(_) => 503,
            _ => 401,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            TokenDenial::Missing => "missing",
            TokenDenial::Malformed => "malformed",
            TokenDenial::Expired => "expired",
            TokenDenial::NotAuthenticated(_) => "not_authenticated",
            TokenDenial::WrongAudience(_) => "wrong_audience",
            TokenDenial::NotPodBound => "not_pod_bound",
            TokenDenial::ReviewFailed(_) => "review_failed",
        }
    }
}

/// The token from an `Authorization` header value: the raw token, as the SDKs' container
/// provider sends it, or `Bearer <token>`.
pub fn from_header(value: Option<&str>) -> Result<&str, TokenDenial> {
    let value = value.map(str::trim).unwrap_or_default();
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .unwrap_or(value)
        .trim();
    if token.is_empty() {
        Err(TokenDenial::Missing)
    } else {
        Ok(token)
    }
}

/// The `exp` claim of a JWT, read without verifying anything: only to refuse an expired
/// token early and to know how long a review may be cached.
pub fn expiry(token: &str) -> Result<SystemTime, TokenDenial> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenDenial::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| TokenDenial::Malformed)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| TokenDenial::Malformed)?;
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .ok_or(TokenDenial::Malformed)?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(exp))
}

/// A TokenReview's answer → the pod it names, or why not.
pub fn identity_from_review(
    status: &TokenReviewStatus,
    audience: &str,
) -> Result<TokenIdentity, TokenDenial> {
    if status.authenticated != Some(true) {
        return Err(TokenDenial::NotAuthenticated(
            status
                .error
                .clone()
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "not authenticated".into()),
        ));
    }
    // The apiserver intersects the requested audiences with the token's; an empty answer
    // means the token was minted for someone else.
    if !status
        .audiences
        .as_ref()
        .is_some_and(|a| a.iter().any(|a| a == audience))
    {
        return Err(TokenDenial::WrongAudience(audience.to_string()));
    }
    let user = status.user.as_ref().ok_or(TokenDenial::NotPodBound)?;
    let (namespace, service_account) = user
        .username
        .as_deref()
        .and_then(|u| u.strip_prefix(SERVICE_ACCOUNT_PREFIX))
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, sa)| !ns.is_empty() && !sa.is_empty())
        .ok_or(TokenDenial::NotPodBound)?;
    let extra = |key: &str| {
        user.extra
            .as_ref()
            .and_then(|e| e.get(key))
            .and_then(|v| v.first())
            .filter(|v| !v.is_empty())
            .cloned()
    };
    Ok(TokenIdentity {
        namespace: namespace.to_string(),
        service_account: service_account.to_string(),
        pod_name: extra(POD_NAME_EXTRA).ok_or(TokenDenial::NotPodBound)?,
        pod_uid: extra(POD_UID_EXTRA).ok_or(TokenDenial::NotPodBound)?,
    })
}

/// Asks the apiserver about a token; a trait so tests can count reviews.
pub trait ReviewTokens: Send + Sync {
    fn review(
        &self,
        token: &str,
        audience: &str,
    ) -> BoxFuture<'_, Result<TokenReviewStatus, TokenDenial>>;
}

/// TokenReview on the apiserver (`authentication.k8s.io/v1`, `create tokenreviews`).
pub struct KubeReviewer {
    pub client: Client,
}

impl ReviewTokens for KubeReviewer {
    fn review(
        &self,
        token: &str,
        audience: &str,
    ) -> BoxFuture<'_, Result<TokenReviewStatus, TokenDenial>> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: Some(vec![audience.to_string()]),
            },
            ..TokenReview::default()
        };
        Box::pin(async move {
            let api: Api<TokenReview> = Api::all(self.client.clone());
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| TokenDenial::ReviewFailed(e.to_string()))?;
            answer
                .status
                .ok_or_else(|| TokenDenial::ReviewFailed("TokenReview without status".into()))
        })
    }
}

#[derive(Debug, Clone)]
pub struct TokenCacheSettings {
    pub audience: String,
    /// A valid review is trusted at most this long (then asked again, so a deleted
    /// pod's token stops working even before it expires).
    pub max_age: Duration,
    /// A refusal is remembered this long.
    pub negative_ttl: Duration,
    /// Entries kept at most; expired ones go first, then the oldest.
    pub max_entries: usize,
}

impl Default for TokenCacheSettings {
    fn default() -> Self {
        TokenCacheSettings {
            audience: POD_IDENTITY_AUDIENCE.to_string(),
            max_age: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(5),
            max_entries: 20_000,
        }
    }
}

struct Cached {
    answer: Result<Arc<TokenIdentity>, TokenDenial>,
    until: SystemTime,
}

/// Reviews by token hash (the token itself is never kept).
pub struct TokenCache {
    reviewer: Arc<dyn ReviewTokens>,
    settings: TokenCacheSettings,
    entries: Mutex<HashMap<[u8; 32], Cached>>,
    metrics: AgentMetrics,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

fn digest(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl TokenCache {
    pub fn new(
        reviewer: Arc<dyn ReviewTokens>,
        settings: TokenCacheSettings,
        metrics: AgentMetrics,
    ) -> TokenCache {
        TokenCache {
            reviewer,
            settings,
            entries: Mutex::default(),
            metrics,
        }
    }

    /// TokenReviews made so far.
    pub fn reviews(&self) -> u64 {
        self.metrics.token_reviews()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Cached>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pod `token` is bound to, from cache or a TokenReview.
    pub async fn identify(&self, token: &str) -> Result<Arc<TokenIdentity>, TokenDenial> {
        self.identify_at(token, SystemTime::now()).await
    }

    /// [`TokenCache::identify`] at `now` (tests replay a day of requests in an instant).
    async fn identify_at(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<Arc<TokenIdentity>, TokenDenial> {
        // A hit needs no parsing: every entry ends by the token's `exp` at the latest.
        let key = digest(token);
        if let Some(cached) = self.lock().get(&key)
            && cached.until > now
        {
            return cached.answer.clone();
        }
        let expires = expiry(token)?;
        if expires <= now {
            return Err(TokenDenial::Expired);
        }
        let audience = self.settings.audience.as_str();
        let answer = match self.reviewer.review(token, audience).await {
            Ok(status) => identity_from_review(&status, audience).map(Arc::new),
            Err(e) => {
                // Not cached: the next request asks again.
                self.metrics.token_review("failed");
                return Err(e);
            }
        };
        self.metrics
            .token_review(if answer.is_ok() { "valid" } else { "refused" });
        let until = match &answer {
            Ok(_) => expires.min(now + self.settings.max_age),
            Err(_) => expires.min(now + self.settings.negative_ttl),
        };
        let mut entries = self.lock();
        if entries.len() >= self.settings.max_entries {
            entries.retain(|_, c| c.until > now);
            if entries.len() >= self.settings.max_entries {
                let oldest = entries.iter().min_by_key(|(_, c)| c.until).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(
            key,
            Cached {
                answer: answer.clone(),
                until,
            },
        );
        answer
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::authentication::v1::UserInfo;
    use std::collections::BTreeMap;

    fn jwt(exp: u64) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(br#"{"alg":"ES256"}"#),
            e.encode(serde_json::json!({"exp": exp, "sub": "x"}).to_string())
        )
    }

    fn in_secs(s: u64) -> u64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + s
    }

    fn review(audiences: &[&str], pod: Option<(&str, &str)>) -> TokenReviewStatus {
        let mut extra = BTreeMap::new();
        if let Some((name, uid)) = pod {
            extra.insert(POD_NAME_EXTRA.to_string(), vec![name.to_string()]);
            extra.insert(POD_UID_EXTRA.to_string(), vec![uid.to_string()]);
        }
        TokenReviewStatus {
            authenticated: Some(true),
            audiences: Some(audiences.iter().map(|a| a.to_string()).collect()),
            user: Some(UserInfo {
                username: Some("system:serviceaccount:shop:checkout".into()),
                extra: Some(extra),
                ..UserInfo::default()
            }),
            error: None,
        }
    }

    #[test]
    fn header_takes_raw_and_bearer_tokens() {
        assert_eq!(from_header(Some("abc")), Ok("abc"));
        assert_eq!(from_header(Some("Bearer abc ")), Ok("abc"));
        assert_eq!(from_header(Some("  ")), Err(TokenDenial::Missing));
        assert_eq!(from_header(None), Err(TokenDenial::Missing));
    }

    #[test]
    fn expiry_reads_the_exp_claim_and_refuses_garbage() {
        let t = jwt(2_000_000_000);
        assert_eq!(
            expiry(&t),
            Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        assert_eq!(expiry("nope"), Err(TokenDenial::Malformed));
        assert_eq!(expiry("a.%%%.c"), Err(TokenDenial::Malformed));
        assert_eq!(expiry("a.b.c.d"), Err(TokenDenial::Malformed));
        let no_exp = format!(
            "x.{}.y",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"{}")
        );
        assert_eq!(expiry(&no_exp), Err(TokenDenial::Malformed));
    }

    #[test]
    fn a_review_names_the_pod_or_says_why_not() {
        let id = identity_from_review(
            &review(&[POD_IDENTITY_AUDIENCE], Some(("web-1", "u1"))),
            POD_IDENTITY_AUDIENCE,
        )
        .unwrap();
        assert_eq!(
            id,
            TokenIdentity {
                namespace: "shop".into(),
                service_account: "checkout".into(),
                pod_name: "web-1".into(),
                pod_uid: "u1".into(),
            }
        );
        assert_eq!(
            identity_from_review(&review(&[], Some(("w", "u"))), POD_IDENTITY_AUDIENCE),
            Err(TokenDenial::WrongAudience(POD_IDENTITY_AUDIENCE.into()))
        );
        assert_eq!(
            identity_from_review(
                &review(&[POD_IDENTITY_AUDIENCE], None),
                POD_IDENTITY_AUDIENCE
            ),
            Err(TokenDenial::NotPodBound)
        );
        let mut not_sa = review(&[POD_IDENTITY_AUDIENCE], Some(("w", "u")));
        not_sa.user.as_mut().unwrap().username = Some("alice".into());
        assert_eq!(
            identity_from_review(&not_sa, POD_IDENTITY_AUDIENCE),
            Err(TokenDenial::NotPodBound)
        );
        let refused = TokenReviewStatus {
            authenticated: Some(false),
            error: Some("token has expired".into()),
            ..TokenReviewStatus::default()
        };
        assert_eq!(
            identity_from_review(&refused, POD_IDENTITY_AUDIENCE),
            Err(TokenDenial::NotAuthenticated("token has expired".into()))
        );
    }

    struct Counting {
        answer: TokenReviewStatus,
        calls: std::sync::atomic::AtomicU32,
    }

    impl ReviewTokens for Counting {
        fn review(
            &self,
            _token: &str,
            _audience: &str,
        ) -> BoxFuture<'_, Result<TokenReviewStatus, TokenDenial>> {
            self.calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let answer = self.answer.clone();
            Box::pin(async move { Ok(answer) })
        }
    }

    #[tokio::test]
    async fn reviews_are_cached_per_token_and_expired_tokens_never_reach_the_apiserver() {
        let reviewer = Arc::new(Counting {
            answer: review(&[POD_IDENTITY_AUDIENCE], Some(("web-1", "u1"))),
            calls: Default::default(),
        });
        let cache = TokenCache::new(
            reviewer.clone(),
            TokenCacheSettings::default(),
            AgentMetrics::new(),
        );
        let token = jwt(in_secs(3600));
        for _ in 0..100 {
            assert_eq!(cache.identify(&token).await.unwrap().pod_uid, "u1");
        }
        assert_eq!(cache.reviews(), 1);
        let other = jwt(in_secs(3601));
        cache.identify(&other).await.unwrap();
        assert_eq!(cache.reviews(), 2);
        assert_eq!(
            cache.identify(&jwt(in_secs(0).saturating_sub(10))).await,
            Err(TokenDenial::Expired)
        );
        assert_eq!(reviewer.calls.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    /// TokenReview calls per pod per hour: the SDKs fetch container credentials again when
    /// the ones they hold near expiry (sessions last an hour and are served with at least
    /// 45 minutes left, so about every 45 minutes), and the kubelet rotates the projected
    /// token at 80 % of its 24 h life. Worst case, a pod asking every second.
    /// `cargo test --features testing --lib token_reviews_per_pod_per_hour -- --nocapture`
    #[tokio::test]
    async fn token_reviews_per_pod_per_hour() {
        let start = SystemTime::now();
        let day = 24 * 3600u64;
        let run = |every: u64| async move {
            let reviewer = Arc::new(Counting {
                answer: review(&[POD_IDENTITY_AUDIENCE], Some(("web-1", "u1"))),
                calls: Default::default(),
            });
            let cache = TokenCache::new(
                reviewer.clone(),
                TokenCacheSettings::default(),
                AgentMetrics::new(),
            );
            // The token the kubelet wrote, replaced at 80 % of its life.
            let mut token = jwt(in_secs(day));
            let mut minted = 0u64;
            let mut t = 0u64;
            while t < day {
                if t - minted >= day * 8 / 10 {
                    minted = t;
                    token = jwt(in_secs(t + day));
                }
                cache
                    .identify_at(&token, start + Duration::from_secs(t))
                    .await
                    .unwrap();
                t += every;
            }
            reviewer.calls.load(std::sync::atomic::Ordering::Relaxed) as f64 / 24.0
        };
        let sdk = run(45 * 60).await;
        let hammering = run(1).await;
        println!(
            "TokenReview calls per pod per hour: {sdk:.2} with an SDK refreshing every 45 min; {hammering:.2} with a request every second"
        );
        assert!((1.0..=1.4).contains(&sdk), "{sdk}");
        assert!((11.9..=12.1).contains(&hammering), "{hammering}");
    }

    #[tokio::test]
    async fn refusals_are_remembered_briefly_and_the_cache_is_bounded() {
        let reviewer = Arc::new(Counting {
            answer: TokenReviewStatus {
                authenticated: Some(false),
                ..TokenReviewStatus::default()
            },
            calls: Default::default(),
        });
        let cache = TokenCache::new(
            reviewer,
            TokenCacheSettings {
                max_entries: 10,
                ..TokenCacheSettings::default()
            },
            AgentMetrics::new(),
        );
        let token = jwt(in_secs(3600));
        for _ in 0..5 {
            assert!(matches!(
                cache.identify(&token).await,
                Err(TokenDenial::NotAuthenticated(_))
            ));
        }
        assert_eq!(cache.reviews(), 1);
        for i in 0..50 {
            let _ = cache.identify(&jwt(in_secs(3600 + i))).await;
        }
        assert!(cache.len() <= 10);
    }
}
