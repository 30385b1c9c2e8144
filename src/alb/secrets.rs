//! The OIDC client Secrets a group's members name (`auth-idp-oidc`'s `secretName`, on the
//! Ingress or on a backend Service), read by name at fetch time: no Secret is listed or
//! watched, so the controller needs `get` on exactly those Secrets and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::{Api, ResourceExt};

use super::annotations::{
    OidcClients, SECRET_CLIENT_ID, SECRET_CLIENT_ID_LEGACY, SECRET_CLIENT_SECRET, oidc_secret_name,
};
use super::model::ClientSecrets;

/// The (namespace, name) of every Secret the Ingresses or their backend Services name.
/// `service` finds a Service by namespace and name (the store's index: no scan per Ingress).
pub(super) fn wanted<'a>(
    ingresses: impl Iterator<Item = &'a Ingress>,
    service: impl Fn(&str, &str) -> Option<Arc<Service>>,
) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for ing in ingresses {
        let ns = ing.namespace().unwrap_or_default();
        if let Some(name) = oidc_secret_name(ing.annotations()) {
            out.insert((ns.clone(), name));
        }
        let spec = ing.spec.as_ref();
        let backends: BTreeSet<&str> = spec
            .and_then(|s| s.default_backend.as_ref())
            .into_iter()
            .chain(
                spec.iter()
                    .flat_map(|s| s.rules.iter().flatten())
                    .flat_map(|r| r.http.iter().flat_map(|h| h.paths.iter()))
                    .map(|p| &p.backend),
            )
            .filter_map(|b| b.service.as_ref().map(|s| s.name.as_str()))
            .collect();
        for backend in backends {
            if let Some(svc) = service(&ns, backend)
                && let Some(name) = oidc_secret_name(svc.annotations())
            {
                out.insert((ns.clone(), name));
            }
        }
    }
    out
}

/// The client ID of a Secret's data, or why it has none; and its client secret.
pub(super) fn parse_client(secret: &Secret) -> Result<(String, String), String> {
    let data = secret.data.clone().unwrap_or_default();
    let get = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    };
    let id = get(SECRET_CLIENT_ID)
        .or_else(|| get(SECRET_CLIENT_ID_LEGACY))
        .ok_or_else(|| format!("has no {SECRET_CLIENT_ID} key"))?;
    let secret =
        get(SECRET_CLIENT_SECRET).ok_or_else(|| format!("has no {SECRET_CLIENT_SECRET} key"))?;
    // As the peer trims them: trailing whitespace off the ID, trailing control characters
    // (a newline from `echo | base64`) off the secret.
    Ok((
        id.trim_end().to_owned(),
        secret.trim_end_matches(char::is_control).to_owned(),
    ))
}

/// Reads each wanted Secret. Not found and forbidden are per-Secret answers (the Ingress that
/// names it is refused with the reason); any other error is the fetch step's.
pub(super) async fn read(
    client: &kube::Client,
    wanted: &BTreeSet<(String, String)>,
) -> Result<(OidcClients, ClientSecrets), kube::Error> {
    let mut clients = OidcClients::new();
    let mut secrets = BTreeMap::new();
    let mut versions = BTreeMap::new();
    for (ns, name) in wanted {
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let answer = match api.get(name).await {
            Ok(s) => {
                if let Some(v) = s.resource_version() {
                    versions.insert((ns.clone(), name.clone()), v);
                }
                parse_client(&s)
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Err("not found".to_owned()),
            // Not the apiserver's message: it reads like an RBAC failure of the controller,
            // where this is a Secret the operator has not listed.
            Err(kube::Error::Api(e)) if e.code == 403 => Err(
                "causeway may not read it; list it in the chart's alb.oidcSecrets (get on this Secret only)"
                    .to_owned(),
            ),
            Err(e) => return Err(e),
        };
        let key = (ns.clone(), name.clone());
        match answer {
            Ok((id, secret)) => {
                clients.insert(key.clone(), Ok(id));
                secrets.insert(key, secret);
            }
            Err(why) => {
                clients.insert(key, Err(why));
            }
        }
    }
    Ok((clients, ClientSecrets::new(secrets).with_versions(versions)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn client_id_and_secret_are_read_and_trimmed_as_the_peer_trims_them() {
        assert_eq!(
            parse_client(&secret(&[
                ("clientID", "id \n"),
                ("clientSecret", "s3cret\n")
            ])),
            Ok(("id".into(), "s3cret".into()))
        );
        assert_eq!(
            parse_client(&secret(&[("clientId", "legacy"), ("clientSecret", "x")])),
            Ok(("legacy".into(), "x".into()))
        );
        assert!(parse_client(&secret(&[("clientSecret", "x")])).is_err());
        assert!(parse_client(&secret(&[("clientID", "x")])).is_err());
    }
}
