//! The layer in front of a `tower_test` mock: what the inner service receives.

use faultline_model::w3c::{CorrelationSource, TraceParent};
use http::Request;
use tower::ServiceExt as _;
use tower_test::mock;

use super::*;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT: &str = "b7ad6b7169203331";

/// Sends a request with `headers` through the layer; returns the request the inner
/// service saw.
async fn through(headers: &[(&str, &[u8])]) -> Request<()> {
    let (service, mut handle) = mock::pair::<Request<()>, ()>();
    let service = PropagationLayer::new(true).layer(service);
    let mut request = Request::builder().uri("/orders");
    for (name, value) in headers {
        request = request.header(*name, HeaderValue::from_bytes(value).unwrap());
    }
    let request = request.body(()).unwrap();
    let call = tokio::spawn(service.oneshot(request));
    let (seen, respond) = handle.next_request().await.unwrap();
    respond.send_response(());
    call.await.unwrap().unwrap();
    seen
}

fn hop(request: &Request<()>) -> &HopContext {
    request.extensions().get::<HopContext>().unwrap()
}

fn header<'a>(request: &'a Request<()>, name: &str) -> Option<&'a str> {
    let mut values = request.headers().get_all(name).iter();
    let first = values.next().map(|v| v.to_str().unwrap());
    assert!(values.next().is_none(), "{name} is sent once");
    first
}

fn traceparent(request: &Request<()>) -> TraceParent {
    TraceParent::parse(header(request, "traceparent").unwrap()).unwrap()
}

#[tokio::test]
async fn a_valid_context_continues_with_a_fresh_span_id_per_hop() {
    let seen = through(&[
        ("traceparent", format!("00-{TRACE}-{PARENT}-01").as_bytes()),
        ("tracestate", b"vendor=abc,other=1"),
    ])
    .await;
    let forwarded = traceparent(&seen);
    let hop = hop(&seen);
    assert_eq!(forwarded.trace_id().to_string(), TRACE, "same trace");
    assert_ne!(
        forwarded.parent_id().to_string(),
        PARENT,
        "a new span id for this hop"
    );
    assert_eq!(
        hop.span_id,
        forwarded.parent_id(),
        "the forwarded parent is this hop's span"
    );
    assert_eq!(
        hop.parent_span_id.map(|p| p.to_string()).as_deref(),
        Some(PARENT)
    );
    assert!(forwarded.sampled());
    assert_eq!(header(&seen, "tracestate"), Some("vendor=abc,other=1"));
    assert_eq!(hop.restarted, None);
}

#[tokio::test]
async fn the_sampled_flag_is_honoured_not_forced() {
    let seen = through(&[("traceparent", format!("00-{TRACE}-{PARENT}-00").as_bytes())]).await;
    assert!(!traceparent(&seen).sampled());
    assert!(!hop(&seen).sampled);
}

#[tokio::test]
async fn no_traceparent_starts_a_trace_and_drops_a_stray_tracestate() {
    let seen = through(&[("tracestate", b"vendor=abc")]).await;
    let forwarded = traceparent(&seen);
    assert!(forwarded.trace_id().is_valid());
    assert!(forwarded.sampled(), "new traces use the configured default");
    assert!(
        forwarded.random_trace_id(),
        "level 2: random trace ids are flagged"
    );
    assert_eq!(header(&seen, "tracestate"), None);
    assert_eq!(hop(&seen).parent_span_id, None);
}

#[tokio::test]
async fn an_invalid_traceparent_restarts_the_trace_and_drops_tracestate() {
    for bad in [
        format!("00-{}-{PARENT}-01", TRACE.to_uppercase()),
        format!("ff-{TRACE}-{PARENT}-01"),
        format!("00-{TRACE}-0000000000000000-01"),
        format!("00-{TRACE}-{PARENT}-01-extra"),
    ] {
        let seen = through(&[
            ("traceparent", bad.as_bytes()),
            ("tracestate", b"vendor=abc"),
        ])
        .await;
        let forwarded = traceparent(&seen);
        assert_ne!(forwarded.trace_id().to_string(), TRACE, "{bad}");
        assert_eq!(header(&seen, "tracestate"), None, "{bad}");
        assert!(hop(&seen).restarted.is_some(), "{bad}");
    }
}

#[tokio::test]
async fn two_traceparent_headers_restart_the_trace() {
    let a = format!("00-{TRACE}-{PARENT}-01");
    let b = format!("00-{TRACE}-00f067aa0ba902b7-01");
    let seen = through(&[("traceparent", a.as_bytes()), ("traceparent", b.as_bytes())]).await;
    assert_ne!(traceparent(&seen).trace_id().to_string(), TRACE);
}

#[tokio::test]
async fn unreadable_header_bytes_count_as_invalid_not_absent() {
    let seen = through(&[
        ("traceparent", format!("00-{TRACE}-{PARENT}-01").as_bytes()),
        ("traceparent", b"\xff\xfe"),
    ])
    .await;
    assert_ne!(
        traceparent(&seen).trace_id().to_string(),
        TRACE,
        "two headers, one unreadable"
    );
}

#[tokio::test]
async fn a_future_version_is_continued_and_forwarded_as_version_00() {
    let seen = through(&[(
        "traceparent",
        format!("cc-{TRACE}-{PARENT}-01-what-the-future-holds").as_bytes(),
    )])
    .await;
    let text = header(&seen, "traceparent").unwrap();
    assert!(text.starts_with(&format!("00-{TRACE}-")), "{text}");
    assert_eq!(text.len(), 55);
}

#[tokio::test]
async fn correlation_ids_are_kept_or_generated_and_put_into_baggage() {
    let seen = through(&[
        ("x-correlation-id", b"order-42"),
        ("baggage", b"tenant=acme,plan=gold;ttl=5"),
    ])
    .await;
    assert_eq!(header(&seen, "x-correlation-id"), Some("order-42"));
    let baggage = Baggage::parse(header(&seen, "baggage").unwrap()).unwrap();
    assert_eq!(baggage.get("correlation.id"), Some("order-42"));
    assert_eq!(
        baggage.get("tenant"),
        Some("acme"),
        "other members are kept"
    );
    assert_eq!(
        hop(&seen).correlation_source,
        CorrelationSource::CorrelationHeader
    );

    let seen = through(&[("X-Request-Id", b"req-7")]).await;
    assert_eq!(header(&seen, "x-correlation-id"), Some("req-7"));
    assert_eq!(
        header(&seen, "x-request-id"),
        Some("req-7"),
        "left as it was"
    );

    let seen = through(&[("baggage", b"correlation.id=from-baggage")]).await;
    assert_eq!(header(&seen, "x-correlation-id"), Some("from-baggage"));

    let seen = through(&[]).await;
    let generated = header(&seen, "x-correlation-id").unwrap().to_owned();
    assert_eq!(generated.len(), 36, "UUID shaped: {generated}");
    assert_eq!(hop(&seen).correlation_source, CorrelationSource::Generated);
    let baggage = Baggage::parse(header(&seen, "baggage").unwrap()).unwrap();
    assert_eq!(baggage.get("correlation.id"), Some(generated.as_str()));
}

#[tokio::test]
async fn an_invalid_correlation_id_is_replaced() {
    let seen = through(&[("x-correlation-id", b"has space")]).await;
    let id = header(&seen, "x-correlation-id").unwrap();
    assert_ne!(id, "has space");
    assert_eq!(hop(&seen).correlation_source, CorrelationSource::Generated);
}

#[tokio::test]
async fn responses_pass_through_untouched() {
    let (service, mut handle) = mock::pair::<Request<()>, &'static str>();
    let service = PropagationLayer::new(false).layer(service);
    let call = tokio::spawn(service.oneshot(Request::new(())));
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_response("from upstream");
    assert_eq!(call.await.unwrap().unwrap(), "from upstream");
}
