//! Correlation ids: one id per logical request, chosen at the edge and carried through
//! every hop, so that analyzers can group spans, logs and DLQ entries of one request even
//! when trace ids were restarted on the way.
//!
//! ```text
//!  x-correlation-id ─┐ (first present wins;
//!  x-request-id ─────┼─ an invalid one is replaced) ─► CorrelationId ─┬─► baggage correlation.id
//!  baggage correlation.id ─┘      none present: generated          └─► span attribute correlation.id
//! ```

use std::fmt;
use std::str::FromStr;

use super::baggage::{BAGGAGE_HEADER, Baggage, BaggageError};

/// faultline's correlation header.
pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// Accepted when [`CORRELATION_HEADER`] is absent; many proxies already set it.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The baggage key the id travels under.
pub const BAGGAGE_KEY: &str = "correlation.id";
/// The span attribute analyzers read.
pub const SPAN_ATTRIBUTE: &str = "correlation.id";

/// Why a correlation id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorrelationIdError {
    #[error("correlation id is empty")]
    Empty,
    #[error("correlation id is {len} characters; at most 128 are allowed")]
    TooLong { len: usize },
    #[error(
        "correlation id may only hold printable ASCII without spaces or commas, found {found:?} \
         at offset {offset}"
    )]
    InvalidChar { offset: usize, found: char },
}

/// A valid correlation id: 1 to 128 printable ASCII characters, no space, no comma
/// (a comma would split it when header lines are joined).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CorrelationId(String);

impl CorrelationId {
    pub const MAX_LEN: usize = 128;

    /// Checks an incoming id; spaces and tabs around it are not part of it.
    pub fn parse(text: &str) -> Result<Self, CorrelationIdError> {
        let text = super::trim_ows(text);
        if text.is_empty() {
            return Err(CorrelationIdError::Empty);
        }
        if let Some((offset, found)) = text
            .char_indices()
            .find(|&(_, c)| !matches!(c, '!'..='~') || c == ',')
        {
            return Err(CorrelationIdError::InvalidChar { offset, found });
        }
        // ASCII only by now, so bytes are characters.
        if text.len() > Self::MAX_LEN {
            return Err(CorrelationIdError::TooLong { len: text.len() });
        }
        Ok(CorrelationId(text.to_string()))
    }

    /// A fresh id shaped like a UUID v4 (`8-4-4-4-12` lowercase hex, version nibble 4,
    /// RFC 4122 variant), from 122 random bits.
    pub fn generate() -> Self {
        let mut bytes: [u8; 16] = rand::random();
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        // One allocation: this runs for every request that arrives without an id.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = String::with_capacity(36);
        for (i, b) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                id.push('-');
            }
            id.push(char::from(HEX[usize::from(b >> 4)]));
            id.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        CorrelationId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Sets [`BAGGAGE_KEY`] in `baggage` to this id, so that the next hop gets it even if
    /// it only propagates W3C headers.
    pub fn set_in_baggage(&self, baggage: &mut Baggage) -> Result<(), BaggageError> {
        baggage.insert(BAGGAGE_KEY, &self.0)
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CorrelationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for CorrelationId {
    type Err = CorrelationIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CorrelationId::parse(s)
    }
}

/// Where a request's correlation id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorrelationSource {
    /// The `x-correlation-id` header.
    CorrelationHeader,
    /// The `x-request-id` header (no `x-correlation-id`).
    RequestIdHeader,
    /// `correlation.id` in the `baggage` header (neither header above).
    Baggage,
    /// Made here: nothing came in, or what came in was invalid.
    Generated,
}

impl fmt::Display for CorrelationSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CorrelationSource::CorrelationHeader => CORRELATION_HEADER,
            CorrelationSource::RequestIdHeader => REQUEST_ID_HEADER,
            CorrelationSource::Baggage => "baggage correlation.id",
            CorrelationSource::Generated => "generated",
        })
    }
}

/// An incoming id that was invalid and replaced by a generated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedCorrelationId {
    pub source: CorrelationSource,
    pub value: String,
    pub error: CorrelationIdError,
}

/// The correlation id a request carries from here on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    pub id: CorrelationId,
    pub source: CorrelationSource,
    /// Set when an incoming id was invalid; `source` is then [`CorrelationSource::Generated`].
    pub replaced: Option<RejectedCorrelationId>,
}

/// Picks the correlation id for a request from its headers, given as (name, value) pairs
/// with names in any case: `x-correlation-id`, else `x-request-id`, else `correlation.id`
/// in `baggage`, else a generated one. The first of these present is the one used; if it
/// is invalid it is replaced by a generated id (and reported in
/// [`Correlation::replaced`]) rather than falling through to the next, so that two hops
/// never disagree about which header counted. Of several lines of one header, the first
/// is used.
pub fn resolve_correlation<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Correlation {
    let mut correlation_header = None;
    let mut request_id_header = None;
    let mut baggage_lines = Vec::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(CORRELATION_HEADER) {
            correlation_header.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(REQUEST_ID_HEADER) {
            request_id_header.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(BAGGAGE_HEADER) {
            baggage_lines.push(value);
        }
    }

    let from_baggage = || {
        // Lenient: a malformed member elsewhere in baggage must not cost us the id.
        let (baggage, _) = Baggage::parse_headers_lenient(baggage_lines.iter().copied());
        baggage.get(BAGGAGE_KEY).map(str::to_string)
    };
    let incoming = match (correlation_header, request_id_header) {
        (Some(value), _) => Some((CorrelationSource::CorrelationHeader, value.to_string())),
        (None, Some(value)) => Some((CorrelationSource::RequestIdHeader, value.to_string())),
        (None, None) => from_baggage().map(|value| (CorrelationSource::Baggage, value)),
    };

    match incoming {
        None => Correlation {
            id: CorrelationId::generate(),
            source: CorrelationSource::Generated,
            replaced: None,
        },
        Some((source, value)) => match CorrelationId::parse(&value) {
            Ok(id) => Correlation {
                id,
                source,
                replaced: None,
            },
            Err(error) => Correlation {
                id: CorrelationId::generate(),
                source: CorrelationSource::Generated,
                replaced: Some(RejectedCorrelationId {
                    source,
                    value,
                    error,
                }),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_uuid_v4_shaped(text: &str) -> bool {
        let groups: Vec<&str> = text.split('-').collect();
        groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && groups
                .iter()
                .all(|g| g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            && groups[2].starts_with('4')
            && matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
    }

    #[test]
    fn generated_ids_are_uuid_v4_shaped_lowercase_and_distinct() {
        let a = CorrelationId::generate();
        let b = CorrelationId::generate();
        for id in [&a, &b] {
            assert!(is_uuid_v4_shaped(id.as_str()), "{id}");
            assert_eq!(id.as_str().len(), 36);
            // What we make, we accept.
            assert_eq!(CorrelationId::parse(id.as_str()).as_ref(), Ok(id));
        }
        assert_ne!(a, b);
    }

    #[test]
    fn valid_ids_are_kept_as_they_are() {
        for text in ["abc", "A-1_b.c:d/e", "x", "!~", &"z".repeat(128)] {
            assert_eq!(
                CorrelationId::parse(text).map(|id| id.to_string()),
                Ok(text.to_string())
            );
        }
        assert_eq!(CorrelationId::parse(" \tabc\t ").unwrap().as_str(), "abc");
        assert_eq!("req-7".parse::<CorrelationId>().unwrap().as_ref(), "req-7");
    }

    #[test]
    fn invalid_ids_are_rejected_with_the_reason() {
        assert_eq!(CorrelationId::parse(""), Err(CorrelationIdError::Empty));
        assert_eq!(CorrelationId::parse("  "), Err(CorrelationIdError::Empty));
        assert_eq!(
            CorrelationId::parse(&"z".repeat(129)),
            Err(CorrelationIdError::TooLong { len: 129 })
        );
        assert_eq!(
            CorrelationId::parse("a b"),
            Err(CorrelationIdError::InvalidChar {
                offset: 1,
                found: ' '
            })
        );
        assert_eq!(
            CorrelationId::parse("a,b"),
            Err(CorrelationIdError::InvalidChar {
                offset: 1,
                found: ','
            })
        );
        assert_eq!(
            CorrelationId::parse("a\tb"),
            Err(CorrelationIdError::InvalidChar {
                offset: 1,
                found: '\t'
            })
        );
        assert_eq!(
            CorrelationId::parse("ab\u{7f}"),
            Err(CorrelationIdError::InvalidChar {
                offset: 2,
                found: '\u{7f}'
            })
        );
        assert_eq!(
            CorrelationId::parse("é"),
            Err(CorrelationIdError::InvalidChar {
                offset: 0,
                found: 'é'
            })
        );
    }

    #[test]
    fn correlation_header_comes_first() {
        let c = resolve_correlation([
            ("x-request-id", "from-request-id"),
            ("X-Correlation-ID", "from-correlation"),
            ("baggage", "correlation.id=from-baggage"),
        ]);
        assert_eq!(c.id.as_str(), "from-correlation");
        assert_eq!(c.source, CorrelationSource::CorrelationHeader);
        assert_eq!(c.replaced, None);
    }

    #[test]
    fn request_id_is_used_when_correlation_header_is_absent() {
        let c = resolve_correlation([
            ("X-REQUEST-ID", "req-1"),
            ("baggage", "correlation.id=from-baggage"),
        ]);
        assert_eq!(c.id.as_str(), "req-1");
        assert_eq!(c.source, CorrelationSource::RequestIdHeader);
    }

    #[test]
    fn baggage_is_used_when_both_headers_are_absent() {
        let c = resolve_correlation([
            (
                "traceparent",
                "00-12345678901234567890123456789012-1234567890123456-01",
            ),
            ("Baggage", "userId=alice, not a member"),
            ("baggage", "correlation.id=ord%2F42;origin=edge"),
        ]);
        assert_eq!(c.id.as_str(), "ord/42");
        assert_eq!(c.source, CorrelationSource::Baggage);
    }

    #[test]
    fn an_id_is_generated_when_none_came_in() {
        let c = resolve_correlation([("content-type", "text/plain"), ("baggage", "userId=alice")]);
        assert_eq!(c.source, CorrelationSource::Generated);
        assert_eq!(c.replaced, None);
        assert!(is_uuid_v4_shaped(c.id.as_str()));
        assert_eq!(resolve_correlation([]).source, CorrelationSource::Generated);
    }

    #[test]
    fn an_invalid_incoming_id_is_replaced_and_reported() {
        let c = resolve_correlation([("x-correlation-id", "has space"), ("x-request-id", "req-1")]);
        assert_eq!(c.source, CorrelationSource::Generated);
        assert!(is_uuid_v4_shaped(c.id.as_str()));
        assert_eq!(
            c.replaced,
            Some(RejectedCorrelationId {
                source: CorrelationSource::CorrelationHeader,
                value: "has space".into(),
                error: CorrelationIdError::InvalidChar {
                    offset: 3,
                    found: ' '
                },
            })
        );
        let long = "r".repeat(200);
        let c = resolve_correlation([("x-request-id", long.as_str())]);
        assert_eq!(
            c.replaced.map(|r| (r.source, r.error)),
            Some((
                CorrelationSource::RequestIdHeader,
                CorrelationIdError::TooLong { len: 200 }
            ))
        );
        let c = resolve_correlation([("baggage", "correlation.id=a%2Cb")]);
        assert_eq!(
            c.replaced.map(|r| (r.source, r.value)),
            Some((CorrelationSource::Baggage, "a,b".to_string()))
        );
    }

    #[test]
    fn the_first_of_repeated_header_lines_is_used() {
        let c = resolve_correlation([
            ("x-correlation-id", "first"),
            ("x-correlation-id", "second"),
        ]);
        assert_eq!(c.id.as_str(), "first");
    }

    #[test]
    fn the_id_goes_into_baggage_under_its_key() {
        let mut baggage = Baggage::parse("userId=alice,correlation.id=old").unwrap();
        let id = CorrelationId::parse("ord-42").unwrap();
        id.set_in_baggage(&mut baggage).unwrap();
        assert_eq!(baggage.to_string(), "userId=alice,correlation.id=ord-42");
        // ... and comes back out of it.
        let header = baggage.to_string();
        assert_eq!(resolve_correlation([("baggage", header.as_str())]).id, id);
    }

    #[test]
    fn constants_are_the_documented_names() {
        assert_eq!(CORRELATION_HEADER, "x-correlation-id");
        assert_eq!(REQUEST_ID_HEADER, "x-request-id");
        assert_eq!(BAGGAGE_KEY, "correlation.id");
        assert_eq!(SPAN_ATTRIBUTE, "correlation.id");
        assert_eq!(
            CorrelationSource::RequestIdHeader.to_string(),
            "x-request-id"
        );
    }
}
