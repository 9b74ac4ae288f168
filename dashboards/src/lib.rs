//! Panels, alert levels and their PromQL as data (`panels.toml`, embedded), and the
//! exports made from them.
//!
//! ```text
//!  panels.toml ──► Dashboard { profiles, panels: [Panel { id, title, unit, levels,
//!                              window, for, queries: [Query { name, expr, legend }] }] }
//!                     ├─► the TUI's signals view (titles, units, levels)
//!                     ├─► grafana.rs: the Grafana dashboard JSON
//!                     ├─► rules.rs:   Prometheus alerting rules (YAML)
//!                     └─ (scrape.rs:  a Prometheus scrape config / file_sd targets for
//!                                     a demo cluster's processes)
//! ```
//!
//! The definitions are data so that the TUI and the exports cannot disagree on what a
//! signal is called or where it turns critical. Everything here is pure: the exports
//! return text; the CLI (`faultline dashboards export`) writes it.

mod duration;
pub mod grafana;
pub mod rules;
pub mod scrape;
mod yaml;

use std::collections::HashSet;

use serde::Deserialize;

pub use duration::PromDuration;

/// The panels shipped with faultline.
pub const PANELS_TOML: &str = include_str!("../panels.toml");

/// The placeholder in a query's `expr` for the profile's rate window.
pub const WINDOW: &str = "$window";

/// Which alert levels and timings apply: real systems, or the demo cluster's
/// compressed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    #[default]
    Production,
    Demo,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Production, Profile::Demo];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Production => "production",
            Profile::Demo => "demo",
        }
    }
}

/// How bad a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    #[default]
    Ok,
    Warning,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }
}

/// The two thresholds of one panel under one profile.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Levels {
    pub warning: f64,
    pub critical: f64,
}

impl Levels {
    pub fn level(&self, value: f64) -> Level {
        if value > self.critical {
            Level::Critical
        } else if value > self.warning {
            Level::Warning
        } else {
            Level::Ok
        }
    }

    /// The levels that alert, with their thresholds, least severe first.
    pub fn alerting(&self) -> [(Level, f64); 2] {
        [
            (Level::Warning, self.warning),
            (Level::Critical, self.critical),
        ]
    }
}

/// How one profile scrapes, evaluates and compresses time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// How often Prometheus scrapes (the exported scrape config says so too); a rate
    /// window is never shorter than four of these.
    pub scrape_interval: PromDuration,
    /// How often the exported rule groups are evaluated.
    pub evaluation_interval: PromDuration,
    /// Panels' windows and `for` durations are divided by this (60 for the demo).
    pub time_scale: u32,
    /// The Grafana dashboard's default time range (`now-6h`) and refresh.
    pub grafana_from: String,
    pub grafana_refresh: PromDuration,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    pub production: Timing,
    pub demo: Timing,
}

/// One PromQL query of a panel: one Grafana target, one alert rule per level.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Unique within the panel; the alert rule's `query` label.
    pub name: String,
    /// PromQL whose value is in the panel's unit; `$window` stands for the profile's
    /// rate window.
    pub expr: String,
    /// Grafana's `legendFormat` (`{{label}}` placeholders); also names the subject in
    /// the alert's summary.
    pub legend: String,
}

/// One signal, its alert levels and how Prometheus computes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// Stable name (the TUI's signal, the alert rule's `panel` label and group).
    pub id: String,
    pub title: String,
    pub unit: String,
    pub description: String,
    pub production: Levels,
    pub demo: Levels,
    /// The production rate window (`$window`); none when no query has a rate.
    #[serde(default)]
    pub window: Option<PromDuration>,
    /// How long a level must stay crossed before its alert fires (production).
    #[serde(rename = "for")]
    pub alert_for: PromDuration,
    /// Checked by `Dashboard::parse` (at least one), not by serde, so that the error
    /// names the panel.
    #[serde(rename = "query", default)]
    pub queries: Vec<Query>,
}

impl Panel {
    pub fn levels(&self, profile: Profile) -> Levels {
        match profile {
            Profile::Production => self.production,
            Profile::Demo => self.demo,
        }
    }

    /// The alert name of this panel's rules: `Faultline` and the id in CamelCase
    /// (`replication_lag` → `FaultlineReplicationLag`).
    pub fn alert_name(&self) -> String {
        let mut name = String::from("Faultline");
        for word in self.id.split('_') {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                name.extend(first.to_uppercase());
                name.push_str(chars.as_str());
            }
        }
        name
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    pub profiles: Profiles,
    #[serde(rename = "panel")]
    pub panels: Vec<Panel>,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(transparent)]
    Parse(#[from] toml::de::Error),
    #[error("panel {id:?}: {reason}")]
    Invalid { id: String, reason: String },
    #[error("profile {profile}: {reason}")]
    Profile {
        profile: &'static str,
        reason: String,
    },
}

impl Dashboard {
    /// The panels shipped with faultline.
    pub fn builtin() -> Dashboard {
        // The embedded file is checked by a test; a broken build is the only way here.
        #[allow(clippy::expect_used)]
        Dashboard::parse(PANELS_TOML).expect("the embedded panels.toml is valid")
    }

    /// Parses and checks panel definitions: ids unique and usable as names, warning
    /// not above critical, queries named, `$window` used exactly when a window is
    /// given, windows at least four production scrapes long.
    pub fn parse(text: &str) -> Result<Dashboard, DashboardError> {
        let dashboard: Dashboard = toml::from_str(text)?;
        for profile in Profile::ALL {
            check_timing(profile, dashboard.timing(profile))?;
        }
        let mut seen = HashSet::new();
        for panel in &dashboard.panels {
            let invalid = |reason: String| DashboardError::Invalid {
                id: panel.id.clone(),
                reason,
            };
            if !is_name(&panel.id) {
                return Err(invalid(
                    "the id must be lowercase letters, digits and `_`, starting with a letter"
                        .to_owned(),
                ));
            }
            if !seen.insert(panel.id.as_str()) {
                return Err(invalid("defined twice".to_owned()));
            }
            check_panel(panel, &dashboard.profiles.production).map_err(invalid)?;
        }
        Ok(dashboard)
    }

    pub fn panel(&self, id: &str) -> Option<&Panel> {
        self.panels.iter().find(|p| p.id == id)
    }

    pub fn timing(&self, profile: Profile) -> &Timing {
        match profile {
            Profile::Production => &self.profiles.production,
            Profile::Demo => &self.profiles.demo,
        }
    }

    /// A panel's rate window under `profile`: scaled down by its time scale, and never
    /// shorter than four scrape intervals.
    pub fn window(&self, panel: &Panel, profile: Profile) -> Option<PromDuration> {
        let timing = self.timing(profile);
        panel.window.map(|window| {
            window
                .scaled_down(timing.time_scale)
                .max(timing.scrape_interval.saturating_mul(4))
        })
    }

    /// A panel's alert `for` under `profile`, scaled down by its time scale.
    pub fn alert_for(&self, panel: &Panel, profile: Profile) -> PromDuration {
        panel.alert_for.scaled_down(self.timing(profile).time_scale)
    }

    /// A query's PromQL under `profile`: `$window` replaced by the panel's window.
    pub fn expr(&self, panel: &Panel, query: &Query, profile: Profile) -> String {
        match self.window(panel, profile) {
            Some(window) => query.expr.replace(WINDOW, &window.to_string()),
            None => query.expr.clone(),
        }
    }
}

fn check_timing(profile: Profile, timing: &Timing) -> Result<(), DashboardError> {
    let invalid = |reason: &str| DashboardError::Profile {
        profile: profile.as_str(),
        reason: reason.to_owned(),
    };
    if timing.scrape_interval == PromDuration::ZERO
        || timing.evaluation_interval == PromDuration::ZERO
    {
        return Err(invalid(
            "scrape_interval and evaluation_interval must be above 0",
        ));
    }
    if timing.time_scale == 0 {
        return Err(invalid("time_scale must be 1 or more"));
    }
    if timing.grafana_refresh == PromDuration::ZERO || !timing.grafana_from.starts_with("now-") {
        return Err(invalid(
            "grafana_from must be a relative time like \"now-6h\" and grafana_refresh above 0",
        ));
    }
    Ok(())
}

/// Checks one panel; the error says what is wrong, the caller names the panel.
fn check_panel(panel: &Panel, production: &Timing) -> Result<(), String> {
    for (name, levels) in [("production", panel.production), ("demo", panel.demo)] {
        if !(levels.warning.is_finite() && levels.critical.is_finite())
            || levels.warning > levels.critical
        {
            return Err(format!(
                "{name}: warning {} must be finite and not above critical {}",
                levels.warning, levels.critical
            ));
        }
    }
    if panel.queries.is_empty() {
        return Err("no [[panel.query]]: a panel needs at least one PromQL query".to_owned());
    }
    let mut names = HashSet::new();
    let mut uses_window = false;
    for query in &panel.queries {
        let at = |reason: String| format!("query {:?}: {reason}", query.name);
        if !is_name(&query.name) {
            return Err(at(
                "the name must be lowercase letters, digits and `_`, starting with a letter"
                    .to_owned(),
            ));
        }
        if !names.insert(query.name.as_str()) {
            return Err(at("defined twice".to_owned()));
        }
        check_expr(&query.expr).map_err(at)?;
        legend_labels(&query.legend).map_err(at)?;
        uses_window |= query.expr.contains(WINDOW);
    }
    match panel.window {
        Some(_) if !uses_window => {
            return Err(format!("window is given but no query uses {WINDOW}"));
        }
        None if uses_window => {
            return Err(format!("a query uses {WINDOW} but the panel has no window"));
        }
        Some(window) if window < production.scrape_interval.saturating_mul(4) => {
            return Err(format!(
                "window {window} is shorter than four production scrape intervals ({})",
                production.scrape_interval.saturating_mul(4)
            ));
        }
        _ => {}
    }
    Ok(())
}

/// What can be checked of PromQL without a parser: not empty, brackets balanced
/// outside string literals, no placeholder but `$window`. `promtool check rules` (in
/// the tests) checks the rest.
fn check_expr(expr: &str) -> Result<(), String> {
    if expr.trim().is_empty() {
        return Err("empty expr".to_owned());
    }
    let mut open = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in expr.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => open.push(c),
            ')' | ']' | '}' => {
                let expected = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if open.pop() != Some(expected) {
                    return Err(format!("unbalanced {c:?} at byte {i} of expr"));
                }
            }
            '$' if !expr[i..].starts_with(WINDOW)
                || expr[i + WINDOW.len()..]
                    .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') =>
            {
                return Err(format!(
                    "unknown placeholder at byte {i} of expr (only {WINDOW} is replaced)"
                ));
            }
            _ => {}
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} string in expr"));
    }
    if let Some(c) = open.pop() {
        return Err(format!("unclosed {c:?} in expr"));
    }
    Ok(())
}

/// The label names a legend's `{{label}}` placeholders refer to.
pub(crate) fn legend_labels(legend: &str) -> Result<Vec<&str>, String> {
    let mut labels = Vec::new();
    let mut rest = legend;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("legend {legend:?}: unclosed {{{{"))?;
        let label = after[..end].trim();
        if !is_label(label) {
            return Err(format!(
                "legend {legend:?}: {{{{{label}}}}} is not a label name"
            ));
        }
        labels.push(label);
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err(format!("legend {legend:?}: }}}} without {{{{"));
    }
    Ok(labels)
}

/// A panel or query name: `[a-z][a-z0-9_]*`.
fn is_name(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
