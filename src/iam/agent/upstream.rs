//! The real instance metadata service, for the short allow-list of harmless paths.
//!
//! A minimal HTTP/1.1 client (one request per connection, `Connection: close`) is all
//! IMDS needs. It speaks IMDSv2 itself, caching its own token, and falls back to
//! IMDSv1 when the upstream has no token endpoint.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::Instant;

const TIMEOUT: Duration = Duration::from_secs(2);
const TOKEN_TTL_SECONDS: u64 = 21_600;
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub struct Upstream {
    /// `host:port`, e.g. `169.254.169.254:80`.
    addr: String,
    token: Mutex<Option<(String, Instant)>>,
}

impl Upstream {
    pub fn new(addr: impl Into<String>) -> Upstream {
        Upstream {
            addr: addr.into(),
            token: Mutex::new(None),
        }
    }

    async fn token(&self) -> Option<String> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && *until > Instant::now()
        {
            return Some(token.clone());
        }
        let ttl = format!("X-aws-ec2-metadata-token-ttl-seconds: {TOKEN_TTL_SECONDS}\r\n");
        match request(&self.addr, "PUT", "/latest/api/token", &ttl).await {
            Ok(r) if r.status == 200 => {
                let token = String::from_utf8(r.body).ok()?.trim().to_string();
                let until = Instant::now() + Duration::from_secs(TOKEN_TTL_SECONDS - 60);
                *cached = Some((token.clone(), until));
                Some(token)
            }
            _ => None,
        }
    }

    pub async fn get(&self, path: &str) -> std::io::Result<UpstreamResponse> {
        let header = match self.token().await {
            Some(token) => format!("X-aws-ec2-metadata-token: {token}\r\n"),
            None => String::new(),
        };
        let response = request(&self.addr, "GET", path, &header).await?;
        if response.status == 401 {
            // Our token expired early (upstream restarted): fetch a new one once.
            *self.token.lock().await = None;
            if let Some(token) = self.token().await {
                let header = format!("X-aws-ec2-metadata-token: {token}\r\n");
                return request(&self.addr, "GET", path, &header).await;
            }
        }
        Ok(response)
    }
}

async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
) -> std::io::Result<UpstreamResponse> {
    let timed_out =
        || std::io::Error::new(std::io::ErrorKind::TimedOut, "metadata upstream timed out");
    tokio::time::timeout(TIMEOUT, async {
        let mut stream = TcpStream::connect(addr).await?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.take(MAX_BODY as u64 + 8192).read_to_end(&mut raw).await?;
        parse_response(&raw)
    })
    .await
    .map_err(|_| timed_out())?
}

pub fn parse_response(raw: &[u8]) -> std::io::Result<UpstreamResponse> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut content_type = None;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(v.to_string()),
            "content-length" => length = v.parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else {
        rest[..length.unwrap_or(rest.len()).min(rest.len())].to_vec()
    };
    Ok(UpstreamResponse {
        status,
        content_type,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nus-east-1",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"us-east-1"[..]));
        assert_eq!(r.content_type.as_deref(), Some("text/plain"));
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"abcde"[..]));
        assert!(parse_response(b"garbage").is_err());
    }
}
