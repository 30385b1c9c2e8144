//! Counts every AWS API attempt into `causeway_aws_api_calls_total`.

use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::{AwsService, errors};
use crate::telemetry::{ApiOutcome, Metrics};

/// Error bodies are small; never scan more than this of a (possibly huge) response.
const MAX_SCAN: usize = 8 * 1024;

/// Counts per HTTP attempt rather than per SDK call: an attempt is what AWS meters
/// against the quota, and a call that succeeded after two throttled retries should show
/// up as throttling.
#[derive(Debug)]
pub(crate) struct ApiCallMetrics {
    metrics: Arc<Metrics>,
    service: AwsService,
}

impl ApiCallMetrics {
    pub(crate) fn new(metrics: Arc<Metrics>, service: AwsService) -> Self {
        ApiCallMetrics { metrics, service }
    }
}

impl Intercept for ApiCallMetrics {
    fn name(&self) -> &'static str {
        "CausewayApiCallMetrics"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        let succeeded = matches!(context.output_or_error(), Some(Ok(_)));
        let outcome = outcome(succeeded, context.response());
        self.metrics
            .aws_call(self.service.label(), operation, outcome);
        Ok(())
    }
}

fn outcome(succeeded: bool, response: Option<&HttpResponse>) -> ApiOutcome {
    if succeeded {
        return ApiOutcome::Success;
    }
    match response {
        Some(response) if is_throttling(response) => ApiOutcome::Throttled,
        _ => ApiOutcome::Error,
    }
}

fn is_throttling(response: &HttpResponse) -> bool {
    errors::response_kind(response.status().as_u16(), error_code(response))
        == errors::ErrorKind::Throttling
}

/// Extracts the AWS error code without knowing the operation's error type: the
/// interceptor is shared by every operation, and the typed errors differ per operation.
fn error_code(response: &HttpResponse) -> Option<&str> {
    // awsJson and restJson: `x-amzn-ErrorType: ThrottlingException:http://internal.amazon.com/...`
    if let Some(header) = response.headers().get("x-amzn-errortype") {
        let code = header.split(':').next().unwrap_or(header).trim();
        if !code.is_empty() {
            return Some(code);
        }
    }
    let body = response.body().bytes()?;
    let body = &body[..body.len().min(MAX_SCAN)];
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        // A cut in the middle of a multi-byte character: keep the valid prefix.
        Err(err) => std::str::from_utf8(&body[..err.valid_up_to()]).ok()?,
    };
    xml_code(text).or_else(|| json_type(text))
}

/// awsQuery, ec2Query and restXml: `<Error><Code>Throttling</Code>...`.
fn xml_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(text[start..start + len].trim())
}

/// awsJson: `{"__type":"com.amazonaws.acm#ThrottlingException", ...}`.
fn json_type(text: &str) -> Option<&str> {
    let after_key = &text[text.find("\"__type\"")? + "\"__type\"".len()..];
    let after_colon = after_key.trim_start().strip_prefix(':')?.trim_start();
    let value = after_colon.strip_prefix('"')?;
    let value = &value[..value.find('"')?];
    Some(value.rsplit('#').next().unwrap_or(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn response(status: u16, headers: &[(&'static str, &'static str)], body: &str) -> HttpResponse {
        let mut response = HttpResponse::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(body.to_owned()),
        );
        for (name, value) in headers {
            response.headers_mut().insert(*name, *value);
        }
        response
    }

    #[test]
    fn success_wins_over_everything() {
        let r = response(200, &[], "<Code>Throttling</Code>");
        assert_eq!(outcome(true, Some(&r)), ApiOutcome::Success);
    }

    #[test]
    fn classifies_throttling_in_every_protocol() {
        let query = response(
            400,
            &[],
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>",
        );
        let ec2 = response(
            503,
            &[],
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>",
        );
        let route53 = response(
            400,
            &[],
            "<ErrorResponse><Error><Code> PriorRequestNotComplete </Code></Error></ErrorResponse>",
        );
        let json_header = response(
            400,
            &[(
                "x-amzn-ErrorType",
                "ThrottlingException:http://internal.amazon.com/coral/",
            )],
            "{}",
        );
        let json_body = response(
            400,
            &[],
            r#"{"__type" : "com.amazonaws.acm#TooManyRequestsException","message":"slow"}"#,
        );
        let too_many = response(429, &[], "");
        for r in [query, ec2, route53, json_header, json_body, too_many] {
            assert_eq!(outcome(false, Some(&r)), ApiOutcome::Throttled, "{r:?}");
        }
    }

    #[test]
    fn other_failures_are_errors() {
        let not_found = response(
            400,
            &[],
            "<ErrorResponse><Error><Code>LoadBalancerNotFound</Code></Error></ErrorResponse>",
        );
        let json = response(400, &[], r#"{"__type":"ResourceNotFoundException"}"#);
        let garbage = response(500, &[], "<Code>unterminated");
        for r in [not_found, json, garbage] {
            assert_eq!(outcome(false, Some(&r)), ApiOutcome::Error, "{r:?}");
        }
        assert_eq!(outcome(false, None), ApiOutcome::Error);
    }
}
