//! What kind of failure a failed AWS call is: the one classification every adapter uses
//! (and the call-metrics interceptor, for throttling), so "throttled", "not found" and
//! "transient" mean the same thing for every service.
//!
//! Classification is by the AWS error code first (query, REST-XML and JSON protocols all
//! carry one), then by the HTTP status where the code says nothing we know.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Error codes AWS uses to say "slow down" across the query, REST-XML and JSON protocols.
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "SlowDown",
];

/// Codes for a request the service refused as malformed (bad parameter, bad ARN or name).
const VALIDATION_CODES: &[&str] = &[
    "ValidationError",
    "ValidationException",
    "InvalidParameter",
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "InvalidParameterException",
    "InvalidParameterValueException",
    "MissingParameter",
    "InvalidInput",
    "InvalidArgsException",
];

/// Codes for a request that collides with existing state or a concurrent change, besides
/// the `*Duplicate*`, `*AlreadyExists*` and `*InUse*` families.
const CONFLICT_CODES: &[&str] = &[
    "Conflict",
    "ConflictException",
    "ConcurrentModification",
    "ConcurrentModificationException",
    "DependencyViolation",
];

/// Codes for a failure on the service's side that a later retry may not meet.
const TRANSIENT_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// The kinds of failure callers act on differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Slow down: retry later, and never one by one.
    Throttling,
    /// The resource named does not exist (`*NotFound*`, `NoSuch*`, HTTP 404).
    NotFound,
    /// The request itself is malformed; retrying it unchanged fails again.
    Validation,
    /// Collides with existing state: duplicate, already exists, in use, concurrent change.
    Conflict,
    /// No answer (timeout, connection failure) or a server-side failure (5xx).
    Transient,
    /// Anything else: access denied, limits, unknown codes, requests that could not be built.
    Other,
}

/// True for the codes in [`THROTTLING_CODES`].
pub fn is_throttling_code(code: &str) -> bool {
    THROTTLING_CODES.contains(&code)
}

/// The kind an AWS error code names; [`ErrorKind::Other`] for a code we do not know.
pub fn code_kind(code: &str) -> ErrorKind {
    if is_throttling_code(code) {
        ErrorKind::Throttling
    } else if code.contains("NotFound") || code.starts_with("NoSuch") {
        ErrorKind::NotFound
    } else if VALIDATION_CODES.contains(&code) {
        ErrorKind::Validation
    } else if CONFLICT_CODES.contains(&code)
        || code.contains("Duplicate")
        || code.contains("AlreadyExists")
        || code.contains("InUse")
    {
        ErrorKind::Conflict
    } else if TRANSIENT_CODES.contains(&code) {
        ErrorKind::Transient
    } else {
        ErrorKind::Other
    }
}

/// The kind of an error response, from its error code (when there is one) and HTTP status.
/// HTTP 429 is throttling whatever the code; otherwise a code we know wins over the status
/// (EC2 throttles with `RequestLimitExceeded` and a 503).
pub fn response_kind(status: u16, code: Option<&str>) -> ErrorKind {
    if status == 429 {
        return ErrorKind::Throttling;
    }
    match code.map(code_kind) {
        Some(kind) if kind != ErrorKind::Other => kind,
        _ => match status {
            404 => ErrorKind::NotFound,
            500.. => ErrorKind::Transient,
            _ => ErrorKind::Other,
        },
    }
}

/// The HTTP status of the raw response an [`SdkError`] carries. Implemented for the SDK's
/// [`HttpResponse`], the `R` of every client call.
pub trait HttpStatus {
    fn http_status(&self) -> u16;
}

impl HttpStatus for HttpResponse {
    fn http_status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The AWS error code of a service error response; `None` for every other failure.
pub fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// True when the service answered with one of `codes`.
pub fn has_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>, codes: &[&str]) -> bool {
    code(err).is_some_and(|c| codes.contains(&c))
}

/// The kind of a failed call.
pub fn kind<E: ProvideErrorMetadata, R: HttpStatus>(err: &SdkError<E, R>) -> ErrorKind {
    match err {
        SdkError::ServiceError(service) => {
            response_kind(service.raw().http_status(), service.err().code())
        }
        SdkError::ResponseError(response) => response_kind(response.raw().http_status(), None),
        SdkError::TimeoutError(_) => ErrorKind::Transient,
        SdkError::DispatchFailure(failure) if !failure.is_user() => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

/// Throttled: a throttling code, or HTTP 429.
pub fn is_throttling<E: ProvideErrorMetadata, R: HttpStatus>(err: &SdkError<E, R>) -> bool {
    kind(err) == ErrorKind::Throttling
}

/// The resource does not exist, by the operation's own not-found codes: which codes mean
/// "not found" (rather than "a resource the request refers to is missing") depends on the
/// operation, so the caller names them.
pub fn is_not_found<E: ProvideErrorMetadata, R>(
    err: &SdkError<E, R>,
    not_found_codes: &[&str],
) -> bool {
    has_code(err, not_found_codes)
}

/// The service refused the request as malformed.
pub fn is_validation<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err).is_some_and(|c| VALIDATION_CODES.contains(&c))
}

/// No response reached us: the attempt timed out or the connection failed.
pub fn is_transport<E, R>(err: &SdkError<E, R>) -> bool {
    matches!(
        err,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    type Error = SdkError<ErrorMetadata, HttpResponse>;

    fn raw(status: u16) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty())
    }

    fn service(status: u16, code: Option<&str>) -> Error {
        let mut meta = ErrorMetadata::builder().message("m");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        SdkError::service_error(meta.build(), raw(status))
    }

    #[test]
    fn throttling_codes_in_every_protocol_and_429() {
        for code in [
            "Throttling",
            "ThrottlingException",
            "RequestLimitExceeded",
            "PriorRequestNotComplete",
            "TooManyRequestsException",
            "SlowDown",
        ] {
            let err = service(400, Some(code));
            assert_eq!(kind(&err), ErrorKind::Throttling, "{code}");
            assert!(is_throttling(&err), "{code}");
        }
        // EC2 throttles with a 503: the code wins over the status.
        assert!(is_throttling(&service(503, Some("RequestLimitExceeded"))));
        assert!(is_throttling(&service(429, None)));
        assert!(is_throttling(&service(429, Some("SomethingNew"))));
        assert!(is_throttling(&service(
            429,
            Some("ResourceNotFoundException")
        )));
        assert_eq!(response_kind(429, None), ErrorKind::Throttling);
        assert_eq!(response_kind(400, Some("SlowDown")), ErrorKind::Throttling);
        assert!(is_throttling(&Error::response_error("cut", raw(429))));
        assert!(!is_throttling(&service(400, Some("AccessDenied"))));
    }

    #[test]
    fn not_found_codes_and_404() {
        for code in [
            "LoadBalancerNotFound",
            "TargetGroupNotFound",
            "InvalidGroup.NotFound",
            "ResourceNotFoundException",
            "NoSuchEntity",
            "NoSuchHostedZone",
        ] {
            assert_eq!(
                kind(&service(400, Some(code))),
                ErrorKind::NotFound,
                "{code}"
            );
        }
        assert_eq!(kind(&service(404, None)), ErrorKind::NotFound);

        let err = service(400, Some("InvalidPermission.NotFound"));
        assert!(is_not_found(
            &err,
            &["InvalidGroup.NotFound", "InvalidPermission.NotFound"]
        ));
        assert!(!is_not_found(&err, &["InvalidGroup.NotFound"]));
        assert!(!is_not_found(
            &Error::timeout_error("slow"),
            &["InvalidGroup.NotFound"]
        ));
    }

    #[test]
    fn validation_and_conflict() {
        for code in [
            "ValidationError",
            "ValidationException",
            "InvalidParameterValue",
        ] {
            let err = service(400, Some(code));
            assert_eq!(kind(&err), ErrorKind::Validation, "{code}");
            assert!(is_validation(&err), "{code}");
        }
        assert!(!is_validation(&service(400, Some("AccessDenied"))));
        for code in [
            "InvalidPermission.Duplicate",
            "DuplicateTargetGroupName",
            "EntityAlreadyExists",
            "DependencyViolation",
            "PriorityInUse",
            "ConflictException",
        ] {
            assert_eq!(
                kind(&service(400, Some(code))),
                ErrorKind::Conflict,
                "{code}"
            );
        }
    }

    #[test]
    fn transient_failures() {
        assert_eq!(kind(&Error::timeout_error("slow")), ErrorKind::Transient);
        let io = Error::dispatch_failure(ConnectorError::io("reset".into()));
        assert_eq!(kind(&io), ErrorKind::Transient);
        assert!(is_transport(&io));
        let user = Error::dispatch_failure(ConnectorError::user("bad uri".into()));
        assert_eq!(kind(&user), ErrorKind::Other);
        assert!(is_transport(&user));
        assert_eq!(kind(&service(500, None)), ErrorKind::Transient);
        assert_eq!(kind(&service(503, Some("Unknown"))), ErrorKind::Transient);
        assert_eq!(
            kind(&service(400, Some("InternalFailure"))),
            ErrorKind::Transient
        );
        assert_eq!(
            kind(&Error::response_error("truncated", raw(502))),
            ErrorKind::Transient
        );
        assert!(!is_transport(&service(500, None)));
    }

    #[test]
    fn everything_else_is_other() {
        assert_eq!(kind(&service(403, Some("AccessDenied"))), ErrorKind::Other);
        assert_eq!(kind(&service(400, None)), ErrorKind::Other);
        assert_eq!(
            kind(&Error::response_error("garbled", raw(200))),
            ErrorKind::Other
        );
        assert_eq!(
            kind(&Error::construction_failure("missing field")),
            ErrorKind::Other
        );
    }

    #[test]
    fn codes_come_only_from_service_errors() {
        let err = service(400, Some("ValidationError"));
        assert_eq!(code(&err), Some("ValidationError"));
        assert!(has_code(&err, &["Other", "ValidationError"]));
        assert_eq!(code(&Error::timeout_error("slow")), None);
        assert_eq!(code(&service(400, None)), None);
    }
}
