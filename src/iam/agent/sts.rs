//! The STS adapter: SDK types in, our `Credentials` and `StsFault` out.

use std::time::{Duration, SystemTime};

use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use futures::future::BoxFuture;

use super::credentials::{AssumeRequest, AssumeRole, Credentials, StsFault};
use crate::aws::errors;

pub struct StsAdapter {
    pub sts: aws_sdk_sts::Client,
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: SdkError<E, HttpResponse>,
) -> StsFault {
    let message = DisplayErrorContext(&err).to_string();
    if errors::is_transport(&err) {
        StsFault::Unreachable(message)
    } else if errors::has_code(&err, &["AccessDenied", "AccessDeniedException"]) {
        StsFault::AccessDenied(message)
    } else if errors::is_throttling(&err) {
        StsFault::Throttled(message)
    } else {
        StsFault::Other(message)
    }
}

impl AssumeRole for StsAdapter {
    fn assume_role(&self, req: AssumeRequest) -> BoxFuture<'_, Result<Credentials, StsFault>> {
        Box::pin(async move {
            let mut call = self
                .sts
                .assume_role()
                .role_arn(&req.role_arn)
                .role_session_name(&req.session_name)
                .set_external_id(req.external_id.clone())
                .set_duration_seconds(req.duration_seconds);
            for (key, value) in &req.tags {
                let tag = aws_sdk_sts::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|e| StsFault::Other(format!("session tag {key}: {e}")))?;
                call = call.tags(tag).transitive_tag_keys(key);
            }
            let first = credentials(call.send().await.map_err(classify)?)?;
            let Some(target) = &req.then else {
                return Ok(first);
            };
            // Role chaining: the target role, assumed with the first role's credentials
            // (transitive session tags carry over; STS caps the session at an hour).
            let chained = aws_sdk_sts::Client::from_conf(
                self.sts
                    .config()
                    .to_builder()
                    .credentials_provider(aws_credential_types::Credentials::new(
                        first.access_key_id.clone(),
                        first.secret_access_key.clone(),
                        Some(first.session_token.clone()),
                        Some(first.expiration),
                        "causeway-chained",
                    ))
                    .build(),
            );
            let out = chained
                .assume_role()
                .role_arn(&target.role_arn)
                .role_session_name(&req.session_name)
                .set_external_id(target.external_id.clone())
                .send()
                .await
                .map_err(classify)?;
            credentials(out)
        })
    }
}

fn credentials(
    out: aws_sdk_sts::operation::assume_role::AssumeRoleOutput,
) -> Result<Credentials, StsFault> {
    let c = out
        .credentials()
        .ok_or_else(|| StsFault::Other("AssumeRole returned no credentials".into()))?;
    let expiration = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(c.expiration().secs()).unwrap_or_default());
    Ok(Credentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: c.secret_access_key().to_string(),
        session_token: c.session_token().to_string(),
        expiration,
    })
}

/// `arn:<partition>:iam::<account>:role/` for the account our own credentials live in.
pub async fn discover_base_arn(sts: &aws_sdk_sts::Client) -> Result<String, StsFault> {
    let identity = sts.get_caller_identity().send().await.map_err(classify)?;
    let account = identity
        .account()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| StsFault::Other("GetCallerIdentity returned no account".into()))?;
    let partition = identity
        .arn()
        .and_then(|arn| arn.split(':').nth(1))
        .filter(|p| !p.is_empty())
        .unwrap_or("aws");
    Ok(format!("arn:{partition}:iam::{account}:role/"))
}
