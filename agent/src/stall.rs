//! Slow clients: a client that stops sending its request, or stops reading its
//! response, is cut off after a limit instead of holding the agent's resources forever.
//!
//! ```text
//!  client ─► headers      hyper's header_read_timeout (HTTP/1.1)
//!         ─► request body  StalledBody: no frame for `limit` while the upstream waits ─► error
//!         ◄─ response      WriteStall: the socket accepts nothing for `limit` ─► error
//! ```
//!
//! Each limit measures a *stall* — time without progress — not a total, so a large
//! upload or download that keeps moving is never cut. [`StalledBody`] only counts time
//! while its reader waits on it: when the upstream is the slow side it does not poll,
//! and the client is not blamed.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client sent no part of its request body for the stall limit.
#[derive(Debug, thiserror::Error)]
#[error("the client sent nothing of its request body for {0:?}")]
pub struct ClientStalled(pub Duration);

impl ClientStalled {
    /// Finds a `ClientStalled` in an error's chain of sources (a forwarding error
    /// caused by the request body).
    pub fn in_chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Self> {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(stalled) = error.downcast_ref::<ClientStalled>() {
                return Some(stalled);
            }
            current = error.source();
        }
        None
    }
}

/// A request body that fails with [`ClientStalled`] when its reader has waited
/// `limit` for the next frame.
pub struct StalledBody<B> {
    // Boxed so that any body can be wrapped without pin projection.
    inner: Pin<Box<B>>,
    limit: Duration,
    /// Armed while the reader waits; cleared by every frame.
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<B> StalledBody<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        StalledBody {
            inner: Box::pin(inner),
            limit,
            waiting: None,
        }
    }
}

impl<B> fmt::Debug for StalledBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StalledBody")
            .field("limit", &self.limit)
            .field("waiting", &self.waiting.is_some())
            .finish_non_exhaustive()
    }
}

impl<B> Body for StalledBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => {
                self.waiting = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let limit = self.limit;
                let waiting = self
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                ready!(waiting.as_mut().poll(cx));
                self.waiting = None;
                Poll::Ready(Some(Err(Box::new(ClientStalled(limit)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection whose writes fail with `TimedOut` once the peer has accepted nothing
/// for `limit` (a client that stopped reading its response). Reads pass through.
pub struct WriteStall<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write waits; cleared by every write that makes progress.
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteStall<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        WriteStall {
            inner,
            limit,
            waiting: None,
        }
    }

    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.waiting = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let limit = self.limit;
                let waiting = self
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                ready!(waiting.as_mut().poll(cx));
                self.waiting = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client read nothing of its response for {limit:?}"),
                )))
            }
        }
    }
}

impl<S> fmt::Debug for WriteStall<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteStall")
            .field("limit", &self.limit)
            .field("waiting", &self.waiting.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::BodyExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::sync::mpsc;

    use super::*;

    /// A body fed by hand, one chunk at a time.
    struct Fed(mpsc::Receiver<Bytes>);

    impl Body for Fed {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.0
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_keeps_moving_is_never_cut() {
        let (feed, fed) = mpsc::channel(1);
        let limit = Duration::from_secs(1);
        let mut body = StalledBody::new(Fed(fed), limit);
        tokio::spawn(async move {
            // Ten chunks 900 ms apart: 9 s in all, but never a 1 s stall.
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(900)).await;
                feed.send(Bytes::from_static(b"chunk")).await.unwrap();
            }
        });
        let mut received = 0;
        while let Some(frame) = body.frame().await {
            received += frame.unwrap().into_data().unwrap().len();
        }
        assert_eq!(received, 50);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_with_client_stalled_after_the_limit() {
        let (feed, fed) = mpsc::channel(1);
        let limit = Duration::from_secs(2);
        let mut body = StalledBody::new(Fed(fed), limit);
        feed.send(Bytes::from_static(b"first")).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        let waited = tokio::time::Instant::now();
        let error = body.frame().await.unwrap().unwrap_err();
        assert_eq!(waited.elapsed(), limit);
        let stalled = ClientStalled::in_chain(&*error).unwrap();
        assert_eq!(stalled.0, limit);
        drop(feed);
    }

    #[test]
    fn client_stalled_is_found_through_wrapping_errors() {
        #[derive(Debug, thiserror::Error)]
        #[error("forwarding failed")]
        struct Outer(#[source] BoxError);
        let outer = Outer(Box::new(ClientStalled(Duration::from_secs(3))));
        assert!(ClientStalled::in_chain(&outer).is_some());
        let unrelated = Outer(Box::new(io::Error::other("refused")));
        assert!(ClientStalled::in_chain(&unrelated).is_none());
    }

    /// A peer that never reads: writes fill the socket buffers, then fail after the limit.
    #[tokio::test]
    async fn writes_to_a_peer_that_reads_nothing_fail_after_the_limit() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let limit = Duration::from_millis(200);
        let mut stream = WriteStall::new(ours, limit);
        let chunk = vec![b'x'; 512];
        let started = std::time::Instant::now();
        let error = loop {
            if let Err(e) = stream.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= limit);

        // A peer that reads slowly but steadily is never cut off.
        let (ours, mut reader) = tokio::io::duplex(64);
        let mut stream = WriteStall::new(ours, limit);
        let reading = tokio::spawn(async move {
            let mut all = Vec::new();
            let mut buf = [0u8; 64];
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                match reader.read(&mut buf).await.unwrap() {
                    0 => return all.len(),
                    n => all.extend_from_slice(&buf[..n]),
                }
            }
        });
        stream.write_all(&[b'y'; 1024]).await.unwrap();
        stream.shutdown().await.unwrap();
        drop(stream);
        assert_eq!(reading.await.unwrap(), 1024);
        drop(theirs.read(&mut [0u8; 1]).await);
    }
}
