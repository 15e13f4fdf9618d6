//! JSON bodies for the refusals hyper writes itself. When a request cannot
//! be parsed at all (a malformed request line, broken chunk framing,
//! headers over the 64 KiB buffer or 100 fields) hyper answers on its own,
//! before any service runs, with a bare head: `HTTP/1.1 4xx …`,
//! `connection: close`, `content-length: 0`, `date: …` and no body. This
//! stream wrapper, under hyper, recognises exactly that head as it is
//! written and puts a response with a JSON `{"error": …}` body in its
//! place, so even these clients get a reason like every other refusal.
//!
//! Nothing else is touched: the routes' own 4xx answers always carry a
//! `content-type` and a body, so they never match, and HTTP/2 frames
//! never start with `HTTP/1.`. hyper closes the connection after such an
//! answer, so the replacement is the last thing written on it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream whose writes pass through, except hyper's own bodiless 4xx.
pub(super) struct JsonRefusals<S> {
    inner: S,
    /// A replacement being written: its bytes, how many are written, and
    /// how many bytes of hyper's head to report once it is all out.
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<S> JsonRefusals<S> {
    pub(super) fn new(inner: S) -> Self {
        Self {
            inner,
            replacing: None,
        }
    }
}

/// What a refusal with `status` says.
fn message(status: u16, reason: &str) -> String {
    match status {
        400 => "malformed HTTP request: the request line, a header or the chunked body framing could not be parsed".to_owned(),
        431 => "request header fields too large: send at most 64 KiB of headers in at most 100 fields".to_owned(),
        _ => format!("the request was refused before it could be read: {status} {reason}"),
    }
}

/// hyper's bodiless refusal head, rewritten with a JSON body; `None` for
/// anything else.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    // `HTTP/1.x 4`: every other response leaves at the first check.
    if head.get(9) != Some(&b'4') || !head.starts_with(b"HTTP/1.") || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text[..text.len() - 4].split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let (_version, code, reason) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
    let status: u16 = code.parse().ok()?;
    if !(400..500).contains(&status) {
        return None;
    }
    let (mut close, mut empty, mut date) = (false, false, None);
    for line in lines {
        let (name, value) = line.split_once(": ")?;
        match (name.to_ascii_lowercase().as_str(), value) {
            ("connection", "close") => close = true,
            ("content-length", "0") => empty = true,
            ("date", value) => date = Some(value),
            _ => return None,
        }
    }
    if !(close && empty) {
        return None;
    }
    let body = serde_json::json!({ "error": message(status, reason) }).to_string();
    let mut out = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    if let Some(date) = date {
        out.push_str(&format!("date: {date}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<S: AsyncWrite + Unpin> JsonRefusals<S> {
    /// Write the replacement on; report hyper's head as written once done.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some((bytes, written, reported)) = &mut self.replacing else {
            unreachable!("drive without a replacement")
        };
        while *written < bytes.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => *written += n,
                other => return other,
            }
        }
        let reported = *reported;
        self.replacing = None;
        Poll::Ready(Ok(reported))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonRefusals<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonRefusals<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            match rewrite(buf) {
                Some(bytes) => self.replacing = Some((bytes, 0, buf.len())),
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        self.drive(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            // hyper's refusal is a head alone: one slice.
            let mut filled = bufs.iter().filter(|b| !b.is_empty());
            let replacement = match (filled.next(), filled.next()) {
                (Some(only), None) => rewrite(only).map(|bytes| (bytes, only.len())),
                _ => None,
            };
            match replacement {
                Some((bytes, len)) => self.replacing = Some((bytes, 0, len)),
                None => return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
            }
        }
        self.drive(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const HYPER_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 20:37:00 GMT\r\n\r\n";

    fn body_of(response: &[u8]) -> serde_json::Value {
        let text = std::str::from_utf8(response).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn only_hypers_bodiless_refusals_are_rewritten() {
        let out = rewrite(HYPER_431).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with(
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        ));
        assert!(
            text.contains("\r\nconnection: close\r\ndate: Mon, 30 Nov 2026 20:37:00 GMT\r\n\r\n{")
        );
        assert!(
            body_of(&out)["error"]
                .as_str()
                .unwrap()
                .contains("too large")
        );

        let bad = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert!(
            body_of(&rewrite(bad).unwrap())["error"]
                .as_str()
                .unwrap()
                .starts_with("malformed HTTP request")
        );

        let untouched: [&[u8]; 6] = [
            // The routes' own refusals carry a type and a body.
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"error\":1}",
            b"HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\nwww-authenticate: Bearer\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
            b"\x00\x00\x12\x04\x00\x00\x00\x00\x00",
        ];
        for bytes in untouched {
            assert_eq!(rewrite(bytes), None, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[tokio::test]
    async fn the_replacement_is_written_whole_through_a_slow_stream() {
        // A pipe whose buffer takes 16 bytes at a time.
        let (client, server) = tokio::io::duplex(16);
        let mut wrapped = JsonRefusals::new(server);
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        // hyper is told its head went out in full.
        let n = wrapped.write(HYPER_431).await.unwrap();
        assert_eq!(n, HYPER_431.len());
        wrapped.write_all(b"").await.unwrap();
        wrapped.shutdown().await.unwrap();
        drop(wrapped);
        let got = reader.await.unwrap();
        assert!(
            body_of(&got)["error"]
                .as_str()
                .unwrap()
                .contains("too large")
        );

        // Anything else passes through as it is.
        let (client, server) = tokio::io::duplex(1024);
        let mut wrapped = JsonRefusals::new(server);
        wrapped
            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .unwrap();
        drop(wrapped);
        let mut got = Vec::new();
        let mut client = client;
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"HTTP/1.1 204 No Content\r\n\r\n");
    }
}
