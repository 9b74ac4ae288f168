// Tests may unwrap: a panic is the failure report.

use std::sync::Arc;

use crate::read::test_support::{Seed, check_seeds, read_as};
use crate::read::{Format, Location, ReadError, ReadErrorKind, ReadSummary};
use crate::span::{Span, SpanId, SpanKind, StatusCode, TraceId, Value};

fn read(text: &str, lenient: bool) -> Result<(Vec<Span>, usize, ReadSummary), ReadError> {
    read_as(Format::ZipkinJson, "spans.json", text, lenient)
}

fn spans_of(text: &str) -> Vec<Span> {
    read(text, false).unwrap_or_else(|e| panic!("{e}")).0
}

/// One span: `fields` (each starting with a comma) after a minimal valid span, which
/// starts at 1 ms unless `fields` give a timestamp.
fn one_span(fields: &str) -> Span {
    let start = if fields.contains(r#""timestamp""#) {
        ""
    } else {
        r#","timestamp":1000"#
    };
    let text =
        format!(r#"[{{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312"{start}{fields}}}]"#);
    let mut spans = spans_of(&text);
    assert_eq!(spans.len(), 1);
    spans.remove(0)
}

fn span_id(hex: &str) -> SpanId {
    SpanId::from_hex(hex).unwrap()
}

#[test]
fn core_fields_map_onto_the_span() {
    let span = one_span(
        r#","parentId":"0562809467078eab","name":"get /api","kind":"CLIENT",
            "timestamp":1541405397200023,"duration":26"#,
    );
    assert_eq!(
        span.trace_id,
        TraceId::from_hex("0000000000000000463ac35c9f6413ad").unwrap()
    );
    assert_eq!(span.span_id, span_id("a2fb4a1d1a96d312"));
    assert_eq!(span.parent_span_id, Some(span_id("0562809467078eab")));
    assert_eq!(span.name, "get /api");
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(span.start_ns, 1_541_405_397_200_023_000);
    assert_eq!(span.duration_ns(), 26_000);
    assert_eq!(span.status.code, StatusCode::Unset);
    assert_eq!(span.flags, 0);
}

#[test]
fn every_zipkin_kind_is_read() {
    for (name, kind) in [
        ("SERVER", SpanKind::Server),
        ("CLIENT", SpanKind::Client),
        ("PRODUCER", SpanKind::Producer),
        ("CONSUMER", SpanKind::Consumer),
        ("server", SpanKind::Server),
    ] {
        assert_eq!(
            one_span(&format!(r#","kind":"{name}""#)).kind,
            kind,
            "{name}"
        );
    }
    assert_eq!(one_span("").kind, SpanKind::Unspecified);
    assert_eq!(
        one_span(r#","kind":"SIDEWAYS""#).kind,
        SpanKind::Unspecified
    );
}

#[test]
fn span_kind_tag_is_the_fallback() {
    let span = one_span(r#","tags":{"span.kind":"internal","k":"v"}"#);
    assert_eq!(span.kind, SpanKind::Internal);
    assert_eq!(span.attributes.get("span.kind"), None);
    let span = one_span(r#","kind":"SERVER","tags":{"span.kind":"client"}"#);
    assert_eq!(span.kind, SpanKind::Server, "the kind field wins");
}

#[test]
fn a_missing_duration_ends_at_the_start() {
    let span = one_span(r#","timestamp":1000"#);
    assert_eq!(span.start_ns, 1_000_000);
    assert_eq!(span.end_ns, span.start_ns);
}

#[test]
fn a_missing_timestamp_starts_at_the_epoch_and_is_marked() {
    let span = &spans_of(r#"[{"traceId":"aa","id":"01","duration":7}]"#)[0];
    assert_eq!(span.start_ns, 0);
    assert_eq!(span.end_ns, 7_000);
    assert_eq!(
        span.attributes.get("otel.zipkin.absentField.startTime"),
        Some(&Value::Bool(true))
    );
    let timed = one_span(r#","timestamp":1,"duration":7"#);
    assert_eq!(
        timed.attributes.get("otel.zipkin.absentField.startTime"),
        None
    );
}

#[test]
fn parents_that_point_nowhere_mean_a_root() {
    assert_eq!(one_span(r#","parentId":"""#).parent_span_id, None);
    assert_eq!(one_span(r#","parentId":null"#).parent_span_id, None);
    assert_eq!(
        one_span(r#","parentId":"0000000000000000""#).parent_span_id,
        None
    );
    // The Collector's rule: a span cannot be its own parent.
    assert_eq!(
        one_span(r#","parentId":"a2fb4a1d1a96d312""#).parent_span_id,
        None
    );
}

#[test]
fn endpoints_become_collector_attributes() {
    let span = one_span(
        r#","localEndpoint":{"serviceName":"frontend","ipv4":"172.23.250.16","port":8080},
           "remoteEndpoint":{"serviceName":"backend","ipv4":"10.0.0.2","port":9000}"#,
    );
    let a = &span.attributes;
    assert_eq!(a.get_str("network.local.address"), Some("172.23.250.16"));
    assert_eq!(a.get_i64("net.host.port"), Some(8080));
    assert_eq!(a.get_str("service.peer.name"), Some("backend"));
    assert_eq!(a.get_str("network.peer.address"), Some("10.0.0.2"));
    assert_eq!(a.get_i64("net.peer.port"), Some(9000));
    assert_eq!(span.service_name(), "frontend");
    assert_eq!(
        span.resource.attributes.len(),
        1,
        "endpoint details are span attributes"
    );
}

#[test]
fn ipv6_wins_over_ipv4_and_empty_endpoint_fields_add_nothing() {
    let span = one_span(r#","remoteEndpoint":{"ipv4":"10.0.0.2","ipv6":"::1","port":53367}"#);
    assert_eq!(span.attributes.get_str("network.peer.address"), Some("::1"));
    assert_eq!(span.attributes.get("service.peer.name"), None);
    let span = one_span(r#","localEndpoint":{"serviceName":"a"},"remoteEndpoint":{}"#);
    assert!(span.attributes.is_empty());
}

#[test]
fn one_resource_per_service() {
    let text = r#"[
        {"traceId":"aa","id":"01","localEndpoint":{"serviceName":"a"}},
        {"traceId":"aa","id":"02","localEndpoint":{"serviceName":"b"}},
        {"traceId":"aa","id":"03","localEndpoint":{"serviceName":"a","ipv4":"1.2.3.4"}},
        {"traceId":"aa","id":"04"},
        {"traceId":"aa","id":"05","localEndpoint":{"ipv4":"1.2.3.4"}}]"#;
    let spans = spans_of(text);
    assert!(Arc::ptr_eq(&spans[0].resource, &spans[2].resource));
    assert!(!Arc::ptr_eq(&spans[0].resource, &spans[1].resource));
    assert!(Arc::ptr_eq(&spans[3].resource, &spans[4].resource));
    assert_eq!(spans[3].service_name(), "unknown_service");
    let names: Vec<&str> = spans.iter().map(Span::service_name).collect();
    assert_eq!(names, ["a", "b", "a", "unknown_service", "unknown_service"]);
}

#[test]
fn resources_are_shared_across_chunks() {
    let span = r#"{"traceId":"aa","id":"01","localEndpoint":{"serviceName":"a"}}"#;
    let text = format!("[{}]", vec![span; 1100].join(","));
    let spans = spans_of(&text);
    assert!(Arc::ptr_eq(&spans[0].resource, &spans[1099].resource));
}

#[test]
fn the_error_tag_marks_failure_and_carries_the_message() {
    let span = one_span(r#","tags":{"error":"some error"}"#);
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.status.message, "some error");
    assert_eq!(
        span.attributes.get_str("error"),
        Some("some error"),
        "the Collector keeps it"
    );
    let span = one_span(r#","tags":{"error":"true"}"#);
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.status.message, "");
    assert!(span.attributes.is_empty());
    // Zipkin counts any error tag, even an empty one, as a failure.
    let span = one_span(r#","tags":{"error":""}"#);
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.attributes.get_str("error"), Some(""));
}

#[test]
fn otel_status_tags_become_the_status() {
    let span = one_span(
        r#","tags":{"otel.status_code":"ERROR","otel.status_description":"deadline","x":"1"}"#,
    );
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.status.message, "deadline");
    assert_eq!(span.attributes.len(), 1);
    let span = one_span(r#","tags":{"otel.status_code":"STATUS_CODE_OK"}"#);
    assert_eq!(span.status.code, StatusCode::Ok);
    let span = one_span(r#","tags":{"otel.status_code":"OK","error":"true"}"#);
    assert_eq!(
        span.status.code,
        StatusCode::Error,
        "an error tag overrides"
    );
}

#[test]
fn scope_and_tracestate_tags_are_structural() {
    let span = one_span(
        r#","tags":{"otel.library.name":"brave","otel.library.version":"5.13","w3c.tracestate":"a=1","k":"v"}"#,
    );
    assert_eq!(
        (span.scope.name.as_str(), span.scope.version.as_str()),
        ("brave", "5.13")
    );
    assert_eq!(span.trace_state, "a=1");
    assert_eq!(span.attributes.len(), 1);
}

#[test]
fn tags_keep_their_order_and_names_and_become_text() {
    let span = one_span(
        r#","tags":{"z":"1","http.status_code":"200","n":42,"b":true,"gone":null,"a":"x"}"#,
    );
    let pairs: Vec<(&str, String)> = span
        .attributes
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.to_string()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("z", "1".into()),
            ("http.status_code", "200".into()),
            ("n", "42".into()),
            ("b", "true".into()),
            ("a", "x".into())
        ]
    );
    assert!(
        span.attributes
            .iter()
            .all(|kv| matches!(kv.value, Value::Str(_)))
    );
}

#[test]
fn annotations_become_events() {
    let span = one_span(
        r#","annotations":[{"timestamp":1571896375355436,"value":"py_zipkin.logging_end"},{"timestamp":2,"value":"ws|x"}]"#,
    );
    assert_eq!(span.events.len(), 2);
    assert_eq!(span.events[0].name, "py_zipkin.logging_end");
    assert_eq!(span.events[0].time_ns, 1_571_896_375_355_436_000);
    assert_eq!(span.events[1].name, "ws|x");
}

#[test]
fn shared_server_spans_keep_the_client_id_and_leave_no_trace_of_the_flag() {
    let text = r#"[
        {"traceId":"1e223ff1f80f1c69","parentId":"bf396325699c84bf","id":"74280ae0c10d8062","kind":"SERVER","shared":true,"debug":true,"timestamp":5,
         "localEndpoint":{"serviceName":"serviceb"}},
        {"traceId":"1e223ff1f80f1c69","parentId":"bf396325699c84bf","id":"74280ae0c10d8062","kind":"CLIENT",
         "localEndpoint":{"serviceName":"servicea"}}]"#;
    let spans = spans_of(text);
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].span_id, spans[1].span_id);
    assert_eq!(spans[0].parent_span_id, spans[1].parent_span_id);
    assert_eq!(
        (spans[0].kind, spans[1].kind),
        (SpanKind::Server, SpanKind::Client)
    );
    assert!(spans[0].attributes.is_empty(), "{:?}", spans[0].attributes);
}

#[test]
fn short_and_long_ids() {
    assert_eq!(
        one_span("").trace_id.to_string(),
        "0000000000000000463ac35c9f6413ad"
    );
    let text = r#"[{"traceId":"463AC35C9F6413AD48485A3953BB6124","id":"abc"}]"#;
    let span = &spans_of(text)[0];
    assert_eq!(
        span.trace_id.to_string(),
        "463ac35c9f6413ad48485a3953bb6124"
    );
    assert_eq!(span.span_id, span_id("0000000000000abc"));
}

#[test]
fn bad_ids_reject_the_span_with_its_element() {
    for (ids, what) in [
        (r#""traceId":"463ac35c9f6413az","id":"01""#, "traceId"),
        (r#""traceId":"0000000000000000","id":"01""#, "traceId"),
        (
            r#""traceId":"00000000000000000000000000000000","id":"01""#,
            "traceId",
        ),
        (
            r#""traceId":"463ac35c9f6413ad463ac35c9f6413ad1","id":"01""#,
            "traceId",
        ),
        (r#""id":"01""#, "traceId"),
        (r#""traceId":"aa","id":"0000000000000000""#, "id"),
        (r#""traceId":"aa","id":"12345678901234567""#, "id"),
        (
            r#""traceId":"aa","id":"01","parentId":"not-hex""#,
            "parentId",
        ),
    ] {
        let text =
            format!(r#"[{{"traceId":"aa","id":"01"}},{{{ids}}},{{"traceId":"aa","id":"02"}}]"#);
        let error = read(&text, false).unwrap_err();
        assert_eq!(error.location, Location::Element(2), "{ids}");
        assert!(
            matches!(&error.kind, ReadErrorKind::Invalid(r) if r.starts_with(&format!("{what}:"))),
            "{ids}: {error}"
        );
        assert!(
            error.to_string().starts_with("spans.json element 2: "),
            "{error}"
        );

        let (spans, _, summary) = read(&text, true).unwrap();
        assert_eq!(spans.len(), 2, "{ids}");
        assert_eq!((summary.skipped, summary.problems.len()), (1, 1));
        assert_eq!(summary.records, 3, "a span with bad ids was still decoded");
    }
}

#[test]
fn wrong_types_are_reported_per_element() {
    let text = r#"[{"traceId":"aa","id":"01","timestamp":"yesterday"},{"traceId":"aa","id":"02","tags":["a"]},
                   {"traceId":"aa","id":"03","localEndpoint":{"port":70000}},{"traceId":"aa","id":"04","annotations":{}},
                   {"traceId":"aa","id":"05"}]"#;
    let error = read(text, false).unwrap_err();
    assert_eq!(error.location, Location::Element(1));
    assert!(error.to_string().contains("\"yesterday\""), "{error}");
    let (spans, _, summary) = read(text, true).unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(summary.skipped, 4);
    assert_eq!(summary.records, 1);
    let where_: Vec<Location> = summary.problems.iter().map(|p| p.location).collect();
    assert_eq!(where_, [1, 2, 3, 4].map(Location::Element));
}

#[test]
fn a_document_that_is_not_an_array_is_a_syntax_error() {
    let error = read(r#"{"traceId":"aa","id":"01"}"#, false).unwrap_err();
    match &error.kind {
        ReadErrorKind::Syntax { format, reason } => {
            assert_eq!(*format, Format::ZipkinJson);
            assert!(reason.contains("Zipkin"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(error.location, Location::LineColumn(1, _)),
        "{:?}",
        error.location
    );
}

#[test]
fn a_truncated_file_keeps_what_came_before_under_lenient() {
    let text = "[\n{\"traceId\":\"aa\",\"id\":\"01\"},\n{\"traceId\":\"aa\",\"id\":\"02\"},\n{\"traceId\":\"a";
    let error = read(text, false).unwrap_err();
    assert!(matches!(error.kind, ReadErrorKind::Truncated(_)), "{error}");
    assert!(
        matches!(error.location, Location::LineColumn(4, _)),
        "{:?}",
        error.location
    );
    let (spans, _, summary) = read(text, true).unwrap();
    assert_eq!(spans.len(), 2);
    assert_eq!((summary.records, summary.skipped), (2, 1));
}

#[test]
fn syntax_errors_stop_even_a_lenient_read() {
    let text = "[{\"traceId\":\"aa\",\"id\":\"01\"},\n {\"traceId\" \"aa\"},\n {\"traceId\":\"aa\",\"id\":\"03\"}]";
    let error = read(text, false).unwrap_err();
    assert_eq!(error.location, Location::LineColumn(2, 13));
    assert!(!error.to_string().contains(" at line "), "{error}");
    let (spans, _, summary) = read(text, true).unwrap();
    assert_eq!(
        spans.len(),
        1,
        "nothing after a broken element can be trusted"
    );
    assert_eq!(summary.skipped, 1);
    assert!(matches!(
        summary.problems[0].kind,
        ReadErrorKind::Syntax { .. }
    ));
}

#[test]
fn only_whitespace_may_follow_the_array() {
    assert!(read("[]\n", false).is_ok());
    let error = read("[],", false).unwrap_err();
    assert!(
        matches!(error.kind, ReadErrorKind::Syntax { .. }),
        "{error}"
    );
}

#[test]
fn spans_arrive_in_chunks_of_1024() {
    let span = r#"{"traceId":"aa","id":"01","name":"x","timestamp":1,"duration":1}"#;
    let text = format!("[{}]", vec![span; 2500].join(",\n"));
    let (spans, batches, summary) = read(&text, false).unwrap();
    assert_eq!(spans.len(), 2500);
    assert_eq!(batches, 3);
    assert_eq!((summary.records, summary.spans), (2500, 2500));
}

#[test]
fn empty_and_null_documents_read_as_nothing() {
    for text in ["[]", "null", " [ ] "] {
        let (spans, batches, _) = read(text, false).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(spans.is_empty());
        assert_eq!(batches, 0, "empty batches are not handed out");
    }
}

#[test]
fn fuzz_seeds_read_as_their_names_say() {
    const SEEDS: &[Seed] = &[
        ("annotations-and-128bit-ids.json", "ok", 1, 0),
        ("bad-ids.json", "invalid", 1, 7),
        ("bom-empty-array.json", "ok", 0, 0),
        ("endpoints-ipv6-port.json", "ok", 1, 0),
        ("kafka-producer-consumer.json", "ok", 3, 0),
        ("late-span-no-timestamp.json", "ok", 2, 0),
        ("object-not-array.json", "syntax", 0, 1),
        ("odd-tag-values.json", "ok", 1, 0),
        ("shared-client-server.json", "ok", 3, 0),
        ("syntax-error-mid-array.json", "syntax", 1, 1),
        ("trailing-comma-after-array.json", "syntax", 0, 1),
        ("truncated.json", "truncated", 2, 1),
        ("wrong-types.json", "invalid", 1, 6),
    ];
    check_seeds("zipkin", SEEDS, read);
}

#[test]
fn messages_name_the_format_not_internal_types() {
    let error = read(r#"[{"traceId":"aa","id":"01"}, 5]"#, false).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("expected a Zipkin v2 span object"),
        "{message}"
    );
    let error = read(r#"[{"traceId":"aa","id":"01","localEndpoint":"x"}]"#, false).unwrap_err();
    assert!(
        error.to_string().contains("expected an endpoint object"),
        "{error}"
    );
}
