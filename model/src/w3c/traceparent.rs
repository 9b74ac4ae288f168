//! The `traceparent` header (W3C Trace Context Level 2, §3.2): which trace a request
//! belongs to, which span sent it, and the caller's sampling decision.
//!
//! ```text
//!  incoming request ── traceparent ──► TraceParent::parse ──► the agent's / node's span
//!                                            │                 (same trace id, parent = caller)
//!  outgoing request ◄── Display (always v00) ◄── with_parent(the new span's id)
//! ```
//!
//! Parsing is strict where the spec is: lowercase hex only (§3.2.2 `HEXDIGLC`), all-zero
//! ids rejected (§3.2.2.3, §3.2.2.4), version `ff` rejected (§3.2.2.1), version `00` exactly
//! 55 characters. Higher versions are read as the spec's §3.2.4 "Versioning of traceparent"
//! says: the first 55 characters as version-00 fields, then either the end or a `-`.
//! Spaces and tabs around the whole value are not part of it (RFC 9110 §5.5 field values;
//! the W3C test suite's `test_traceparent_ows_handling`).

use std::fmt;
use std::str::FromStr;

use crate::span::{SpanId, TraceId};

/// The header name. Names are ASCII case-insensitive (§3.2.1); this is how we send it.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The only version this implementation writes, and the length of its header:
/// `2 + 1 + 32 + 1 + 16 + 1 + 2`.
const VERSION_00_LEN: usize = 55;
const TRACE_ID_AT: usize = 3;
const PARENT_ID_AT: usize = 36;
const FLAGS_AT: usize = 53;

/// The 8-bit `trace-flags` field, holding only the bits Level 2 defines.
///
/// Unknown bits are dropped when a header is parsed: §3.2.2.5.3 "Other Flags" says
/// vendors MUST set them to zero, and the processing model (§4.1.2, step 2.2) says
/// "Vendors will set all unparsed / unknown trace-flags to 0 on outgoing requests".
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceFlags(u8);

impl TraceFlags {
    /// No flags set: not sampled, trace id not known to be random.
    pub const NONE: TraceFlags = TraceFlags(0);
    /// §3.2.2.5.1: the caller may have recorded trace data.
    pub const SAMPLED: TraceFlags = TraceFlags(0x01);
    /// §3.2.2.5.2 (Level 2): at least the right-most 7 bytes of the trace id are random.
    pub const RANDOM_TRACE_ID: TraceFlags = TraceFlags(0x02);
    const KNOWN: u8 = 0x03;

    /// Keeps the known bits of `bits` and zeroes the rest.
    pub const fn from_bits_truncate(bits: u8) -> Self {
        TraceFlags(bits & Self::KNOWN)
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn sampled(self) -> bool {
        self.0 & Self::SAMPLED.0 != 0
    }

    pub const fn random_trace_id(self) -> bool {
        self.0 & Self::RANDOM_TRACE_ID.0 != 0
    }

    pub const fn with_sampled(self, sampled: bool) -> Self {
        if sampled {
            TraceFlags(self.0 | Self::SAMPLED.0)
        } else {
            TraceFlags(self.0 & !Self::SAMPLED.0)
        }
    }
}

impl fmt::Debug for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TraceFlags({:02x}: sampled={}, random_trace_id={})",
            self.0,
            self.sampled(),
            self.random_trace_id()
        )
    }
}

impl fmt::Display for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

/// A field of the `traceparent` header, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceParentField {
    Version,
    TraceId,
    ParentId,
    TraceFlags,
}

impl fmt::Display for TraceParentField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceParentField::Version => "version",
            TraceParentField::TraceId => "trace-id",
            TraceParentField::ParentId => "parent-id",
            TraceParentField::TraceFlags => "trace-flags",
        })
    }
}

/// Why a `traceparent` value was rejected. Every case means the same thing to a
/// vendor (§4.1.2: ignore the header, restart the trace, drop `tracestate`); the
/// variants exist so that a user debugging an incident learns *what* was wrong.
/// Offsets count bytes from the start of the value after surrounding spaces and tabs
/// are removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceParentError {
    #[error("traceparent is empty")]
    Empty,
    #[error(
        "traceparent must start with a version of two lowercase hex digits and '-', \
         found {found:?}"
    )]
    MalformedVersion { found: String },
    #[error("traceparent version ff is forbidden")]
    ForbiddenVersion,
    #[error(
        "traceparent is {found} characters; version 00 has exactly 55 and later versions \
         at least 55"
    )]
    TooShort { found: usize },
    #[error("version 00 traceparent must end after trace-flags at offset 55, found {found:?}")]
    TrailingData { found: char },
    #[error("expected '-' after {after} at offset {offset}, found {found:?}")]
    MissingDelimiter {
        after: TraceParentField,
        offset: usize,
        found: char,
    },
    #[error("{field} must be lowercase hex digits, found {found:?} at offset {offset}")]
    NotLowercaseHex {
        field: TraceParentField,
        offset: usize,
        found: char,
    },
    #[error("trace-id is all zeros, which is invalid")]
    ZeroTraceId,
    #[error("parent-id is all zeros, which is invalid")]
    ZeroParentId,
    #[error("{count} traceparent headers; exactly one is allowed")]
    Duplicated { count: usize },
}

/// A parsed `traceparent`: trace id, parent (caller's span) id and the known flags.
///
/// The fields are private so that a value always holds valid (non-zero) ids and only
/// known flags, and so always formats as a valid version-00 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    version: u8,
    trace_id: TraceId,
    parent_id: SpanId,
    flags: TraceFlags,
}

impl TraceParent {
    /// A version-00 traceparent; fails if either id is all zeros.
    pub fn new(
        trace_id: TraceId,
        parent_id: SpanId,
        flags: TraceFlags,
    ) -> Result<Self, TraceParentError> {
        if !trace_id.is_valid() {
            return Err(TraceParentError::ZeroTraceId);
        }
        if !parent_id.is_valid() {
            return Err(TraceParentError::ZeroParentId);
        }
        Ok(TraceParent {
            version: 0,
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Starts a new trace: random trace id (all 16 bytes), random parent id, and the
    /// `random-trace-id` flag set, as §3.2.2.5.2 says it SHOULD be when at least the
    /// right-most 7 bytes are random.
    pub fn new_trace(sampled: bool) -> Self {
        TraceParent {
            version: 0,
            trace_id: TraceId::random(),
            parent_id: SpanId::random(),
            flags: TraceFlags::RANDOM_TRACE_ID.with_sampled(sampled),
        }
    }

    /// Parses one `traceparent` header value.
    pub fn parse(header: &str) -> Result<Self, TraceParentError> {
        let value = super::trim_ows(header);
        let bytes = value.as_bytes();
        if bytes.is_empty() {
            return Err(TraceParentError::Empty);
        }

        // §3.2.4: "When the version prefix cannot be parsed (it's not 2 hex characters
        // followed by a dash (-)), the implementation should restart the trace."
        let version = match bytes {
            [hi, lo, b'-', ..] => hex_digit(*hi).zip(hex_digit(*lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        let Some(version) = version else {
            return Err(TraceParentError::MalformedVersion {
                found: value.chars().take(3).collect(),
            });
        };
        // §3.2.2.1: "Version 255 ("ff") is invalid."
        if version == 0xff {
            return Err(TraceParentError::ForbiddenVersion);
        }
        // §3.2.4: "If the size of the header is shorter than 55 characters, the vendor
        // should not parse the header and should restart the trace." For version 00 the
        // grammar allows nothing shorter either.
        if bytes.len() < VERSION_00_LEN {
            return Err(TraceParentError::TooShort {
                found: value.chars().count(),
            });
        }

        let mut trace_id = [0u8; 16];
        decode_lower_hex(value, TRACE_ID_AT, &mut trace_id, TraceParentField::TraceId)?;
        expect_dash(value, PARENT_ID_AT - 1, TraceParentField::TraceId)?;
        let mut parent_id = [0u8; 8];
        decode_lower_hex(
            value,
            PARENT_ID_AT,
            &mut parent_id,
            TraceParentField::ParentId,
        )?;
        expect_dash(value, FLAGS_AT - 1, TraceParentField::ParentId)?;
        let mut flags = [0u8; 1];
        decode_lower_hex(value, FLAGS_AT, &mut flags, TraceParentField::TraceFlags)?;

        if bytes.len() > VERSION_00_LEN {
            if version == 0 {
                return Err(TraceParentError::TrailingData {
                    found: char_at(value, VERSION_00_LEN),
                });
            }
            // §3.2.4: "Vendors MUST check that the 2 characters are either at the end of
            // the string or followed by a dash", and "MUST NOT parse or assume anything
            // about unknown fields for this version" — so what follows is not looked at.
            expect_dash(value, VERSION_00_LEN, TraceParentField::TraceFlags)?;
        }

        let trace_id = TraceId(trace_id);
        let parent_id = SpanId(parent_id);
        // §3.2.2.3: all-zero trace-id: "vendors MUST ignore the entire header".
        if !trace_id.is_valid() {
            return Err(TraceParentError::ZeroTraceId);
        }
        // §3.2.2.4: "Vendors MUST ignore the traceparent when the parent-id is invalid".
        if !parent_id.is_valid() {
            return Err(TraceParentError::ZeroParentId);
        }
        Ok(TraceParent {
            version,
            trace_id,
            parent_id,
            flags: TraceFlags::from_bits_truncate(flags[0]),
        })
    }

    /// Parses the `traceparent` header lines of one request. No line: `Ok(None)`.
    /// More than one: an error, since the header is a single value and two of them
    /// leave no way to tell which is right (the W3C test suite's
    /// `test_traceparent_duplicated` expects the trace to restart).
    pub fn parse_headers<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<Self>, TraceParentError> {
        let mut values = values.into_iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        let rest = values.count();
        if rest > 0 {
            return Err(TraceParentError::Duplicated { count: rest + 1 });
        }
        TraceParent::parse(first).map(Some)
    }

    /// The version the header was received with. Display always writes `00`.
    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The caller's span id.
    pub fn parent_id(&self) -> SpanId {
        self.parent_id
    }

    pub fn flags(&self) -> TraceFlags {
        self.flags
    }

    pub fn sampled(&self) -> bool {
        self.flags.sampled()
    }

    pub fn random_trace_id(&self) -> bool {
        self.flags.random_trace_id()
    }

    /// The header for the next hop: same trace id and flags, `parent_id` as the parent
    /// (§3.4 "Update parent-id"), version downgraded to 00 (§3.4 "Downgrade the
    /// version"). The `random-trace-id` flag is kept, as §3.2.2.5.2 requires when the
    /// trace id is kept. Fails if `parent_id` is all zeros.
    pub fn with_parent(&self, parent_id: SpanId) -> Result<Self, TraceParentError> {
        TraceParent::new(self.trace_id, parent_id, self.flags)
    }

    /// Like [`with_parent`](Self::with_parent), also recording this hop's sampling
    /// decision. §3.4 "Update sampled": the flag may only change together with the
    /// parent id, hence no setter for the flag alone.
    pub fn with_parent_sampled(
        &self,
        parent_id: SpanId,
        sampled: bool,
    ) -> Result<Self, TraceParentError> {
        TraceParent::new(self.trace_id, parent_id, self.flags.with_sampled(sampled))
    }

    /// The header for the next hop with a fresh random span id as the parent.
    pub fn child(&self) -> Self {
        TraceParent {
            version: 0,
            parent_id: SpanId::random(),
            ..*self
        }
    }
}

/// Always the version-00 form: §3.2.4 "Vendors MUST use these fields to construct the
/// new traceparent field according to the highest version of the specification known
/// to the implementation (in this specification it is 00)".
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.parent_id, self.flags)
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceParent::parse(s)
    }
}

/// Value of one `HEXDIGLC` (§3.2.2): digits and lowercase `a`-`f` only.
fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// The character starting at byte `offset`, for error messages. Callers only pass
/// offsets after a run of checked ASCII bytes, which are character boundaries.
fn char_at(value: &str, offset: usize) -> char {
    value
        .get(offset..)
        .and_then(|rest| rest.chars().next())
        .unwrap_or('?')
}

fn decode_lower_hex(
    value: &str,
    at: usize,
    out: &mut [u8],
    field: TraceParentField,
) -> Result<(), TraceParentError> {
    let bytes = value.as_bytes();
    for (i, slot) in out.iter_mut().enumerate() {
        let digit = |offset: usize| {
            bytes
                .get(offset)
                .copied()
                .and_then(hex_digit)
                .ok_or_else(|| TraceParentError::NotLowercaseHex {
                    field,
                    offset,
                    found: char_at(value, offset),
                })
        };
        let offset = at + 2 * i;
        *slot = digit(offset)? << 4 | digit(offset + 1)?;
    }
    Ok(())
}

fn expect_dash(
    value: &str,
    offset: usize,
    after: TraceParentField,
) -> Result<(), TraceParentError> {
    if value.as_bytes().get(offset) == Some(&b'-') {
        Ok(())
    } else {
        Err(TraceParentError::MissingDelimiter {
            after,
            offset,
            found: char_at(value, offset),
        })
    }
}

#[cfg(test)]
mod tests;
