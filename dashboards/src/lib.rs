//! Panels and alert levels as data (`panels.toml`, embedded).
//!
//! ```text
//!  panels.toml ──► Dashboard { panels: [Panel { id, title, unit, production, demo }] }
//!                     ├─► the TUI's signals view (sparklines, levels)
//!                     └─► Grafana / Prometheus-rule exports
//! ```
//!
//! The definitions are data so that the TUI and the exports cannot disagree on what a
//! signal is called or where it turns critical.

use serde::Deserialize;

/// The panels shipped with faultline.
pub const PANELS_TOML: &str = include_str!("../panels.toml");

/// Which alert levels apply: real systems, or the demo cluster's compressed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    #[default]
    Production,
    Demo,
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
}

/// One signal and its alert levels.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// Stable name (the TUI's signal, the exported rule's name).
    pub id: String,
    pub title: String,
    pub unit: String,
    pub description: String,
    pub production: Levels,
    pub demo: Levels,
}

impl Panel {
    pub fn levels(&self, profile: Profile) -> Levels {
        match profile {
            Profile::Production => self.production,
            Profile::Demo => self.demo,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    #[serde(rename = "panel")]
    pub panels: Vec<Panel>,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{0}")]
    Parse(#[from] toml::de::Error),
    #[error("panel {id:?}: {reason}")]
    Invalid { id: String, reason: String },
}

impl Dashboard {
    /// The panels shipped with faultline.
    pub fn builtin() -> Dashboard {
        // The embedded file is checked by a test; a broken build is the only way here.
        #[allow(clippy::expect_used)]
        Dashboard::parse(PANELS_TOML).expect("the embedded panels.toml is valid")
    }

    /// Parses and checks panel definitions: ids unique, warning below critical.
    pub fn parse(text: &str) -> Result<Dashboard, DashboardError> {
        let dashboard: Dashboard = toml::from_str(text)?;
        let mut seen = std::collections::HashSet::new();
        for panel in &dashboard.panels {
            let invalid = |reason: String| DashboardError::Invalid {
                id: panel.id.clone(),
                reason,
            };
            if !seen.insert(panel.id.as_str()) {
                return Err(invalid("defined twice".to_owned()));
            }
            for (name, levels) in [("production", panel.production), ("demo", panel.demo)] {
                if !(levels.warning.is_finite() && levels.critical.is_finite())
                    || levels.warning > levels.critical
                {
                    return Err(invalid(format!(
                        "{name}: warning {} must be finite and not above critical {}",
                        levels.warning, levels.critical
                    )));
                }
            }
        }
        Ok(dashboard)
    }

    pub fn panel(&self, id: &str) -> Option<&Panel> {
        self.panels.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builtin_panels_cover_the_tui_signals_with_ordered_levels() {
        let dashboard = Dashboard::parse(PANELS_TOML).unwrap();
        for id in [
            "p99",
            "error_rate",
            "retry_amplification",
            "replication_lag",
            "dlq_depth",
            "elections",
        ] {
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
    fn bad_definitions_are_refused_with_the_panel_named() {
        let twice = format!(
            "{PANELS_TOML}\n[[panel]]\nid = \"p99\"\ntitle = \"x\"\nunit = \"ms\"\ndescription = \"\"\nproduction = {{ warning = 1.0, critical = 2.0 }}\ndemo = {{ warning = 1.0, critical = 2.0 }}\n"
        );
        let error = Dashboard::parse(&twice).unwrap_err().to_string();
        assert!(
            error.contains("\"p99\"") && error.contains("twice"),
            "{error}"
        );
        let inverted = "[[panel]]\nid = \"x\"\ntitle = \"x\"\nunit = \"\"\ndescription = \"\"\nproduction = { warning = 5.0, critical = 2.0 }\ndemo = { warning = 1.0, critical = 2.0 }\n";
        let error = Dashboard::parse(inverted).unwrap_err().to_string();
        assert!(error.contains("production"), "{error}");
        let unknown = "[[panel]]\nid = \"x\"\ncolour = 1\n";
        assert!(Dashboard::parse(unknown).is_err());
    }
}
