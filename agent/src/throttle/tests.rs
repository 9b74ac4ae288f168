//! Real-time tests (tokio's `test-util` is not enabled in the workspace): they assert
//! exact content and chunking, and only lower bounds on time.

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty, Full};

use super::Throttled;

fn rate(bytes_per_sec: u64) -> NonZeroU64 {
    NonZeroU64::new(bytes_per_sec).unwrap()
}

/// Deterministic, non-repeating-looking content, so a reordered chunk is caught.
fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Boom;

/// A body that yields a fixed script of frames and errors, then ends.
struct Scripted {
    frames: VecDeque<Result<Frame<Bytes>, Boom>>,
}

impl Scripted {
    fn new(frames: impl IntoIterator<Item = Result<Frame<Bytes>, Boom>>) -> Self {
        Scripted {
            frames: frames.into_iter().collect(),
        }
    }
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = Boom;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Boom>>> {
        Poll::Ready(self.frames.pop_front())
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }
}

/// Everything a body yielded, in order.
#[derive(Debug)]
struct Drained<E> {
    chunks: Vec<Bytes>,
    trailers: Option<HeaderMap>,
    /// Whether anything (data, trailers or an error) came after the trailers.
    after_trailers: bool,
    error: Option<E>,
}

impl<E> Drained<E> {
    fn content(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    fn sizes(&self) -> Vec<usize> {
        self.chunks.iter().map(Bytes::len).collect()
    }
}

/// Polls `body` to its end or its first error.
async fn drain<B>(mut body: B) -> Drained<B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut drained = Drained {
        chunks: Vec::new(),
        trailers: None,
        after_trailers: false,
        error: None,
    };
    while let Some(frame) = body.frame().await {
        drained.after_trailers |= drained.trailers.is_some();
        match frame {
            Err(error) => {
                drained.error = Some(error);
                break;
            }
            Ok(frame) => match frame.into_data() {
                Ok(data) => drained.chunks.push(data),
                Err(frame) => drained.trailers = frame.into_trailers().ok(),
            },
        }
    }
    drained
}

#[tokio::test]
async fn an_empty_body_ends_without_data() {
    let body = Throttled::new(Full::new(Bytes::new()), rate(10));
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));
    let drained = drain(body).await;
    assert!(drained.chunks.is_empty());

    // Nothing to pace, so even at 1 B/s the end comes on the first poll, without a wait.
    let mut body = Throttled::new(Empty::<Bytes>::new(), rate(1));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        Pin::new(&mut body).poll_frame(&mut cx),
        Poll::Ready(None)
    ));
}

#[tokio::test]
async fn content_is_identical_for_bodies_of_several_sizes() {
    // 200 000 B/s: chunks of 20 000 bytes.
    for len in [0, 1, 19_999, 20_000, 20_001, 100_000] {
        let content = pattern(len);
        let drained = drain(Throttled::new(Full::new(content.clone()), rate(200_000))).await;
        assert_eq!(drained.content(), content, "a body of {len} bytes");
        assert!(
            drained.sizes().iter().all(|&n| 0 < n && n <= 20_000),
            "{len}: {:?}",
            drained.sizes()
        );
        assert_eq!(
            drained.chunks.len(),
            len.div_ceil(20_000),
            "a body of {len} bytes"
        );
    }
}

#[tokio::test]
async fn upstream_frames_are_split_at_the_cap_and_remainders_kept() {
    // 40 000 B/s: chunks of 4 000 bytes.
    let content = pattern(3_000 + 1 + 9_000 + 777);
    let script = [
        content.slice(..3_000),
        content.slice(3_000..3_001),
        Bytes::new(),
        content.slice(3_001..12_001),
        content.slice(12_001..),
    ];
    let body = Scripted::new(script.into_iter().map(|data| Ok(Frame::data(data))));
    let drained = drain(Throttled::new(body, rate(40_000))).await;
    assert_eq!(drained.content(), content);
    assert_eq!(drained.sizes(), [3_000, 1, 4_000, 4_000, 1_000, 777]);
    assert_eq!(drained.error, None);
}

#[tokio::test]
async fn ten_kib_at_twenty_kib_per_sec_takes_at_least_half_a_second() {
    let content = pattern(10 * 1024);
    let started = Instant::now();
    let drained = drain(Throttled::new(Full::new(content.clone()), rate(20 * 1024))).await;
    let elapsed = started.elapsed();
    assert_eq!(drained.content(), content);
    assert!(
        drained.sizes().iter().all(|&n| n <= 2_048),
        "{:?}",
        drained.sizes()
    );
    // 0.5 s by the schedule; allow one chunk (0.1 s) less, never an upper bound.
    assert!(elapsed >= Duration::from_millis(450), "took {elapsed:?}");
}

#[tokio::test]
async fn at_a_low_rate_chunks_never_exceed_the_cap() {
    // 100 B/s: chunks of 10 bytes, 45 bytes due at 0.45 s.
    let content = pattern(45);
    let started = Instant::now();
    let drained = drain(Throttled::new(Full::new(content.clone()), rate(100))).await;
    let elapsed = started.elapsed();
    assert_eq!(drained.content(), content);
    assert_eq!(drained.sizes(), [10, 10, 10, 10, 5]);
    assert!(elapsed >= Duration::from_millis(350), "took {elapsed:?}");
}

#[tokio::test]
async fn trailers_pass_through_after_the_data() {
    let content = pattern(9_000);
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("c0ffee"));
    let body = Scripted::new([
        Ok(Frame::data(content.clone())),
        Ok(Frame::trailers(trailers.clone())),
    ]);
    let drained = drain(Throttled::new(body, rate(40_000))).await;
    assert_eq!(drained.content(), content);
    assert_eq!(drained.sizes(), [4_000, 4_000, 1_000]);
    assert_eq!(drained.trailers, Some(trailers));
    assert!(!drained.after_trailers);
}

#[tokio::test]
async fn errors_pass_through_after_the_buffered_data() {
    let content = pattern(5_000);
    let body = Scripted::new([
        Ok(Frame::data(content.clone())),
        Err(Boom),
        Ok(Frame::data(pattern(10))),
    ]);
    let drained = drain(Throttled::new(body, rate(40_000))).await;
    assert_eq!(drained.content(), content);
    assert_eq!(drained.sizes(), [4_000, 1_000]);
    assert_eq!(drained.error, Some(Boom));

    let drained = drain(Throttled::new(Scripted::new([Err(Boom)]), rate(1))).await;
    assert!(drained.chunks.is_empty());
    assert_eq!(drained.error, Some(Boom));
}

#[tokio::test]
async fn the_clock_starts_at_the_first_poll() {
    // 3 072 bytes at 10 240 B/s: 0.3 s from the first poll. Had the clock started at
    // construction, the 0.4 s idle wait would let the whole body out at once.
    let content = pattern(3_072);
    let body = Throttled::new(Full::new(content.clone()), rate(10_240));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = Instant::now();
    let drained = drain(body).await;
    let elapsed = started.elapsed();
    assert_eq!(drained.content(), content);
    assert!(elapsed >= Duration::from_millis(200), "took {elapsed:?}");
}

#[tokio::test]
async fn size_hint_and_end_of_stream_count_the_buffered_bytes() {
    // 20 KiB/s: chunks of 2 KiB.
    let mut body = Throttled::new(Full::new(pattern(10 * 1024)), rate(20 * 1024));
    assert_eq!(body.size_hint().exact(), Some(10 * 1024));
    assert!(!body.is_end_stream());

    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.len(), 2 * 1024);
    // `Full` has handed over everything; the rest is buffered here and still counted.
    assert_eq!(body.size_hint().exact(), Some(8 * 1024));
    assert!(!body.is_end_stream());

    while let Some(frame) = body.frame().await {
        frame.unwrap();
    }
    assert_eq!(body.size_hint().exact(), Some(0));
    assert!(body.is_end_stream());

    // An inner body of unknown length stays unknown.
    let body = Throttled::new(Scripted::new([Ok(Frame::data(pattern(10)))]), rate(10));
    assert_eq!(body.size_hint().lower(), 0);
    assert_eq!(body.size_hint().upper(), None);
}

#[test]
fn debug_shows_the_schedule_not_the_body() {
    let body = Throttled::new(Full::new(pattern(10)), rate(1_000));
    assert_eq!(body.bytes_per_sec(), rate(1_000));
    let debug = format!("{body:?}");
    assert!(debug.contains("bytes_per_sec: 1000"), "{debug}");
    assert!(debug.contains("chunk_size: 100"), "{debug}");
}

#[tokio::test]
async fn a_chunk_is_not_released_before_it_is_due() {
    // At 1 B/s the first byte is due 1 s after the first poll: that poll must wait.
    let mut body = Throttled::new(Full::new(pattern(3)), rate(1));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut body).poll_frame(&mut cx).is_pending());
    assert_eq!(body.size_hint().exact(), Some(3));
    assert!(!body.is_end_stream());
}
