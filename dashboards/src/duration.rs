//! Durations as Prometheus writes them (`1h`, `5m`, `15s`, `250ms`, `1m30s`): what
//! `panels.toml` says for windows and `for:`, and what the exports print.
//!
//! Own parsing rather than `humantime`: the text goes verbatim into PromQL and rule
//! files, so `panels.toml` must accept exactly what Prometheus accepts (no spaces, units
//! largest first, each at most once), and the exports must print it that way.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A duration in whole milliseconds, Prometheus' resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration {
    ms: u64,
}

/// Units largest first, in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// The units the exports print: hours at most, so every window reads the same way.
const PRINTED: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

impl PromDuration {
    pub const ZERO: PromDuration = PromDuration { ms: 0 };

    pub const fn from_millis(ms: u64) -> PromDuration {
        PromDuration { ms }
    }

    pub const fn from_secs(secs: u64) -> PromDuration {
        PromDuration {
            ms: secs.saturating_mul(1_000),
        }
    }

    pub const fn as_millis(self) -> u64 {
        self.ms
    }

    pub fn as_secs_f64(self) -> f64 {
        self.ms as f64 / 1e3
    }

    /// Parses Prometheus' syntax: `0`, or number-unit pairs with units from `y` down to
    /// `ms`, largest first, each at most once (`1h30m`, `250ms`).
    pub fn parse(text: &str) -> Result<PromDuration, String> {
        let bad = |why: &str| {
            format!(
                "invalid duration {text:?}: {why} (write it as Prometheus does: 5m, 1h30m, 15s, 250ms)"
            )
        };
        if text == "0" {
            return Ok(PromDuration::ZERO);
        }
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let mut rest = text;
        let mut ms: u64 = 0;
        // Index into UNITS of the last unit seen: the next must come after it.
        let mut last: Option<usize> = None;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad("expected a number"));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| bad("number too large"))?;
            rest = &rest[digits..];
            let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &rest[..letters];
            let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
                return Err(bad(if unit.is_empty() {
                    "a number without a unit"
                } else {
                    "unknown unit"
                }));
            };
            if last.is_some_and(|l| index <= l) {
                return Err(bad("units must go from largest to smallest, each once"));
            }
            last = Some(index);
            rest = &rest[letters..];
            ms = number
                .checked_mul(UNITS[index].1)
                .and_then(|part| ms.checked_add(part))
                .ok_or_else(|| bad("too long"))?;
        }
        Ok(PromDuration { ms })
    }

    /// This duration divided by `factor`, to the nearest millisecond (the demo profile's
    /// compressed time).
    pub fn scaled_down(self, factor: u32) -> PromDuration {
        let factor = u64::from(factor.max(1));
        PromDuration {
            ms: (self.ms + factor / 2) / factor,
        }
    }

    pub fn saturating_mul(self, factor: u64) -> PromDuration {
        PromDuration {
            ms: self.ms.saturating_mul(factor),
        }
    }
}

impl fmt::Display for PromDuration {
    /// Compound, largest unit first, hours at most: `1h`, `1m30s`, `8s`, `250ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ms == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.ms;
        for (name, size) in PRINTED {
            if rest >= size {
                write!(f, "{}{name}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PromDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_what_prometheus_accepts() {
        for (text, ms) in [
            ("0", 0),
            ("0s", 0),
            ("250ms", 250),
            ("15s", 15_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("1m30s500ms", 90_500),
            ("1d", 86_400_000),
            ("2w", 1_209_600_000),
        ] {
            assert_eq!(
                PromDuration::parse(text),
                Ok(PromDuration::from_millis(ms)),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_what_prometheus_refuses_saying_why() {
        for (text, why) in [
            ("", "empty"),
            ("5", "without a unit"),
            ("5 m", "without a unit"),
            ("5min", "unknown unit"),
            ("m", "expected a number"),
            ("30s1m", "largest to smallest"),
            ("1m1m", "largest to smallest"),
            ("-1s", "expected a number"),
            ("99999999999999999999s", "too large"),
            ("9999999999999999y", "too long"),
        ] {
            let error = PromDuration::parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
            assert!(error.contains(&format!("{text:?}")), "{error}");
        }
    }

    #[test]
    fn prints_compound_durations_that_parse_back() {
        for (ms, text) in [
            (0, "0s"),
            (250, "250ms"),
            (8_000, "8s"),
            (90_000, "1m30s"),
            (3_600_000, "1h"),
            (86_400_000, "24h"),
            (3_661_001, "1h1m1s1ms"),
        ] {
            let d = PromDuration::from_millis(ms);
            assert_eq!(d.to_string(), text);
            assert_eq!(PromDuration::parse(text).unwrap(), d);
        }
    }

    #[test]
    fn scaling_down_rounds_to_the_millisecond() {
        let scale = |text: &str, factor| {
            PromDuration::parse(text)
                .unwrap()
                .scaled_down(factor)
                .to_string()
        };
        assert_eq!(scale("1h", 60), "1m");
        assert_eq!(scale("5m", 60), "5s");
        assert_eq!(scale("15s", 60), "250ms");
        assert_eq!(scale("1s", 3), "333ms");
        assert_eq!(scale("2s", 3), "667ms");
        assert_eq!(scale("5m", 1), "5m");
        assert_eq!(scale("5m", 0), "5m");
    }
}
