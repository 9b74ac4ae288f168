use super::*;
use crate::read::{ReadOptions, ReadSummary, read};

fn read_str(text: &str, lenient: bool) -> Result<(Vec<Span>, ReadSummary), ReadError> {
    let mut spans = Vec::new();
    let options = ReadOptions {
        lenient,
        ..ReadOptions::default()
    };
    let summary = read("t.json", text.as_bytes(), &options, &mut |b| {
        spans.extend(b)
    })?;
    Ok((spans, summary))
}

fn one_span(span_json: &str) -> Span {
    let doc = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{span_json}]}}]}}]}}"#);
    let (mut spans, _) = read_str(&doc, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spans.len(), 1);
    spans.remove(0)
}

const IDS: &str = r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174""#;

#[test]
fn camel_case_with_strings_for_int64_and_numbers_for_enums() {
    let span = one_span(&format!(
        r#"{{{IDS},"parentSpanId":"eee19b7ec3c1b173","name":"x","kind":3,"startTimeUnixNano":"10","endTimeUnixNano":"25",
            "status":{{"code":2,"message":"boom"}},"flags":769}}"#
    ));
    assert_eq!(
        (span.kind, span.start_ns, span.end_ns, span.flags),
        (SpanKind::Client, 10, 25, 769)
    );
    assert_eq!(
        span.status,
        Status {
            code: StatusCode::Error,
            message: "boom".into()
        }
    );
    assert_eq!(
        span.parent_span_id,
        Some(SpanId::from_hex("eee19b7ec3c1b173").unwrap())
    );
}

#[test]
fn snake_case_keys_enum_names_and_numbers_for_int64() {
    let doc = r#"{"resource_spans":[{"resource":{"attributes":[{"key":"service.name","value":{"string_value":"svc"}}]},
        "scope_spans":[{"scope":{"name":"lib"},"spans":[{"trace_id":"5B8EFFF798038103D269B633813FC60C","span_id":"EEE19B7EC3C1B174",
        "parent_span_id":"","name":"y","kind":"SPAN_KIND_PRODUCER","start_time_unix_nano":1,"end_time_unix_nano":2,
        "status":{"code":"STATUS_CODE_OK"},"attributes":[{"key":"n","value":{"int_value":7}}]}]}]}]}"#;
    let (spans, summary) = read_str(doc, false).unwrap();
    let span = &spans[0];
    assert_eq!(summary.format, Format::OtlpJson);
    assert_eq!(span.service_name(), "svc");
    assert_eq!(span.scope.name, "lib");
    assert_eq!(
        (span.kind, span.status.code, span.end_ns),
        (SpanKind::Producer, StatusCode::Ok, 2)
    );
    assert_eq!(span.parent_span_id, None, "empty parent means root");
    assert_eq!(span.attributes.get("n"), Some(&Value::Int(7)));
}

#[test]
fn every_any_value_kind() {
    let span = one_span(&format!(
        r#"{{{IDS},"attributes":[
            {{"key":"s","value":{{"stringValue":"a"}}}},
            {{"key":"b","value":{{"boolValue":true}}}},
            {{"key":"i","value":{{"intValue":"-9223372036854775808"}}}},
            {{"key":"d","value":{{"doubleValue":1.5}}}},
            {{"key":"inf","value":{{"doubleValue":"-Infinity"}}}},
            {{"key":"bytes","value":{{"bytesValue":"AP8="}}}},
            {{"key":"arr","value":{{"arrayValue":{{"values":[{{"intValue":1}},{{"stringValue":"x"}}]}}}}}},
            {{"key":"map","value":{{"kvlistValue":{{"values":[{{"key":"k","value":{{"boolValue":false}}}}]}}}}}},
            {{"key":"empty","value":{{}}}},
            {{"key":"novalue"}}
        ]}}"#
    ));
    let get = |k: &str| span.attributes.get(k).cloned();
    assert_eq!(get("s"), Some(Value::Str("a".into())));
    assert_eq!(get("b"), Some(Value::Bool(true)));
    assert_eq!(get("i"), Some(Value::Int(i64::MIN)));
    assert_eq!(get("d"), Some(Value::Double(1.5)));
    assert_eq!(get("inf"), Some(Value::Double(f64::NEG_INFINITY)));
    assert_eq!(get("bytes"), Some(Value::Bytes(vec![0, 255])));
    assert_eq!(
        get("arr"),
        Some(Value::Array(vec![Value::Int(1), Value::Str("x".into())]))
    );
    assert_eq!(
        get("map"),
        Some(Value::Map(vec![KeyValue::new("k", false)]))
    );
    assert_eq!(get("empty"), Some(Value::Empty));
    assert_eq!(get("novalue"), Some(Value::Empty));
}

#[test]
fn nulls_mean_unset_and_unknown_fields_are_ignored() {
    let span = one_span(&format!(
        r#"{{{IDS},"name":null,"attributes":null,"events":null,"status":null,"parentSpanId":null,"futureField":{{"x":[1,2]}}}}"#
    ));
    assert_eq!(span.name, "");
    assert!(span.attributes.is_empty());
    assert_eq!(span.status.code, StatusCode::Unset);
}

#[test]
fn events_and_links() {
    let span = one_span(&format!(
        r#"{{{IDS},"events":[{{"timeUnixNano":"5","name":"retry","attributes":[{{"key":"attempt","value":{{"intValue":"2"}}}}]}}],
            "links":[{{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","traceState":"a=b","flags":1}}]}}"#
    ));
    assert_eq!(span.events[0].name, "retry");
    assert_eq!(span.events[0].time_ns, 5);
    assert_eq!(span.events[0].attributes.get_i64("attempt"), Some(2));
    assert_eq!(span.links[0].span_id.to_string(), "b7ad6b7169203331");
    assert_eq!(span.links[0].trace_state, "a=b");
}

#[test]
fn legacy_instrumentation_library_spans() {
    let doc = format!(
        r#"{{"resourceSpans":[{{"instrumentationLibrarySpans":[{{"instrumentationLibrary":{{"name":"old","version":"0.1"}},"spans":[{{{IDS}}}]}}]}}]}}"#
    );
    let (spans, _) = read_str(&doc, false).unwrap();
    assert_eq!(spans[0].scope.name, "old");
}

#[test]
fn json_lines_with_blank_lines_and_metrics_records() {
    let span_line = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{IDS}}}]}}]}}]}}"#);
    let text = format!("{span_line}\n\n{{\"resourceMetrics\":[]}}\n{span_line}\n");
    let (spans, summary) = read_str(&text, false).unwrap();
    assert_eq!(spans.len(), 2);
    assert_eq!((summary.records, summary.non_trace_records), (3, 1));
}

#[test]
fn pretty_documents_and_concatenated_documents() {
    let doc = format!(
        "{{\n  \"resourceSpans\": [{{\n \"scopeSpans\": [{{\"spans\": [{{{IDS}}}]}}]}}]\n}}\n"
    );
    let text = format!("{doc}{doc}");
    let (spans, summary) = read_str(&text, false).unwrap();
    assert_eq!((spans.len(), summary.records), (2, 2));
}

#[test]
fn syntax_error_names_line_and_column_and_lenient_skips_the_line() {
    let good = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{IDS}}}]}}]}}]}}"#);
    let text = format!("{good}\n{{\"resourceSpans\":[}}\n{good}\n");
    let err = read_str(&text, false).unwrap_err();
    assert_eq!(err.location, Location::LineColumn(2, 19));
    assert!(
        err.to_string()
            .starts_with("t.json:2:19: malformed otlp-json:"),
        "{err}"
    );
    let (spans, summary) = read_str(&text, true).unwrap();
    assert_eq!((spans.len(), summary.skipped), (2, 1));
    assert_eq!(summary.problems[0].location, Location::LineColumn(2, 19));
}

#[test]
fn truncated_last_line_is_reported_as_such() {
    let good = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{IDS}}}]}}]}}]}}"#);
    let text = format!("{good}\n{}", &good[..good.len() - 10]);
    let err = read_str(&text, false).unwrap_err();
    assert!(matches!(err.kind, ReadErrorKind::Truncated(_)), "{err}");
    assert!(matches!(err.location, Location::LineColumn(2, _)));
}

#[test]
fn unclosed_pretty_document_is_truncated() {
    let text = "{\n  \"resourceSpans\": [\n";
    let err = read_str(text, false).unwrap_err();
    assert!(matches!(err.kind, ReadErrorKind::Truncated(_)), "{err}");
}

#[test]
fn invalid_ids_reject_only_that_span() {
    let doc = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{IDS}}},
            {{"traceId":"00000000000000000000000000000000","spanId":"eee19b7ec3c1b174"}},
            {{"traceId":"5b8efff798038103","spanId":"eee19b7ec3c1b174"}},
            {{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"xyz"}},
            {{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"12"}}]}}]}}]}}"#
    );
    let err = read_str(&doc, false).unwrap_err();
    assert!(
        err.to_string()
            .contains("spans[1]: traceId: all-zero trace id is invalid"),
        "{err}"
    );
    let (spans, summary) = read_str(&doc, true).unwrap();
    assert_eq!((spans.len(), summary.skipped), (1, 4));
    let reasons: Vec<String> = summary
        .problems
        .iter()
        .map(|p| p.kind.to_string())
        .collect();
    assert!(
        reasons[1].contains("traceId: expected 32 hex digits"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("spanId: expected 16 hex digits, found 3"),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("parentSpanId"), "{reasons:?}");
}

#[test]
fn wrong_types_are_syntax_errors_not_panics() {
    for bad in [
        r#"{"resourceSpans":{}}"#,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SIDEWAYS"}]}]}]}"#,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"-5"}]}]}]}"#,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"flags":99999999999}]}]}]}"#,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":{"bytesValue":"!!"}}]}]}]}]}"#,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":{"intValue":"1.5"}}]}]}]}]}"#,
    ] {
        let err = read_str(bad, false).unwrap_err();
        assert!(
            matches!(err.kind, ReadErrorKind::Syntax { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 10_000;
    let mut value = String::new();
    for _ in 0..depth {
        value.push_str(r#"{"arrayValue":{"values":["#);
    }
    for _ in 0..depth {
        value.push_str("]}}");
    }
    let doc = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{IDS},"attributes":[{{"key":"k","value":{value}}}]}}]}}]}}]}}"#
    );
    let err = read_str(&doc, false).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

#[test]
fn http_body_parser_reports_rejections() {
    let doc = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{IDS}}},{{"traceId":"","spanId":"eee19b7ec3c1b174"}}]}}]}}]}}"#
    );
    let (spans, rejected) = parse_export_request(doc.as_bytes()).unwrap();
    assert_eq!((spans.len(), rejected.len()), (1, 1));
    assert!(parse_export_request(b"[").is_err());
}

#[test]
fn empty_answers_read_as_no_spans() {
    for text in [
        "",
        "\n",
        "{}",
        "{\"data\":null,\"total\":0}",
        "{\"data\":[]}",
        "[]",
    ] {
        let (spans, _) = read_str(text, false).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert!(spans.is_empty(), "{text:?}");
    }
}
