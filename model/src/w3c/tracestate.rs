//! The `tracestate` header (W3C Trace Context Level 2, §3.3): each tracing system's own
//! entry for the request, newest (the one that wrote `traceparent`) on the left.
//!
//! ```text
//!  tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE     (one or more header lines)
//!        │ parse_headers: comma-join the lines (§3.3.2, RFC 9110 §5.3)
//!        ▼
//!  TraceState [rojo, congo] ──insert("ours", v)──► [ours, rojo, congo] ──► Display
//! ```
//!
//! Decisions where the spec leaves a choice:
//! - An invalid list-member (bad key or value, no `=`) or more than 32 list-members make
//!   [`TraceState::parse`] fail, and the caller drops the whole header. §4.1.2 step 3
//!   allows discarding the entire header or only invalid entries; we discard all of it
//!   because the W3C test suite (strict level 2: `test_tracestate_key_illegal_characters`,
//!   `test_tracestate_value_illegal_characters`, `test_tracestate_member_count_limit`)
//!   expects exactly that, and because a header that breaks the grammar in one place
//!   cannot be trusted to have been split correctly elsewhere.
//! - A key that appears twice keeps its left-most (most recent) entry and later ones are
//!   dropped: §3.5 says vendors "MAY also discard duplicate keys that were not generated
//!   by them", and the test suite's `test_tracestate_duplicated_keys` expects the header
//!   to be kept rather than discarded.
//! - Empty and whitespace-only list-members are skipped and do not count toward the 32
//!   (§3.3.2: they are allowed because joining header lines produces them).
//! - The key grammar is Level 2's (§3.3.2.2.1): `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`
//!   where `keychar` includes `@`. Level 1's separate `tenant@system` form is gone: Level 2
//!   accepts `foo@`, `foo@@bar` and `foo@bar@baz` and rejects only a leading `@`.

use std::fmt;

/// The header name. Names are ASCII case-insensitive (§3.3.1); this is how we send it.
pub const TRACESTATE_HEADER: &str = "tracestate";
/// What is wrong with one list-member (key/value pair).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceStateMemberError {
    #[error("no '=' between key and value")]
    MissingEquals,
    #[error("key is empty")]
    EmptyKey,
    #[error("key is {len} characters; at most 256 are allowed")]
    KeyTooLong { len: usize },
    #[error("key must start with a lowercase letter or a digit, found {found:?}")]
    KeyStart { found: char },
    #[error(
        "key may only hold a-z, 0-9, '_', '-', '*', '/' and '@', found {found:?} at offset {offset}"
    )]
    KeyChar { offset: usize, found: char },
    #[error("value is empty")]
    EmptyValue,
    #[error("value is {len} characters; at most 256 are allowed")]
    ValueTooLong { len: usize },
    #[error(
        "value may only hold printable ASCII other than ',' and '=', found {found:?} at offset \
         {offset}"
    )]
    ValueChar { offset: usize, found: char },
    #[error("value must not end with a space")]
    ValueEndsWithSpace,
}

/// Why a `tracestate` header was rejected as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceStateError {
    #[error("tracestate has {found} list-members; at most 32 are allowed")]
    TooManyMembers { found: usize },
    /// `index` is the member's position in the comma-separated (combined) header,
    /// counting from 0 and including empty members.
    #[error("tracestate list-member {index} ({member:?}): {error}")]
    InvalidMember {
        index: usize,
        member: String,
        error: TraceStateMemberError,
    },
}

/// A `tracestate` list: key/value entries, left-most first, keys unique.
///
/// Fields are private so that every entry always satisfies the grammar, there are at
/// most 32 of them and keys are unique; [`Display`](fmt::Display) is then always a valid
/// header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceState {
    entries: Vec<(String, String)>,
}

impl TraceState {
    /// §3.3.2: "There can be a maximum of 32 list-members in a list."
    pub const MAX_MEMBERS: usize = 32;
    /// §3.3.2.2.1: a key has up to 256 characters.
    pub const MAX_KEY_LEN: usize = 256;
    /// §3.3.2.2.2: a value has up to 256 characters.
    pub const MAX_VALUE_LEN: usize = 256;
    /// §3.3.3.1 tracestate Limits: "Vendors SHOULD propagate at least 512 characters of a
    /// combined header."
    pub const MIN_PROPAGATED_LEN: usize = 512;
    /// §3.3.3.1: when truncating for size, "Entries larger than 128 characters long SHOULD be
    /// removed first."
    pub const LONG_ENTRY_LEN: usize = 128;

    pub fn new() -> Self {
        TraceState::default()
    }

    /// Parses one `tracestate` value (or several already joined with `,`).
    pub fn parse(header: &str) -> Result<Self, TraceStateError> {
        let mut entries: Vec<(String, String)> = Vec::new();
        let mut members = 0;
        for (index, raw) in header.split(',').enumerate() {
            // §3.3.2: "Spaces and horizontal tabs surrounding list-members are ignored."
            // Trailing spaces of a value are that whitespace; leading spaces of a value
            // sit after '=', so trimming the member keeps them, as §3.3.2.2.2 requires.
            let member = super::trim_ows(raw);
            if member.is_empty() {
                continue;
            }
            members += 1;
            let (key, value) =
                split_member(member).map_err(|error| TraceStateError::InvalidMember {
                    index,
                    member: member.to_string(),
                    error,
                })?;
            if entries.iter().all(|(k, _)| k != key) {
                entries.push((key.to_string(), value.to_string()));
            }
        }
        if members > Self::MAX_MEMBERS {
            return Err(TraceStateError::TooManyMembers { found: members });
        }
        Ok(TraceState { entries })
    }

    /// Parses all `tracestate` header lines of one request, in order. §3.3.2: multiple
    /// lines "MUST be combined into a single header according to RFC9110", that is
    /// joined with commas; limits apply to the combination.
    pub fn parse_headers<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, TraceStateError> {
        let combined = values.into_iter().collect::<Vec<_>>().join(",");
        TraceState::parse(&combined)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Adds or updates `key` and moves it to the left (§3.5: "Modified keys MUST be moved
    /// to the beginning (left) of the list"; new pairs "SHOULD be added to the
    /// beginning"). If that makes 33 entries the right-most is removed (§3.3.2).
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), TraceStateMemberError> {
        validate_key(key)?;
        validate_value(value)?;
        self.entries.retain(|(k, _)| k != key);
        self.entries.insert(0, (key.to_string(), value.to_string()));
        self.entries.truncate(Self::MAX_MEMBERS);
        Ok(())
    }

    /// Removes `key`, returning its value. §3.5: vendors SHOULD NOT delete keys they did
    /// not generate.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(at).1)
    }

    /// Entries as (key, value), left-most first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// §3.3.2: vendors "SHOULD avoid sending" an empty header; check this first.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Truncates whole entries until the header is at most `max_len` characters, the way
    /// §3.3.3.1 tracestate Limits says: entries longer than 128 characters go first (the
    /// right-most of them first), then entries from the right. Returns how many were
    /// removed. A limit below [`Self::MIN_PROPAGATED_LEN`] goes against the spec's SHOULD.
    pub fn truncate_to_len(&mut self, max_len: usize) -> usize {
        let before = self.entries.len();
        while self.header_len() > max_len {
            let long = self
                .entries
                .iter()
                .rposition(|(k, v)| k.len() + 1 + v.len() > Self::LONG_ENTRY_LEN);
            match long {
                Some(at) => {
                    self.entries.remove(at);
                }
                None => {
                    self.entries.pop();
                }
            }
        }
        before - self.entries.len()
    }

    /// Length of the header [`Display`](fmt::Display) writes.
    pub fn header_len(&self) -> usize {
        let members: usize = self
            .entries
            .iter()
            .map(|(k, v)| k.len() + 1 + v.len())
            .sum();
        members + self.entries.len().saturating_sub(1)
    }
}

/// `key=value,key=value`: no optional whitespace, as §3.3.2 prefers ("otherwise, a caller
/// SHOULD NOT generate optional whitespace").
impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

/// Splits an OWS-trimmed, non-empty list-member at its first `=` and checks both sides.
fn split_member(member: &str) -> Result<(&str, &str), TraceStateMemberError> {
    let (key, value) = member
        .split_once('=')
        .ok_or(TraceStateMemberError::MissingEquals)?;
    validate_key(key)?;
    validate_value(value)?;
    Ok((key, value))
}

fn is_lcalpha_or_digit(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// §3.3.2.2.1: `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`,
/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`.
fn validate_key(key: &str) -> Result<(), TraceStateMemberError> {
    let mut chars = key.char_indices();
    let Some((_, first)) = chars.next() else {
        return Err(TraceStateMemberError::EmptyKey);
    };
    if !is_lcalpha_or_digit(first) {
        return Err(TraceStateMemberError::KeyStart { found: first });
    }
    if let Some((offset, found)) =
        chars.find(|&(_, c)| !(is_lcalpha_or_digit(c) || matches!(c, '_' | '-' | '*' | '/' | '@')))
    {
        return Err(TraceStateMemberError::KeyChar { offset, found });
    }
    // All characters are ASCII now, so bytes are characters.
    if key.len() > TraceState::MAX_KEY_LEN {
        return Err(TraceStateMemberError::KeyTooLong { len: key.len() });
    }
    Ok(())
}

/// §3.3.2.2.2: `value = 0*255(chr) nblk-chr`, `nblk-chr = %x21-2B / %x2D-3C / %x3E-7E`,
/// `chr = %x20 / nblk-chr`.
fn validate_value(value: &str) -> Result<(), TraceStateMemberError> {
    if value.is_empty() {
        return Err(TraceStateMemberError::EmptyValue);
    }
    if let Some((offset, found)) = value
        .char_indices()
        .find(|&(_, c)| !matches!(c, ' '..='~') || c == ',' || c == '=')
    {
        return Err(TraceStateMemberError::ValueChar { offset, found });
    }
    if value.len() > TraceState::MAX_VALUE_LEN {
        return Err(TraceStateMemberError::ValueTooLong { len: value.len() });
    }
    if value.ends_with(' ') {
        return Err(TraceStateMemberError::ValueEndsWithSpace);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
