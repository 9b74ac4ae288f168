#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::*;
use crate::grafana::grafana_dashboard;
use crate::rules::{alert_rules, rules_yaml};
use crate::scrape::{Job, Target, file_sd, scrape_config};

const TUI_SIGNALS: [&str; 6] = [
    "p99",
    "error_rate",
    "retry_amplification",
    "replication_lag",
    "dlq_depth",
    "elections",
];

#[test]
fn builtin_panels_cover_the_tui_signals_with_ordered_levels() {
    let dashboard = Dashboard::parse(PANELS_TOML).unwrap();
    for id in TUI_SIGNALS {
        assert!(dashboard.panel(id).is_some(), "{id} missing");
    }
    // PRODUCT.md §7: replication lag > 30 s warning, > 5 min critical.
    let lag = dashboard.panel("replication_lag").unwrap();
    assert_eq!(lag.levels(Profile::Production).level(31.0), Level::Warning);
    assert_eq!(
        lag.levels(Profile::Production).level(301.0),
        Level::Critical
    );
    assert_eq!(lag.levels(Profile::Production).level(29.0), Level::Ok);
    assert_eq!(lag.levels(Profile::Demo).level(1.0), Level::Warning);
}

#[test]
fn the_product_levels_are_the_panels_levels() {
    let dashboard = Dashboard::builtin();
    let production = |id: &str| dashboard.panel(id).unwrap().levels(Profile::Production);
    // Quorum failures > 1 % of requests: critical.
    assert_eq!(production("quorum_failures").critical, 1.0);
    // A partition lasting > 60 s: critical once nearly every call to the peer fails
    // over a one-minute window.
    let unreachable = dashboard.panel("unreachable_peer").unwrap();
    assert_eq!(
        dashboard.window(unreachable, Profile::Production),
        Some(PromDuration::from_secs(60))
    );
    assert!(production("unreachable_peer").critical >= 90.0);
    // > 3 leader elections per hour: a warning. The panel is per minute over an hour.
    let elections = dashboard.panel("elections").unwrap();
    assert_eq!(
        dashboard.window(elections, Profile::Production),
        Some(PromDuration::from_secs(3_600))
    );
    assert!((production("elections").warning * 60.0 - 3.0).abs() < 1e-9);
    // The demo compresses time sixty-fold: an hour is a minute there.
    assert_eq!(
        dashboard.window(elections, Profile::Demo),
        Some(PromDuration::from_secs(60))
    );
    let demo_lag = dashboard
        .panel("replication_lag")
        .unwrap()
        .levels(Profile::Demo);
    assert_eq!(
        (demo_lag.warning, demo_lag.critical),
        (30.0 / 60.0, 300.0 / 60.0)
    );
}

#[test]
fn demo_windows_are_scaled_down_but_at_least_four_scrapes() {
    let dashboard = Dashboard::builtin();
    for profile in Profile::ALL {
        let timing = dashboard.timing(profile);
        let floor = timing.scrape_interval.saturating_mul(4);
        for panel in &dashboard.panels {
            let production = panel.window;
            let window = dashboard.window(panel, profile);
            assert_eq!(production.is_some(), window.is_some(), "{}", panel.id);
            if let (Some(production), Some(window)) = (production, window) {
                assert!(window >= floor, "{} {profile:?}: {window}", panel.id);
                assert_eq!(
                    window,
                    production.scaled_down(timing.time_scale).max(floor),
                    "{}",
                    panel.id
                );
            }
            assert_eq!(
                dashboard.alert_for(panel, profile),
                panel.alert_for.scaled_down(timing.time_scale)
            );
            for query in &panel.queries {
                let expr = dashboard.expr(panel, query, profile);
                assert!(!expr.contains('$'), "{}: {expr}", panel.id);
                if let Some(window) = window {
                    assert!(expr.contains(&format!("[{window}]")), "{expr}");
                }
            }
        }
    }
    let p99 = dashboard.panel("p99").unwrap();
    assert_eq!(
        dashboard
            .window(p99, Profile::Production)
            .unwrap()
            .to_string(),
        "5m"
    );
    // 5m / 60 = 5 s, below four 2 s scrapes.
    assert_eq!(
        dashboard.window(p99, Profile::Demo).unwrap().to_string(),
        "8s"
    );
    assert_eq!(dashboard.alert_for(p99, Profile::Demo).to_string(), "5s");
}

/// A minimal panels file with `panel` (TOML lines) as its only panel.
fn with_panel(panel: &str) -> String {
    let profiles = PANELS_TOML.split("[[panel]]").next().unwrap().to_owned();
    format!("{profiles}\n[[panel]]\n{panel}")
}

const GOOD_PANEL: &str = r#"id = "x"
title = "x"
unit = "s"
description = ""
production = { warning = 1.0, critical = 2.0 }
demo = { warning = 1.0, critical = 2.0 }
window = "1m"
for = "1m"
[[panel.query]]
name = "q"
expr = 'rate(m[$window])'
legend = "{{node}}"
"#;

fn error_of(text: &str) -> String {
    Dashboard::parse(text).unwrap_err().to_string()
}

#[test]
fn bad_definitions_are_refused_with_the_panel_named() {
    assert!(Dashboard::parse(&with_panel(GOOD_PANEL)).is_ok());

    let twice = format!(
        "{PANELS_TOML}\n[[panel]]\n{}",
        GOOD_PANEL.replace("id = \"x\"", "id = \"p99\"")
    );
    let error = error_of(&twice);
    assert!(
        error.contains("\"p99\"") && error.contains("twice"),
        "{error}"
    );

    for (change, (from, to), says) in [
        (
            "inverted levels",
            (
                "production = { warning = 1.0",
                "production = { warning = 5.0",
            ),
            "production: warning 5 must be finite and not above critical 2",
        ),
        ("bad id", ("id = \"x\"", "id = \"X y\""), "the id must be"),
        (
            "window unused",
            ("rate(m[$window])", "m"),
            "window is given but no query uses $window",
        ),
        (
            "no window",
            ("window = \"1m\"\n", ""),
            "a query uses $window but the panel has no window",
        ),
        (
            "short window",
            ("window = \"1m\"", "window = \"30s\""),
            "window 30s is shorter than four production scrape intervals (1m)",
        ),
        (
            "unbalanced",
            ("rate(m[$window])", "rate(m[$window]"),
            "query \"q\": unclosed '(' in expr",
        ),
        (
            "mismatched",
            ("rate(m[$window])", "rate(m[$window)]"),
            "query \"q\": unbalanced ')'",
        ),
        (
            "other placeholder",
            ("rate(m[$window])", "rate(m[$interval])"),
            "unknown placeholder",
        ),
        (
            "window prefix",
            ("rate(m[$window])", "rate(m[$windows])"),
            "unknown placeholder",
        ),
        (
            "string",
            ("rate(m[$window])", "rate(m{a=\"x)\"}[$window])"),
            "",
        ),
        ("empty expr", ("rate(m[$window])", " "), "empty expr"),
        (
            "bad legend",
            ("legend = \"{{node}}\"", "legend = \"{{no de}}\""),
            "is not a label name",
        ),
        (
            "unclosed legend",
            ("legend = \"{{node}}\"", "legend = \"{{node\""),
            "unclosed",
        ),
        (
            "bad query name",
            ("name = \"q\"", "name = \"Q\""),
            "the name must be",
        ),
        (
            "bad duration",
            ("for = \"1m\"", "for = \"1 minute\""),
            "invalid duration \"1 minute\"",
        ),
    ] {
        assert!(GOOD_PANEL.contains(from), "{change}: {from}");
        let text = with_panel(&GOOD_PANEL.replace(from, to));
        match Dashboard::parse(&text) {
            Ok(_) if says.is_empty() => {}
            Ok(_) => panic!("{change}: accepted"),
            Err(e) => {
                let e = e.to_string();
                assert!(!says.is_empty(), "{change}: refused: {e}");
                assert!(e.contains(says), "{change}: {e}");
                // Duration errors come from the TOML parser, with the line instead.
                if change != "bad duration" {
                    assert!(e.starts_with("panel \""), "{change}: {e}");
                }
            }
        }
    }

    let no_query = with_panel(GOOD_PANEL.split("[[panel.query]]").next().unwrap());
    assert!(error_of(&no_query).contains("at least one PromQL query"));
    let two_queries = with_panel(&format!(
        "{GOOD_PANEL}[[panel.query]]\nname = \"q\"\nexpr = 'm'\nlegend = \"\"\n"
    ));
    assert!(error_of(&two_queries).contains("query \"q\": defined twice"));
    let bad_profile = with_panel(GOOD_PANEL).replacen("time_scale = 60", "time_scale = 0", 1);
    assert_eq!(
        error_of(&bad_profile),
        "profile demo: time_scale must be 1 or more"
    );
    let unknown = with_panel("id = \"x\"\ncolour = 1\n");
    assert!(error_of(&unknown).contains("unknown field `colour`"));
}

/// Grafana's JSON, serialized and read back as a user's Grafana would.
fn grafana(profile: Profile) -> Value {
    let text =
        serde_json::to_string_pretty(&grafana_dashboard(&Dashboard::builtin(), profile)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn grafana_dashboard_has_every_panel_with_its_queries_and_levels() {
    let dashboard = Dashboard::builtin();
    for profile in Profile::ALL {
        let json = grafana(profile);
        assert_eq!(json["schemaVersion"], 39);
        assert_eq!(json["uid"], format!("faultline-{}", profile.as_str()));
        assert!(json["title"].as_str().unwrap().contains(profile.as_str()));
        assert_eq!(json["tags"][0], "faultline");
        assert_eq!(json["time"]["to"], "now");
        assert_eq!(
            json["refresh"],
            dashboard.timing(profile).grafana_refresh.to_string()
        );
        assert!(json["id"].is_null());
        let variables = json["templating"]["list"].as_array().unwrap();
        let datasource = variables
            .iter()
            .find(|v| v["name"] == "datasource")
            .expect("a datasource variable");
        assert_eq!(datasource["type"], "datasource");
        assert_eq!(datasource["query"], "prometheus");
        assert_eq!(json["__inputs"][0]["pluginId"], "prometheus");
        let requires: BTreeSet<&str> = json["__requires"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            requires,
            BTreeSet::from(["grafana", "prometheus", "timeseries"])
        );

        let panels = json["panels"].as_array().unwrap();
        assert_eq!(panels.len(), dashboard.panels.len());
        let mut cells = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for (panel, json) in dashboard.panels.iter().zip(panels) {
            assert_eq!(json["type"], "timeseries");
            assert_eq!(json["title"], panel.title.as_str());
            assert!(ids.insert(json["id"].as_u64().unwrap()));
            let datasource = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
            assert_eq!(json["datasource"], datasource);
            // Panels tile the grid without overlapping.
            let grid = &json["gridPos"];
            let (x, y, w, h) = (
                grid["x"].as_u64().unwrap(),
                grid["y"].as_u64().unwrap(),
                grid["w"].as_u64().unwrap(),
                grid["h"].as_u64().unwrap(),
            );
            assert!(x + w <= 24 && w > 0 && h > 0, "{grid}");
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(cells.insert((cx, cy)), "{} overlaps", panel.id);
                }
            }
            let defaults = &json["fieldConfig"]["defaults"];
            assert_eq!(defaults["unit"], grafana::unit(&panel.unit));
            let steps = defaults["thresholds"]["steps"].as_array().unwrap();
            let levels = panel.levels(profile);
            assert_eq!(steps.len(), 3);
            assert!(steps[0]["value"].is_null());
            assert_eq!(steps[1]["value"].as_f64(), Some(levels.warning));
            assert_eq!(steps[2]["value"].as_f64(), Some(levels.critical));
            let targets = json["targets"].as_array().unwrap();
            assert_eq!(targets.len(), panel.queries.len(), "{}", panel.id);
            let mut ref_ids = BTreeSet::new();
            for (query, target) in panel.queries.iter().zip(targets) {
                assert_eq!(target["expr"], dashboard.expr(panel, query, profile));
                assert_eq!(target["legendFormat"], query.legend.as_str());
                assert_eq!(target["datasource"], datasource);
                assert!(ref_ids.insert(target["refId"].as_str().unwrap().to_owned()));
            }
        }
    }
    assert_ne!(
        grafana(Profile::Demo)["panels"][0]["targets"][0]["expr"],
        grafana(Profile::Production)["panels"][0]["targets"][0]["expr"],
        "the demo's windows differ"
    );
}

/// Reads back the YAML subset the exports write (block mappings and sequences,
/// double-quoted or flow scalars in JSON syntax): an independent check of the
/// indentation, and that every scalar is quoted.
fn parse_yaml(text: &str) -> Value {
    let mut lines: Vec<(usize, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| (l.len() - l.trim_start().len(), l.trim_start().to_owned()))
        .collect();
    let mut pos = 0;
    let indent = lines[0].0;
    let value = block(&mut lines, &mut pos, indent);
    assert_eq!(
        pos,
        lines.len(),
        "unread from line {pos}: {:?}",
        lines.get(pos)
    );
    value
}

fn block(lines: &mut [(usize, String)], pos: &mut usize, indent: usize) -> Value {
    if lines[*pos].1.starts_with("- ") {
        let mut items = Vec::new();
        while *pos < lines.len() && lines[*pos].0 == indent && lines[*pos].1.starts_with("- ") {
            let rest = lines[*pos].1[2..].to_owned();
            if rest.starts_with('"') || rest.starts_with('[') {
                items.push(scalar(&rest));
                *pos += 1;
            } else {
                lines[*pos] = (indent + 2, rest);
                items.push(block(lines, pos, indent + 2));
            }
        }
        return Value::Array(items);
    }
    let mut map = serde_json::Map::new();
    while *pos < lines.len() && lines[*pos].0 == indent && !lines[*pos].1.starts_with("- ") {
        let line = lines[*pos].1.clone();
        *pos += 1;
        let (key, rest) = if let Some(key) = line.strip_suffix(':') {
            (key.to_owned(), "")
        } else if let Some(quoted_key) = line.strip_prefix('"') {
            // A quoted key: up to its closing quote.
            let end = quoted_key.find("\": ").unwrap();
            (
                scalar(&line[..end + 2]).as_str().unwrap().to_owned(),
                &line[end + 4..],
            )
        } else {
            let (key, rest) = line.split_once(": ").unwrap();
            (key.to_owned(), rest)
        };
        let value = if rest.is_empty() {
            assert!(
                *pos < lines.len() && lines[*pos].0 > indent,
                "{key}: no value"
            );
            let inner = lines[*pos].0;
            block(lines, pos, inner)
        } else {
            scalar(rest)
        };
        assert!(map.insert(key.clone(), value).is_none(), "{key} twice");
    }
    Value::Object(map)
}

fn scalar(text: &str) -> Value {
    assert!(
        text.starts_with('"') || text.starts_with('['),
        "an unquoted scalar: {text}"
    );
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn alert_rules_have_expr_for_severity_and_annotations_and_read_back() {
    let dashboard = Dashboard::builtin();
    for profile in Profile::ALL {
        let groups = alert_rules(&dashboard, profile);
        let yaml = parse_yaml(&rules_yaml(&dashboard, profile));
        let read = yaml["groups"].as_array().unwrap();
        assert_eq!(read.len(), dashboard.panels.len());
        assert_eq!(groups.len(), read.len());
        for ((panel, group), read) in dashboard.panels.iter().zip(&groups).zip(read) {
            assert_eq!(read["name"], format!("faultline.{}", panel.id));
            assert_eq!(
                read["interval"],
                dashboard.timing(profile).evaluation_interval.to_string()
            );
            let rules = read["rules"].as_array().unwrap();
            assert_eq!(rules.len(), panel.queries.len() * 2, "{}", panel.id);
            assert_eq!(rules.len(), group.rules.len());
            let mut seen = BTreeSet::new();
            for (rule, read) in group.rules.iter().zip(rules) {
                // What the YAML says is what the structure says.
                assert_eq!(read["alert"], rule.alert.as_str());
                assert_eq!(read["expr"], rule.expr.as_str());
                assert_eq!(read["for"], rule.alert_for.to_string());
                assert_eq!(read["for"], dashboard.alert_for(panel, profile).to_string());
                let labels: BTreeMap<String, String> =
                    serde_json::from_value(read["labels"].clone()).unwrap();
                assert_eq!(labels, rule.labels);
                let annotations: BTreeMap<String, String> =
                    serde_json::from_value(read["annotations"].clone()).unwrap();
                assert_eq!(annotations, rule.annotations);

                assert_eq!(rule.alert, panel.alert_name());
                let severity = labels["severity"].as_str();
                let threshold = match severity {
                    "warning" => panel.levels(profile).warning,
                    "critical" => panel.levels(profile).critical,
                    other => panic!("severity {other}"),
                };
                assert_eq!(labels["panel"], panel.id);
                let query = panel
                    .queries
                    .iter()
                    .find(|q| q.name == labels["query"])
                    .unwrap();
                assert_eq!(
                    rule.expr,
                    format!("({}) > {threshold}", dashboard.expr(panel, query, profile))
                );
                assert!(seen.insert((severity.to_owned(), query.name.clone())));
                let summary = &annotations["summary"];
                assert!(
                    summary.contains("$value") && summary.contains(severity),
                    "{summary}"
                );
                assert!(!summary.contains("{{node}}"), "{summary}");
                assert!(annotations["description"].starts_with(&panel.description));
                assert!(!rule.expr.contains('$'), "{}", rule.expr);
            }
        }
    }
    let lag = alert_rules(&dashboard, Profile::Production)
        .into_iter()
        .find(|g| g.name == "faultline.replication_lag")
        .unwrap();
    assert_eq!(
        lag.rules[0].expr,
        "(max by (follower) (faultline_raft_follower_lag_seconds)) > 30"
    );
    assert_eq!(lag.rules[0].alert, "FaultlineReplicationLag");
    assert_eq!(
        lag.rules[0].annotations["summary"],
        "Replication lag {{ printf \"%.3g\" $value }} s (raft {{ $labels.follower }}): above the warning level of 30 s"
    );
    assert_eq!(
        lag.rules[1].expr,
        "(max by (follower) (faultline_raft_follower_lag_seconds)) > 300"
    );
    assert_eq!(lag.rules[1].labels["severity"], "critical");
}

fn demo_targets() -> Vec<Target> {
    vec![
        Target::new(Job::Agents, "127.0.0.1:1001").with_label("node", "node-1"),
        Target::new(Job::Nodes, "127.0.0.1:2001"),
        Target::new(Job::Agents, "127.0.0.1:1002").with_label("node", "node-2"),
        Target::new(Job::Nodes, "127.0.0.1:2002"),
        Target::new(Job::Services, "127.0.0.1:3001"),
        Target::new(Job::Services, "127.0.0.1:3002"),
    ]
}

#[test]
fn scrape_config_lists_every_target_by_job_at_the_profile_intervals() {
    let dashboard = Dashboard::builtin();
    let timing = dashboard.timing(Profile::Demo);
    let text = scrape_config(
        &demo_targets(),
        timing,
        &["/tmp/rules \"x\".yml".to_owned()],
        "cluster.json",
    );
    let yaml = parse_yaml(&text);
    assert_eq!(yaml["global"]["scrape_interval"], "2s");
    assert_eq!(yaml["global"]["scrape_timeout"], "2s");
    assert_eq!(yaml["global"]["evaluation_interval"], "2s");
    assert_eq!(
        yaml["rule_files"],
        serde_json::json!(["/tmp/rules \"x\".yml"])
    );
    let jobs = yaml["scrape_configs"].as_array().unwrap();
    let names: Vec<&str> = jobs
        .iter()
        .map(|j| j["job_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["faultline-agents", "faultline-nodes", "faultline-services"]
    );
    assert_eq!(
        jobs[0]["static_configs"],
        serde_json::json!([
            {"targets": ["127.0.0.1:1001"], "labels": {"node": "node-1"}},
            {"targets": ["127.0.0.1:1002"], "labels": {"node": "node-2"}},
        ])
    );
    assert_eq!(
        jobs[1]["static_configs"],
        serde_json::json!([{"targets": ["127.0.0.1:2001", "127.0.0.1:2002"]}])
    );
    // Production scrapes every 15 s; the timeout stays at Prometheus' default 10 s.
    let production = parse_yaml(&scrape_config(
        &[],
        dashboard.timing(Profile::Production),
        &[],
        "x",
    ));
    assert_eq!(production["global"]["scrape_timeout"], "10s");
    assert_eq!(production["scrape_configs"], serde_json::json!([]));
    assert!(production.get("rule_files").is_none());
}

#[test]
fn file_sd_sets_the_job_label_per_group() {
    let groups = file_sd(&demo_targets());
    assert_eq!(
        groups,
        serde_json::json!([
            {"targets": ["127.0.0.1:1001"], "labels": {"job": "faultline-agents", "node": "node-1"}},
            {"targets": ["127.0.0.1:1002"], "labels": {"job": "faultline-agents", "node": "node-2"}},
            {"targets": ["127.0.0.1:2001", "127.0.0.1:2002"], "labels": {"job": "faultline-nodes"}},
            {"targets": ["127.0.0.1:3001", "127.0.0.1:3002"], "labels": {"job": "faultline-services"}},
        ])
    );
}

#[test]
fn alert_names_are_camel_case_ids() {
    let dashboard = Dashboard::builtin();
    let names: Vec<String> = dashboard.panels.iter().map(Panel::alert_name).collect();
    assert_eq!(
        names,
        [
            "FaultlineP99",
            "FaultlineErrorRate",
            "FaultlineRetryAmplification",
            "FaultlineReplicationLag",
            "FaultlineDlqDepth",
            "FaultlineElections",
            "FaultlineQuorumFailures",
            "FaultlineUnreachablePeer",
        ]
    );
}
