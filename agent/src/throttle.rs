//! The bandwidth toxic's async shell: a response body that reaches the caller at no
//! more than `bytes_per_sec`.
//!
//! ```text
//!  upstream body ──frames──► Throttled ──chunks ≤ pacing_chunk_size──► caller
//!                              │   ▲
//!                  pacing_delay│   │wake at the chunk's due time
//!                              ▼   │
//!                          tokio Sleep
//! ```
//!
//! The arithmetic (how big a chunk, when it is due) is the pure core in
//! [`crate::toxics::pacing_delay`] and [`crate::toxics::pacing_chunk_size`]; this module
//! only splits frames, keeps the remainder and sleeps. The schedule is absolute from
//! the first poll, not from construction: a response built and then left waiting in a
//! queue has not "saved up" bandwidth to burst with.
//!
//! Trailers and errors are not data, so they pass through as soon as the data before
//! them has been released.

use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::toxics::{pacing_chunk_size, pacing_delay};

/// A body that releases `inner`'s data at no more than `bytes_per_sec`.
///
/// Data frames are split into chunks of at most [`pacing_chunk_size`] bytes; each
/// chunk goes once [`pacing_delay`] allows it, measured from the first poll.
///
/// ```
/// use std::num::NonZeroU64;
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use faultline_agent::throttle::Throttled;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let rate = NonZeroU64::new(64 * 1024).unwrap();
/// let body = Throttled::new(Full::new(Bytes::from_static(b"hello")), rate);
/// let bytes = body.collect().await.unwrap().to_bytes();
/// assert_eq!(bytes, "hello");
/// # }
/// ```
pub struct Throttled<B> {
    // Boxed so that any body can be wrapped without pin projection (no unsafe, and
    // pin-project-lite is not a dependency); one allocation per capped response.
    inner: Pin<Box<B>>,
    bytes_per_sec: NonZeroU64,
    chunk_size: usize,
    /// Data taken from `inner` but not yet released to the caller.
    buffered: Bytes,
    /// Bytes released so far: the position in the pacing schedule.
    sent: u64,
    /// When the schedule began: the first poll.
    started: Option<Instant>,
    /// Created on the first wait (creating a `Sleep` needs a runtime, construction may
    /// not have one) and reset for every later one.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> Throttled<B> {
    /// Caps `inner` at `bytes_per_sec`. The clock starts at the first poll.
    pub fn new(inner: B, bytes_per_sec: NonZeroU64) -> Self {
        Throttled {
            inner: Box::pin(inner),
            bytes_per_sec,
            chunk_size: pacing_chunk_size(bytes_per_sec),
            buffered: Bytes::new(),
            sent: 0,
            started: None,
            sleep: None,
        }
    }

    /// The cap this body is paced at.
    pub fn bytes_per_sec(&self) -> NonZeroU64 {
        self.bytes_per_sec
    }

    /// Waits until the next `next` bytes are due. Ready at once when the body is
    /// behind its schedule.
    fn poll_due(&mut self, cx: &mut Context<'_>, started: Instant, next: usize) -> Poll<()> {
        // A usize always fits in a u64 on the targets the agent runs on; saturating
        // only makes an impossible chunk wait longer, never exceed the cap.
        let next = u64::try_from(next).unwrap_or(u64::MAX);
        loop {
            let now = Instant::now();
            let delay = pacing_delay(
                self.bytes_per_sec,
                self.sent,
                now.saturating_duration_since(started),
                next,
            );
            if delay.is_zero() {
                return Poll::Ready(());
            }
            let deadline = now + delay;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            ready!(sleep.as_mut().poll(cx));
            // The timer fired: re-check against the clock (it is never early, so this
            // normally releases the chunk on the next iteration).
        }
    }
}

impl<B> Body for Throttled<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        // Every field is Unpin (the inner body is boxed), so no projection is needed.
        let this = self.get_mut();
        let started = *this.started.get_or_insert_with(Instant::now);
        while this.buffered.is_empty() {
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                Some(Ok(frame)) => match frame.into_data() {
                    // An empty data frame leaves the buffer empty: nothing to pace, the
                    // loop reads on.
                    Ok(data) => this.buffered = data,
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
            }
        }
        let next = this.buffered.len().min(this.chunk_size);
        ready!(this.poll_due(cx, started, next));
        let chunk = this.buffered.split_to(next);
        this.sent = this
            .sent
            .saturating_add(u64::try_from(next).unwrap_or(u64::MAX));
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.buffered.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // What is left: the inner body's remainder plus what is buffered here.
        let buffered = u64::try_from(self.buffered.len()).unwrap_or(u64::MAX);
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(buffered));
        if let Some(upper) = inner.upper().and_then(|upper| upper.checked_add(buffered)) {
            hint.set_upper(upper);
        }
        hint
    }
}

impl<B> fmt::Debug for Throttled<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttled")
            .field("bytes_per_sec", &self.bytes_per_sec)
            .field("chunk_size", &self.chunk_size)
            .field("buffered", &self.buffered.len())
            .field("sent", &self.sent)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
