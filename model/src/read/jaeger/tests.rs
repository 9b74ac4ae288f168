// Tests may unwrap: a panic is the failure report.

use std::sync::Arc;

use crate::read::test_support::{Seed, check_seeds, read_as};
use crate::read::{Format, Location, ReadError, ReadErrorKind, ReadSummary};
use crate::span::{Span, SpanId, SpanKind, StatusCode, TraceId, Value};

fn read(text: &str, lenient: bool) -> Result<(Vec<Span>, usize, ReadSummary), ReadError> {
    read_as(Format::JaegerJson, "trace.json", text, lenient)
}

fn spans_of(text: &str) -> Vec<Span> {
    read(text, false).unwrap_or_else(|e| panic!("{e}")).0
}

/// A bare array holding one span: `fields` (each starting with a comma) over a minimal
/// valid span, whose fields they replace.
fn one_span(fields: &str) -> Span {
    let defaults = [
        r#""traceID":"00000000000000aa""#,
        r#""spanID":"00000000000000bb""#,
        r#""operationName":"op""#,
        r#""startTime":1000"#,
        r#""duration":5"#,
    ];
    let given = top_level_keys(fields);
    let mut members: Vec<&str> = defaults
        .into_iter()
        .filter(|d| !given.iter().any(|k| d.starts_with(k.as_str())))
        .collect();
    members.push(fields.trim_start_matches(','));
    let text = format!("[{{{}}}]", members.join(",").trim_end_matches(','));
    let mut spans = spans_of(&text);
    assert_eq!(spans.len(), 1);
    spans.remove(0)
}

/// The quoted keys of a comma-separated member list, ignoring nested objects.
fn top_level_keys(members: &str) -> Vec<String> {
    let (mut depth, mut in_string, mut start, mut keys) = (0, false, None, Vec::new());
    let mut previous = ' ';
    for (i, c) in members.char_indices() {
        match c {
            '"' if previous != '\\' => {
                in_string = !in_string;
                if in_string && depth == 0 {
                    start = Some(i);
                } else if let Some(from) = start
                    .take()
                    .filter(|_| members[i + 1..].trim_start().starts_with(':'))
                {
                    keys.push(members[from..=i].to_owned());
                }
            }
            '{' | '[' if !in_string => depth += 1,
            '}' | ']' if !in_string => depth -= 1,
            _ => {}
        }
        previous = c;
    }
    keys
}

fn span_id(hex: &str) -> SpanId {
    SpanId::from_hex(hex).unwrap()
}

const QUERY_API: &str = r#"{
  "data": [
    {"traceID": "1", "spans": [
        {"traceID": "0000000000000001", "spanID": "0000000000000002", "operationName": "GET /",
         "references": [], "startTime": 10, "duration": 3, "tags": [], "logs": [], "processID": "p1",
         "warnings": null},
        {"traceID": "0000000000000001", "spanID": "0000000000000003", "operationName": "query",
         "references": [{"refType": "CHILD_OF", "traceID": "0000000000000001", "spanID": "0000000000000002"}],
         "startTime": 11, "duration": 1, "processID": "p2"}],
     "processes": {"p1": {"serviceName": "web", "tags": [{"key": "host", "type": "string", "value": "a"}]},
                   "p2": {"serviceName": "db", "tags": []}},
     "warnings": null},
    {"traceID": "4", "spans": [
        {"traceID": "0000000000000004", "spanID": "0000000000000005", "operationName": "GET /",
         "startTime": 20, "duration": 2, "processID": "x"}],
     "processes": {"x": {"serviceName": "web", "tags": [{"key": "host", "type": "string", "value": "a"}]}}}
  ],
  "total": 0, "limit": 0, "offset": 0, "errors": null
}"#;

#[test]
fn query_api_reads_one_batch_per_trace() {
    let (spans, batches, summary) = read(QUERY_API, false).unwrap();
    assert_eq!(spans.len(), 3);
    assert_eq!(batches, 2);
    assert_eq!(summary.records, 2);
    assert_eq!(summary.spans, 3);
    assert_eq!(summary.skipped, 0);
    assert_eq!(spans[0].name, "GET /");
    assert_eq!(spans[0].service_name(), "web");
    assert_eq!(spans[0].resource.attributes.get_str("host"), Some("a"));
    assert_eq!(spans[1].service_name(), "db");
    assert_eq!(spans[1].parent_span_id, Some(span_id("0000000000000002")));
}

#[test]
fn equal_processes_share_one_resource_even_across_traces() {
    let spans = spans_of(QUERY_API);
    assert!(Arc::ptr_eq(&spans[0].resource, &spans[2].resource));
    assert!(!Arc::ptr_eq(&spans[0].resource, &spans[1].resource));
}

#[test]
fn a_saved_trace_object_reads_with_processes_after_spans() {
    let text = r#"{"traceID": "ab", "spans": [
        {"traceID": "ab", "spanID": "01", "operationName": "a", "startTime": 1, "duration": 1, "processID": "p1"}],
        "processes": {"p1": {"serviceName": "svc"}}, "warnings": ["w"]}"#;
    let (spans, _, summary) = read(text, false).unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(summary.records, 1);
    assert_eq!(spans[0].service_name(), "svc");
}

#[test]
fn a_bare_array_of_spans_with_inline_processes() {
    let text = r#"[
      {"traceID": "aa", "spanID": "01", "operationName": "a", "startTime": 1, "duration": 1,
       "process": {"serviceName": "svc", "tags": [{"key": "ip", "type": "string", "value": "10.0.0.1"}]}},
      {"traceID": "aa", "spanID": "02", "operationName": "b", "startTime": 1, "duration": 1,
       "process": {"serviceName": "svc", "tags": [{"key": "ip", "type": "string", "value": "10.0.0.1"}]}},
      {"traceID": "aa", "spanID": "03", "operationName": "c", "startTime": 1, "duration": 1,
       "process": {"serviceName": "other", "tags": []}}
    ]"#;
    let (spans, batches, summary) = read(text, false).unwrap();
    assert_eq!(spans.len(), 3);
    assert_eq!(batches, 1);
    assert_eq!(summary.records, 3, "each span of a bare array is a record");
    assert!(Arc::ptr_eq(&spans[0].resource, &spans[1].resource));
    assert_eq!(spans[2].service_name(), "other");
    assert_eq!(spans[0].resource.attributes.get_str("ip"), Some("10.0.0.1"));
}

#[test]
fn a_bare_array_of_traces() {
    let text = r#"[{"traceID": "aa", "spans": [{"traceID": "aa", "spanID": "01", "processID": "p"}],
                    "processes": {"p": {"serviceName": "svc"}}}]"#;
    let spans = spans_of(text);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].service_name(), "svc");
}

#[test]
fn long_bare_arrays_are_emitted_in_chunks() {
    let span = r#"{"traceID":"aa","spanID":"01","operationName":"x","startTime":1,"duration":1}"#;
    let text = format!("[{}]", vec![span; 2100].join(","));
    let (spans, batches, summary) = read(&text, false).unwrap();
    assert_eq!(spans.len(), 2100);
    assert_eq!(batches, 3, "1024 + 1024 + 52");
    assert_eq!(summary.records, 2100);
}

#[test]
fn a_process_id_without_a_process_leaves_the_service_unknown() {
    let text = r#"{"data": [{"spans": [{"traceID": "aa", "spanID": "01", "processID": "p9"}], "processes": {}}]}"#;
    assert_eq!(spans_of(text)[0].service_name(), "unknown_service");
}

#[test]
fn the_collectors_no_service_placeholder_means_no_service() {
    let span = one_span(r#","process":{"serviceName":"OTLPResourceNoServiceName"}"#);
    assert!(span.resource.attributes.is_empty());
}

#[test]
fn times_are_microseconds() {
    let span = one_span(r#","startTime":1485467191639875,"duration":267037"#);
    assert_eq!(span.start_ns, 1_485_467_191_639_875_000);
    assert_eq!(span.duration_ns(), 267_037_000);
    // Numbers written as strings, as some exporters do.
    let span = one_span(r#","startTime":"1000","duration":"7""#);
    assert_eq!((span.start_ns, span.duration_ns()), (1_000_000, 7_000));
}

#[test]
fn only_the_sampled_flag_carries_over() {
    assert_eq!(one_span(r#","flags":1"#).flags, 1);
    assert_eq!(one_span(r#","flags":3"#).flags, 1);
    assert_eq!(
        one_span(r#","flags":2"#).flags,
        0,
        "debug has no W3C meaning"
    );
}

#[test]
fn ids_of_16_digits_are_widened_and_short_ones_padded() {
    let span = one_span("");
    assert_eq!(
        span.trace_id.to_string(),
        "000000000000000000000000000000aa"
    );
    let span = one_span(r#","traceID":"2be38093ead7a083""#);
    assert_eq!(
        span.trace_id,
        TraceId::from_hex("00000000000000002be38093ead7a083").unwrap()
    );
    let full = one_span(r#","traceID":"83A9EFD15C1C98A977E0711CC93EE28B""#);
    assert_eq!(
        full.trace_id.to_string(),
        "83a9efd15c1c98a977e0711cc93ee28b"
    );
    let short = one_span(r#","spanID":"7""#);
    assert_eq!(short.span_id, span_id("0000000000000007"));
}

#[test]
fn typed_tags_become_typed_attributes() {
    let span = one_span(
        r#","tags":[
            {"key":"s","type":"string","value":"v"},
            {"key":"b","type":"bool","value":true},
            {"key":"b2","type":"bool","value":"false"},
            {"key":"i","type":"int64","value":23456},
            {"key":"big","type":"int64","value":"9223372036854775222"},
            {"key":"f","type":"float64","value":72.5},
            {"key":"blob","type":"binary","value":"AAAwOQ=="},
            {"key":"n","type":"string","value":42},
            {"key":"untyped","value":7},
            {"key":"upper","type":"INT64","value":"-3"}]"#,
    );
    let a = &span.attributes;
    assert_eq!(a.get("s"), Some(&Value::Str("v".into())));
    assert_eq!(a.get("b"), Some(&Value::Bool(true)));
    assert_eq!(a.get("b2"), Some(&Value::Bool(false)));
    assert_eq!(a.get("i"), Some(&Value::Int(23456)));
    assert_eq!(a.get("big"), Some(&Value::Int(9_223_372_036_854_775_222)));
    assert_eq!(a.get("f"), Some(&Value::Double(72.5)));
    assert_eq!(a.get("blob"), Some(&Value::Bytes(vec![0, 0, 0x30, 0x39])));
    assert_eq!(a.get("n"), Some(&Value::Str("42".into())));
    assert_eq!(a.get("untyped"), Some(&Value::Int(7)));
    assert_eq!(a.get("upper"), Some(&Value::Int(-3)));
    // Input order is kept and no tag is renamed.
    let keys: Vec<&str> = a.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "s", "b", "b2", "i", "big", "f", "blob", "n", "untyped", "upper"
        ]
    );
}

#[test]
fn a_tag_value_that_does_not_fit_its_type_rejects_the_span() {
    let text = r#"[{"traceID":"aa","spanID":"01","tags":[{"key":"port","type":"int64","value":"eighty"}]}]"#;
    let error = read(text, false).unwrap_err();
    assert_eq!(error.location, Location::Element(1));
    let message = error.to_string();
    assert!(
        message.contains("tags[0]") && message.contains("\"port\""),
        "{message}"
    );
    let bad_base64 =
        r#"[{"traceID":"aa","spanID":"01","tags":[{"key":"b","type":"binary","value":"!!"}]}]"#;
    assert!(read(bad_base64, false).is_err());
    let bad_bool =
        r#"[{"traceID":"aa","spanID":"01","tags":[{"key":"b","type":"bool","value":3}]}]"#;
    assert!(read(bad_bool, false).is_err());
}

#[test]
fn span_kind_tag_becomes_the_kind() {
    let span = one_span(
        r#","tags":[{"key":"span.kind","type":"string","value":"server"},{"key":"x","value":"y"}]"#,
    );
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!(span.attributes.get("span.kind"), None);
    assert_eq!(span.attributes.len(), 1);
    assert_eq!(
        one_span(r#","tags":[{"key":"span.kind","value":"PRODUCER"}]"#).kind,
        SpanKind::Producer
    );
    assert_eq!(one_span("").kind, SpanKind::Unspecified);
}

#[test]
fn error_tag_true_means_error_status() {
    let span = one_span(r#","tags":[{"key":"error","type":"bool","value":true}]"#);
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.attributes.get("error"), None);
    // The anonymizer fixture's spelling: a bool tag whose value is the string "true".
    let span = one_span(r#","tags":[{"key":"error","type":"bool","value":"true"}]"#);
    assert_eq!(span.status.code, StatusCode::Error);
    let span = one_span(r#","tags":[{"key":"error","type":"string","value":"true"}]"#);
    assert_eq!(span.status.code, StatusCode::Error);
    let span = one_span(r#","tags":[{"key":"error","type":"bool","value":false}]"#);
    assert_eq!(span.status.code, StatusCode::Unset);
    assert_eq!(
        span.attributes.get("error"),
        Some(&Value::Bool(false)),
        "kept when false"
    );
}

#[test]
fn error_status_takes_its_message_from_the_description() {
    let span = one_span(
        r#","tags":[{"key":"error","value":true},{"key":"otel.status_description","value":"timeout"},
                    {"key":"otel.status_code","value":"OK"}]"#,
    );
    assert_eq!(
        span.status.code,
        StatusCode::Error,
        "the error tag is the final word"
    );
    assert_eq!(span.status.message, "timeout");
    assert!(span.attributes.is_empty());
    let span = one_span(
        r#","tags":[{"key":"error","value":true},{"key":"http.status_message","value":"Bad Gateway"}]"#,
    );
    assert_eq!(span.status.message, "Bad Gateway");
    assert_eq!(
        span.attributes.get_str("http.status_message"),
        Some("Bad Gateway")
    );
}

#[test]
fn otel_status_tags_become_the_status() {
    let span = one_span(
        r#","tags":[{"key":"otel.status_code","value":"ERROR"},{"key":"otel.status_description","value":"boom"}]"#,
    );
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.status.message, "boom");
    assert!(span.attributes.is_empty());
    assert_eq!(
        one_span(r#","tags":[{"key":"otel.status_code","value":"OK"}]"#)
            .status
            .code,
        StatusCode::Ok
    );
}

#[test]
fn http_status_code_is_the_fallback() {
    let status = |kind: &str, code: &str| {
        let tags = format!(
            r#","tags":[{{"key":"span.kind","value":"{kind}"}},{{"key":"http.status_code","type":"int64","value":{code}}}]"#
        );
        one_span(&tags).status.code
    };
    assert_eq!(status("server", "503"), StatusCode::Error);
    assert_eq!(status("server", "404"), StatusCode::Unset);
    assert_eq!(status("client", "404"), StatusCode::Error);
    assert_eq!(status("client", "\"500\""), StatusCode::Error);
    assert_eq!(status("client", "200"), StatusCode::Unset);
    let span = one_span(
        r#","tags":[{"key":"http.status_code","value":502},{"key":"otel.status_code","value":"OK"}]"#,
    );
    assert_eq!(
        span.status.code,
        StatusCode::Ok,
        "an explicit status wins over HTTP"
    );
    assert_eq!(
        span.attributes.get_i64("http.status_code"),
        Some(502),
        "the HTTP tag stays"
    );
}

#[test]
fn scope_tags_become_a_shared_scope() {
    let text = r#"[
      {"traceID":"aa","spanID":"01","tags":[{"key":"otel.scope.name","value":"lib"},{"key":"otel.scope.version","value":"1.2"},{"key":"k","value":"v"}]},
      {"traceID":"aa","spanID":"02","tags":[{"key":"otel.library.name","value":"lib"},{"key":"otel.library.version","value":"1.2"}]},
      {"traceID":"aa","spanID":"03","tags":[{"key":"otel.scope.version","value":"9"}]}]"#;
    let spans = spans_of(text);
    assert_eq!(
        (
            spans[0].scope.name.as_str(),
            spans[0].scope.version.as_str()
        ),
        ("lib", "1.2")
    );
    assert!(Arc::ptr_eq(&spans[0].scope, &spans[1].scope));
    assert_eq!(spans[0].attributes.len(), 1);
    assert!(spans[1].attributes.is_empty());
    // A version without a name is no scope: the tag stays.
    assert_eq!(spans[2].scope.name, "");
    assert_eq!(spans[2].attributes.get_str("otel.scope.version"), Some("9"));
}

#[test]
fn tracestate_tag_becomes_the_trace_state() {
    let span = one_span(r#","tags":[{"key":"w3c.tracestate","value":"vendor=1"}]"#);
    assert_eq!(span.trace_state, "vendor=1");
    assert!(span.attributes.is_empty());
}

#[test]
fn references_give_the_parent_and_links() {
    // As in the Jaeger UI fixture: a CHILD_OF into another trace, the real parent, and a
    // FOLLOWS_FROM to the same span.
    let span = one_span(
        r#","references":[
            {"refType":"CHILD_OF","traceID":"00000000000000ff","spanID":"00000000000000ff"},
            {"refType":"CHILD_OF","traceID":"00000000000000aa","spanID":"0000000000000002"},
            {"refType":"FOLLOWS_FROM","traceID":"00000000000000aa","spanID":"0000000000000002"}]"#,
    );
    assert_eq!(span.parent_span_id, Some(span_id("0000000000000002")));
    assert_eq!(span.links.len(), 2);
    assert_eq!(
        span.links[0].trace_id,
        TraceId::from_hex("00000000000000ff").unwrap()
    );
    assert_eq!(
        span.links[0].attributes.get_str("opentracing.ref_type"),
        Some("child_of")
    );
    assert_eq!(span.links[1].span_id, span_id("0000000000000002"));
    assert_eq!(
        span.links[1].attributes.get_str("opentracing.ref_type"),
        Some("follows_from")
    );
}

#[test]
fn follows_from_alone_is_a_link_not_a_parent() {
    let span =
        one_span(r#","references":[{"refType":"FOLLOWS_FROM","traceID":"aa","spanID":"0c"}]"#);
    assert_eq!(span.parent_span_id, None);
    assert_eq!(span.links.len(), 1);
}

#[test]
fn parent_span_id_field_is_read_when_references_name_no_parent() {
    assert_eq!(
        one_span(r#","parentSpanID":"0000000000000009""#).parent_span_id,
        Some(span_id("0000000000000009"))
    );
    assert_eq!(
        one_span(r#","parentSpanID":"0000000000000000""#).parent_span_id,
        None
    );
    let both = one_span(
        r#","parentSpanID":"0000000000000009","references":[{"refType":"CHILD_OF","traceID":"aa","spanID":"08"}]"#,
    );
    assert_eq!(both.parent_span_id, Some(span_id("0000000000000008")));
}

#[test]
fn logs_become_events() {
    let span = one_span(
        r#","logs":[{"timestamp":1485467191639875,"fields":[{"key":"event","type":"string","value":"retry"},{"key":"attempt","type":"int64","value":2}]},
                    {"timestamp":1485467191639876,"fields":[{"key":"x","type":"string","value":"y"}]},
                    {"timestamp":1485467191639877}]"#,
    );
    assert_eq!(span.events.len(), 3);
    assert_eq!(span.events[0].name, "retry");
    assert_eq!(span.events[0].time_ns, 1_485_467_191_639_875_000);
    assert_eq!(span.events[0].attributes.get_i64("attempt"), Some(2));
    assert_eq!(span.events[0].attributes.get("event"), None);
    assert_eq!(span.events[1].name, "log");
    assert_eq!(span.events[1].attributes.get_str("x"), Some("y"));
    assert!(span.events[2].attributes.is_empty());
}

#[test]
fn bad_ids_reject_the_span_with_its_element() {
    for (ids, what) in [
        (r#""traceID":"xyz","spanID":"01""#, "traceID"),
        (
            r#""traceID":"00000000000000000000000000000000","spanID":"01""#,
            "traceID",
        ),
        (r#""traceID":"aa","spanID":"0000000000000000""#, "spanID"),
        (r#""traceID":"aa","spanID":"""#, "spanID"),
        (r#""spanID":"01""#, "traceID"),
        (
            r#""traceID":"123456789012345678901234567890123","spanID":"01""#,
            "traceID",
        ),
        (
            r#""traceID":"aa","spanID":"01","references":[{"refType":"CHILD_OF","traceID":"aa","spanID":"zz"}]"#,
            "references[0].spanID",
        ),
    ] {
        let text = format!(r#"[{{"traceID":"aa","spanID":"01"}},{{{ids}}}]"#);
        let error = read(&text, false).unwrap_err();
        assert_eq!(error.location, Location::Element(2), "{ids}");
        assert!(
            matches!(&error.kind, ReadErrorKind::Invalid(r) if r.starts_with(&format!("{what}:"))),
            "{ids}: {error}"
        );
        assert!(
            error.to_string().starts_with("trace.json element 2: "),
            "{error}"
        );

        let (spans, _, summary) = read(&text, true).unwrap();
        assert_eq!(spans.len(), 1, "{ids}");
        assert_eq!(summary.skipped, 1);
        assert_eq!(summary.problems.len(), 1);
    }
}

#[test]
fn a_bad_span_in_a_trace_costs_only_that_span() {
    let text = r#"{"data":[
        {"spans":[{"traceID":"aa","spanID":"01"}]},
        {"spans":[{"traceID":"bb","spanID":"02"},{"traceID":"bb","spanID":"nothex"},{"traceID":"bb","spanID":"03"}]}]}"#;
    let error = read(text, false).unwrap_err();
    assert_eq!(error.location, Location::Element(2));
    assert!(
        error.to_string().contains("spans[1]: spanID: \"nothex\""),
        "{error}"
    );
    let (spans, _, summary) = read(text, true).unwrap();
    assert_eq!(spans.len(), 3);
    assert_eq!((summary.records, summary.skipped), (2, 1));
}

#[test]
fn wrong_types_are_reported_per_element() {
    let text = r#"[{"traceID":"aa","spanID":"01","startTime":"soon"},{"traceID":"aa","spanID":"02","tags":"none"},
                   {"traceID":"aa","spanID":"03","duration":-5},{"traceID":"aa","spanID":"04"}]"#;
    let error = read(text, false).unwrap_err();
    assert_eq!(error.location, Location::Element(1));
    assert!(error.to_string().contains("\"soon\""), "{error}");
    let (spans, _, summary) = read(text, true).unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(summary.skipped, 3);
    assert_eq!(
        summary.records, 1,
        "elements that do not decode are not records"
    );
    assert!(matches!(
        summary.problems[1].kind,
        ReadErrorKind::Invalid(_)
    ));
    assert_eq!(summary.problems[2].location, Location::Element(3));
}

#[test]
fn bad_processes_reject_the_trace() {
    let text = r#"{"data":[{"spans":[{"traceID":"aa","spanID":"01","processID":"p"}],
        "processes":{"p":{"serviceName":"s","tags":[{"key":"n","type":"int64","value":"x"}]}}}]}"#;
    let error = read(text, false).unwrap_err();
    assert!(error.to_string().contains("processes.p.tags[0]"), "{error}");
    let (spans, _, summary) = read(text, true).unwrap();
    assert!(spans.is_empty());
    assert_eq!(summary.skipped, 1);
}

#[test]
fn a_truncated_file_is_an_error_with_its_position() {
    let text = "{\"data\":[\n{\"spans\":[{\"traceID\":\"aa\",\"spanID\":\"01\"}]},\n{\"spans\":[{\"traceID\":\"bb\",";
    let error = read(text, false).unwrap_err();
    assert!(matches!(error.kind, ReadErrorKind::Truncated(_)), "{error}");
    assert!(
        matches!(error.location, Location::LineColumn(3, _)),
        "{:?}",
        error.location
    );
    // Lenient: the first trace is kept, the broken rest counted.
    let (spans, _, summary) = read(text, true).unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(summary.skipped, 1);
}

#[test]
fn syntax_errors_name_line_and_column_once() {
    let error = read("[{\"traceID\":\"aa\",\"spanID\":\"01\"},\n  {oops}]", false).unwrap_err();
    assert_eq!(error.location, Location::LineColumn(2, 4));
    match &error.kind {
        ReadErrorKind::Syntax { format, reason } => {
            assert_eq!(*format, Format::JaegerJson);
            assert!(!reason.contains(" at line "), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("trace.json:2:4: malformed jaeger-json: "),
        "{error}"
    );
}

#[test]
fn only_whitespace_may_follow_the_document() {
    let error = read("[] []", false).unwrap_err();
    assert!(
        matches!(error.kind, ReadErrorKind::Syntax { .. }),
        "{error}"
    );
    assert!(read("[]\n\n", false).unwrap().0.is_empty());
}

#[test]
fn structure_of_the_wrong_type_is_a_syntax_error() {
    let error = read(r#"{"traceID":"aa","spans":5}"#, false).unwrap_err();
    assert!(
        matches!(error.kind, ReadErrorKind::Syntax { .. }),
        "{error}"
    );
    assert!(matches!(error.location, Location::LineColumn(1, _)));
    assert!(read("\"a string\"", false).is_err());
}

#[test]
fn empty_documents_read_as_nothing() {
    for text in [
        "[]",
        "{\"data\":[]}",
        "{\"data\":null,\"errors\":null}",
        "null",
        "{}",
    ] {
        let (spans, _, summary) = read(text, false).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(spans.is_empty(), "{text}");
        assert_eq!(summary.records, 0, "{text}");
    }
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let text = "\u{feff}[{\"traceID\":\"aa\",\"spanID\":\"01\"}]";
    assert_eq!(spans_of(text).len(), 1);
}

#[test]
fn fuzz_seeds_read_as_their_names_say() {
    const SEEDS: &[Seed] = &[
        ("bad-ids.json", "invalid", 1, 5),
        ("bare-span-array-inline-process.json", "ok", 2, 0),
        ("bom-then-array.json", "ok", 1, 0),
        ("empty-data-null.json", "ok", 0, 0),
        ("otel-structural-tags.json", "ok", 1, 0),
        ("query-api-two-traces.json", "ok", 3, 0),
        ("references-follows-from-and-other-trace.json", "ok", 1, 0),
        ("spans-not-an-array.json", "syntax", 0, 1),
        ("syntax-error-second-element.json", "syntax", 1, 1),
        ("trailing-garbage.json", "syntax", 1, 1),
        ("truncated-mid-trace.json", "truncated", 1, 1),
        ("ui-saved-trace-typed-tags.json", "ok", 1, 0),
        ("wrong-types.json", "invalid", 1, 6),
    ];
    check_seeds("jaeger", SEEDS, read);
}

#[test]
fn messages_name_the_format_not_internal_types() {
    let error = read("[7]", false).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("expected a Jaeger span or trace object"),
        "{error}"
    );
    let error = read(r#"[{"traceID":"aa","spanID":"01","tags":[5]}]"#, false).unwrap_err();
    assert!(
        error.to_string().contains("expected a tag object"),
        "{error}"
    );
}
