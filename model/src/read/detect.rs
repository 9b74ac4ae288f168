//! Recognising a capture by its content: compression by magic bytes, then the format by
//! the first bytes of the decompressed input. A file named `.json` that holds Zipkin,
//! or a `.bin` holding OTLP JSON, still reads: the extension is not consulted.

use std::fmt;

/// How many decompressed bytes detection looks at.
pub(crate) const PEEK_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub(crate) fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The capture formats faultline reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// OTLP JSON: one `ExportTraceServiceRequest` document, or JSON lines of them as the
    /// Collector's file exporter writes (faultline's own capture format).
    OtlpJson,
    /// One raw OTLP protobuf `ExportTraceServiceRequest`, as sent on the wire.
    OtlpProto,
    /// OTLP protobuf messages each behind a 4-byte big-endian length, as the Collector's
    /// file exporter writes with `format: proto`.
    OtlpProtoFramed,
    /// Jaeger JSON: the query API's `{"data": [...]}` or a bare array of spans.
    JaegerJson,
    /// Zipkin v2 JSON: an array of spans.
    ZipkinJson,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::OtlpJson,
        Format::OtlpProto,
        Format::OtlpProtoFramed,
        Format::JaegerJson,
        Format::ZipkinJson,
    ];

    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::OtlpJson => "otlp-json",
            Format::OtlpProto => "otlp-proto",
            Format::OtlpProtoFramed => "otlp-proto-framed",
            Format::JaegerJson => "jaeger-json",
            Format::ZipkinJson => "zipkin-json",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Format::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// Recognises the format from the first bytes of decompressed input.
    pub(crate) fn detect(head: &[u8]) -> Option<Self> {
        let text = skip_bom_and_space(head);
        // An empty capture (nothing arrived while recording) is valid and holds no spans;
        // read it as faultline's own format.
        if text.is_empty() {
            return Some(Format::OtlpJson);
        }
        if let Some(b'{' | b'[') = text.first() {
            return detect_json(text);
        }
        match head.first()? {
            // Field 1 (`resource_spans`), wire type 2: the first byte of every non-empty
            // ExportTraceServiceRequest.
            0x0a => Some(Format::OtlpProto),
            // A big-endian length below 16 MiB starts with a zero byte.
            0x00 if looks_framed(head) => Some(Format::OtlpProtoFramed),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn skip_bom_and_space(head: &[u8]) -> &[u8] {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    &head[start..]
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// JSON formats differ in their key names, which are distinctive enough to decide on.
fn detect_json(text: &[u8]) -> Option<Format> {
    const OTLP_KEYS: [&str; 8] = [
        "\"resourceSpans\"",
        "\"resource_spans\"",
        "\"resourceMetrics\"",
        "\"resource_metrics\"",
        "\"resourceLogs\"",
        "\"resource_logs\"",
        "\"scopeSpans\"",
        "\"scope_spans\"",
    ];
    if OTLP_KEYS.iter().any(|k| contains(text, k)) {
        return Some(Format::OtlpJson);
    }
    if ["\"traceID\"", "\"spanID\"", "\"operationName\""]
        .iter()
        .any(|k| contains(text, k))
    {
        return Some(Format::JaegerJson);
    }
    if text.first() == Some(&b'[') && contains(text, "\"traceId\"") {
        return Some(Format::ZipkinJson);
    }
    // The Jaeger query API's answer when nothing matched: `{"data": null}`, `{"data": []}`.
    if text.first() == Some(&b'{') && contains(text, "\"data\"") {
        return Some(Format::JaegerJson);
    }
    // An empty array holds no spans in either array format.
    if text.first() == Some(&b'[') && skip_bom_and_space(&text[1..]).first() == Some(&b']') {
        return Some(Format::ZipkinJson);
    }
    // An empty OTLP document (`{}`) is what exporters send when they have nothing.
    if text.first() == Some(&b'{')
        && text[1..]
            .iter()
            .all(|b| b.is_ascii_whitespace() || *b == b'}')
    {
        return Some(Format::OtlpJson);
    }
    None
}

/// A framed capture: a 4-byte length, then a message starting with the field-1 tag.
fn looks_framed(head: &[u8]) -> bool {
    match head {
        [a, b, c, d, tag, ..] => {
            let len = u32::from_be_bytes([*a, *b, *c, *d]);
            len > 0 && *tag == 0x0a
        }
        _ => false,
    }
}

/// A short, readable description of input that is no known format.
pub(crate) fn describe_unknown(head: &[u8]) -> String {
    let supported = "expected OTLP JSON or protobuf, Jaeger JSON or Zipkin v2 JSON";
    if head.is_empty() {
        return format!("the input is empty ({supported})");
    }
    let text = skip_bom_and_space(head);
    let shown: String = String::from_utf8_lossy(&text[..text.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    format!("starts with {shown:?} ({supported})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_by_magic() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"{\"resourceSpans\""), Compression::None);
    }

    #[test]
    fn formats_by_content() {
        let d = |s: &[u8]| Format::detect(s);
        assert_eq!(d(b"  {\"resourceSpans\":[]}"), Some(Format::OtlpJson));
        assert_eq!(d(b"{\"resource_spans\":[]}"), Some(Format::OtlpJson));
        assert_eq!(d(b"\xef\xbb\xbf{}"), Some(Format::OtlpJson));
        assert_eq!(
            d(b"{\"data\":[{\"traceID\":\"ab\"}]}"),
            Some(Format::JaegerJson)
        );
        assert_eq!(
            d(b"[{\"traceID\":\"ab\",\"spanID\":\"cd\"}]"),
            Some(Format::JaegerJson)
        );
        assert_eq!(
            d(b"[{\"traceId\":\"ab\",\"id\":\"cd\"}]"),
            Some(Format::ZipkinJson)
        );
        assert_eq!(d(&[0x0a, 0x10]), Some(Format::OtlpProto));
        assert_eq!(d(&[0, 0, 0, 5, 0x0a, 3]), Some(Format::OtlpProtoFramed));
        assert_eq!(d(b""), Some(Format::OtlpJson), "an empty capture is valid");
        assert_eq!(d(b" \n"), Some(Format::OtlpJson));
        assert_eq!(d(b"{\"data\":null,\"total\":0}"), Some(Format::JaegerJson));
        assert_eq!(d(b"{\"data\": []}"), Some(Format::JaegerJson));
        assert_eq!(d(b"[ ]"), Some(Format::ZipkinJson));
        assert_eq!(d(b"hello"), None);
        assert_eq!(d(b"{\"foo\": 1}"), None);
    }

    #[test]
    fn unknown_input_is_described() {
        assert!(describe_unknown(b"").contains("empty"));
        assert!(describe_unknown(b"GIF89a\x01\x02").starts_with("starts with \"GIF89a.."));
    }
}
