//! The first bytes of a connection, read under a deadline before hyper sees
//! them.
//!
//! hyper-util's protocol detection (HTTP/1 or HTTP/2 prior knowledge) waits
//! for up to 24 bytes with no timeout, and hyper's header-read timeout only
//! starts after it: a client that connects and sends nothing, or trickles
//! the HTTP/2 preface, would hold its connection forever. Here the bytes
//! that decide the protocol are read under [`super::HEADER_READ_TIMEOUT`]
//! and replayed to hyper through [`Prefixed`]. Knows nothing of routes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Why a connection was dropped before hyper saw it.
#[derive(Debug, thiserror::Error)]
pub(super) enum FirstBytesError {
    /// Nothing that decides the protocol arrived in time.
    #[error("no request started within {0:?}")]
    Timeout(Duration),
    /// The socket failed.
    #[error("reading the first bytes failed: {0}")]
    Io(#[from] io::Error),
}

/// Read until the bytes decide the protocol (they stop matching the HTTP/2
/// preface, or are all of it) or the peer closes, within `deadline`.
pub(super) async fn read_first_bytes<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Duration,
) -> Result<Bytes, FirstBytesError> {
    let read = async {
        let mut buf = Vec::with_capacity(H2_PREFACE.len());
        let mut chunk = [0u8; H2_PREFACE.len()];
        loop {
            let want = H2_PREFACE.len() - buf.len();
            let n = stream.read(&mut chunk[..want]).await?;
            buf.extend_from_slice(&chunk[..n]);
            if n == 0 || buf.len() == H2_PREFACE.len() || !H2_PREFACE.starts_with(&buf) {
                return Ok::<_, io::Error>(Bytes::from(buf));
            }
        }
    };
    tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| FirstBytesError::Timeout(deadline))?
        .map_err(FirstBytesError::from)
}

/// A stream whose first reads return `prefix`, then read from `inner`.
pub(super) struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    /// Replay `prefix` before reading on from `inner`.
    pub(super) fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn an_http1_request_line_decides_at_the_second_byte() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client
            .write_all(b"POST /v1/events HTTP/1.1\r\n")
            .await
            .unwrap();
        let first = read_first_bytes(&mut server, Duration::from_secs(5))
            .await
            .unwrap();
        // what was read decides the protocol: it is no HTTP/2 preface
        assert!(!first.is_empty() && !H2_PREFACE.starts_with(&first));
        let mut replayed = Prefixed::new(first, server);
        let mut line = [0u8; 26];
        replayed.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"POST /v1/events HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn the_whole_http2_preface_is_read() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(H2_PREFACE).await.unwrap();
        let first = read_first_bytes(&mut server, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(&first[..], H2_PREFACE);
    }

    #[tokio::test]
    async fn a_silent_client_times_out() {
        let (_client, mut server) = tokio::io::duplex(64);
        let err = read_first_bytes(&mut server, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, FirstBytesError::Timeout(_)), "{err}");
    }

    #[tokio::test]
    async fn a_trickled_http2_preface_times_out() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(&H2_PREFACE[..10]).await.unwrap();
        let err = read_first_bytes(&mut server, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, FirstBytesError::Timeout(_)), "{err}");
    }

    #[tokio::test]
    async fn a_closed_connection_returns_what_it_sent() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"PRI").await.unwrap();
        drop(client);
        let first = read_first_bytes(&mut server, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(&first[..], b"PRI");
    }
}
