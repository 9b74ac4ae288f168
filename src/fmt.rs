//! Small formatting and parsing helpers shared by the subcommands' text output.

use std::time::{Duration, UNIX_EPOCH};

use clap::ValueEnum;

/// Output for people or for machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    Json,
}

/// Thousands separators and plurals: one definition, shared with the analysis report.
pub(crate) use faultline_analyzers::print::{count, plural};

/// `1536` → `1.5 KiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Nanoseconds since the epoch as RFC 3339 with milliseconds, UTC.
pub(crate) fn timestamp(ns: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_nanos(ns);
    humantime::format_rfc3339_millis(time).to_string()
}

/// A duration in nanoseconds, as a person reads it (`5m 0s 300ms`).
pub(crate) fn duration(ns: u64) -> String {
    // Below a millisecond the detail matters; above, whole milliseconds are plenty.
    let d = if ns >= 1_000_000 {
        Duration::from_millis(ns / 1_000_000)
    } else {
        Duration::from_nanos(ns)
    };
    humantime::format_duration(d).to_string()
}

/// Parses sizes such as `100MiB`, `64M`, `512k`, `1G`, `4096` (binary multiples).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 64MiB"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?} (use B, KiB, MiB, GiB)"
            ));
        }
    };
    let size = value * multiplier as f64;
    if !(1.0..=u64::MAX as f64).contains(&size) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(size as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_bytes() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(plural(1, "trace"), "1 trace");
        assert_eq!(plural(1200, "span"), "1,200 spans");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(
            timestamp(1_544_712_660_000_000_000),
            "2018-12-13T14:51:00.000Z"
        );
        assert_eq!(duration(300_000_000_000 + 300_000_000), "5m 300ms");
        assert_eq!(duration(1_500), "1us 500ns");
    }
}
