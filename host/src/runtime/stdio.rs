//! Capture of a plugin's WASI stdout/stderr into a capped in-memory buffer.
//!
//! Writes past the cap are accepted and dropped (never an error: a chatty
//! plugin must not trap because of its own logging); the overflow is
//! counted so the log can say how much was lost.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Debug, Default)]
struct Buffer {
    data: Vec<u8>,
    dropped: usize,
}

/// A cloneable handle on one captured stream; clones share the buffer.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    buf: Arc<Mutex<Buffer>>,
    cap: usize,
}

impl Captured {
    /// A new empty capture keeping at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            buf: Arc::default(),
            cap,
        }
    }

    fn append(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.cap.saturating_sub(buf.data.len());
        let take = room.min(bytes.len());
        buf.data.extend_from_slice(&bytes[..take]);
        buf.dropped += bytes.len() - take;
    }

    /// Take what was captured so far (and the number of bytes dropped),
    /// leaving the buffer empty for the next invocation.
    pub(crate) fn take(&self) -> (Vec<u8>, usize) {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let out = std::mem::take(&mut buf.data);
        let dropped = std::mem::take(&mut buf.dropped);
        (out, dropped)
    }
}

impl IsTerminal for Captured {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Captured {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for Captured {
    async fn ready(&mut self) {}
}

impl OutputStream for Captured {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for Captured {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_past_the_cap_are_dropped_and_counted() {
        let c = Captured::new(5);
        c.append(b"abc");
        c.append(b"defgh");
        let (data, dropped) = c.take();
        assert_eq!(data, b"abcde");
        assert_eq!(dropped, 3);
        assert_eq!(c.take(), (Vec::new(), 0));
    }
}
