#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `faultline dashboards export` as users run it: the rules pass `promtool check rules`
//! under both profiles, the scrape configuration `promtool check config`, the Grafana
//! JSON has what Grafana's import needs, bad input exits 2 saying why — and a real
//! Prometheus scrapes a running demo cluster, loads and evaluates the exported rules,
//! answers every panel's query, and fires the partition alert when a node is cut off.
//!
//! The Prometheus is the one `.ci/run` starts (scripts/prometheus-for-tests.sh;
//! `FAULTLINE_PROMETHEUS_URL`, `FAULTLINE_PROMETHEUS_DIR`); without it the test starts
//! its own with the same script when `prometheus` is on PATH, and otherwise says
//! SKIPPED — unless `FAULTLINE_REQUIRE_PROMETHEUS=1`. Likewise promtool and
//! `FAULTLINE_REQUIRE_PROMTOOL=1`.
//!
//! One demo cluster at a time (2 cores): the cluster test holds [`ONE_DEMO_AT_A_TIME`].

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{DemoDown, faultline};
use faultline_dashboards::rules::alert_rules;
use faultline_dashboards::{Dashboard, Profile};
use serde_json::Value;

static ONE_DEMO_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The lock, also after another test failed while holding it.
fn one_demo() -> std::sync::MutexGuard<'static, ()> {
    ONE_DEMO_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn export(args: &[&str]) -> Output {
    faultline()
        .args(["dashboards", "export"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `promtool ARGS`, or `None` (having said SKIPPED) where promtool is not on PATH and
/// `FAULTLINE_REQUIRE_PROMTOOL` is not 1.
fn promtool(args: &[&str]) -> Option<Output> {
    match Command::new("promtool").args(args).output() {
        Ok(output) => Some(output),
        Err(_) if std::env::var("FAULTLINE_REQUIRE_PROMTOOL").as_deref() != Ok("1") => {
            eprintln!("SKIPPED: promtool is not on PATH (Debian package prometheus)");
            None
        }
        Err(e) => panic!("FAULTLINE_REQUIRE_PROMTOOL=1 but promtool cannot run: {e}"),
    }
}

fn rule_count(profile: Profile) -> usize {
    alert_rules(&Dashboard::builtin(), profile)
        .iter()
        .map(|g| g.rules.len())
        .sum()
}

/// A cluster.json like `demo up` writes, for exports that need no running cluster.
fn fake_cluster(dir: &Path) -> PathBuf {
    let members: Vec<Value> = (1..=3)
        .map(|i| {
            serde_json::json!({
                "name": format!("node-{i}"),
                "raft_id": i,
                "api": format!("127.0.0.1:{}", 10_000 + i),
                "agent_inbound": format!("127.0.0.1:{}", 11_000 + i),
                "agent_outbound": format!("127.0.0.1:{}", 12_000 + i),
                "agent_admin": format!("127.0.0.1:{}", 13_000 + i),
                "node_pid": null,
                "agent_pid": null,
                "data_dir": dir.join(format!("node-{i}")),
                "gateway": {"addr": format!("127.0.0.1:{}", 14_000 + i), "pid": null},
                "worker": {"addr": format!("127.0.0.1:{}", 15_000 + i), "pid": null},
            })
        })
        .collect();
    let file = dir.join("cluster.json");
    let cluster = serde_json::json!({
        "members": members,
        "payments": {"addr": "127.0.0.1:16000", "pid": null},
    });
    std::fs::write(&file, cluster.to_string()).unwrap();
    file
}

#[test]
fn exported_rules_and_config_pass_promtool_under_both_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = fake_cluster(dir.path());
    for profile in Profile::ALL {
        let name = profile.as_str();
        let rules = dir.path().join(format!("rules-{name}.yml"));
        let config = dir.path().join(format!("prometheus-{name}.yml"));
        let out = export(&[
            "--profile",
            name,
            "--prometheus-rules",
            path(&rules),
            "--prometheus-config",
            path(&config),
            "--cluster",
            path(&cluster),
        ]);
        assert!(out.status.success(), "{}", said(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("{name} profile")), "{stdout}");
        assert!(
            stdout.contains(path(&rules)) && stdout.contains(path(&config)),
            "{stdout}"
        );
        // 3 agents, 3 nodes, 3 gateways, 3 workers, payments.
        assert!(
            stdout.contains("(13 endpoints, loading the rules)"),
            "{stdout}"
        );

        let Some(checked) = promtool(&["check", "rules", path(&rules)]) else {
            return;
        };
        let text = said(&checked);
        assert!(checked.status.success(), "promtool check rules: {text}");
        let expected = rule_count(profile);
        assert!(
            text.contains(&format!("SUCCESS: {expected} rules found")),
            "{text}"
        );
        // No lint findings (duplicate rules and the like).
        assert!(
            !text.contains("lint") && !text.contains("duplicate"),
            "{text}"
        );

        let checked = promtool(&["check", "config", path(&config)]).unwrap();
        let text = said(&checked);
        assert!(checked.status.success(), "promtool check config: {text}");
        assert!(
            text.contains(&format!("SUCCESS: {expected} rules found")),
            "{text}"
        );
    }
}

#[test]
fn grafana_dashboard_has_what_grafana_needs_to_import_it() {
    let dir = tempfile::tempdir().unwrap();
    let dashboard = Dashboard::builtin();
    for profile in Profile::ALL {
        let grafana = dir.path().join("grafana");
        let out = export(&["--profile", profile.as_str(), "--grafana", path(&grafana)]);
        assert!(out.status.success(), "{}", said(&out));
        let file = grafana.join(format!("faultline-{}.json", profile.as_str()));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(path(&file)),
            "{}",
            said(&out)
        );
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(json["schemaVersion"], 39);
        assert_eq!(json["uid"], format!("faultline-{}", profile.as_str()));
        assert!(json["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(
            json["tags"]
                .as_array()
                .unwrap()
                .contains(&"faultline".into())
        );
        assert!(json["time"]["from"].as_str().unwrap().starts_with("now-"));
        assert!(json["refresh"].is_string());
        // Import: a dashboard without a database id, its requirements and inputs listed.
        assert!(json["id"].is_null());
        assert_eq!(json["__inputs"][0]["type"], "datasource");
        assert_eq!(json["__inputs"][0]["pluginId"], "prometheus");
        let variable = json["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["type"] == "datasource")
            .expect("a datasource variable");
        assert_eq!(variable["name"], "datasource");
        assert_eq!(variable["query"], "prometheus");

        let panels = json["panels"].as_array().unwrap();
        let titles: Vec<&str> = panels
            .iter()
            .map(|p| p["title"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = dashboard.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, expected);
        let mut ids = BTreeSet::new();
        for (panel, json) in dashboard.panels.iter().zip(panels) {
            assert_eq!(json["type"], "timeseries");
            assert!(ids.insert(json["id"].as_u64().unwrap()));
            for key in ["x", "y", "w", "h"] {
                assert!(json["gridPos"][key].is_u64(), "{}: gridPos.{key}", panel.id);
            }
            let defaults = &json["fieldConfig"]["defaults"];
            assert!(defaults["unit"].as_str().is_some_and(|u| !u.is_empty()));
            let steps: Vec<Option<f64>> = defaults["thresholds"]["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["value"].as_f64())
                .collect();
            let levels = panel.levels(profile);
            assert_eq!(steps, [None, Some(levels.warning), Some(levels.critical)]);
            let targets = json["targets"].as_array().unwrap();
            assert_eq!(targets.len(), panel.queries.len());
            for target in targets {
                assert_eq!(
                    target["datasource"],
                    serde_json::json!({"type": "prometheus", "uid": "${datasource}"})
                );
                let expr = target["expr"].as_str().unwrap();
                assert!(
                    expr.contains("faultline_") && !expr.contains("$window"),
                    "{expr}"
                );
                assert!(target["refId"].as_str().is_some_and(|r| !r.is_empty()));
                assert!(target["legendFormat"].is_string());
            }
        }
    }
}

#[test]
fn bad_usage_and_bad_input_exit_2_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    let config = dir.path().join("prometheus.yml");
    for (args, says) in [
        (vec![], "required arguments were not provided"),
        (
            vec!["--prometheus-config", path(&config)],
            "--cluster <CLUSTER_JSON>",
        ),
        (
            vec!["--prometheus-rules", path(&rules), "--profile", "staging"],
            "invalid value 'staging'",
        ),
        (
            vec![
                "--prometheus-rules",
                path(&rules),
                "--cluster",
                path(dir.path()),
            ],
            "--cluster is only read for --prometheus-config or --prometheus-targets",
        ),
        (
            vec![
                "--prometheus-config",
                path(&config),
                "--cluster",
                path(&dir.path().join("missing.json")),
            ],
            "missing.json does not exist",
        ),
    ] {
        let out = export(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", said(&out));
        assert!(said(&out).contains(says), "{args:?}: {}", said(&out));
    }
    assert!(!rules.exists() && !config.exists());

    // A panels file with a mistake: the panel and the mistake are named.
    let panels = dir.path().join("panels.toml");
    let bad = faultline_dashboards::PANELS_TOML.replacen(
        "rate(faultline_raft_elections_started_total[$window])",
        "rate(faultline_raft_elections_started_total[$window]",
        1,
    );
    std::fs::write(&panels, bad).unwrap();
    let out = export(&[
        "--panels",
        path(&panels),
        "--prometheus-rules",
        path(&rules),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    let text = said(&out);
    assert!(
        text.contains("panels.toml")
            && text.contains("panel \"elections\": query \"raft\": unclosed '('"),
        "{text}"
    );
    assert!(!rules.exists());

    // A file that is no cluster file.
    let cluster = dir.path().join("cluster.json");
    std::fs::write(&cluster, "{\"members\": 3}").unwrap();
    let out = export(&[
        "--prometheus-config",
        path(&config),
        "--cluster",
        path(&cluster),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(said(&out).contains("cluster.json"), "{}", said(&out));
    assert!(!config.exists());
}

/// A Prometheus the test may use: `.ci/run`'s, or one of its own.
struct Prometheus {
    url: String,
    dir: PathBuf,
    /// Set when this test started it: stopped on drop.
    own: Option<tempfile::TempDir>,
}

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/scripts/prometheus-for-tests.sh"
);

impl Prometheus {
    /// `.ci/run`'s Prometheus, else one started with the same script, else `None`
    /// (having said SKIPPED) — or a panic under `FAULTLINE_REQUIRE_PROMETHEUS=1`.
    fn find() -> Option<Prometheus> {
        if let (Ok(url), Ok(dir)) = (
            std::env::var("FAULTLINE_PROMETHEUS_URL"),
            std::env::var("FAULTLINE_PROMETHEUS_DIR"),
        ) {
            return Some(Prometheus {
                url,
                dir: dir.into(),
                own: None,
            });
        }
        let required = std::env::var("FAULTLINE_REQUIRE_PROMETHEUS").as_deref() == Ok("1");
        if Command::new("prometheus")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                !required,
                "FAULTLINE_REQUIRE_PROMETHEUS=1 but neither FAULTLINE_PROMETHEUS_URL is set \
                 nor prometheus on PATH"
            );
            eprintln!(
                "SKIPPED: no Prometheus (FAULTLINE_PROMETHEUS_URL unset, prometheus not on PATH; \
                 Debian package prometheus, started by scripts/prometheus-for-tests.sh)"
            );
            return None;
        }
        let own = tempfile::tempdir().unwrap();
        let out = Command::new(SCRIPT)
            .args(["start", path(own.path())])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{SCRIPT} start: {}", said(&out));
        // export FAULTLINE_PROMETHEUS_DIR='…' FAULTLINE_PROMETHEUS_URL='…'
        let exports = String::from_utf8(out.stdout).unwrap();
        let value = |name: &str| {
            let at = exports.find(&format!("{name}='")).unwrap() + name.len() + 2;
            exports[at..].split('\'').next().unwrap().to_owned()
        };
        Some(Prometheus {
            url: value("FAULTLINE_PROMETHEUS_URL"),
            dir: value("FAULTLINE_PROMETHEUS_DIR").into(),
            own: Some(own),
        })
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(own) = &self.own {
            let _ = Command::new(SCRIPT)
                .args(["stop", path(own.path())])
                .stdin(Stdio::null())
                .output();
        }
    }
}

/// `GET url`'s JSON `data`, or why not.
async fn api(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(body.to_string());
    }
    Ok(body["data"].clone())
}

/// Polls `check` every 500 ms until it returns `Ok`, or fails with its last `Err`
/// after `limit`.
async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match check().await {
            Ok(value) => {
                eprintln!("{what}: after {:.1} s", started.elapsed().as_secs_f64());
                return value;
            }
            Err(why) if started.elapsed() > limit => {
                panic!("{what}: not within {limit:?}; last: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Every endpoint of the cluster, as `instance` labels.
fn endpoints(cluster: &Value) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for m in cluster["members"].as_array().unwrap() {
        for key in ["agent_admin", "api"] {
            all.insert(m[key].as_str().unwrap().to_owned());
        }
        for key in ["gateway", "worker"] {
            all.insert(m[key]["addr"].as_str().unwrap().to_owned());
        }
    }
    all.insert(cluster["payments"]["addr"].as_str().unwrap().to_owned());
    all
}

#[test]
fn a_real_prometheus_scrapes_the_demo_and_evaluates_the_exported_rules() {
    let _one = one_demo();
    let Some(prometheus) = Prometheus::find() else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo");
    // Stops the cluster whatever happens below, also if `up` fails halfway.
    let _down = DemoDown(state.clone());
    let up = faultline()
        .args(["demo", "up", "--rate", "20", "--timeout", "180s", "--dir"])
        .arg(&state)
        // Spans go nowhere (nothing listens there): no recorder competing for the cores.
        .args(["--otlp", "http://127.0.0.1:9"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(up.status.success(), "demo up: {}", said(&up));
    eprintln!("demo up: {:.1} s", started.elapsed().as_secs_f64());

    let grafana = dir.path().join("grafana");
    let out = export(&[
        "--profile",
        "demo",
        "--grafana",
        path(&grafana),
        "--prometheus-rules",
        path(&prometheus.dir.join("rules.yml")),
        "--prometheus-targets",
        path(&prometheus.dir.join("targets.json")),
        "--cluster",
        path(&state),
    ]);
    assert!(out.status.success(), "{}", said(&out));
    let cluster: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("cluster.json")).unwrap())
            .unwrap();
    let expected_targets = endpoints(&cluster);
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(grafana.join("faultline-demo.json")).unwrap(),
    )
    .unwrap();
    let expected_groups: BTreeSet<String> = alert_rules(&Dashboard::builtin(), Profile::Demo)
        .into_iter()
        .map(|g| g.name)
        .collect();

    let runtime = common::runtime();
    let http = common::client(Duration::from_secs(10));
    let base = prometheus.url.clone();
    runtime.block_on(async {
        let reload = http.post(format!("{base}/-/reload")).send().await.unwrap();
        assert!(reload.status().is_success(), "reload: {}", reload.status());

        // Every endpoint of the cluster scraped, and up; agents labelled with their node.
        until("every target up", Duration::from_secs(120), || async {
            let data = api(&http, &format!("{base}/api/v1/targets?state=active")).await?;
            let targets = data["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut up = BTreeSet::new();
            for t in &targets {
                let instance = t["labels"]["instance"].as_str().unwrap_or("").to_owned();
                let job = t["labels"]["job"].as_str().unwrap_or("");
                if job == "faultline-agents" && !t["labels"]["node"].is_string() {
                    return Err(format!("agent {instance} has no node label: {t}"));
                }
                if t["health"] == "up" {
                    up.insert(instance);
                }
            }
            let missing: Vec<_> = expected_targets.difference(&up).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("not up: {missing:?} of {targets:?}"))
            }
        })
        .await;

        // Every group loaded and evaluated, every rule healthy.
        until(
            "every rule group evaluated",
            Duration::from_secs(120),
            || async {
                let data = api(&http, &format!("{base}/api/v1/rules")).await?;
                let groups = data["groups"].as_array().cloned().unwrap_or_default();
                let names: BTreeSet<String> = groups
                    .iter()
                    .filter_map(|g| g["name"].as_str().map(str::to_owned))
                    .collect();
                if names != expected_groups {
                    return Err(format!("groups {names:?}"));
                }
                for g in &groups {
                    let evaluated = g["lastEvaluation"]
                        .as_str()
                        .is_some_and(|t| !t.starts_with("0001-"));
                    if !evaluated {
                        return Err(format!("{} not evaluated yet", g["name"]));
                    }
                    for rule in g["rules"].as_array().unwrap() {
                        if rule["health"] != "ok" {
                            return Err(format!("{}: {} {}", g["name"], rule["health"], rule));
                        }
                    }
                }
                Ok(())
            },
        )
        .await;

        // Every query of every panel, as the dashboard has it, answers with a series.
        let panels = dashboard["panels"].as_array().unwrap();
        for panel in panels {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let what = format!("{} {}: a series", panel["title"], target["refId"]);
                until(&what, Duration::from_secs(120), || async {
                    let url = reqwest::Url::parse_with_params(
                        &format!("{base}/api/v1/query"),
                        [("query", expr)],
                    )
                    .unwrap();
                    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
                    let body: Value = response.json().await.map_err(|e| e.to_string())?;
                    let result = body["data"]["result"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    if body["status"] == "success" && !result.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("{expr}: {body}"))
                    }
                })
                .await;
            }
        }
    });

    // A partition: the critical `unreachable peer` alert fires, naming the node cut
    // off. First, not in health (a rule that always fires would pass what follows).
    let firing = |alerts: &Value| -> Vec<Value> {
        alerts["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| {
                a["labels"]["alertname"] == "FaultlineUnreachablePeer"
                    && a["labels"]["severity"] == "critical"
                    && a["state"] == "firing"
            })
            .map(|a| a["labels"].clone())
            .collect()
    };
    runtime.block_on(until(
        "no partition alert while healthy",
        Duration::from_secs(90),
        || async {
            let alerts = api(&http, &format!("{base}/api/v1/alerts")).await?;
            let firing = firing(&alerts);
            if firing.is_empty() {
                Ok(())
            } else {
                Err(format!("firing: {firing:?}"))
            }
        },
    ));
    // Cut the last member off from its peers at its agent, as `demo scenario
    // partition-minority` does (the scenario first waits for a healthy cluster to pick
    // a follower, which a starved machine mid-election may not give it in time).
    let members = cluster["members"].as_array().unwrap();
    let victim = members.last().unwrap();
    let victim_name = victim["name"].as_str().unwrap().to_owned();
    let others: Vec<&str> = members
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .filter(|name| *name != victim_name)
        .collect();
    let admin = victim["agent_admin"].as_str().unwrap();
    runtime.block_on(async {
        let response = http
            .post(format!("http://{admin}/toxics"))
            .json(&serde_json::json!({"type": "partition", "peers": others}))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "partition: {}",
            response.status()
        );
    });
    let alerts = runtime.block_on(until(
        "the partition alert fires",
        Duration::from_secs(120),
        || async {
            let alerts = api(&http, &format!("{base}/api/v1/alerts")).await?;
            let firing: Vec<Value> = firing(&alerts)
                .into_iter()
                .filter(|labels| labels["node"] == *victim_name || labels["peer"] == *victim_name)
                .collect();
            if firing.is_empty() {
                Err(format!("none firing for {victim_name}: {alerts}"))
            } else {
                Ok(firing)
            }
        },
    ));
    eprintln!(
        "firing: {alerts:?}; the whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
