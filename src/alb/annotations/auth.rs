//! Authentication on HTTPS listeners, as aws-load-balancer-controller reads it: `auth-type`
//! (`cognito`, `oidc`, `none`) with `auth-idp-cognito` / `auth-idp-oidc`, `auth-scope`,
//! `auth-session-cookie`, `auth-session-timeout` and `auth-on-unauthenticated-request`; and
//! `jwt-validation`. The `auth-*` annotations of a Service that is a backend's only target
//! override the Ingress's, key by key; `jwt-validation` is read from the Ingress only. An OIDC
//! client's ID and secret come from a Secret in the Ingress's namespace (`secretName`), with
//! the keys `clientID` (or the legacy `clientId`) and `clientSecret`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::actions::from_json;
use super::{Annotations, PREFIX, Problem, reason};
use crate::alb::model::{
    AuthSession, Authenticate, ClientSecretRef, CognitoAuth, JwtClaim, JwtValidation, OidcAuth,
};

pub const DEFAULT_SCOPE: &str = "openid";
pub const DEFAULT_SESSION_COOKIE: &str = "AWSELBAuthSessionCookie";
/// Seconds; also ELBv2's maximum (7 days).
pub const DEFAULT_SESSION_TIMEOUT: i64 = 604_800;
pub const DEFAULT_ON_UNAUTHENTICATED: &str = "authenticate";
/// The OIDC client Secret's keys (`clientId` is the spelling of the peer's predecessor).
pub const SECRET_CLIENT_ID: &str = "clientID";
pub const SECRET_CLIENT_ID_LEGACY: &str = "clientId";
pub const SECRET_CLIENT_SECRET: &str = "clientSecret";

/// The annotations a backend Service may override.
const AUTH_ANNOTATIONS: &[&str] = &[
    "auth-type",
    "auth-idp-cognito",
    "auth-idp-oidc",
    "auth-on-unauthenticated-request",
    "auth-scope",
    "auth-session-cookie",
    "auth-session-timeout",
];

/// Object keys of the IdP and JWT JSON, as the structs below spell them (matched
/// case-insensitively, as Go's `encoding/json` does).
const AUTH_KEYS: &[&str] = &[
    "userPoolARN",
    "userPoolClientID",
    "userPoolDomain",
    "authenticationRequestExtraParams",
    "issuer",
    "authorizationEndpoint",
    "tokenEndpoint",
    "userInfoEndpoint",
    "secretName",
    "jwksEndpoint",
    "additionalClaims",
    "name",
    "format",
    "values",
];

/// JWT claim formats ELBv2 knows.
const CLAIM_FORMATS: &[&str] = &["single-string", "string-array", "space-separated-values"];

/// What the fetch step read of each OIDC client Secret, by (namespace, name): the client ID,
/// or why there is none.
pub type OidcClients = BTreeMap<(String, String), Result<String, String>>;

#[derive(Deserialize)]
struct RawCognito {
    #[serde(default, rename = "userPoolARN")]
    user_pool_arn: String,
    #[serde(default, rename = "userPoolClientID")]
    user_pool_client_id: String,
    #[serde(default, rename = "userPoolDomain")]
    user_pool_domain: String,
    #[serde(default, rename = "authenticationRequestExtraParams")]
    extra_params: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOidc {
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    authorization_endpoint: String,
    #[serde(default)]
    token_endpoint: String,
    #[serde(default)]
    user_info_endpoint: String,
    #[serde(default)]
    secret_name: String,
    #[serde(default, rename = "authenticationRequestExtraParams")]
    extra_params: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJwt {
    #[serde(default)]
    jwks_endpoint: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    additional_claims: Vec<RawClaim>,
}

#[derive(Deserialize)]
struct RawClaim {
    #[serde(default)]
    name: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    values: Vec<String>,
}

/// The `auth-*` annotations of the Ingress, each overridden by the Service's when it has it.
fn merged(
    ingress: &BTreeMap<String, String>,
    service: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    AUTH_ANNOTATIONS
        .iter()
        .filter_map(|k| {
            let key = format!("{PREFIX}{k}");
            let value = service
                .and_then(|s| s.get(&key))
                .or_else(|| ingress.get(&key))?;
            Some((key, value.clone()))
        })
        .collect()
}

/// The Secret an `auth-idp-oidc` annotation names, if it parses: what the fetch step reads.
pub fn oidc_secret_name(annotations: &BTreeMap<String, String>) -> Option<String> {
    let raw = Annotations::alb(annotations).get("auth-idp-oidc")?;
    from_json::<RawOidc>(raw, AUTH_KEYS)
        .ok()
        .map(|o| o.secret_name)
        .filter(|n| !n.is_empty())
}

/// The authentication of one backend (`None`: `auth-type` is unset or `none`).
/// `clients`: `None` when Secrets were not read (a plan without cluster access); the client
/// ID is then left empty.
pub fn authenticate(
    ingress: &BTreeMap<String, String>,
    service: Option<&BTreeMap<String, String>>,
    namespace: &str,
    clients: Option<&OidcClients>,
) -> Result<Option<Authenticate>, Problem> {
    let anns = merged(ingress, service);
    let a = Annotations::alb(&anns);
    // Both IdP configurations are parsed whatever the type, as the peer parses them: a
    // malformed one is refused even while unused.
    let cognito = a
        .get("auth-idp-cognito")
        .map(|raw| from_json::<RawCognito>(raw, AUTH_KEYS))
        .transpose()
        .map_err(|e| Problem::annotation("auth-idp-cognito", e))?;
    let oidc = a
        .get("auth-idp-oidc")
        .map(|raw| from_json::<RawOidc>(raw, AUTH_KEYS))
        .transpose()
        .map_err(|e| Problem::annotation("auth-idp-oidc", e))?;
    let kind = a.get("auth-type").unwrap_or("none");
    if kind == "none" {
        return Ok(None);
    }
    let on_unauthenticated = a
        .get("auth-on-unauthenticated-request")
        .unwrap_or(DEFAULT_ON_UNAUTHENTICATED);
    if !["authenticate", "deny", "allow"].contains(&on_unauthenticated) {
        return Err(Problem::annotation(
            "auth-on-unauthenticated-request",
            format!("{on_unauthenticated:?} is not one of authenticate, deny, allow"),
        ));
    }
    let timeout = match a.get("auth-session-timeout") {
        None => DEFAULT_SESSION_TIMEOUT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|t| (1..=DEFAULT_SESSION_TIMEOUT).contains(t))
            .ok_or_else(|| {
                Problem::annotation(
                    "auth-session-timeout",
                    format!(
                        "{raw:?} is not a number of seconds from 1 to {DEFAULT_SESSION_TIMEOUT}"
                    ),
                )
            })?,
    };
    let session = |extra_params| AuthSession {
        on_unauthenticated: on_unauthenticated.to_owned(),
        scope: a.get("auth-scope").unwrap_or(DEFAULT_SCOPE).to_owned(),
        cookie: a
            .get("auth-session-cookie")
            .unwrap_or(DEFAULT_SESSION_COOKIE)
            .to_owned(),
        timeout,
        extra_params,
    };
    match kind {
        "cognito" => {
            let c = cognito.ok_or_else(|| {
                Problem::annotation("auth-type", "cognito needs auth-idp-cognito")
            })?;
            let fields = [
                ("userPoolARN", &c.user_pool_arn),
                ("userPoolClientID", &c.user_pool_client_id),
                ("userPoolDomain", &c.user_pool_domain),
            ];
            if let Some((field, _)) = fields.iter().find(|(_, v)| v.is_empty()) {
                return Err(Problem::annotation(
                    "auth-idp-cognito",
                    format!("{field} is required"),
                ));
            }
            if !c.user_pool_arn.starts_with("arn:") {
                return Err(Problem::annotation(
                    "auth-idp-cognito",
                    format!("userPoolARN {:?} is not an ARN", c.user_pool_arn),
                ));
            }
            Ok(Some(Authenticate::Cognito(CognitoAuth {
                user_pool_arn: c.user_pool_arn,
                client_id: c.user_pool_client_id,
                domain: c.user_pool_domain,
                session: session(c.extra_params),
            })))
        }
        "oidc" => {
            let o =
                oidc.ok_or_else(|| Problem::annotation("auth-type", "oidc needs auth-idp-oidc"))?;
            let fields = [
                ("issuer", &o.issuer),
                ("authorizationEndpoint", &o.authorization_endpoint),
                ("tokenEndpoint", &o.token_endpoint),
                ("userInfoEndpoint", &o.user_info_endpoint),
                ("secretName", &o.secret_name),
            ];
            if let Some((field, _)) = fields.iter().find(|(_, v)| v.is_empty()) {
                return Err(Problem::annotation(
                    "auth-idp-oidc",
                    format!("{field} is required"),
                ));
            }
            if let Some((field, v)) = fields[..4].iter().find(|(_, v)| !v.starts_with("https://")) {
                return Err(Problem::annotation(
                    "auth-idp-oidc",
                    format!("{field} {v:?} is not an https:// URL"),
                ));
            }
            let key = (namespace.to_owned(), o.secret_name.clone());
            let client_id = match clients.map(|c| c.get(&key)) {
                None => String::new(),
                Some(Some(Ok(id))) => id.clone(),
                Some(Some(Err(why))) => {
                    return Err(Problem::new(
                        reason::SECRET_NOT_FOUND,
                        format!("auth-idp-oidc: Secret {namespace}/{}: {why}", o.secret_name),
                    ));
                }
                Some(None) => {
                    return Err(Problem::new(
                        reason::SECRET_NOT_FOUND,
                        format!(
                            "auth-idp-oidc: Secret {namespace}/{} was not read",
                            o.secret_name
                        ),
                    ));
                }
            };
            Ok(Some(Authenticate::Oidc(OidcAuth {
                issuer: o.issuer,
                authorization_endpoint: o.authorization_endpoint,
                token_endpoint: o.token_endpoint,
                user_info_endpoint: o.user_info_endpoint,
                client_id,
                secret: ClientSecretRef {
                    namespace: namespace.to_owned(),
                    name: o.secret_name,
                },
                session: session(o.extra_params),
            })))
        }
        other => Err(Problem::annotation(
            "auth-type",
            format!("{other:?} is not one of none, cognito, oidc"),
        )),
    }
}

/// The `jwt-validation` annotation of the Ingress.
pub fn jwt_validation(ingress: &BTreeMap<String, String>) -> Result<Option<Authenticate>, Problem> {
    let Some(raw) = Annotations::alb(ingress).get("jwt-validation") else {
        return Ok(None);
    };
    let j: RawJwt =
        from_json(raw, AUTH_KEYS).map_err(|e| Problem::annotation("jwt-validation", e))?;
    let bad = |m: String| Problem::annotation("jwt-validation", m);
    if j.jwks_endpoint.is_empty() {
        return Err(bad("jwksEndpoint is required".into()));
    }
    if j.issuer.is_empty() {
        return Err(bad("issuer is required".into()));
    }
    let mut names = BTreeSet::new();
    let mut claims = Vec::new();
    for c in j.additional_claims {
        if c.name.is_empty() {
            return Err(bad("every additional claim needs a name".into()));
        }
        if !CLAIM_FORMATS.contains(&c.format.as_str()) {
            return Err(bad(format!(
                "claim {:?}: format {:?} is not one of {}",
                c.name,
                c.format,
                CLAIM_FORMATS.join(", ")
            )));
        }
        if c.values.is_empty() {
            return Err(bad(format!("claim {:?} has no values", c.name)));
        }
        if !names.insert(c.name.clone()) {
            return Err(bad(format!("claim {:?} is given twice", c.name)));
        }
        claims.push(JwtClaim {
            name: c.name,
            format: c.format,
            values: c.values,
        });
    }
    Ok(Some(Authenticate::Jwt(JwtValidation {
        jwks_endpoint: j.jwks_endpoint,
        issuer: j.issuer,
        claims,
    })))
}

/// What runs before a backend's action on an HTTPS listener: its authentication or the
/// Ingress's JWT validation; both at once is refused, as the peer refuses it.
pub fn before_action(
    ingress: &BTreeMap<String, String>,
    service: Option<&BTreeMap<String, String>>,
    namespace: &str,
    clients: Option<&OidcClients>,
) -> Result<Option<Authenticate>, Problem> {
    let auth = authenticate(ingress, service, namespace, clients)?;
    let jwt = jwt_validation(ingress)?;
    match (auth, jwt) {
        (Some(_), Some(_)) => Err(Problem::annotation(
            "jwt-validation",
            "authentication (auth-type) and JWT validation cannot both be configured",
        )),
        (a, j) => Ok(a.or(j)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anns(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect()
    }

    const OIDC: &str = r#"{"issuer":"https://example.com","authorizationEndpoint":"https://authorization.example.com","tokenEndpoint":"https://token.example.com","userInfoEndpoint":"https://userinfo.example.com","secretName":"my-k8s-secret"}"#;

    fn clients() -> OidcClients {
        [(
            ("ns".into(), "my-k8s-secret".into()),
            Ok("my-client".into()),
        )]
        .into()
    }

    #[test]
    fn the_documented_oidc_example_gets_the_peers_defaults_and_the_secrets_client_id() {
        let ing = anns(&[("auth-type", "oidc"), ("auth-idp-oidc", OIDC)]);
        let Some(Authenticate::Oidc(o)) = authenticate(&ing, None, "ns", Some(&clients())).unwrap()
        else {
            panic!("not oidc");
        };
        assert_eq!(o.issuer, "https://example.com");
        assert_eq!(o.user_info_endpoint, "https://userinfo.example.com");
        assert_eq!(o.client_id, "my-client");
        assert_eq!(o.secret.name, "my-k8s-secret");
        assert_eq!(o.session.scope, "openid");
        assert_eq!(o.session.cookie, "AWSELBAuthSessionCookie");
        assert_eq!(o.session.timeout, 604_800);
        assert_eq!(o.session.on_unauthenticated, "authenticate");
    }

    #[test]
    fn the_documented_cognito_example_with_a_services_overrides() {
        let ing = anns(&[
            ("auth-type", "cognito"),
            (
                "auth-idp-cognito",
                r#"{"userPoolARN":"arn:aws:cognito-idp:us-west-2:xxx:userpool/xxx","userPoolClientID":"my-clientID","userPoolDomain":"my-domain"}"#,
            ),
            ("auth-scope", "email openid"),
            ("auth-session-timeout", "86400"),
        ]);
        let svc = anns(&[
            ("auth-on-unauthenticated-request", "deny"),
            ("auth-session-cookie", "custom-cookie"),
        ]);
        let Some(Authenticate::Cognito(c)) = authenticate(&ing, Some(&svc), "ns", None).unwrap()
        else {
            panic!("not cognito");
        };
        assert_eq!(c.domain, "my-domain");
        assert_eq!(c.client_id, "my-clientID");
        assert_eq!(c.session.scope, "email openid");
        assert_eq!(c.session.timeout, 86_400);
        assert_eq!(c.session.on_unauthenticated, "deny");
        assert_eq!(c.session.cookie, "custom-cookie");
        // A Service saying none turns the Ingress's authentication off for its backend.
        let off = anns(&[("auth-type", "none")]);
        assert_eq!(authenticate(&ing, Some(&off), "ns", None).unwrap(), None);
    }

    #[test]
    fn keys_match_case_insensitively_as_go_reads_them() {
        let ing = anns(&[
            ("auth-type", "cognito"),
            (
                "auth-idp-cognito",
                r#"{"UserPoolArn":"arn:aws:cognito-idp:us-west-2:1:userpool/x","userpoolclientid":"id","USERPOOLDOMAIN":"d"}"#,
            ),
        ]);
        assert!(matches!(
            authenticate(&ing, None, "ns", None).unwrap(),
            Some(Authenticate::Cognito(_))
        ));
    }

    #[test]
    fn bad_authentication_is_refused_with_what_is_wrong() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("auth-type", "basic")], "auth-type"),
            (&[("auth-type", "cognito")], "needs auth-idp-cognito"),
            (&[("auth-type", "oidc")], "needs auth-idp-oidc"),
            (
                &[("auth-type", "oidc"), ("auth-idp-oidc", "{not json")],
                "auth-idp-oidc",
            ),
            (
                &[
                    ("auth-type", "oidc"),
                    ("auth-idp-oidc", r#"{"issuer":"https://x"}"#),
                ],
                "authorizationEndpoint is required",
            ),
            (
                &[
                    ("auth-type", "oidc"),
                    (
                        "auth-idp-oidc",
                        &OIDC.replace("https://token", "http://token"),
                    ),
                ],
                "not an https:// URL",
            ),
            (
                &[
                    ("auth-type", "oidc"),
                    ("auth-idp-oidc", OIDC),
                    ("auth-session-timeout", "0"),
                ],
                "auth-session-timeout",
            ),
            (
                &[
                    ("auth-type", "oidc"),
                    ("auth-idp-oidc", OIDC),
                    ("auth-on-unauthenticated-request", "maybe"),
                ],
                "not one of authenticate, deny, allow",
            ),
            (
                &[
                    ("auth-type", "cognito"),
                    (
                        "auth-idp-cognito",
                        r#"{"userPoolARN":"pool","userPoolClientID":"c","userPoolDomain":"d"}"#,
                    ),
                ],
                "is not an ARN",
            ),
        ];
        for (pairs, wanted) in cases {
            let e = authenticate(&anns(pairs), None, "ns", Some(&clients())).unwrap_err();
            assert!(e.message.contains(wanted), "{pairs:?}: {}", e.message);
        }
    }

    #[test]
    fn an_unreadable_or_missing_secret_is_its_own_reason() {
        let ing = anns(&[("auth-type", "oidc"), ("auth-idp-oidc", OIDC)]);
        let forbidden: OidcClients = [(
            ("ns".into(), "my-k8s-secret".into()),
            Err("forbidden".into()),
        )]
        .into();
        for clients in [forbidden, OidcClients::new()] {
            let e = authenticate(&ing, None, "ns", Some(&clients)).unwrap_err();
            assert_eq!(e.reason, reason::SECRET_NOT_FOUND, "{}", e.message);
        }
        assert_eq!(oidc_secret_name(&ing).as_deref(), Some("my-k8s-secret"));
    }

    #[test]
    fn the_documented_jwt_example_and_its_required_fields() {
        let ing = anns(&[(
            "jwt-validation",
            r#"{"jwksEndpoint":"https://example-endpoint.com","issuer":"https://example-issuer.com","additionalClaims":[{"name":"admin","format":"single-string","values":["true"]},{"name":"ver","format":"string-array","values":["6","19"]},{"name":"scope","format":"space-separated-values","values":["read:api","write","email"]}]}"#,
        )]);
        let Some(Authenticate::Jwt(j)) = jwt_validation(&ing).unwrap() else {
            panic!("no jwt");
        };
        assert_eq!(j.claims.len(), 3);
        assert_eq!(j.claims[1].values, ["6", "19"]);
        for (raw, wanted) in [
            (r#"{"issuer":"https://i"}"#, "jwksEndpoint is required"),
            (r#"{"jwksEndpoint":"https://j"}"#, "issuer is required"),
            (
                r#"{"jwksEndpoint":"https://j","issuer":"i","additionalClaims":[{"name":"a","format":"list","values":["x"]}]}"#,
                "format \"list\"",
            ),
            (
                r#"{"jwksEndpoint":"https://j","issuer":"i","additionalClaims":[{"name":"a","format":"single-string","values":[]}]}"#,
                "has no values",
            ),
        ] {
            let e = jwt_validation(&anns(&[("jwt-validation", raw)])).unwrap_err();
            assert!(e.message.contains(wanted), "{raw}: {}", e.message);
        }
        let both = anns(&[
            ("auth-type", "oidc"),
            ("auth-idp-oidc", OIDC),
            (
                "jwt-validation",
                r#"{"jwksEndpoint":"https://j","issuer":"i"}"#,
            ),
        ]);
        assert!(before_action(&both, None, "ns", Some(&clients())).is_err());
    }
}
