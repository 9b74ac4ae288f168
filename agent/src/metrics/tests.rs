use std::time::Duration;

use faultline_model::prometheus::escape_label_value;

use super::render::Seconds;
use super::*;

fn labels<'a>(direction: Direction, route: &'a str, peer: Option<&'a str>) -> RequestLabels<'a> {
    RequestLabels {
        direction,
        route,
        peer,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The sample lines of one metric (name followed by `{` or a space).
fn lines_of<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

fn value_of(line: &str) -> &str {
    line.rsplit(' ').next().unwrap_or_default()
}

#[test]
fn golden_exposition_of_a_small_registry() {
    let metrics = Metrics::new();
    let get = labels(Direction::Inbound, "/kv/{key}", Some("node-2"));
    metrics.record_request(&get, StatusClass::Success, ms(3), false);
    metrics.record_request(
        &get,
        StatusClass::Success,
        Duration::from_micros(2500),
        true,
    );
    metrics.record_request(&get, StatusClass::ServerError, ms(120), false);
    let out = labels(Direction::Outbound, "/raft/append", None);
    metrics.record_request(&out, StatusClass::Error, Duration::from_secs(11), true);
    let _guard = metrics.start(Direction::Outbound, Some("node-3"));
    metrics.fault_activation(ToxicType::Partition, Direction::Outbound);
    metrics.fault_activation(ToxicType::Partition, Direction::Outbound);
    metrics.fault_activation(ToxicType::Latency, Direction::Inbound);
    metrics.spans_exported(7);
    metrics.spans_dropped(2);
    metrics.access_log_dropped(3);

    let expected = r#"# HELP faultline_agent_access_log_dropped_total Access log lines dropped because the log writer fell behind.
# TYPE faultline_agent_access_log_dropped_total counter
faultline_agent_access_log_dropped_total 3
# HELP faultline_agent_fault_activations_total Injected faults that took effect, by kind and direction.
# TYPE faultline_agent_fault_activations_total counter
faultline_agent_fault_activations_total{direction="inbound",kind="bandwidth"} 0
faultline_agent_fault_activations_total{direction="inbound",kind="blackhole"} 0
faultline_agent_fault_activations_total{direction="inbound",kind="error"} 0
faultline_agent_fault_activations_total{direction="inbound",kind="latency"} 1
faultline_agent_fault_activations_total{direction="inbound",kind="partition"} 0
faultline_agent_fault_activations_total{direction="inbound",kind="reset"} 0
faultline_agent_fault_activations_total{direction="outbound",kind="bandwidth"} 0
faultline_agent_fault_activations_total{direction="outbound",kind="blackhole"} 0
faultline_agent_fault_activations_total{direction="outbound",kind="error"} 0
faultline_agent_fault_activations_total{direction="outbound",kind="latency"} 0
faultline_agent_fault_activations_total{direction="outbound",kind="partition"} 2
faultline_agent_fault_activations_total{direction="outbound",kind="reset"} 0
# HELP faultline_agent_in_flight_requests Requests being proxied now, by direction and peer.
# TYPE faultline_agent_in_flight_requests gauge
faultline_agent_in_flight_requests{direction="outbound",peer="node-3"} 1
# HELP faultline_agent_peer_labels_folded_total Requests whose peer label was replaced by "other" because the peer cap was reached.
# TYPE faultline_agent_peer_labels_folded_total counter
faultline_agent_peer_labels_folded_total 0
# HELP faultline_agent_request_duration_seconds Latency of proxied requests, by direction, peer and route.
# TYPE faultline_agent_request_duration_seconds histogram
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="0.001"} 0
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="0.0025"} 1
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="0.005"} 2
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="0.01"} 2
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="0.025"} 2
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="0.05"} 2
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="0.1"} 2
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="0.25"} 3
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="0.5"} 3
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="1"} 3
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="2.5"} 3
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="5"} 3
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="10"} 3
faultline_agent_request_duration_seconds_bucket{direction="inbound",peer="node-2",route="/kv/{key}",le="+Inf"} 3
faultline_agent_request_duration_seconds_sum{direction="inbound",peer="node-2",route="/kv/{key}"} 0.1255
faultline_agent_request_duration_seconds_count{direction="inbound",peer="node-2",route="/kv/{key}"} 3
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="0.001"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="0.0025"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="0.005"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="0.01"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="0.025"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="0.05"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="0.1"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="0.25"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="0.5"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="1"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="2.5"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="5"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="10"} 0
faultline_agent_request_duration_seconds_bucket{direction="outbound",peer="unknown",route="/raft/append",le="+Inf"} 1
faultline_agent_request_duration_seconds_sum{direction="outbound",peer="unknown",route="/raft/append"} 11
faultline_agent_request_duration_seconds_count{direction="outbound",peer="unknown",route="/raft/append"} 1
# HELP faultline_agent_request_errors_total Proxied requests that failed (5xx or no response), by direction, peer and route.
# TYPE faultline_agent_request_errors_total counter
faultline_agent_request_errors_total{direction="inbound",peer="node-2",route="/kv/{key}"} 1
faultline_agent_request_errors_total{direction="outbound",peer="unknown",route="/raft/append"} 1
# HELP faultline_agent_requests_total Proxied requests, by direction, peer, route and status class (error: no response).
# TYPE faultline_agent_requests_total counter
faultline_agent_requests_total{direction="inbound",peer="node-2",route="/kv/{key}",status_class="2xx"} 2
faultline_agent_requests_total{direction="inbound",peer="node-2",route="/kv/{key}",status_class="5xx"} 1
faultline_agent_requests_total{direction="outbound",peer="unknown",route="/raft/append",status_class="error"} 1
# HELP faultline_agent_retries_seen_total Proxied requests the caller marked as retries, by direction, peer and route.
# TYPE faultline_agent_retries_seen_total counter
faultline_agent_retries_seen_total{direction="inbound",peer="node-2",route="/kv/{key}"} 1
faultline_agent_retries_seen_total{direction="outbound",peer="unknown",route="/raft/append"} 1
# HELP faultline_agent_route_labels_folded_total Requests whose route label was replaced by "other" because a cardinality cap was reached.
# TYPE faultline_agent_route_labels_folded_total counter
faultline_agent_route_labels_folded_total 0
# HELP faultline_agent_spans_dropped_total Spans dropped because the export queue was full.
# TYPE faultline_agent_spans_dropped_total counter
faultline_agent_spans_dropped_total 2
# HELP faultline_agent_spans_exported_total Spans handed to the OTLP exporter.
# TYPE faultline_agent_spans_exported_total counter
faultline_agent_spans_exported_total 7
"#;
    let rendered = metrics.render();
    assert_eq!(
        rendered, expected,
        "rendered exposition differs:\n{rendered}"
    );
}

#[test]
fn render_into_appends_to_the_buffer() {
    let metrics = Metrics::new();
    let mut buffer = String::from("# preamble\n");
    metrics.render_into(&mut buffer);
    assert!(buffer.starts_with("# preamble\n# HELP faultline_agent_"));
    assert_eq!(&buffer["# preamble\n".len()..], metrics.render());
}

#[test]
fn every_family_has_one_help_and_one_type_line() {
    let metrics = Metrics::new();
    for route in ["/a", "/b"] {
        for class in StatusClass::ALL {
            metrics.record_request(
                &labels(Direction::Inbound, route, Some("p")),
                class,
                ms(1),
                false,
            );
        }
    }
    let text = metrics.render();
    let help: Vec<&str> = text.lines().filter(|l| l.starts_with("# HELP ")).collect();
    let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    assert_eq!(help.len(), 11);
    assert_eq!(types.len(), 11);
    let mut names: Vec<&str> = types.iter().filter_map(|l| l.split(' ').nth(2)).collect();
    let in_order = names.clone();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names, in_order, "families are sorted and unique");
    assert!(text.ends_with('\n'));
}

#[test]
fn label_values_are_escaped() {
    let mut out = String::new();
    escape_label_value("a\\b\"c\nd", &mut out);
    assert_eq!(out, r#"a\\b\"c\nd"#);

    let metrics = Metrics::new();
    metrics.record_request(
        &labels(Direction::Inbound, "/q\"x\"\\\n", Some("we\"ird")),
        StatusClass::Success,
        ms(1),
        false,
    );
    let text = metrics.render();
    assert!(
        text.contains(
            r#"faultline_agent_request_errors_total{direction="inbound",peer="we\"ird",route="/q\"x\"\\\n"} 0"#
        ),
        "{text}"
    );
    // No raw newline leaks into a sample line: every line is a comment or a sample.
    assert!(
        text.lines()
            .all(|l| l.starts_with('#') || l.starts_with("faultline_agent_"))
    );
}

#[test]
fn buckets_are_cumulative_and_inf_equals_count() {
    let metrics = Metrics::new();
    let l = labels(Direction::Outbound, "/x", Some("n1"));
    // Latencies on, just above and far beyond bounds.
    let latencies = [
        Duration::ZERO,
        Duration::from_micros(1000),
        Duration::from_micros(1001),
        Duration::from_nanos(2_500_001),
        ms(7),
        ms(99),
        ms(100),
        ms(101),
        ms(999),
        Duration::from_secs(3),
        Duration::from_secs(10),
        Duration::from_secs(61),
        Duration::from_secs(3600),
    ];
    for d in latencies {
        metrics.record_request(&l, StatusClass::Success, d, false);
    }
    let text = metrics.render();
    let buckets = lines_of(&text, "faultline_agent_request_duration_seconds_bucket");
    assert_eq!(buckets.len(), BUCKET_BOUNDS_SECONDS.len() + 1);
    let counts: Vec<u64> = buckets
        .iter()
        .map(|line| value_of(line).parse().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    // Exact `le` semantics: a latency equal to a bound is in it, 1 ns above is not.
    let expected = [2, 3, 4, 5, 5, 5, 7, 8, 8, 9, 9, 10, 11, 13];
    assert_eq!(counts, expected);
    assert!(buckets[13].contains("le=\"+Inf\""));
    let count = lines_of(&text, "faultline_agent_request_duration_seconds_count");
    assert_eq!(value_of(count[0]), "13");
    assert_eq!(value_of(buckets[13]), value_of(count[0]));
}

#[test]
fn sum_is_exact_seconds() {
    assert_eq!(Seconds(0).to_string(), "0");
    assert_eq!(Seconds(1).to_string(), "0.000000001");
    assert_eq!(Seconds(1_500_000).to_string(), "0.0015");
    assert_eq!(Seconds(2_000_000_000).to_string(), "2");
    assert_eq!(Seconds(12_345_678_900).to_string(), "12.3456789");

    let metrics = Metrics::new();
    let l = labels(Direction::Inbound, "/s", None);
    for _ in 0..3 {
        metrics.record_request(
            &l,
            StatusClass::Success,
            Duration::from_micros(100_100),
            false,
        );
    }
    let text = metrics.render();
    let sum = lines_of(&text, "faultline_agent_request_duration_seconds_sum");
    assert_eq!(value_of(sum[0]), "0.3003");
}

#[test]
fn routes_past_the_cap_fold_into_other_and_are_counted() {
    let metrics = Metrics::with_limits(Limits {
        max_routes: 3,
        max_peers: 64,
        max_series: 512,
    });
    for i in 0..10 {
        let route = format!("/r{i}");
        metrics.record_request(
            &labels(Direction::Inbound, &route, Some("p")),
            StatusClass::Success,
            ms(1),
            false,
        );
    }
    // A route seen before the cap keeps its label afterwards.
    metrics.record_request(
        &labels(Direction::Inbound, "/r1", Some("p")),
        StatusClass::Success,
        ms(1),
        false,
    );
    let text = metrics.render();
    let requests = lines_of(&text, "faultline_agent_requests_total");
    assert_eq!(
        requests,
        [
            r#"faultline_agent_requests_total{direction="inbound",peer="p",route="/r0",status_class="2xx"} 1"#,
            r#"faultline_agent_requests_total{direction="inbound",peer="p",route="/r1",status_class="2xx"} 2"#,
            r#"faultline_agent_requests_total{direction="inbound",peer="p",route="/r2",status_class="2xx"} 1"#,
            r#"faultline_agent_requests_total{direction="inbound",peer="p",route="other",status_class="2xx"} 7"#,
        ]
    );
    assert!(text.contains("\nfaultline_agent_route_labels_folded_total 7\n"));
}

#[test]
fn peers_past_the_cap_fold_into_other_and_unknown_is_free() {
    let metrics = Metrics::with_limits(Limits {
        max_routes: 10,
        max_peers: 1,
        max_series: 512,
    });
    for peer in [Some("a"), Some("b"), None, Some("c"), Some("a")] {
        metrics.record_request(
            &labels(Direction::Outbound, "/", peer),
            StatusClass::Success,
            ms(1),
            false,
        );
    }
    let _in_flight = metrics.start(Direction::Outbound, Some("z"));
    let text = metrics.render();
    let peers: Vec<&str> = lines_of(&text, "faultline_agent_request_errors_total")
        .into_iter()
        .filter_map(|l| l.split("peer=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(peers, ["a", "other", "unknown"]);
    assert!(
        text.contains(r#"faultline_agent_in_flight_requests{direction="outbound",peer="other"} 1"#)
    );
    assert!(text.contains("\nfaultline_agent_peer_labels_folded_total 3\n"));
}

#[test]
fn series_past_the_cap_fold_their_route() {
    let metrics = Metrics::with_limits(Limits {
        max_routes: 100,
        max_peers: 100,
        max_series: 2,
    });
    for (route, peer) in [
        ("/a", "p"),
        ("/b", "p"),
        ("/c", "p"),
        ("/a", "q"),
        ("/a", "p"),
    ] {
        metrics.record_request(
            &labels(Direction::Inbound, route, Some(peer)),
            StatusClass::Success,
            ms(1),
            false,
        );
    }
    let text = metrics.render();
    let series: Vec<&str> = lines_of(&text, "faultline_agent_request_duration_seconds_count");
    assert_eq!(
        series,
        [
            r#"faultline_agent_request_duration_seconds_count{direction="inbound",peer="p",route="/a"} 2"#,
            r#"faultline_agent_request_duration_seconds_count{direction="inbound",peer="p",route="/b"} 1"#,
            r#"faultline_agent_request_duration_seconds_count{direction="inbound",peer="p",route="other"} 1"#,
            r#"faultline_agent_request_duration_seconds_count{direction="inbound",peer="q",route="other"} 1"#,
        ]
    );
    assert!(text.contains("\nfaultline_agent_route_labels_folded_total 2\n"));
}

#[test]
fn errors_are_5xx_and_no_response() {
    let metrics = Metrics::new();
    let l = labels(Direction::Inbound, "/e", None);
    for code in [101, 200, 302, 404, 500, 503] {
        metrics.record_request(&l, StatusClass::from_code(code), ms(1), false);
    }
    metrics.record_request(&l, StatusClass::Error, ms(1), false);
    let text = metrics.render();
    let errors = lines_of(&text, "faultline_agent_request_errors_total");
    assert_eq!(value_of(errors[0]), "3");
    let classes: Vec<&str> = lines_of(&text, "faultline_agent_requests_total")
        .into_iter()
        .filter_map(|l| l.split("status_class=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(classes, ["1xx", "2xx", "3xx", "4xx", "5xx", "error"]);
}

#[test]
fn status_classes() {
    assert_eq!(StatusClass::of(http::StatusCode::OK), StatusClass::Success);
    assert_eq!(
        StatusClass::of(http::StatusCode::BAD_GATEWAY),
        StatusClass::ServerError
    );
    assert_eq!(StatusClass::from_code(199), StatusClass::Informational);
    assert_eq!(StatusClass::from_code(399), StatusClass::Redirection);
    assert_eq!(StatusClass::from_code(499), StatusClass::ClientError);
    assert_eq!(StatusClass::from_code(600), StatusClass::Error);
    assert_eq!(StatusClass::from_code(99), StatusClass::Error);
    assert!(StatusClass::Error.is_error());
    assert!(!StatusClass::ClientError.is_error());
}

#[test]
fn in_flight_guard_counts_up_and_down() {
    let metrics = Metrics::new();
    let gauge = |m: &Metrics| {
        lines_of(&m.render(), "faultline_agent_in_flight_requests")
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let a = metrics.start(Direction::Inbound, Some("n1"));
    let b = metrics.start(Direction::Inbound, Some("n1"));
    let c = metrics.start(Direction::Outbound, None);
    assert_eq!(
        gauge(&metrics),
        [
            r#"faultline_agent_in_flight_requests{direction="inbound",peer="n1"} 2"#,
            r#"faultline_agent_in_flight_requests{direction="outbound",peer="unknown"} 1"#,
        ]
    );
    drop(a);
    drop(c);
    assert_eq!(
        gauge(&metrics),
        [
            r#"faultline_agent_in_flight_requests{direction="inbound",peer="n1"} 1"#,
            r#"faultline_agent_in_flight_requests{direction="outbound",peer="unknown"} 0"#,
        ]
    );
    drop(b);
    assert!(gauge(&metrics)[0].ends_with("} 0"));
}

#[test]
fn in_flight_guard_decrements_when_a_task_panics() {
    let metrics = Metrics::new();
    let worker = metrics.clone();
    let result = std::thread::spawn(move || {
        let _guard = worker.start(Direction::Inbound, Some("n1"));
        // Also poison the registry's lock: recording must carry on afterwards.
        let _state = worker.lock();
        panic!("request handler panicked");
    })
    .join();
    assert!(result.is_err());
    assert!(
        metrics
            .render()
            .contains(r#"faultline_agent_in_flight_requests{direction="inbound",peer="n1"} 0"#)
    );
    metrics.record_request(
        &labels(Direction::Inbound, "/after", Some("n1")),
        StatusClass::Success,
        ms(1),
        false,
    );
    assert!(metrics.render().contains(r#"route="/after""#));
}

#[test]
fn in_flight_guard_decrements_when_a_future_is_dropped() {
    let metrics = Metrics::new();
    let future = {
        let metrics = metrics.clone();
        async move {
            let _guard = metrics.start(Direction::Outbound, Some("n2"));
            std::future::pending::<()>().await;
        }
    };
    let mut future = Box::pin(future);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(future.as_mut().poll(&mut cx).is_pending());
    assert!(metrics.render().contains(r#"peer="n2"} 1"#));
    drop(future);
    assert!(metrics.render().contains(r#"peer="n2"} 0"#));
}

#[test]
fn quantiles_come_from_the_hdr_histogram() {
    let metrics = Metrics::new();
    let l = labels(Direction::Inbound, "/q", Some("n1"));
    assert_eq!(metrics.latency_quantiles(&l), None);
    // 1..=1000 ms: p50 = 500 ms, p90 = 900 ms, p99 = 990 ms, max = 1 s.
    for i in 1..=1000 {
        metrics.record_request(&l, StatusClass::Success, ms(i), false);
    }
    let q = metrics.latency_quantiles(&l).unwrap();
    assert_eq!(q.count, 1000);
    let close = |got: u64, want: u64| got.abs_diff(want) * 1000 <= want;
    assert!(close(q.p50_us, 500_000), "{q:?}");
    assert!(close(q.p90_us, 900_000), "{q:?}");
    assert!(close(q.p99_us, 990_000), "{q:?}");
    assert!(close(q.max_us, 1_000_000), "{q:?}");
    assert!(q.p50_us <= q.p90_us && q.p90_us <= q.p99_us && q.p99_us <= q.max_us);

    // Microsecond resolution at the low end, and clamping at 60 s.
    let fast = labels(Direction::Outbound, "/fast", None);
    metrics.record_request(
        &fast,
        StatusClass::Success,
        Duration::from_micros(37),
        false,
    );
    metrics.record_request(&fast, StatusClass::Success, Duration::from_secs(600), false);
    let q = metrics.latency_quantiles(&fast).unwrap();
    assert_eq!(q.p50_us, 37);
    assert!(close(q.max_us, 60_000_000), "{q:?}");
}

#[test]
fn latency_report_lists_every_series_sorted() {
    let metrics = Metrics::new();
    metrics.record_request(
        &labels(Direction::Outbound, "/b", Some("n2")),
        StatusClass::Success,
        ms(5),
        false,
    );
    metrics.record_request(
        &labels(Direction::Inbound, "/z", Some("n1")),
        StatusClass::Success,
        ms(2),
        false,
    );
    metrics.record_request(
        &labels(Direction::Inbound, "/a", Some("n1")),
        StatusClass::Success,
        ms(1),
        false,
    );
    let report = metrics.latency_report();
    let keys: Vec<(Direction, &str, &str)> = report
        .iter()
        .map(|s| (s.direction, s.peer.as_str(), s.route.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            (Direction::Inbound, "n1", "/a"),
            (Direction::Inbound, "n1", "/z"),
            (Direction::Outbound, "n2", "/b"),
        ]
    );
    assert_eq!(report[2].latency.count, 1);
    assert!(report[2].latency.p50_us.abs_diff(5000) <= 5);
    let json = serde_json::to_value(&report[0]).unwrap();
    assert_eq!(json["direction"], "inbound");
    assert_eq!(json["latency"]["count"], 1);
}

#[test]
fn the_hdr_bounds_are_accepted() {
    assert!(latency::Latency::new().has_hdr());
}

#[test]
fn concurrent_recording_loses_nothing() {
    let metrics = Metrics::new();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let metrics = metrics.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let route = if i % 2 == 0 { "/even" } else { "/odd" };
                    let _g = metrics.start(Direction::Inbound, Some("n"));
                    metrics.record_request(
                        &labels(Direction::Inbound, route, Some("n")),
                        StatusClass::Success,
                        Duration::from_micros(t * 10 + 1),
                        i % 10 == 0,
                    );
                    metrics.spans_exported(1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = metrics.render();
    let total: u64 = lines_of(&text, "faultline_agent_requests_total")
        .iter()
        .map(|l| value_of(l).parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 4000);
    let retries: u64 = lines_of(&text, "faultline_agent_retries_seen_total")
        .iter()
        .map(|l| value_of(l).parse::<u64>().unwrap())
        .sum();
    assert_eq!(retries, 400);
    assert!(text.contains("\nfaultline_agent_spans_exported_total 4000\n"));
    assert!(text.contains(r#"faultline_agent_in_flight_requests{direction="inbound",peer="n"} 0"#));
}
