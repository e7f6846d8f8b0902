//! A minimal blocking HTTP/1.1 client for the `strom service …` commands: one request per
//! connection (`Connection: close`), a `Content-Length` or chunked body, JSON answers. The
//! scheduler's API is the only server it talks to; no TLS, no redirects (Admin Router's job on
//! DC/OS).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

/// An answer: the status code and the body parsed as JSON (`Null` when empty or not JSON, with
/// the text kept in `text`).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The body's `message`, else its text.
    pub fn message(&self) -> String {
        self.body["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| self.text.trim().to_string())
    }
}

/// Where the scheduler listens and how to authenticate.
#[derive(Clone, Debug)]
pub(crate) struct SchedulerClient {
    /// `host:port`.
    pub address: String,
    pub token: Option<String>,
    pub timeout: Duration,
    /// Put before every path: `/service/<name>` for one of several services (`--name`, as
    /// DC/OS's Admin Router routed `/service/<name>/…`), else empty.
    pub prefix: String,
}

impl SchedulerClient {
    /// A client for `api` (`http://host:port[/]` or `host:port`).
    pub fn new(api: &str, token: Option<String>, timeout: Duration) -> anyhow::Result<Self> {
        let address = api
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        if address.is_empty() || address.contains('/') {
            bail!("--api {api:?}: expected http://HOST:PORT or HOST:PORT");
        }
        Ok(SchedulerClient {
            address,
            token,
            timeout,
            prefix: String::new(),
        })
    }

    /// Sends one request; the body (if any) is sent as JSON.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<Answer> {
        let unreachable = |error: std::io::Error| {
            anyhow!(
                "the scheduler at {} did not answer: {error} (is `strom scheduler run` \
                 running? set --api, --state-dir or STROM_SCHEDULER_API)",
                self.address
            )
        };
        let socket = self
            .address
            .to_socket_addrs()
            .map_err(unreachable)?
            .next()
            .ok_or_else(|| anyhow!("{} resolves to no address", self.address))?;
        let mut stream = TcpStream::connect_timeout(&socket, self.timeout).map_err(unreachable)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let body = body.unwrap_or("");
        let auth = self
            .token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let path = format!("{}{path}", self.prefix);
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        );
        stream.write_all(request.as_bytes()).map_err(unreachable)?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .with_context(|| format!("reading the answer of {method} {path}"))?;
        parse_response(&raw).with_context(|| format!("the answer of {method} {path}"))
    }
}

fn parse_response(raw: &[u8]) -> anyhow::Result<Answer> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut payload = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("no status line"))?;
    let chunked = lines.any(|line| {
        let lower = line.to_ascii_lowercase();
        lower.starts_with("transfer-encoding:") && lower.contains("chunked")
    });
    let mut body = Vec::new();
    if chunked {
        loop {
            let end = payload
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| anyhow!("a truncated chunk"))?;
            let size_text = String::from_utf8_lossy(&payload[..end]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| anyhow!("a bad chunk size {size_text:?}"))?;
            payload = &payload[end + 2..];
            if size == 0 {
                break;
            }
            if payload.len() < size {
                bail!("a truncated chunk");
            }
            body.extend_from_slice(&payload[..size]);
            payload = payload.get(size + 2..).unwrap_or(&[]);
        }
    } else {
        body.extend_from_slice(payload);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer { status, body, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_chunked_bodies() {
        let plain =
            parse_response(b"HTTP/1.1 202 Accepted\r\ncontent-length: 13\r\n\r\n{\"status\":1}\n")
                .unwrap();
        assert_eq!(plain.status, 202);
        assert_eq!(plain.body["status"], 1);
        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[\"de\r\n6\r\nploy\"]\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, serde_json::json!(["deploy"]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn api_addresses() {
        let t = Duration::from_secs(1);
        assert_eq!(
            SchedulerClient::new("http://127.0.0.1:8080/", None, t)
                .unwrap()
                .address,
            "127.0.0.1:8080"
        );
        assert!(SchedulerClient::new("http://h:1/v1", None, t).is_err());
        assert!(SchedulerClient::new("", None, t).is_err());
    }
}
