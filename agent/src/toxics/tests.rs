use std::num::NonZeroU64;
use std::time::Duration;

use http::StatusCode;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

use super::*;

fn spec(json: serde_json::Value) -> ToxicSpec {
    ToxicSpec::from_json(json.to_string().as_bytes()).unwrap()
}

fn error_of(json: &str) -> ToxicError {
    ToxicSpec::from_json(json.as_bytes()).unwrap_err()
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(0x5eed)
}

fn outbound<'a>(peer: Option<&'a str>, path: &'a str) -> RequestFacts<'a> {
    RequestFacts {
        direction: Direction::Outbound,
        peer,
        path,
    }
}

fn inbound<'a>(peer: Option<&'a str>, path: &'a str) -> RequestFacts<'a> {
    RequestFacts {
        direction: Direction::Inbound,
        peer,
        path,
    }
}

fn bps(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap()
}

fn with(kind: ToxicKind, f: impl FnOnce(&mut ToxicSpec)) -> ToxicSpec {
    let mut spec = ToxicSpec::new(kind);
    f(&mut spec);
    spec
}

// ---- JSON ----

#[test]
fn parses_the_documented_latency_example() {
    let parsed = spec(json!({"type":"latency","latency_ms":200,"jitter_ms":50,
        "direction":"outbound","peer":"node-2","probability":0.5}));
    assert_eq!(
        parsed,
        ToxicSpec {
            name: None,
            direction: Some(Direction::Outbound),
            peer: Some("node-2".into()),
            route: None,
            probability: 0.5,
            kind: ToxicKind::Latency {
                latency_ms: 200,
                jitter_ms: 50
            },
        }
    );
}

#[test]
fn defaults_probability_one_jitter_zero_both_directions() {
    let parsed = spec(json!({"type":"latency","latency_ms":10}));
    assert_eq!(parsed.probability, 1.0);
    assert_eq!(parsed.direction, None);
    assert_eq!(
        parsed.kind,
        ToxicKind::Latency {
            latency_ms: 10,
            jitter_ms: 0
        }
    );
}

#[test]
fn null_reads_as_absent() {
    let parsed = spec(json!({"type":"reset","peer":null,"probability":null}));
    assert_eq!(parsed.peer, None);
    assert_eq!(parsed.probability, 1.0);
}

#[test]
fn every_kind_round_trips_through_json() {
    let specs = [
        with(
            ToxicKind::Latency {
                latency_ms: 200,
                jitter_ms: 50,
            },
            |s| {
                s.direction = Some(Direction::Outbound);
                s.peer = Some("node-2".into());
                s.probability = 0.5;
            },
        ),
        with(
            ToxicKind::Error {
                status: StatusCode::SERVICE_UNAVAILABLE,
            },
            |s| {
                s.name = Some("flaky orders".into());
                s.route = Some("/orders*".into());
                s.direction = Some(Direction::Inbound);
                s.probability = 0.3;
            },
        ),
        ToxicSpec::new(ToxicKind::Reset),
        ToxicSpec::new(ToxicKind::Blackhole),
        ToxicSpec::new(ToxicKind::Bandwidth {
            bytes_per_sec: bps(1024),
        }),
        ToxicSpec::new(ToxicKind::Partition {
            peers: vec!["node-1".into(), "node-2".into()],
        }),
    ];
    for original in specs {
        let text = serde_json::to_string(&original).unwrap();
        let back = ToxicSpec::from_json(text.as_bytes()).unwrap();
        assert_eq!(back, original, "{text}");
        let via_serde: ToxicSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(via_serde, original);
    }
}

#[test]
fn serializes_flat_with_the_type_tag() {
    let value = serde_json::to_value(with(
        ToxicKind::Error {
            status: StatusCode::SERVICE_UNAVAILABLE,
        },
        |s| {
            s.route = Some("/orders*".into());
            s.probability = 0.3;
        },
    ))
    .unwrap();
    assert_eq!(
        value,
        json!({"type":"error","route":"/orders*","probability":0.3,"status":503})
    );
}

#[test]
fn the_list_serializes_with_ids_in_insertion_order() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(
            json!({"type":"latency","latency_ms":5,"direction":"inbound"}),
        ))
        .unwrap();
    toxics
        .add(spec(json!({"type":"partition","peers":["node-3"]})))
        .unwrap();
    assert_eq!(
        serde_json::to_value(&toxics).unwrap(),
        json!({"toxics":[
            {"id":"t-1","type":"latency","direction":"inbound","probability":1.0,
             "latency_ms":5,"jitter_ms":0},
            {"id":"t-2","type":"partition","probability":1.0,"peers":["node-3"]},
        ]})
    );
}

#[test]
fn a_listed_toxic_reads_back_with_its_id() {
    let mut toxics = Toxics::new();
    let added = toxics
        .add(spec(
            json!({"type":"bandwidth","bytes_per_sec":4096,"peer":"node-1"}),
        ))
        .unwrap();
    let text = serde_json::to_string(&added).unwrap();
    let back: Toxic = serde_json::from_str(&text).unwrap();
    assert_eq!(back, added);
    assert!(serde_json::from_str::<Toxic>(r#"{"type":"reset"}"#).is_err());
}

// ---- validation: every error, by field and rule ----

#[test]
fn malformed_json_is_a_json_error_with_position() {
    let err = error_of(r#"{"type": "reset","#);
    assert!(matches!(err, ToxicError::Json(_)), "{err:?}");
    assert!(err.to_string().contains("line 1"), "{err}");
    assert!(matches!(error_of("[1, 2]"), ToxicError::Json(_)));
    assert!(matches!(error_of(""), ToxicError::Json(_)));
    assert!(matches!(error_of("\u{0}\u{ff}"), ToxicError::Json(_)));
}

#[test]
fn unknown_fields_are_rejected_naming_the_typo() {
    let err = error_of(r#"{"type":"latency","latncy_ms":200}"#);
    assert!(matches!(err, ToxicError::Json(_)));
    assert!(
        err.to_string().contains("unknown field `latncy_ms`"),
        "{err}"
    );
}

#[test]
fn duplicate_fields_are_rejected() {
    let err = error_of(r#"{"type":"reset","peer":"a","peer":"b"}"#);
    assert!(err.to_string().contains("duplicate field `peer`"), "{err}");
}

#[test]
fn missing_and_unknown_type() {
    assert!(matches!(
        error_of(r#"{"latency_ms":1}"#),
        ToxicError::MissingType
    ));
    let err = error_of(r#"{"type":"slow"}"#);
    assert!(matches!(&err, ToxicError::UnknownType { found } if found == "slow"));
    assert_eq!(
        err.to_string(),
        "unknown toxic type `slow`: expected one of latency, error, reset, blackhole, bandwidth, partition"
    );
    assert!(matches!(
        error_of(r#"{"type":7}"#),
        ToxicError::WrongType {
            field: "type",
            found: "a number",
            ..
        }
    ));
}

#[test]
fn an_id_in_a_request_is_refused() {
    assert!(matches!(
        error_of(r#"{"id":"t-9","type":"reset"}"#),
        ToxicError::IdAssigned
    ));
}

#[test]
fn required_parameters_are_named() {
    let err = error_of(r#"{"type":"latency","jitter_ms":5}"#);
    assert_eq!(err.to_string(), "a latency toxic needs `latency_ms`");
    assert!(matches!(
        error_of(r#"{"type":"error"}"#),
        ToxicError::MissingField {
            kind: ToxicType::Error,
            field: "status"
        }
    ));
    assert!(matches!(
        error_of(r#"{"type":"bandwidth"}"#),
        ToxicError::MissingField {
            kind: ToxicType::Bandwidth,
            field: "bytes_per_sec"
        }
    ));
    assert!(matches!(
        error_of(r#"{"type":"partition"}"#),
        ToxicError::MissingField {
            kind: ToxicType::Partition,
            field: "peers"
        }
    ));
}

#[test]
fn parameters_of_another_kind_are_refused() {
    let err = error_of(r#"{"type":"latency","latency_ms":5,"status":503}"#);
    assert_eq!(
        err.to_string(),
        "`status` does not apply to a latency toxic"
    );
    assert!(matches!(
        error_of(r#"{"type":"reset","jitter_ms":5}"#),
        ToxicError::NotApplicable {
            kind: ToxicType::Reset,
            field: "jitter_ms"
        }
    ));
    assert!(matches!(
        error_of(r#"{"type":"partition","peers":["a"],"peer":"b"}"#),
        ToxicError::NotApplicable {
            kind: ToxicType::Partition,
            field: "peer"
        }
    ));
}

#[test]
fn wrong_json_types_name_the_field() {
    let err = error_of(r#"{"type":"latency","latency_ms":"200"}"#);
    assert_eq!(
        err.to_string(),
        "`latency_ms` must be a whole number, got a string"
    );
    assert!(matches!(
        error_of(r#"{"type":"reset","probability":"0.5"}"#),
        ToxicError::WrongType {
            field: "probability",
            found: "a string",
            ..
        }
    ));
    assert!(matches!(
        error_of(r#"{"type":"reset","peer":3}"#),
        ToxicError::WrongType { field: "peer", .. }
    ));
    assert!(matches!(
        error_of(r#"{"type":"partition","peers":"node-1"}"#),
        ToxicError::WrongType {
            field: "peers",
            found: "a string",
            ..
        }
    ));
    assert!(matches!(
        error_of(r#"{"type":"partition","peers":[1]}"#),
        ToxicError::WrongType {
            field: "peers",
            found: "a number",
            ..
        }
    ));
}

#[test]
fn fractions_are_not_integers() {
    let err = error_of(r#"{"type":"latency","latency_ms":1.5}"#);
    assert!(
        matches!(&err, ToxicError::NotAnInteger { field: "latency_ms", value } if value == "1.5")
    );
    assert!(matches!(
        error_of(r#"{"type":"error","status":503.0}"#),
        ToxicError::NotAnInteger {
            field: "status",
            ..
        }
    ));
}

#[test]
fn negative_values_are_refused() {
    let err = error_of(r#"{"type":"latency","latency_ms":-5}"#);
    assert_eq!(err.to_string(), "`latency_ms` must not be negative, got -5");
    assert!(matches!(
        error_of(r#"{"type":"latency","latency_ms":5,"jitter_ms":-1}"#),
        ToxicError::Negative {
            field: "jitter_ms",
            value: -1
        }
    ));
}

#[test]
fn bandwidth_must_be_positive() {
    assert!(matches!(
        error_of(r#"{"type":"bandwidth","bytes_per_sec":0}"#),
        ToxicError::NotPositive {
            field: "bytes_per_sec",
            value: 0
        }
    ));
    let err = error_of(r#"{"type":"bandwidth","bytes_per_sec":-10}"#);
    assert_eq!(
        err.to_string(),
        "`bytes_per_sec` must be greater than 0, got -10"
    );
}

#[test]
fn delays_are_capped_at_an_hour() {
    let err = error_of(r#"{"type":"latency","latency_ms":3600001}"#);
    assert_eq!(
        err.to_string(),
        "`latency_ms` must be at most 3600000, got 3600001"
    );
    assert!(matches!(
        error_of(r#"{"type":"latency","latency_ms":1,"jitter_ms":99999999}"#),
        ToxicError::TooLarge {
            field: "jitter_ms",
            value: 99_999_999,
            max: MAX_DELAY_MS
        }
    ));
    assert!(ToxicSpec::from_json(br#"{"type":"latency","latency_ms":3600000}"#).is_ok());
}

#[test]
fn a_latency_without_delay_has_no_effect() {
    assert!(matches!(
        error_of(r#"{"type":"latency","latency_ms":0}"#),
        ToxicError::NoEffect
    ));
    // Jitter alone is a valid toxic.
    assert!(ToxicSpec::from_json(br#"{"type":"latency","latency_ms":0,"jitter_ms":20}"#).is_ok());
}

#[test]
fn probability_must_be_within_zero_and_one() {
    let err = error_of(r#"{"type":"reset","probability":1.5}"#);
    assert_eq!(
        err.to_string(),
        "`probability` must be between 0.0 and 1.0 inclusive, got 1.5"
    );
    assert!(matches!(
        error_of(r#"{"type":"reset","probability":-0.1}"#),
        ToxicError::ProbabilityOutOfRange { value } if value == -0.1
    ));
    for ok in ["0", "1", "0.0", "1.0", "0.25"] {
        let body = format!(r#"{{"type":"reset","probability":{ok}}}"#);
        assert!(ToxicSpec::from_json(body.as_bytes()).is_ok(), "{body}");
    }
    // Not expressible in JSON, but a spec built in code is validated too.
    let nan = with(ToxicKind::Reset, |s| s.probability = f64::NAN);
    assert!(matches!(
        Toxics::new().add(nan),
        Err(ToxicError::ProbabilityOutOfRange { .. })
    ));
}

#[test]
fn status_must_be_an_error_status() {
    for bad in [200, 399, 600, 99, 1000, 70000, -1] {
        let body = format!(r#"{{"type":"error","status":{bad}}}"#);
        let err = ToxicSpec::from_json(body.as_bytes()).unwrap_err();
        assert!(
            matches!(err, ToxicError::StatusOutOfRange { value } if value == i128::from(bad)),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(
        error_of(r#"{"type":"error","status":302}"#).to_string(),
        "`status` must be an HTTP error status in 400..=599, got 302"
    );
    for good in [400, 404, 429, 500, 503, 599] {
        let body = format!(r#"{{"type":"error","status":{good}}}"#);
        assert!(ToxicSpec::from_json(body.as_bytes()).is_ok(), "{good}");
    }
}

#[test]
fn partition_peers_must_be_a_non_empty_set_of_names() {
    assert_eq!(
        error_of(r#"{"type":"partition","peers":[]}"#).to_string(),
        "`peers` of a partition toxic must list at least one peer"
    );
    assert!(matches!(
        error_of(r#"{"type":"partition","peers":["a","b","a"]}"#),
        ToxicError::DuplicatePeer { peer } if peer == "a"
    ));
    assert!(matches!(
        error_of(r#"{"type":"partition","peers":["a",""]}"#),
        ToxicError::Empty { field: "peers" }
    ));
}

#[test]
fn empty_strings_are_refused() {
    for field in ["name", "peer", "route", "direction"] {
        let body = format!(r#"{{"type":"reset","{field}":""}}"#);
        let err = ToxicSpec::from_json(body.as_bytes()).unwrap_err();
        assert!(
            matches!(err, ToxicError::Empty { field: f } if f == field),
            "{field}: {err:?}"
        );
    }
}

#[test]
fn direction_must_be_inbound_or_outbound() {
    let err = error_of(r#"{"type":"reset","direction":"upstream"}"#);
    assert_eq!(
        err.to_string(),
        "`direction` must be `inbound` or `outbound`, got `upstream`"
    );
}

#[test]
fn route_patterns_allow_star_only_at_the_end() {
    let err = error_of(r#"{"type":"reset","route":"/orders/*/items"}"#);
    assert_eq!(
        err.to_string(),
        "`route` `/orders/*/items` is not a valid pattern: `*` is only allowed as the last character (a prefix match)"
    );
    assert!(matches!(
        error_of(r#"{"type":"reset","route":"/a**"}"#),
        ToxicError::RoutePattern { .. }
    ));
    assert!(matches!(
        error_of(r#"{"type":"reset","route":"*"}"#),
        ToxicError::RoutePattern {
            reason: "it must start with `/`",
            ..
        }
    ));
    assert!(matches!(
        error_of(r#"{"type":"reset","route":"orders"}"#),
        ToxicError::RoutePattern { .. }
    ));
    for ok in ["/", "/*", "/orders", "/orders*", "/orders/*"] {
        let body = format!(r#"{{"type":"reset","route":"{ok}"}}"#);
        assert!(ToxicSpec::from_json(body.as_bytes()).is_ok(), "{ok}");
    }
}

#[test]
fn specs_built_in_code_are_validated_on_add() {
    let mut toxics = Toxics::new();
    let bad_status = ToxicSpec::new(ToxicKind::Error {
        status: StatusCode::OK,
    });
    assert!(matches!(
        toxics.add(bad_status),
        Err(ToxicError::StatusOutOfRange { value: 200 })
    ));
    let bad_route = with(ToxicKind::Reset, |s| s.route = Some("/a*b".into()));
    assert!(matches!(
        toxics.add(bad_route),
        Err(ToxicError::RoutePattern { .. })
    ));
    let scoped_partition = with(
        ToxicKind::Partition {
            peers: vec!["a".into()],
        },
        |s| s.peer = Some("b".into()),
    );
    assert!(matches!(
        toxics.add(scoped_partition),
        Err(ToxicError::NotApplicable { field: "peer", .. })
    ));
    assert!(toxics.is_empty());
}

#[test]
fn toxic_ids_parse_strictly() {
    assert_eq!("t-12".parse::<ToxicId>().unwrap(), ToxicId(12));
    assert_eq!(ToxicId(12).to_string(), "t-12");
    for bad in [
        "",
        "t-",
        "12",
        "t-+1",
        "t--1",
        "t-1x",
        "T-1",
        "t-99999999999999999999",
    ] {
        assert!(
            matches!(bad.parse::<ToxicId>(), Err(ToxicError::InvalidId { found }) if found == bad),
            "{bad}"
        );
    }
}

#[test]
fn the_registry_is_bounded() {
    let mut toxics = Toxics::new();
    for _ in 0..MAX_TOXICS {
        toxics.add(ToxicSpec::new(ToxicKind::Reset)).unwrap();
    }
    assert!(matches!(
        toxics.add(ToxicSpec::new(ToxicKind::Reset)),
        Err(ToxicError::TooManyToxics { max: 256 })
    ));
    assert_eq!(toxics.len(), MAX_TOXICS);
}

// ---- registry ----

#[test]
fn ids_are_assigned_in_order_and_never_reused() {
    let mut toxics = Toxics::new();
    let a = toxics.add(ToxicSpec::new(ToxicKind::Reset)).unwrap();
    let b = toxics.add(ToxicSpec::new(ToxicKind::Blackhole)).unwrap();
    assert_eq!(
        (a.id().to_string(), b.id().to_string()),
        ("t-1".into(), "t-2".into())
    );
    toxics.clear();
    assert!(toxics.list().is_empty());
    let c = toxics.add(ToxicSpec::new(ToxicKind::Reset)).unwrap();
    assert_eq!(c.id(), ToxicId(3));
}

#[test]
fn remove_keeps_the_others_in_order() {
    let mut toxics = Toxics::new();
    for ms in [1, 2, 3] {
        toxics
            .add(ToxicSpec::new(ToxicKind::Latency {
                latency_ms: ms,
                jitter_ms: 0,
            }))
            .unwrap();
    }
    let removed = toxics.remove(ToxicId(2)).unwrap();
    assert_eq!(
        removed.spec().kind,
        ToxicKind::Latency {
            latency_ms: 2,
            jitter_ms: 0
        }
    );
    let ids: Vec<_> = toxics.list().iter().map(Toxic::id).collect();
    assert_eq!(ids, [ToxicId(1), ToxicId(3)]);
    assert_eq!(toxics.remove(ToxicId(2)), None);
    assert_eq!(toxics.get(ToxicId(3)).map(Toxic::id), Some(ToxicId(3)));
    assert_eq!(toxics.get(ToxicId(2)), None);
}

#[test]
fn removed_and_cleared_toxics_stop_acting() {
    let mut toxics = Toxics::new();
    let reset = toxics.add(ToxicSpec::new(ToxicKind::Reset)).unwrap();
    toxics
        .add(ToxicSpec::new(ToxicKind::Latency {
            latency_ms: 40,
            jitter_ms: 0,
        }))
        .unwrap();
    let request = outbound(Some("node-2"), "/x");
    assert_eq!(
        toxics.decide(&request, &mut rng()).terminal,
        Some(Terminal::Reset)
    );
    toxics.remove(reset.id());
    let decision = toxics.decide(&request, &mut rng());
    assert_eq!(decision.terminal, None);
    assert_eq!(decision.delay, Duration::from_millis(40));
    toxics.clear();
    let decision = toxics.decide(&request, &mut rng());
    assert!(decision.is_pass_through());
    assert_eq!(decision, Decision::default());
}

// ---- matching ----

#[test]
fn matches_by_direction() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(json!({"type":"reset","direction":"inbound"})))
        .unwrap();
    assert_eq!(
        toxics.decide(&inbound(None, "/"), &mut rng()).terminal,
        Some(Terminal::Reset)
    );
    assert_eq!(
        toxics.decide(&outbound(None, "/"), &mut rng()).terminal,
        None
    );

    let mut both = Toxics::new();
    both.add(spec(json!({"type":"reset"}))).unwrap();
    assert_eq!(
        both.decide(&inbound(None, "/"), &mut rng()).terminal,
        Some(Terminal::Reset)
    );
    assert_eq!(
        both.decide(&outbound(None, "/"), &mut rng()).terminal,
        Some(Terminal::Reset)
    );
}

#[test]
fn matches_by_peer() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(json!({"type":"error","status":503,"peer":"node-2"})))
        .unwrap();
    let fired = |peer| toxics.decide(&outbound(peer, "/"), &mut rng()).terminal;
    assert_eq!(
        fired(Some("node-2")),
        Some(Terminal::Error(StatusCode::SERVICE_UNAVAILABLE))
    );
    assert_eq!(fired(Some("node-3")), None);
    assert_eq!(fired(Some("node-20")), None);
    // A peer-scoped toxic needs the peer to be known.
    assert_eq!(fired(None), None);
}

#[test]
fn matches_by_route_exactly_or_by_prefix() {
    let mut exact = Toxics::new();
    exact
        .add(spec(json!({"type":"reset","route":"/orders"})))
        .unwrap();
    let mut prefix = Toxics::new();
    prefix
        .add(spec(json!({"type":"reset","route":"/orders*"})))
        .unwrap();
    let mut dir_prefix = Toxics::new();
    dir_prefix
        .add(spec(json!({"type":"reset","route":"/orders/*"})))
        .unwrap();
    let hits = |toxics: &Toxics, path| {
        toxics
            .decide(&inbound(None, path), &mut rng())
            .terminal
            .is_some()
    };
    let table = [
        // path, exact, /orders*, /orders/*
        ("/orders", true, true, false),
        ("/orders/7", false, true, true),
        ("/ordersx", false, true, false),
        ("/order", false, false, false),
        ("/payments/orders", false, false, false),
        ("/", false, false, false),
    ];
    for (path, e, p, d) in table {
        assert_eq!(hits(&exact, path), e, "exact {path}");
        assert_eq!(hits(&prefix, path), p, "prefix {path}");
        assert_eq!(hits(&dir_prefix, path), d, "dir prefix {path}");
    }
}

#[test]
fn all_scopes_must_match_together() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(json!({"type":"latency","latency_ms":100,
            "direction":"outbound","peer":"payments","route":"/charge*"})))
        .unwrap();
    let delay = |request: RequestFacts<'_>| toxics.decide(&request, &mut rng()).delay;
    assert_eq!(
        delay(outbound(Some("payments"), "/charge/1")),
        Duration::from_millis(100)
    );
    assert_eq!(
        delay(inbound(Some("payments"), "/charge/1")),
        Duration::ZERO
    );
    assert_eq!(
        delay(outbound(Some("gateway"), "/charge/1")),
        Duration::ZERO
    );
    assert_eq!(delay(outbound(Some("payments"), "/refund")), Duration::ZERO);
}

#[test]
fn partition_refuses_listed_peers_in_both_directions() {
    let mut toxics = Toxics::new();
    let partition = toxics
        .add(spec(
            json!({"type":"partition","peers":["node-1","node-2"]}),
        ))
        .unwrap();
    for request in [
        outbound(Some("node-1"), "/raft/append"),
        inbound(Some("node-2"), "/kv/x"),
    ] {
        let decision = toxics.decide(&request, &mut rng());
        assert_eq!(decision.terminal, Some(Terminal::Partition), "{request:?}");
        assert_eq!(
            decision.activations,
            [Activation {
                id: partition.id(),
                toxic_type: ToxicType::Partition
            }]
        );
    }
    assert_eq!(
        toxics
            .decide(&outbound(Some("node-3"), "/"), &mut rng())
            .terminal,
        None
    );
    // An unidentified caller cannot be told apart, so it is not refused.
    assert_eq!(
        toxics.decide(&inbound(None, "/"), &mut rng()).terminal,
        None
    );
}

#[test]
fn partition_can_be_one_way_and_route_scoped() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(json!({"type":"partition","peers":["node-1"],
            "direction":"outbound","route":"/raft*"})))
        .unwrap();
    let terminal = |request| toxics.decide(&request, &mut rng()).terminal;
    assert_eq!(
        terminal(outbound(Some("node-1"), "/raft/vote")),
        Some(Terminal::Partition)
    );
    assert_eq!(terminal(outbound(Some("node-1"), "/kv/a")), None);
    assert_eq!(terminal(inbound(Some("node-1"), "/raft/vote")), None);
}

// ---- probability ----

#[test]
fn probability_zero_never_fires_and_one_always_does() {
    let mut never = Toxics::new();
    never
        .add(spec(json!({"type":"reset","probability":0.0})))
        .unwrap();
    let mut always = Toxics::new();
    always
        .add(spec(json!({"type":"reset","probability":1.0})))
        .unwrap();
    let mut rng = rng();
    let request = inbound(None, "/");
    for _ in 0..10_000 {
        assert_eq!(never.decide(&request, &mut rng).terminal, None);
        assert_eq!(
            always.decide(&request, &mut rng).terminal,
            Some(Terminal::Reset)
        );
    }
}

/// n = 10 000, p = 0.3: mean 3000, σ = √(n·p·(1−p)) ≈ 45.8; ±5σ ≈ ±229. A correct
/// roll leaves that band with probability below 10⁻⁶ for any seed; the seed makes the
/// run reproducible.
#[test]
fn probability_fires_at_its_rate() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(json!({"type":"error","status":500,"probability":0.3})))
        .unwrap();
    let n = 10_000_u32;
    let p = 0.3_f64;
    let sigma = (f64::from(n) * p * (1.0 - p)).sqrt();
    let mut rng = rng();
    let request = outbound(Some("payments"), "/charge");
    let fired = (0..n)
        .filter(|_| toxics.decide(&request, &mut rng).terminal.is_some())
        .count();
    let expected = f64::from(n) * p;
    let fired = f64::from(u32::try_from(fired).unwrap());
    assert!(
        (fired - expected).abs() <= 5.0 * sigma,
        "fired {fired} times, expected {expected} ± {}",
        5.0 * sigma
    );
}

#[test]
fn toxics_roll_independently() {
    // Two p = 0.5 toxics: both fire ≈ 25 % of the time if independent (σ ≈ 43.3 at
    // n = 10 000), 50 % if they shared one roll, 0 % if they excluded each other.
    let mut toxics = Toxics::new();
    for ms in [1, 2] {
        toxics
            .add(spec(
                json!({"type":"latency","latency_ms":ms,"probability":0.5}),
            ))
            .unwrap();
    }
    let mut rng = rng();
    let request = inbound(None, "/");
    let mut counts = [0_u32; 4];
    for _ in 0..10_000 {
        let ms = toxics.decide(&request, &mut rng).delay.as_millis();
        counts[usize::try_from(ms).unwrap()] += 1;
    }
    for (ms, count) in counts.iter().enumerate() {
        assert!(
            (f64::from(*count) - 2500.0).abs() <= 5.0 * 43.3,
            "{ms} ms: {count} of 10 000"
        );
    }
}

#[test]
fn a_seeded_rng_gives_reproducible_decisions() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(
            json!({"type":"latency","latency_ms":50,"jitter_ms":50,"probability":0.5}),
        ))
        .unwrap();
    let request = inbound(None, "/");
    let run = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..100)
            .map(|_| toxics.decide(&request, &mut rng).delay)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

// ---- effects ----

#[test]
fn jitter_stays_within_bounds_and_spreads() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(
            json!({"type":"latency","latency_ms":100,"jitter_ms":50}),
        ))
        .unwrap();
    let mut rng = rng();
    let delays: Vec<_> = (0..10_000)
        .map(|_| toxics.decide(&inbound(None, "/"), &mut rng).delay)
        .collect();
    let min = delays.iter().min().unwrap();
    let max = delays.iter().max().unwrap();
    assert!(*min >= Duration::from_millis(50), "{min:?}");
    assert!(*max <= Duration::from_millis(150), "{max:?}");
    // Uniform over 100 ms: 10 000 draws come within 1 ms of each end.
    assert!(*min < Duration::from_millis(51), "{min:?}");
    assert!(*max > Duration::from_millis(149), "{max:?}");
}

#[test]
fn jitter_larger_than_latency_is_floored_at_zero() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(
            json!({"type":"latency","latency_ms":10,"jitter_ms":50}),
        ))
        .unwrap();
    let mut rng = rng();
    let delays: Vec<_> = (0..10_000)
        .map(|_| toxics.decide(&inbound(None, "/"), &mut rng).delay)
        .collect();
    // Offsets below −10 ms (40 of the 100 ms range) floor at zero: ≈ 40 %.
    let zeros = delays.iter().filter(|d| d.is_zero()).count();
    assert!((3_700..=4_300).contains(&zeros), "{zeros} zeros");
    assert!(
        delays.iter().all(|d| *d <= Duration::from_millis(60)),
        "a delay above 60 ms"
    );
}

#[test]
fn latencies_add_up() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(
            json!({"type":"latency","latency_ms":100,"direction":"outbound"}),
        ))
        .unwrap();
    toxics
        .add(spec(
            json!({"type":"latency","latency_ms":250,"peer":"node-2"}),
        ))
        .unwrap();
    toxics
        .add(spec(
            json!({"type":"latency","latency_ms":1000,"route":"/slow"}),
        ))
        .unwrap();
    let decision = toxics.decide(&outbound(Some("node-2"), "/fast"), &mut rng());
    assert_eq!(decision.delay, Duration::from_millis(350));
    assert_eq!(decision.terminal, None);
    assert_eq!(
        decision.activations,
        [
            Activation {
                id: ToxicId(1),
                toxic_type: ToxicType::Latency
            },
            Activation {
                id: ToxicId(2),
                toxic_type: ToxicType::Latency
            },
        ]
    );
}

#[test]
fn bandwidth_takes_the_lowest_cap() {
    let mut toxics = Toxics::new();
    for cap in [8000, 1000, 4000, 1000] {
        toxics
            .add(spec(json!({"type":"bandwidth","bytes_per_sec":cap})))
            .unwrap();
    }
    let decision = toxics.decide(&inbound(None, "/"), &mut rng());
    assert_eq!(decision.bandwidth, Some(bps(1000)));
    // The first of the equal lowest caps is the one activated.
    assert_eq!(
        decision.activations,
        [Activation {
            id: ToxicId(2),
            toxic_type: ToxicType::Bandwidth
        }]
    );
    assert!(!decision.is_pass_through());
}

#[test]
fn terminal_precedence_is_partition_reset_blackhole_error() {
    let mut toxics = Toxics::new();
    // Added weakest first, so precedence, not order, decides.
    toxics
        .add(spec(json!({"type":"error","status":500})))
        .unwrap();
    toxics.add(spec(json!({"type":"blackhole"}))).unwrap();
    toxics.add(spec(json!({"type":"reset"}))).unwrap();
    toxics
        .add(spec(json!({"type":"partition","peers":["node-9"]})))
        .unwrap();
    let request = outbound(Some("node-9"), "/");
    let expected = [
        (ToxicId(4), Terminal::Partition),
        (ToxicId(3), Terminal::Reset),
        (ToxicId(2), Terminal::Blackhole),
        (
            ToxicId(1),
            Terminal::Error(StatusCode::INTERNAL_SERVER_ERROR),
        ),
    ];
    for (winner, terminal) in expected {
        let decision = toxics.decide(&request, &mut rng());
        assert_eq!(decision.terminal, Some(terminal));
        assert_eq!(decision.activations.len(), 1);
        assert_eq!(decision.activations[0].id, winner);
        toxics.remove(winner);
    }
    assert_eq!(toxics.decide(&request, &mut rng()).terminal, None);
}

#[test]
fn among_equal_terminals_the_first_added_wins() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(json!({"type":"error","status":503})))
        .unwrap();
    toxics
        .add(spec(json!({"type":"error","status":429})))
        .unwrap();
    let decision = toxics.decide(&inbound(None, "/"), &mut rng());
    assert_eq!(
        decision.terminal,
        Some(Terminal::Error(StatusCode::SERVICE_UNAVAILABLE))
    );
    assert_eq!(decision.activations[0].id, ToxicId(1));
}

#[test]
fn additive_effects_accompany_a_terminal_one() {
    let mut toxics = Toxics::new();
    toxics
        .add(spec(json!({"type":"error","status":502})))
        .unwrap();
    toxics
        .add(spec(json!({"type":"latency","latency_ms":30})))
        .unwrap();
    toxics
        .add(spec(json!({"type":"bandwidth","bytes_per_sec":100})))
        .unwrap();
    let decision = toxics.decide(&inbound(None, "/"), &mut rng());
    assert_eq!(
        decision,
        Decision {
            delay: Duration::from_millis(30),
            bandwidth: Some(bps(100)),
            terminal: Some(Terminal::Error(StatusCode::BAD_GATEWAY)),
            activations: vec![
                Activation {
                    id: ToxicId(2),
                    toxic_type: ToxicType::Latency
                },
                Activation {
                    id: ToxicId(3),
                    toxic_type: ToxicType::Bandwidth
                },
                Activation {
                    id: ToxicId(1),
                    toxic_type: ToxicType::Error
                },
            ],
        }
    );
}

#[test]
fn no_toxics_means_pass_through() {
    let decision = Toxics::new().decide(&inbound(Some("a"), "/"), &mut rng());
    assert!(decision.is_pass_through());
    assert!(decision.activations.is_empty());
}

// ---- pacing ----

#[test]
fn pacing_spreads_bytes_over_time() {
    let rate = bps(1000);
    // The first 100 bytes are due at 100 ms.
    assert_eq!(
        pacing_delay(rate, 0, Duration::ZERO, 100),
        Duration::from_millis(100)
    );
    // 500 sent, 200 more due at 700 ms; 250 ms have passed.
    assert_eq!(
        pacing_delay(rate, 500, Duration::from_millis(250), 200),
        Duration::from_millis(450)
    );
    // Behind schedule: no wait, and the lost time is not paid back twice.
    assert_eq!(
        pacing_delay(rate, 500, Duration::from_secs(2), 200),
        Duration::ZERO
    );
    assert_eq!(
        pacing_delay(rate, 1000, Duration::from_secs(1), 0),
        Duration::ZERO
    );
}

#[test]
fn pacing_totals_bytes_over_rate_whatever_the_chunking() {
    let rate = bps(10_000);
    for chunk in [1_u64, 7, 1000, 4096, 100_000] {
        let total = 100_000_u64;
        let mut sent = 0;
        let mut clock = Duration::ZERO;
        while sent < total {
            let n = chunk.min(total - sent);
            clock += pacing_delay(rate, sent, clock, n);
            sent += n;
        }
        assert_eq!(clock, Duration::from_secs(10), "chunk {chunk}");
    }
}

#[test]
fn pacing_rounds_up_and_survives_extremes() {
    // 1 byte at 3 bytes/s is 333 333 333.33 ns: rounded up, so the cap holds.
    assert_eq!(
        pacing_delay(bps(3), 0, Duration::ZERO, 1),
        Duration::from_nanos(333_333_334)
    );
    assert_eq!(
        pacing_delay(bps(1), u64::MAX, Duration::ZERO, u64::MAX),
        Duration::new(u64::MAX, 0)
    );
    assert_eq!(
        pacing_delay(bps(u64::MAX), 0, Duration::ZERO, 1),
        Duration::from_nanos(1)
    );
}

#[test]
fn chunks_are_a_tenth_of_a_second_within_bounds() {
    assert_eq!(pacing_chunk_size(bps(1)), 1);
    assert_eq!(pacing_chunk_size(bps(10_000)), 1000);
    assert_eq!(pacing_chunk_size(bps(100_000_000)), 64 * 1024);
}
