//! The Grafana dashboard: a `timeseries` panel per panel, a target per query, the
//! levels as threshold lines, every query against a `datasource` variable.
//!
//! ```text
//!  Dashboard ─► { uid "faultline-PROFILE", schemaVersion 39, time, refresh, tags,
//!                 templating: [datasource variable (type prometheus)],
//!                 panels: [timeseries { gridPos (two columns), unit, thresholds,
//!                                       targets: [{ expr, refId, legendFormat }] }],
//!                 __inputs / __requires (for the import dialog) }
//! ```
//!
//! Queries are written out with the profile's window (not `$__rate_interval`), so a
//! panel shows exactly what its alert rules evaluate.

use serde_json::{Value, json};

use crate::{Dashboard, Level, Panel, Profile};

/// The dashboard JSON schema version written (Grafana 10.x reads it; later versions
/// migrate it on import).
pub const SCHEMA_VERSION: u64 = 39;

/// The datasource every panel and target uses: the dashboard's variable.
const DATASOURCE_VAR: &str = "${datasource}";

/// Panel height and the number of columns on Grafana's 24-unit grid.
const PANEL_HEIGHT: u64 = 8;
const COLUMNS: u64 = 2;

/// The dashboard's uid for a profile (stable, so a re-import replaces it).
pub fn uid(profile: Profile) -> String {
    format!("faultline-{}", profile.as_str())
}

/// The Grafana dashboard for `profile`.
pub fn grafana_dashboard(dashboard: &Dashboard, profile: Profile) -> Value {
    let timing = dashboard.timing(profile);
    let panels: Vec<Value> = dashboard
        .panels
        .iter()
        .enumerate()
        .map(|(i, panel)| grafana_panel(dashboard, panel, profile, i))
        .collect();
    json!({
        "__inputs": [{
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes the faultline processes",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }],
        "__requires": [
            { "type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0" },
            { "type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0" },
            { "type": "panel", "id": "timeseries", "name": "Time series", "version": "" },
        ],
        "annotations": { "list": [] },
        "description": format!(
            "faultline's signals and alert levels ({} profile), from dashboards/panels.toml.",
            profile.as_str()
        ),
        "editable": true,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": null,
        "links": [],
        "liveNow": false,
        "panels": panels,
        "refresh": timing.grafana_refresh.to_string(),
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["faultline", profile.as_str()],
        "templating": {
            "list": [{
                "type": "datasource",
                "name": "datasource",
                "label": "Data source",
                "query": "prometheus",
                // The import dialog's choice for DS_PROMETHEUS; elsewhere Grafana
                // picks the default Prometheus.
                "current": { "text": "${DS_PROMETHEUS}", "value": "${DS_PROMETHEUS}" },
                "hide": 0,
                "includeAll": false,
                "multi": false,
                "options": [],
                "refresh": 1,
                "regex": "",
                "skipUrlSync": false,
            }],
        },
        "time": { "from": timing.grafana_from, "to": "now" },
        "timepicker": {},
        "timezone": "browser",
        "title": format!("faultline ({})", profile.as_str()),
        "uid": uid(profile),
        "version": 1,
        "weekStart": "",
    })
}

fn grafana_panel(dashboard: &Dashboard, panel: &Panel, profile: Profile, index: usize) -> Value {
    let levels = panel.levels(profile);
    let column = index as u64 % COLUMNS;
    let row = index as u64 / COLUMNS;
    let targets: Vec<Value> = panel
        .queries
        .iter()
        .enumerate()
        .map(|(i, query)| {
            json!({
                "datasource": datasource(),
                "editorMode": "code",
                "expr": dashboard.expr(panel, query, profile),
                "legendFormat": query.legend,
                "range": true,
                "refId": ref_id(i),
            })
        })
        .collect();
    json!({
        "type": "timeseries",
        "id": index + 1,
        "title": panel.title,
        "description": panel.description,
        "datasource": datasource(),
        "gridPos": {
            "h": PANEL_HEIGHT,
            "w": 24 / COLUMNS,
            "x": column * (24 / COLUMNS),
            "y": row * PANEL_HEIGHT,
        },
        "fieldConfig": {
            "defaults": {
                "unit": unit(&panel.unit),
                "min": 0,
                "color": { "mode": "palette-classic" },
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                    "spanNulls": false,
                    "thresholdsStyle": { "mode": "line+area" },
                },
                "thresholds": {
                    "mode": "absolute",
                    "steps": [
                        { "color": "green", "value": null },
                        { "color": colour(Level::Warning), "value": levels.warning },
                        { "color": colour(Level::Critical), "value": levels.critical },
                    ],
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": { "calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": true },
            "tooltip": { "mode": "multi", "sort": "desc" },
        },
        "targets": targets,
    })
}

fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": DATASOURCE_VAR })
}

/// Grafana's target ids: A, B, … Z, then AA, AB, …
fn ref_id(index: usize) -> String {
    let letter = |i: usize| char::from(b'A' + (i % 26) as u8);
    if index < 26 {
        letter(index).to_string()
    } else {
        format!("{}{}", letter(index / 26 - 1), letter(index))
    }
}

/// Grafana's unit id for a panel's unit; anything else is shown as a suffix.
pub fn unit(unit: &str) -> String {
    match unit {
        "ms" => "ms".to_owned(),
        "s" => "s".to_owned(),
        "%" => "percent".to_owned(),
        "" => "none".to_owned(),
        other => format!("suffix: {other}"),
    }
}

fn colour(level: Level) -> &'static str {
    match level {
        Level::Ok => "green",
        Level::Warning => "orange",
        Level::Critical => "red",
    }
}
