//! Writing the Prometheus text exposition format 0.0.4, shared by every `/metrics`
//! faultline serves (the agents' and the nodes').
//!
//! ```text
//!  family(out, "faultline_raft_", "term", "gauge", "…")   ─► # HELP / # TYPE lines
//!  sample(out, "faultline_raft_", "term", &[("node", "node-1")], 7) ─► faultline_raft_term{node="node-1"} 7
//! ```

use std::fmt::Write as _;

/// `# HELP` and `# TYPE` for metric `{prefix}{name}`. Help texts are constants without
/// `\` or newlines, so they need no escaping.
pub fn family(out: &mut String, prefix: &str, name: &str, kind: &str, help: &str) {
    // Writing to a `String` cannot fail.
    let _ = writeln!(out, "# HELP {prefix}{name} {help}");
    let _ = writeln!(out, "# TYPE {prefix}{name} {kind}");
}

/// One sample line of metric `{prefix}{name}`, label values escaped.
pub fn sample(
    out: &mut String,
    prefix: &str,
    name: &str,
    labels: &[(&str, &str)],
    value: impl std::fmt::Display,
) {
    out.push_str(prefix);
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (index, (label, value)) in labels.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value(value, out);
            out.push('"');
        }
        out.push('}');
    }
    // Writing to a `String` cannot fail.
    let _ = writeln!(out, " {value}");
}

/// Label values escape `\`, `"` and newline (format 0.0.4).
pub fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_samples_are_written_with_escaped_labels() {
        let mut out = String::new();
        family(&mut out, "x_", "up", "gauge", "Whether it is up.");
        sample(&mut out, "x_", "up", &[], 1);
        sample(&mut out, "x_", "up", &[("a", "q\"\\\n"), ("b", "c")], 0.5);
        assert_eq!(
            out,
            "# HELP x_up Whether it is up.\n# TYPE x_up gauge\nx_up 1\nx_up{a=\"q\\\"\\\\\\n\",b=\"c\"} 0.5\n"
        );
    }
}
