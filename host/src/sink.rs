//! `wasmhook sink`: a local webhook receiver for trying wasmhook out and for
//! tests. Prints one JSON line per request (method, path, headers, body,
//! and whether the Standard Webhooks signature verified), answers a fixed
//! status.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::delivery::SigningKey;

/// Largest body the sink reads.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Signature timestamps further than this from now are refused.
const TOLERANCE_S: u64 = 300;

/// What `wasmhook sink` needs.
pub struct SinkOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Verify signatures with this key, when given.
    pub secret: Option<SigningKey>,
    /// The status every request is answered with.
    pub status: StatusCode,
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One request as a JSON line. `body` is what was read, or why it could
/// not be (then the signature is not checked: it covers the whole body).
fn describe(
    req: &hyper::http::request::Parts,
    body: Result<&[u8], &str>,
    key: Option<&SigningKey>,
) -> Value {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let signature = match (key, body) {
        (None, _) => "not checked (no --secret)".to_owned(),
        (Some(_), Err(why)) => format!("not checked: the body was not read ({why})"),
        (Some(key), Ok(body)) => {
            let missing = ["webhook-id", "webhook-timestamp", "webhook-signature"]
                .into_iter()
                .filter(|name| header(name).is_none())
                .collect::<Vec<_>>();
            if missing.is_empty() {
                match key.verify(
                    header("webhook-id").unwrap_or_default(),
                    header("webhook-timestamp").unwrap_or_default(),
                    header("webhook-signature").unwrap_or_default(),
                    body,
                    now_s(),
                    TOLERANCE_S,
                ) {
                    Ok(()) => "valid".to_owned(),
                    Err(e) => format!("INVALID: {e}"),
                }
            } else {
                format!("INVALID: no {} header", missing.join(", no "))
            }
        }
    };
    let headers: serde_json::Map<String, Value> = req
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                json!(String::from_utf8_lossy(v.as_bytes())),
            )
        })
        .collect();
    let mut line = json!({
        "method": req.method.as_str(),
        "path": req.uri.path_and_query().map_or("/", |p| p.as_str()),
        "headers": headers,
        "body": String::from_utf8_lossy(body.unwrap_or_default()),
        "signature": signature,
    });
    if let Err(why) = body {
        line["body_error"] = json!(why);
    }
    line
}

/// Serve until the process is stopped.
pub async fn run(opts: SinkOptions) -> std::io::Result<()> {
    let listener = TcpListener::bind(opts.listen).await?;
    eprintln!("wasmhook sink listening on {}", listener.local_addr()?);
    let opts = Arc::new(opts);
    loop {
        let (stream, _) = listener.accept().await?;
        let opts = opts.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let opts = opts.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = Limited::new(body, MAX_BODY)
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .map_err(|e| {
                            if e.is::<http_body_util::LengthLimitError>() {
                                let why = format!("larger than the sink's {MAX_BODY}-byte limit");
                                (StatusCode::PAYLOAD_TOO_LARGE, why)
                            } else {
                                (StatusCode::BAD_REQUEST, format!("reading it failed: {e}"))
                            }
                        });
                    let described = match &body {
                        Ok(bytes) => describe(&parts, Ok(bytes), opts.secret.as_ref()),
                        Err((_, why)) => describe(&parts, Err(why), opts.secret.as_ref()),
                    };
                    let line = described.to_string() + "\n";
                    let mut out = tokio::io::stdout();
                    let _ = out.write_all(line.as_bytes()).await;
                    let _ = out.flush().await;
                    let (status, answer): (_, &'static [u8]) = match &body {
                        Ok(_) => (opts.status, b"{\"ok\":true}"),
                        Err((status, _)) => (*status, b"{\"error\":\"the body was not read\"}"),
                    };
                    let mut resp = Response::new(Full::new(Bytes::from_static(answer)));
                    *resp.status_mut() = status;
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
