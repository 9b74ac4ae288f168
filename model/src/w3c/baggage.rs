//! The `baggage` header (W3C Baggage, https://www.w3.org/TR/baggage/): application
//! key/value pairs that travel with a request, such as faultline's `correlation.id`.
//!
//! ```text
//!  baggage: userId=Am%C3%A9lie;p, correlation.id=3f2a…   (one or more header lines)
//!        │ parse: comma-join lines, split members, percent-decode values (UTF-8)
//!        ▼
//!  Baggage [userId="Amélie" ;p, correlation.id="3f2a…"] ──insert/remove──► Display
//!                                                         (percent-encodes what it must)
//! ```
//!
//! Decisions where the spec leaves a choice (section names are the spec's):
//! - Limits: a header that would exceed 64 list-members or 8192 bytes is cut down by
//!   dropping whole members ("a platform MAY drop list-members until both conditions are
//!   met ... MUST NOT propagate any partial list-members"). We keep members in order and
//!   drop each one that no longer fits, so one oversized member does not cost the small
//!   ones after it. Sizes are those of the header we would send (after re-encoding).
//!   [`Baggage::insert`] refuses instead of dropping someone else's member.
//! - Malformed input: "the behavior is undefined ... it MAY remove an offending
//!   list-member before propagating the rest ... or MAY decide to not propagate the
//!   baggage-string at all." [`Baggage::parse`] rejects the whole header;
//!   [`Baggage::parse_lenient`] drops only the offending members and says which.
//! - Empty list-members (`a=1,,b=2`, or empty header lines) are skipped: the grammar has
//!   none, but joining header lines makes them.
//! - Duplicate keys are kept in order ("The order of duplicate entries SHOULD be
//!   preserved"); [`Baggage::get`] returns the first. [`Baggage::insert`] updates the first
//!   in place and removes the rest ("Duplicate keys MAY be removed").
//! - Encoding: only what must be encoded is (`%`, and every byte outside
//!   `baggage-octet`), to spend as little of the 8192 bytes as possible.

use std::borrow::Cow;
use std::fmt;

/// The header name.
pub const BAGGAGE_HEADER: &str = "baggage";

/// Which part of a list-member an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaggagePart {
    Key,
    Value,
    PropertyKey,
    PropertyValue,
}

impl fmt::Display for BaggagePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BaggagePart::Key => "key",
            BaggagePart::Value => "value",
            BaggagePart::PropertyKey => "property key",
            BaggagePart::PropertyValue => "property value",
        })
    }
}

/// What is wrong with one list-member. Offsets count bytes within the part, after
/// surrounding whitespace is removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaggageMemberError {
    #[error("no '=' between key and value")]
    MissingEquals,
    #[error("{part} is empty")]
    Empty { part: BaggagePart },
    #[error(
        "{part} must be an RFC 7230 token (letters, digits and !#$%&'*+-.^_`|~), found {found:?} \
         at offset {offset}"
    )]
    NotToken {
        part: BaggagePart,
        offset: usize,
        found: char,
    },
    #[error("{part} holds {found:?} at offset {offset}, which must be percent-encoded")]
    NotEncoded {
        part: BaggagePart,
        offset: usize,
        found: char,
    },
}

/// Why baggage was rejected, or (from [`Baggage::parse_lenient`]) which member was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaggageError {
    /// `index` is the member's position in the comma-separated (combined) header,
    /// counting from 0 and including empty members.
    #[error("baggage list-member {index} ({member:?}): {error}")]
    InvalidMember {
        index: usize,
        member: String,
        error: BaggageMemberError,
    },
    #[error(
        "baggage list-member {index} (key {key:?}) dropped: the header would exceed 64 \
         list-members or 8192 bytes"
    )]
    OverLimit { index: usize, key: String },
    #[error(
        "baggage would have {members} list-members and {bytes} bytes; the limits are 64 and 8192"
    )]
    LimitExceeded { members: usize, bytes: usize },
    #[error(transparent)]
    Member(#[from] BaggageMemberError),
}

/// A property of a list-member: `;key` or `;key=value` (value percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaggageProperty {
    key: String,
    value: Option<String>,
}

impl BaggageProperty {
    /// `key` must be a token; `value` is any text (encoded on output).
    pub fn new(key: &str, value: Option<&str>) -> Result<Self, BaggageMemberError> {
        validate_token(key, BaggagePart::PropertyKey)?;
        Ok(BaggageProperty {
            key: key.to_string(),
            value: value.map(str::to_string),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl fmt::Display for BaggageProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        if let Some(value) = &self.value {
            write!(f, "={}", percent_encode(value))?;
        }
        Ok(())
    }
}

/// One list-member: key, percent-decoded value, properties in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaggageMember {
    key: String,
    value: String,
    properties: Vec<BaggageProperty>,
}

impl BaggageMember {
    /// `key` must be a token; `value` is any text (encoded on output).
    pub fn new(key: &str, value: &str) -> Result<Self, BaggageMemberError> {
        validate_token(key, BaggagePart::Key)?;
        Ok(BaggageMember {
            key: key.to_string(),
            value: value.to_string(),
            properties: Vec::new(),
        })
    }

    /// Appends a property.
    pub fn with_property(
        mut self,
        key: &str,
        value: Option<&str>,
    ) -> Result<Self, BaggageMemberError> {
        self.properties.push(BaggageProperty::new(key, value)?);
        Ok(self)
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn properties(&self) -> &[BaggageProperty] {
        &self.properties
    }

    /// Length in bytes of what [`Display`](fmt::Display) writes.
    fn header_len(&self) -> usize {
        self.to_string().len()
    }

    /// Parses one OWS-trimmed, non-empty list-member:
    /// `key OWS "=" OWS value *( OWS ";" OWS property )`.
    fn parse(member: &str) -> Result<Self, BaggageMemberError> {
        let mut parts = member.split(';');
        // `split` always yields at least one item.
        let pair = parts.next().unwrap_or_default();
        let (key, value) = pair
            .split_once('=')
            .ok_or(BaggageMemberError::MissingEquals)?;
        let key = super::trim_ows(key);
        let value = super::trim_ows(value);
        validate_token(key, BaggagePart::Key)?;
        validate_octets(value, BaggagePart::Value)?;
        let mut properties = Vec::new();
        for property in parts {
            let property = super::trim_ows(property);
            // `property = key OWS "=" OWS value / key OWS`. A key-only property is not
            // decoded: `%` is a token character (the suite's
            // `test_parse_property_without_value_no_percent_decoding`).
            let (key, value) = match property.split_once('=') {
                Some((key, value)) => {
                    let value = super::trim_ows(value);
                    validate_octets(value, BaggagePart::PropertyValue)?;
                    (super::trim_ows(key), Some(percent_decode(value)))
                }
                None => (property, None),
            };
            validate_token(key, BaggagePart::PropertyKey)?;
            properties.push(BaggageProperty {
                key: key.to_string(),
                value,
            });
        }
        Ok(BaggageMember {
            key: key.to_string(),
            value: percent_decode(value),
            properties,
        })
    }
}

impl fmt::Display for BaggageMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, percent_encode(&self.value))?;
        for property in &self.properties {
            write!(f, ";{property}")?;
        }
        Ok(())
    }
}

/// W3C baggage: list-members in order, within the limits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Baggage {
    members: Vec<BaggageMember>,
}

impl Baggage {
    /// Limits §"Limits", condition 1.
    pub const MAX_MEMBERS: usize = 64;
    /// Limits §"Limits", condition 2: bytes of the whole `baggage-string`.
    pub const MAX_BYTES: usize = 8192;

    pub fn new() -> Self {
        Baggage::default()
    }

    /// Parses a `baggage` value strictly: any malformed member rejects the whole header.
    /// Members beyond the limits are dropped (see the module doc).
    pub fn parse(header: &str) -> Result<Self, BaggageError> {
        let mut baggage = Baggage::new();
        let mut bytes = 0;
        for (index, raw) in header.split(',').enumerate() {
            let member = super::trim_ows(raw);
            if member.is_empty() {
                continue;
            }
            let parsed =
                BaggageMember::parse(member).map_err(|error| BaggageError::InvalidMember {
                    index,
                    member: member.to_string(),
                    error,
                })?;
            // Over the limits: dropped, which the spec allows.
            let _ = baggage.push_within_limits(parsed, &mut bytes);
        }
        Ok(baggage)
    }

    /// Parses a `baggage` value keeping every well-formed member that fits the limits;
    /// the errors list each member dropped and why.
    pub fn parse_lenient(header: &str) -> (Self, Vec<BaggageError>) {
        let mut baggage = Baggage::new();
        let mut dropped = Vec::new();
        let mut bytes = 0;
        for (index, raw) in header.split(',').enumerate() {
            let member = super::trim_ows(raw);
            if member.is_empty() {
                continue;
            }
            match BaggageMember::parse(member) {
                Ok(parsed) => {
                    if let Err(key) = baggage.push_within_limits(parsed, &mut bytes) {
                        dropped.push(BaggageError::OverLimit { index, key });
                    }
                }
                Err(error) => dropped.push(BaggageError::InvalidMember {
                    index,
                    member: member.to_string(),
                    error,
                }),
            }
        }
        (baggage, dropped)
    }

    /// [`parse`](Self::parse) over all `baggage` header lines of a request: "all limits
    /// apply to the combination of all baggage headers".
    pub fn parse_headers<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, BaggageError> {
        Baggage::parse(&values.into_iter().collect::<Vec<_>>().join(","))
    }

    /// [`parse_lenient`](Self::parse_lenient) over all `baggage` header lines of a request.
    pub fn parse_headers_lenient<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> (Self, Vec<BaggageError>) {
        Baggage::parse_lenient(&values.into_iter().collect::<Vec<_>>().join(","))
    }

    /// Appends `member` if the result stays within both limits; `bytes` is the running
    /// header length. On refusal, hands back the member's key.
    fn push_within_limits(
        &mut self,
        member: BaggageMember,
        bytes: &mut usize,
    ) -> Result<(), String> {
        let separator = usize::from(!self.members.is_empty());
        let grown = *bytes + separator + member.header_len();
        if self.members.len() >= Self::MAX_MEMBERS || grown > Self::MAX_BYTES {
            return Err(member.key);
        }
        *bytes = grown;
        self.members.push(member);
        Ok(())
    }

    /// The (decoded) value of the first member with this key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.member(key).map(BaggageMember::value)
    }

    /// The first member with this key, with its properties.
    pub fn member(&self, key: &str) -> Option<&BaggageMember> {
        self.members.iter().find(|m| m.key == key)
    }

    /// Sets `key` to `value` (without properties); see [`insert_member`](Self::insert_member).
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), BaggageError> {
        self.insert_member(BaggageMember::new(key, value)?)
    }

    /// Replaces the first member with the same key (keeping its position and dropping
    /// later duplicates), or appends. Refuses, leaving the baggage unchanged, if the
    /// result would exceed 64 members or 8192 bytes.
    pub fn insert_member(&mut self, member: BaggageMember) -> Result<(), BaggageError> {
        let mut members = self.members.clone();
        match members.iter().position(|m| m.key == member.key) {
            Some(at) => {
                let key = member.key.clone();
                members[at] = member;
                let mut seen = 0;
                members.retain(|m| {
                    seen += usize::from(m.key == key);
                    m.key != key || seen == 1
                });
            }
            None => members.push(member),
        }
        let candidate = Baggage { members };
        let bytes = candidate.header_len();
        if candidate.members.len() > Self::MAX_MEMBERS || bytes > Self::MAX_BYTES {
            return Err(BaggageError::LimitExceeded {
                members: candidate.members.len(),
                bytes,
            });
        }
        *self = candidate;
        Ok(())
    }

    /// Removes every member with this key; returns the first of them.
    pub fn remove(&mut self, key: &str) -> Option<BaggageMember> {
        let at = self.members.iter().position(|m| m.key == key)?;
        let first = self.members.remove(at);
        self.members.retain(|m| m.key != key);
        Some(first)
    }

    pub fn iter(&self) -> impl Iterator<Item = &BaggageMember> {
        self.members.iter()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Length in bytes of the header [`Display`](fmt::Display) writes.
    pub fn header_len(&self) -> usize {
        let members: usize = self.members.iter().map(BaggageMember::header_len).sum();
        members + self.members.len().saturating_sub(1)
    }
}

impl fmt::Display for Baggage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, member) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{member}")?;
        }
        Ok(())
    }
}

/// RFC 7230 §3.2.6 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// `baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`: printable ASCII but
/// space, `"`, `,`, `;` and `\`.
fn is_baggage_octet(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

fn validate_token(text: &str, part: BaggagePart) -> Result<(), BaggageMemberError> {
    if text.is_empty() {
        return Err(BaggageMemberError::Empty { part });
    }
    match text.char_indices().find(|&(_, c)| !is_tchar(c)) {
        Some((offset, found)) => Err(BaggageMemberError::NotToken {
            part,
            offset,
            found,
        }),
        None => Ok(()),
    }
}

fn validate_octets(text: &str, part: BaggagePart) -> Result<(), BaggageMemberError> {
    match text
        .char_indices()
        .find(|&(_, c)| !u8::try_from(c).is_ok_and(is_baggage_octet))
    {
        Some((offset, found)) => Err(BaggageMemberError::NotEncoded {
            part,
            offset,
            found,
        }),
        None => Ok(()),
    }
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986 §2.1 percent-encoding of every UTF-8 byte that is not a `baggage-octet`,
/// and of `%` ("The percent code point (U+0025) MUST be percent-encoded").
fn percent_encode(text: &str) -> Cow<'_, str> {
    let plain = |b: u8| is_baggage_octet(b) && b != b'%';
    if text.bytes().all(plain) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for byte in text.bytes() {
        if plain(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(UPPER_HEX[usize::from(byte >> 4)]));
            out.push(char::from(UPPER_HEX[usize::from(byte & 0xf)]));
        }
    }
    Cow::Owned(out)
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes `%XX` sequences (either case). Sequences that are not valid UTF-8 become
/// U+FFFD, as the spec's §value requires. A `%` not followed by two hex digits is kept
/// as it is: `%` is a `baggage-octet`, so such a value is well-formed, if unusual.
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes[i..] {
            [b'%', hi, lo, ..] => hex_value(hi).zip(hex_value(lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
