//! A fault-injecting HTTP proxy for the tests: it sits on 127.0.0.1 between the AWS SDK and
//! moto (point the SDK's endpoint URL at it) and, at a configurable rate, answers a request
//! with a fault instead of moto's answer:
//!
//! - HTTP 500 and 503 with AWS-shaped error bodies;
//! - throttling in the service's own shape, with status 400 or 503: the EC2 query API's
//!   `<Response><Errors><Error><Code>RequestLimitExceeded</Code>…`, IAM's and STS's
//!   `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>…`;
//! - a connection reset before any answer, or in the middle of one;
//! - a slow answer, held back past the SDK's attempt timeout;
//! - moto's answer cut short (a complete HTTP response whose XML body stops early) or
//!   garbled (bytes that are not XML spliced in, or an HTML page), both with status 200;
//! - a pagination token that never ends: a Describe answer gets a fresh `<nextToken>`, and
//!   every request for that token is answered with moto's first page and another fresh token;
//! - a pagination token that repeats: the same, but always the same token.
//!
//! Apart from the random faults, the proxy can refuse AssumeRole into chosen roles with
//! STS's `AccessDenied` (as for a role whose trust policy does not admit the auditor), and
//! it counts every request by its `Action`.
//!
//! Which requests get a fault comes from a seeded generator indexed by the request's number,
//! so a run's sequence of decisions is reproducible. Every fault is counted per kind.
//!
//! The proxy is a small HTTP/1.1 server written on tokio's TCP streams: one request at a
//! time per client connection (keep-alive), and a fresh `Connection: close` connection to
//! moto per forwarded request. It runs on its own thread and runtime, so a test may block
//! on anything while it serves.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One kind of fault the proxy injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Http500,
    Http503,
    Throttle400,
    Throttle503,
    ResetBeforeResponse,
    ResetMidResponse,
    Slow,
    Truncated200,
    Garbled200,
    EndlessPages,
    RepeatedToken,
}

impl FaultKind {
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Http500,
        FaultKind::Http503,
        FaultKind::Throttle400,
        FaultKind::Throttle503,
        FaultKind::ResetBeforeResponse,
        FaultKind::ResetMidResponse,
        FaultKind::Slow,
        FaultKind::Truncated200,
        FaultKind::Garbled200,
        FaultKind::EndlessPages,
        FaultKind::RepeatedToken,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Http500 => "http_500",
            FaultKind::Http503 => "http_503",
            FaultKind::Throttle400 => "throttle_400",
            FaultKind::Throttle503 => "throttle_503",
            FaultKind::ResetBeforeResponse => "reset_before_response",
            FaultKind::ResetMidResponse => "reset_mid_response",
            FaultKind::Slow => "slow",
            FaultKind::Truncated200 => "truncated_200",
            FaultKind::Garbled200 => "garbled_200",
            FaultKind::EndlessPages => "endless_pages",
            FaultKind::RepeatedToken => "repeated_token",
        }
    }

    /// Whether the fault needs a paginated Describe call.
    fn needs_pagination(self) -> bool {
        matches!(self, FaultKind::EndlessPages | FaultKind::RepeatedToken)
    }
}

/// What the proxy does, and how often.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Seeds the decisions; the same seed gives the same decision for the n-th request.
    pub seed: u64,
    /// Faults injected, from which each faulted request draws one that applies to it.
    pub kinds: Vec<FaultKind>,
    /// How long a `Slow` answer is held back: more than the SDK's attempt timeout.
    pub slow_delay: Duration,
    /// AssumeRole requests whose RoleArn contains one of these (e.g. an account id) are
    /// answered 403 AccessDenied, always.
    pub deny_assume_role: Vec<String>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: 0,
            kinds: Vec::new(),
            slow_delay: Duration::from_millis(2500),
            deny_assume_role: Vec::new(),
        }
    }
}

const TOKEN_ENDLESS: &str = "vpc-auditor-fault-endless-";
const TOKEN_REPEATED: &str = "vpc-auditor-fault-repeated";

/// Shared state: the rate (changeable while running) and the counters.
#[derive(Debug, Default)]
struct State {
    /// Fault rate in parts per million.
    rate_ppm: AtomicU64,
    requests: AtomicU64,
    forwarded: AtomicU64,
    /// Requests that carried a fault's pagination token: the fault carried on.
    pages_followed: AtomicU64,
    injected: [AtomicU64; FaultKind::ALL.len()],
    fresh_tokens: AtomicU64,
    stopping: AtomicBool,
    /// Requests per `Action` parameter (`-` for a request without one).
    actions: std::sync::Mutex<BTreeMap<String, u64>>,
}

/// The running proxy; stops serving when dropped.
pub struct FaultProxy {
    pub port: u16,
    state: Arc<State>,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FaultProxy {
    /// Starts the proxy on a free 127.0.0.1 port, forwarding to `upstream` (moto's port),
    /// with no faults until [`FaultProxy::set_rate`].
    pub fn start(upstream: u16, config: FaultConfig) -> FaultProxy {
        let state = Arc::new(State::default());
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
                port_tx
                    .send(listener.local_addr().expect("proxy addr").port())
                    .expect("send port");
                let config = Arc::new(config);
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (state, config) = (shared.clone(), config.clone());
                        tokio::spawn(async move {
                            let _ = serve_connection(stream, upstream, &state, &config).await;
                        });
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stop_rx => {}
                }
            });
            // Connections still open are dropped with the runtime.
            runtime.shutdown_timeout(Duration::from_secs(1));
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("proxy port");
        FaultProxy {
            port,
            state,
            thread: Some(thread),
            stop: Some(stop_tx),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sets the share of requests that get a fault, 0.0 to 1.0.
    pub fn set_rate(&self, rate: f64) {
        let ppm = (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u64;
        self.state.rate_ppm.store(ppm, Ordering::SeqCst);
    }

    /// Faults injected so far, per kind (every kind listed, zeros included).
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        FaultKind::ALL
            .iter()
            .enumerate()
            .map(|(i, k)| (k.name(), self.state.injected[i].load(Ordering::SeqCst)))
            .collect()
    }

    pub fn injected_total(&self) -> u64 {
        self.injected().values().sum()
    }

    /// Requests received, faulted or not.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Requests passed to moto and answered with moto's answer unchanged.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }

    /// Requests received with this `Action`, e.g. `AssumeRole`.
    pub fn action_count(&self, action: &str) -> u64 {
        let actions = self.state.actions.lock().unwrap_or_else(|e| e.into_inner());
        actions.get(action).copied().unwrap_or(0)
    }

    /// Requests for a page of an injected endless or repeating listing.
    pub fn pages_followed(&self) -> u64 {
        self.state.pages_followed.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// SplitMix64: a tiny, good-enough generator; `mix(seed ^ n)` is the n-th draw.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The draws for one request: whether it is faulted, which kind, and free choices.
struct Draws {
    values: [u64; 4],
}

impl Draws {
    fn new(seed: u64, request: u64) -> Draws {
        let base = mix(seed ^ request.wrapping_mul(0xA24B_AED4_963E_E407));
        Draws {
            values: [base, mix(base), mix(base ^ 1), mix(base ^ 2)],
        }
    }
}

/// A parsed HTTP request.
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    /// The form parameter `name` of a query-protocol body, as sent (still URL-encoded).
    fn param(&self, name: &str) -> Option<String> {
        let body = String::from_utf8_lossy(&self.body);
        body.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_string())
        })
    }

    /// The AWS service, from the SigV4 credential scope (`…/us-east-1/ec2/aws4_request`).
    fn service(&self) -> String {
        self.head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
            .and_then(|l| l.split("Credential=").nth(1))
            .and_then(|c| c.split('/').nth(3))
            .unwrap_or("unknown")
            .to_string()
    }

    /// Whether the action is an EC2 Describe call that pages with NextToken.
    fn is_paginated_describe(&self) -> bool {
        matches!(
            self.param("Action").as_deref(),
            Some(
                "DescribeVpcs"
                    | "DescribeSubnets"
                    | "DescribeRouteTables"
                    | "DescribeInternetGateways"
                    | "DescribeNatGateways"
                    | "DescribeVpcEndpoints"
                    | "DescribeSecurityGroups"
            )
        )
    }

    /// The request without its `NextToken` parameter, as bytes to send upstream.
    fn without_next_token(&self) -> Request {
        let body = String::from_utf8_lossy(&self.body);
        let kept: Vec<&str> = body
            .split('&')
            .filter(|pair| !pair.starts_with("NextToken="))
            .collect();
        Request {
            head: self.head.clone(),
            body: kept.join("&").into_bytes(),
        }
    }
}

/// A parsed HTTP response, body de-chunked.
struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn new(status: u16, reason: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            reason: reason.to_string(),
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// The response as bytes, with a Content-Length for the body as it is now.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (name, value) in &self.headers {
            let lower = name.to_ascii_lowercase();
            if lower == "content-length" || lower == "transfer-encoding" || lower == "connection" {
                continue;
            }
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// Reads one request from a keep-alive connection; `None` at a clean end of stream.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(i) = find(buffer, b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = content_length(&head);
    let total = head_end + 4 + length;
    while buffer.len() < total {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = buffer[head_end + 4..total].to_vec();
    buffer.drain(..total);
    Some(Request { head, body })
}

/// Sends `request` to moto on a fresh connection and reads the whole answer.
async fn forward(upstream: u16, request: &Request) -> std::io::Result<Response> {
    let addr: SocketAddr = ([127, 0, 0, 1], upstream).into();
    let mut moto = TcpStream::connect(addr).await?;
    let mut head = String::new();
    for (i, line) in request.head.lines().enumerate() {
        let lower = line.to_ascii_lowercase();
        if i > 0
            && (lower.starts_with("connection:")
                || lower.starts_with("content-length:")
                || lower.starts_with("keep-alive:"))
        {
            continue;
        }
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.body.len()
    ));
    moto.write_all(head.as_bytes()).await?;
    moto.write_all(&request.body).await?;
    let mut raw = Vec::new();
    moto.read_to_end(&mut raw).await?;
    let head_end = find(&raw, b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("moto's answer has no head"))?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(502);
    let reason = parts.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[head_end + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        body = dechunk(&body);
    } else if let Some((_, v)) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        if let Ok(length) = v.parse::<usize>() {
            body.truncate(length);
        }
    }
    Ok(Response {
        status,
        reason,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(data, b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// Closes the connection with a TCP reset rather than a clean close.
fn reset(stream: TcpStream) {
    // A zero linger resets at once and does not block.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

fn error_body(service: &str, status: u16, code: &str, message: &str) -> Vec<u8> {
    let _ = status;
    if service == "ec2" {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
        )
        .into_bytes()
    } else {
        let kind = if code == "Throttling" || code == "AccessDenied" {
            "Sender"
        } else {
            "Receiver"
        };
        format!(
            "<ErrorResponse xmlns=\"https://{service}.amazonaws.com/doc/\"><Error><Type>{kind}</Type>\
             <Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>fault-proxy</RequestId></ErrorResponse>"
        )
        .into_bytes()
    }
}

fn throttling(service: &str, status: u16) -> Response {
    let (code, reason) = if service == "ec2" {
        ("RequestLimitExceeded", "Request limit exceeded.")
    } else {
        ("Throttling", "Rate exceeded")
    };
    let status_reason = if status == 400 {
        "Bad Request"
    } else {
        "Service Unavailable"
    };
    Response::new(
        status,
        status_reason,
        "text/xml",
        error_body(service, status, code, reason),
    )
}

/// Inserts `<nextToken>token</nextToken>` before the root's closing tag.
fn with_next_token(mut response: Response, token: &str) -> Response {
    let element = format!("<nextToken>{token}</nextToken>");
    // moto writes an empty <nextToken/> or none; drop any token moto sent first.
    let text = String::from_utf8_lossy(&response.body).into_owned();
    let text = remove_next_token(&text);
    if let Some(close) = text.rfind("</") {
        let mut out = text[..close].to_string();
        out.push_str(&element);
        out.push_str(&text[close..]);
        response.body = out.into_bytes();
    }
    response
}

fn remove_next_token(text: &str) -> String {
    let mut out = text
        .replace("<nextToken/>", "")
        .replace("<nextToken />", "");
    while let (Some(start), Some(end)) = (out.find("<nextToken>"), out.find("</nextToken>")) {
        if end < start {
            break;
        }
        out.replace_range(start..end + "</nextToken>".len(), "");
    }
    out
}

/// A body cut at a point drawn from `draw`, strictly before its last byte.
fn truncated(mut response: Response, draw: u64) -> Response {
    let len = response.body.len();
    let cut = if len <= 1 {
        0
    } else {
        (draw % (len as u64 - 1)) as usize + 1
    };
    response.body.truncate(cut.min(len.saturating_sub(1)));
    response.status = 200;
    response
}

/// A body that is no longer XML: junk spliced in just after a tag, or an HTML page.
fn garbled(mut response: Response, draw: u64) -> Response {
    response.status = 200;
    if draw % 4 == 0 {
        response.body = b"<html><head><title>502 Bad Gateway</title></head><body>upstream \
                          error</body></html>"
            .to_vec();
        return response;
    }
    let tag_ends: Vec<usize> = response
        .body
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'>')
        .map(|(i, _)| i + 1)
        .collect();
    let at = if tag_ends.is_empty() {
        0
    } else {
        tag_ends[(draw as usize / 4) % tag_ends.len()]
    };
    let junk: &[u8] = b"\x01<<#garbled&&>\xfe\xff";
    response.body.splice(at..at, junk.iter().copied());
    response
}

async fn serve_connection(
    mut client: TcpStream,
    upstream: u16,
    state: &State,
    config: &FaultConfig,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut client, &mut buffer).await {
        if state.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let n = state.requests.fetch_add(1, Ordering::SeqCst);
        let draws = Draws::new(config.seed, n);
        let service = request.service();
        let token = request.param("NextToken");
        let action = request.param("Action").unwrap_or_else(|| "-".into());
        {
            let mut actions = state.actions.lock().unwrap_or_else(|e| e.into_inner());
            *actions.entry(action.clone()).or_default() += 1;
        }
        if action == "AssumeRole" {
            let role = request.param("RoleArn").unwrap_or_default();
            if config
                .deny_assume_role
                .iter()
                .any(|d| role.contains(d.as_str()))
            {
                let body = error_body(
                    "sts",
                    403,
                    "AccessDenied",
                    "User is not authorized to perform: sts:AssumeRole on the role",
                );
                let response = Response::new(403, "Forbidden", "text/xml", body);
                client.write_all(&response.to_bytes()).await?;
                continue;
            }
        }

        // A page of a listing the proxy made endless or repeating: the fault carries on.
        if let Some(token) = token.filter(|t| t.starts_with("vpc-auditor-fault-")) {
            state.pages_followed.fetch_add(1, Ordering::SeqCst);
            let first_page = forward(upstream, &request.without_next_token()).await?;
            let next = if token == TOKEN_REPEATED {
                TOKEN_REPEATED.to_string()
            } else {
                let i = state.fresh_tokens.fetch_add(1, Ordering::SeqCst);
                format!("{TOKEN_ENDLESS}{i}")
            };
            client
                .write_all(&with_next_token(first_page, &next).to_bytes())
                .await?;
            continue;
        }

        let rate = state.rate_ppm.load(Ordering::SeqCst);
        let faulted = rate > 0 && draws.values[0] % 1_000_000 < rate;
        let applicable: Vec<FaultKind> = config
            .kinds
            .iter()
            .copied()
            .filter(|k| !k.needs_pagination() || request.is_paginated_describe())
            .collect();
        if !faulted || applicable.is_empty() {
            let response = forward(upstream, &request).await?;
            state.forwarded.fetch_add(1, Ordering::SeqCst);
            client.write_all(&response.to_bytes()).await?;
            continue;
        }
        let kind = applicable[(draws.values[1] % applicable.len() as u64) as usize];
        let index = FaultKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        state.injected[index].fetch_add(1, Ordering::SeqCst);
        let free = draws.values[2];
        match kind {
            FaultKind::Http500 => {
                let body = error_body(
                    &service,
                    500,
                    "InternalError",
                    "An internal error has occurred",
                );
                let response = Response::new(500, "Internal Server Error", "text/xml", body);
                client.write_all(&response.to_bytes()).await?;
            }
            FaultKind::Http503 => {
                let body = error_body(&service, 503, "ServiceUnavailable", "Service unavailable");
                let response = Response::new(503, "Service Unavailable", "text/xml", body);
                client.write_all(&response.to_bytes()).await?;
            }
            FaultKind::Throttle400 => {
                client
                    .write_all(&throttling(&service, 400).to_bytes())
                    .await?;
            }
            FaultKind::Throttle503 => {
                client
                    .write_all(&throttling(&service, 503).to_bytes())
                    .await?;
            }
            FaultKind::ResetBeforeResponse => {
                reset(client);
                return Ok(());
            }
            FaultKind::ResetMidResponse => {
                let bytes = forward(upstream, &request).await?.to_bytes();
                let cut = (free as usize % bytes.len().max(1)).max(1);
                client.write_all(&bytes[..cut]).await?;
                client.flush().await?;
                reset(client);
                return Ok(());
            }
            FaultKind::Slow => {
                let response = forward(upstream, &request).await?;
                tokio::time::sleep(config.slow_delay).await;
                // The SDK has given up by now; the write may fail.
                client.write_all(&response.to_bytes()).await?;
            }
            FaultKind::Truncated200 => {
                let response = truncated(forward(upstream, &request).await?, free);
                client.write_all(&response.to_bytes()).await?;
            }
            FaultKind::Garbled200 => {
                let response = garbled(forward(upstream, &request).await?, free);
                client.write_all(&response.to_bytes()).await?;
            }
            FaultKind::EndlessPages | FaultKind::RepeatedToken => {
                let token = if kind == FaultKind::RepeatedToken {
                    TOKEN_REPEATED.to_string()
                } else {
                    let i = state.fresh_tokens.fetch_add(1, Ordering::SeqCst);
                    format!("{TOKEN_ENDLESS}{i}")
                };
                let response = with_next_token(forward(upstream, &request).await?, &token);
                client.write_all(&response.to_bytes()).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_and_spread() {
        let a: Vec<u64> = (0..100).map(|n| Draws::new(7, n).values[0]).collect();
        let b: Vec<u64> = (0..100).map(|n| Draws::new(7, n).values[0]).collect();
        assert_eq!(a, b);
        let faulted = (0..10_000)
            .filter(|n| Draws::new(7, *n).values[0] % 1_000_000 < 200_000)
            .count();
        assert!((1_800..2_200).contains(&faulted), "{faulted}");
    }

    #[test]
    fn tokens_are_replaced_not_doubled() {
        let response = Response::new(
            200,
            "OK",
            "text/xml",
            "<R><vpcSet/><nextToken>moto</nextToken></R>",
        );
        let out = with_next_token(response, "t1");
        assert_eq!(
            String::from_utf8(out.body).unwrap(),
            "<R><vpcSet/><nextToken>t1</nextToken></R>"
        );
    }
}
