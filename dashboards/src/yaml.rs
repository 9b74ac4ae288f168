//! The little YAML the exports write: block mappings and sequences whose scalars are
//! all double-quoted, so no value can be mistaken for a number, a boolean, a comment
//! or more structure, whatever it holds.

use std::fmt::Write as _;

/// `text` as a YAML double-quoted scalar. The escapes are JSON's, which YAML shares,
/// plus the characters YAML would otherwise fold as line breaks (NEL, LS, PS) and the
/// byte-order mark.
pub(crate) fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A flow sequence of quoted scalars: `["a", "b"]`.
pub(crate) fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(quoted).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_yaml_would_read_otherwise() {
        assert_eq!(quoted("plain"), r#""plain""#);
        assert_eq!(
            quoted(r#"{{ printf "%.3g" $value }}"#),
            r#""{{ printf \"%.3g\" $value }}""#
        );
        assert_eq!(quoted("a\\.b"), r#""a\\.b""#);
        assert_eq!(quoted("two\nlines\t"), r#""two\nlines\t""#);
        assert_eq!(quoted("\u{1}\u{85}\u{2028}"), r#""\u0001\u0085\u2028""#);
        // Not special inside double quotes: kept as they are.
        assert_eq!(
            quoted("# not a comment: yes → 1e3 ×"),
            "\"# not a comment: yes → 1e3 ×\""
        );
        assert_eq!(list(["a", "b\""]), r#"["a", "b\""]"#);
    }
}
