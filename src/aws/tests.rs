//! Exercises the real SDK stack against a canned STS server on 127.0.0.1, so nothing
//! reaches AWS or the instance metadata service.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::telemetry::ApiOutcome;

const IDENTITY_XML: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::123456789012:user/test</Arn>
    <UserId>AIDATESTUSER</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#;

const THROTTLED_XML: &str = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
  <RequestId>00000000-0000-0000-0000-000000000001</RequestId>
</ErrorResponse>"#;

const DENIED_XML: &str = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error>
  <RequestId>00000000-0000-0000-0000-000000000002</RequestId>
</ErrorResponse>"#;

#[derive(Clone, Copy)]
struct Canned {
    status: u16,
    body: &'static str,
}

const OK: Canned = Canned {
    status: 200,
    body: IDENTITY_XML,
};
const THROTTLED: Canned = Canned {
    status: 400,
    body: THROTTLED_XML,
};
const DENIED: Canned = Canned {
    status: 403,
    body: DENIED_XML,
};

/// Answers requests with the scripted responses in order, repeating the last one.
struct FakeSts {
    url: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeSts {
    async fn start(script: Vec<Canned>) -> FakeSts {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(script.into_iter().collect::<Vec<_>>()));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let canned = {
                    let script = script.lock().unwrap();
                    script[n.min(script.len() - 1)]
                };
                tokio::spawn(answer(stream, canned));
            }
        });
        FakeSts {
            url,
            requests,
            task,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn answer(mut stream: TcpStream, canned: Canned) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the head, then as much body as Content-Length announces.
    let body_len = loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break end + 4 + len;
        }
    };
    while request.len() < body_len {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let response = format!(
        "HTTP/1.1 {} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        canned.status,
        canned.body.len(),
        canned.body
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn settings(url: &str) -> AwsSettings {
    AwsSettings {
        region: Some("eu-west-1".into()),
        endpoint_url: Some(url.into()),
        credentials: Some(Credentials::new(
            "AKIDCAUSEWAYTEST",
            "not-a-secret",
            None,
            None,
            "causeway-test",
        )),
        max_attempts: 1,
        ..AwsSettings::default()
    }
}

#[tokio::test]
async fn caller_identity_counts_the_call() {
    let server = FakeSts::start(vec![OK]).await;
    let metrics = Metrics::new();
    let clients = AwsClients::new(&settings(&server.url), metrics.clone())
        .await
        .unwrap();

    let account = caller_identity(&clients).await.unwrap();

    assert_eq!(account, "123456789012");
    assert_eq!(server.requests(), 1);
    assert_eq!(
        metrics.aws_calls("sts", "GetCallerIdentity", ApiOutcome::Success),
        1
    );
    assert!(metrics.encode().contains(
        "causeway_aws_api_calls_total{service=\"sts\",operation=\"GetCallerIdentity\",outcome=\"success\"} 1"
    ));
}

#[tokio::test]
async fn every_attempt_is_counted_and_throttling_is_recognised() {
    let server = FakeSts::start(vec![THROTTLED, OK]).await;
    let metrics = Metrics::new();
    let clients = AwsClients::new(
        &AwsSettings {
            max_attempts: 3,
            ..settings(&server.url)
        },
        metrics.clone(),
    )
    .await
    .unwrap();

    let account = caller_identity(&clients).await.unwrap();

    assert_eq!(account, "123456789012");
    assert_eq!(server.requests(), 2);
    assert_eq!(
        metrics.aws_calls("sts", "GetCallerIdentity", ApiOutcome::Throttled),
        1
    );
    assert_eq!(
        metrics.aws_calls("sts", "GetCallerIdentity", ApiOutcome::Success),
        1
    );
}

#[tokio::test]
async fn failures_are_errors_with_the_aws_message() {
    let server = FakeSts::start(vec![DENIED]).await;
    let metrics = Metrics::new();
    let clients = AwsClients::new(&settings(&server.url), metrics.clone())
        .await
        .unwrap();

    let err = caller_identity(&clients).await.unwrap_err();

    assert!(matches!(err, AwsError::CallerIdentity { .. }), "{err:?}");
    assert!(err.to_string().contains("InvalidClientTokenId"), "{err}");
    assert_eq!(
        metrics.aws_calls("sts", "GetCallerIdentity", ApiOutcome::Error),
        1
    );
}

#[tokio::test]
async fn rate_limiter_spaces_out_requests() {
    let server = FakeSts::start(vec![OK]).await;
    let mut settings = settings(&server.url);
    // One token, refilled every 100 ms: four calls need at least 300 ms.
    settings.rate_limits.sts = Limit::new(10.0, 1);
    let clients = AwsClients::new(&settings, Metrics::new()).await.unwrap();

    let start = Instant::now();
    let calls = (0..4).map(|_| caller_identity(&clients));
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }

    assert_eq!(server.requests(), 4);
    assert!(
        start.elapsed() >= Duration::from_millis(290),
        "four calls took only {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn other_services_have_their_own_limiter() {
    let server = FakeSts::start(vec![OK]).await;
    let mut settings = settings(&server.url);
    settings.rate_limits.elbv2 = Limit::new(0.001, 1);
    let clients = AwsClients::new(&settings, Metrics::new()).await.unwrap();

    // A starved ELBv2 bucket must not slow STS down.
    let start = Instant::now();
    for _ in 0..3 {
        caller_identity(&clients).await.unwrap();
    }
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn invalid_settings_are_rejected_before_any_io() {
    let metrics = Metrics::new();
    let cases = [
        AwsSettings {
            max_attempts: 0,
            ..settings("http://127.0.0.1:9")
        },
        AwsSettings {
            endpoint_url: Some("127.0.0.1:9".into()),
            ..settings("")
        },
        AwsSettings {
            assume_role_arn: Some("my-role".into()),
            ..settings("http://127.0.0.1:9")
        },
        AwsSettings {
            assume_role_external_id: Some("x".into()),
            ..settings("http://127.0.0.1:9")
        },
        AwsSettings {
            region: Some(" ".into()),
            ..settings("http://127.0.0.1:9")
        },
    ];
    for settings in cases {
        let err = AwsClients::new(&settings, metrics.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, AwsError::InvalidSettings(_)), "{err:?}");
    }
}

#[tokio::test]
async fn elbv2_writes_do_not_wait_behind_its_reads() {
    let server = FakeSts::start(vec![OK]).await;
    let mut settings = settings(&server.url);
    settings.max_attempts = 1;
    settings.rate_limits.elbv2 = Limit::new(0.001, 1);
    let clients = AwsClients::new(&settings, Metrics::new()).await.unwrap();

    // The one read token goes; writes still leave at once (the canned body is not ELBv2's,
    // so each call fails to parse, after it reached the server).
    let _ = clients.elbv2.describe_load_balancers().send().await;
    let start = Instant::now();
    for _ in 0..3 {
        let _ = clients
            .elbv2
            .register_targets()
            .target_group_arn("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/1")
            .send()
            .await;
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(server.requests(), 4);
    // A second read waits for the starved read bucket.
    let read = tokio::time::timeout(
        Duration::from_secs(2),
        clients.elbv2.describe_load_balancers().send(),
    )
    .await;
    assert!(read.is_err(), "the second read did not wait");
    assert_eq!(server.requests(), 4);
}
