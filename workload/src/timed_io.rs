//! A connection's I/O with two clocks on its read side: how long a request's headers may
//! take (from the connection's start, or from their first byte on a kept-alive connection)
//! and how long a kept-alive connection may sit idle between requests (longer than the
//! proxy in front keeps idle upstream connections, [`crate::contract::IDLE_KEEPALIVE_SECS`]).
//! hyper's own header timeout starts at the end of the previous response, so it cannot tell
//! the two apart. It also reports the connection's phase to its listener's
//! [`crate::connections::Connections`] through a [`Slot`], and fails reads once the
//! connection was chosen to be shed.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::connections::Slot;

/// Where the connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between a response and the next request's first byte: the idle clock runs.
    Idle,
    /// Receiving a request's headers: the header clock runs.
    Headers,
    /// Past the headers (the body, the handler): no clock here (the body has its own).
    Body,
}

/// `T` with the clocks described in the module documentation; a clock that runs out fails
/// the next read with [`io::ErrorKind::TimedOut`], which closes the connection.
#[derive(Debug)]
pub struct TimedIo<T> {
    inner: T,
    headers: Duration,
    idle: Duration,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    /// The last four bytes of the headers read so far, to find `\r\n\r\n` across reads.
    last4: u32,
    slot: Arc<Slot>,
}

impl<T> TimedIo<T> {
    /// Wraps a new connection: its first request's headers are due within `headers`; its
    /// phases are reported to `slot`.
    pub fn new(inner: T, headers: Duration, idle: Duration, slot: Arc<Slot>) -> Self {
        TimedIo {
            inner,
            headers,
            idle,
            phase: Phase::Headers,
            deadline: Box::pin(tokio::time::sleep(headers)),
            last4: 0,
            slot,
        }
    }

    fn start(&mut self, phase: Phase, clock: Duration) {
        self.phase = phase;
        self.deadline.as_mut().reset(Instant::now() + clock);
    }

    /// Follows the request cycle through `bytes` just read; `false` if the connection was
    /// shed before a request could start on it.
    fn saw(&mut self, bytes: &[u8]) -> bool {
        if self.phase == Phase::Idle && !bytes.is_empty() {
            if !self.slot.request_started() {
                return false;
            }
            self.start(Phase::Headers, self.headers);
            self.last4 = 0;
        }
        if self.phase != Phase::Headers {
            return true;
        }
        for &b in bytes {
            self.last4 = (self.last4 << 8) | u32::from(b);
            if self.last4 == u32::from_be_bytes(*b"\r\n\r\n") {
                self.phase = Phase::Body;
                return self.slot.head_finished();
            }
        }
        !self.slot.is_shed()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let this = &mut *self;
                if this.saw(&buf.filled()[before..]) {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "connection shed to make room for a new one",
                    )))
                }
            }
            Poll::Pending
                if self.phase != Phase::Body && self.deadline.as_mut().poll(cx).is_ready() =>
            {
                let what = if self.phase == Phase::Idle {
                    "idle keep-alive connection closed"
                } else {
                    "request headers not received in time"
                };
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)))
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            // A response is going out: the next request may take the idle time to start. The
            // clock is polled here too: hyper may not read again until something wakes it.
            let idle = self.idle;
            self.start(Phase::Idle, idle);
            self.slot.response_sent();
            let _ = self.deadline.as_mut().poll(cx);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
