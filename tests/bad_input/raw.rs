//! A raw HTTP/1.1 client over one TCP connection, for requests a proper
//! client refuses to send: header values that are not UTF-8, chunked
//! bodies of any size, bytes trickled one at a time.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed response: status and JSON body (`Value::Null` when the body is
/// not JSON).
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub json: Value,
    pub text: String,
}

/// Parse `status line + headers + body` as read until the peer closed.
pub fn parse_response(bytes: &[u8]) -> Option<RawResponse> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = &bytes[head_end + 4..];
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Some(RawResponse {
        status,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || body.len() < line_end + 2 + size {
            break;
        }
        out.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
        body = &body[(line_end + 4 + size).min(body.len())..];
    }
    out
}

/// Send `head` (request line and headers, ending in an empty line), then
/// `body` in pieces of `chunk` bytes, while reading the response until the
/// server closes the connection. Write errors after the server answered
/// (it may stop reading an oversized body) are expected and ignored.
pub async fn exchange(addr: SocketAddr, head: &[u8], body: Vec<u8>, chunk: usize) -> RawResponse {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let head = head.to_vec();
    let writer = tokio::spawn(async move {
        write.write_all(&head).await?;
        for piece in body.chunks(chunk.max(1)) {
            write.write_all(piece).await?;
        }
        write.flush().await?;
        // keep the write half open until the reader is done
        Ok::<_, std::io::Error>(write)
    });
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match read.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            // a reset after the response arrived (the server closed with
            // unread request bytes) ends the exchange, not the test
            Err(e) if !received.is_empty() => {
                eprintln!("read ended with {e} after the response");
                break;
            }
            Err(e) => panic!("no response: {e}"),
        }
    }
    writer.abort();
    parse_response(&received).unwrap_or_else(|| {
        panic!(
            "not an HTTP response: {:?}",
            String::from_utf8_lossy(&received)
        )
    })
}

/// The request head of `POST /v1/events` with the ingest token, the given
/// extra header lines (each `name: value`, raw bytes) and `connection:
/// close`.
pub fn ingest_head(addr: SocketAddr, token: &str, extra: &[&[u8]]) -> Vec<u8> {
    let mut head = format!(
        "POST /v1/events HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n"
    )
    .into_bytes();
    for line in extra {
        head.extend_from_slice(line);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// `body` in chunked transfer encoding, `chunk` bytes per chunk.
pub fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / chunk * 12 + 8);
    for piece in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}
