//! Prometheus alerting rules from the panels: a group per panel, a rule per query and
//! level.
//!
//! ```text
//!  Panel { levels, window, for, queries } ──► RuleGroup "faultline.ID" (profile's evaluation interval)
//!                                              └─ AlertRule per query × {warning, critical}:
//!                                                   alert: FaultlineId   expr: (query) > level
//!                                                   for, labels { severity, panel, query },
//!                                                   annotations { summary, description }
//! ```
//!
//! Both levels of a query share the alert name and differ by `severity`, the usual
//! shape for Alertmanager's inhibition (a critical silences its warning). The
//! thresholds are the panel's levels under the profile, so the rules, the Grafana
//! thresholds and the TUI's colours agree.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::yaml::quoted;
use crate::{Dashboard, Panel, Profile, PromDuration, Query};

/// One rule group: what Prometheus evaluates together, every `interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    pub interval: PromDuration,
    pub rules: Vec<AlertRule>,
}

/// One alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub alert: String,
    pub expr: String,
    pub alert_for: PromDuration,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// The alerting rules of every panel under `profile`.
pub fn alert_rules(dashboard: &Dashboard, profile: Profile) -> Vec<RuleGroup> {
    let interval = dashboard.timing(profile).evaluation_interval;
    dashboard
        .panels
        .iter()
        .map(|panel| RuleGroup {
            name: format!("faultline.{}", panel.id),
            interval,
            rules: panel
                .queries
                .iter()
                .flat_map(|query| {
                    panel.levels(profile).alerting().map(|(level, threshold)| {
                        rule(dashboard, panel, query, profile, level.as_str(), threshold)
                    })
                })
                .collect(),
        })
        .collect()
}

fn rule(
    dashboard: &Dashboard,
    panel: &Panel,
    query: &Query,
    profile: Profile,
    severity: &str,
    threshold: f64,
) -> AlertRule {
    let alert_for = dashboard.alert_for(panel, profile);
    let unit = &panel.unit;
    let labels = [
        ("severity", severity),
        ("panel", panel.id.as_str()),
        ("query", query.name.as_str()),
    ];
    let summary = format!(
        "{title} {{{{ printf \"%.3g\" $value }}}} {unit} ({subject}): above the {severity} level of {threshold} {unit}",
        title = capitalized(&panel.title),
        subject = subject_template(&query.legend),
    );
    let description = format!(
        "{} Fires when above {threshold} {unit} for {alert_for} (faultline's {} profile, dashboards/panels.toml; query {:?}).",
        panel.description,
        profile.as_str(),
        query.name,
    );
    AlertRule {
        alert: panel.alert_name(),
        expr: format!("({}) > {threshold}", dashboard.expr(panel, query, profile)),
        alert_for,
        labels: labels
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        annotations: [("summary", summary), ("description", description)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    }
}

/// A Grafana legend (`agent {{node}}`) as a Prometheus alert template
/// (`agent {{ $labels.node }}`). Legends are checked when the panels are parsed: every
/// `{{…}}` holds a label name.
fn subject_template(legend: &str) -> String {
    let mut out = String::new();
    let mut rest = legend;
    while let (Some(start), Some(end)) = (rest.find("{{"), rest.find("}}")) {
        if end < start {
            break;
        }
        out.push_str(&rest[..start]);
        let _ = write!(out, "{{{{ $labels.{} }}}}", rest[start + 2..end].trim());
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The rules as a Prometheus rule file (YAML), with a header saying where they come
/// from. Every scalar is double-quoted.
pub fn rules_yaml(dashboard: &Dashboard, profile: Profile) -> String {
    let groups = alert_rules(dashboard, profile);
    let mut out = format!(
        "# Prometheus alerting rules for faultline's signals, {} profile: a group per panel,\n\
         # a rule per query and level. Made by `faultline dashboards export` from\n\
         # dashboards/panels.toml; check with `promtool check rules FILE`.\n",
        profile.as_str()
    );
    out.push_str(&render(&groups));
    out
}

/// Rule groups as YAML.
pub fn render(groups: &[RuleGroup]) -> String {
    let mut out = String::new();
    if groups.is_empty() {
        out.push_str("groups: []\n");
        return out;
    }
    out.push_str("groups:\n");
    for group in groups {
        let _ = writeln!(out, "  - name: {}", quoted(&group.name));
        let _ = writeln!(out, "    interval: {}", quoted(&group.interval.to_string()));
        if group.rules.is_empty() {
            out.push_str("    rules: []\n");
            continue;
        }
        out.push_str("    rules:\n");
        for rule in &group.rules {
            let _ = writeln!(out, "      - alert: {}", quoted(&rule.alert));
            let _ = writeln!(out, "        expr: {}", quoted(&rule.expr));
            let _ = writeln!(out, "        for: {}", quoted(&rule.alert_for.to_string()));
            for (name, map) in [("labels", &rule.labels), ("annotations", &rule.annotations)] {
                let _ = writeln!(out, "        {name}:");
                for (key, value) in map {
                    let _ = writeln!(out, "          {key}: {}", quoted(value));
                }
            }
        }
    }
    out
}
