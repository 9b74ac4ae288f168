//! One or more tests per rule of W3C Trace Context Level 2 §3.2 (traceparent), named
//! after the rule. The vectors are the W3C test suite's (`test/test.py` in
//! w3c/trace-context), which uses trace id `1234…9012` and parent id `1234…3456`.

use super::*;

const TRACE: &str = "12345678901234567890123456789012";
const PARENT: &str = "1234567890123456";
const VALID: &str = "00-12345678901234567890123456789012-1234567890123456-01";

fn trace_id() -> TraceId {
    TraceId([
        0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90,
        0x12,
    ])
}

fn parent_id() -> SpanId {
    SpanId([0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56])
}

fn header(version: &str, trace: &str, parent: &str, flags: &str) -> String {
    format!("{version}-{trace}-{parent}-{flags}")
}

fn err(value: &str) -> TraceParentError {
    match TraceParent::parse(value) {
        Ok(parsed) => panic!("{value:?} should be invalid, parsed as {parsed:?}"),
        Err(error) => error,
    }
}

// --- §3.2.2 field values: the valid examples -------------------------------------------

#[test]
fn spec_example_sampled_parses_into_its_fields() {
    let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    assert_eq!(tp.version(), 0);
    assert_eq!(
        tp.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(tp.parent_id().to_string(), "00f067aa0ba902b7");
    assert_eq!(tp.flags().bits(), 0x01);
    assert!(tp.sampled());
    assert!(!tp.random_trace_id());
}

#[test]
fn spec_example_not_sampled_parses_into_its_fields() {
    let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
    assert!(!tp.sampled());
    assert_eq!(tp.flags(), TraceFlags::NONE);
}

#[test]
fn test_suite_vector_parses_into_its_fields() {
    let tp = TraceParent::parse(VALID).unwrap();
    assert_eq!(tp.trace_id(), trace_id());
    assert_eq!(tp.parent_id(), parent_id());
    assert_eq!(
        tp,
        TraceParent::new(trace_id(), parent_id(), TraceFlags::SAMPLED).unwrap()
    );
}

#[test]
fn version_00_formats_back_to_the_same_text() {
    for value in [
        VALID,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
    ] {
        assert_eq!(TraceParent::parse(value).unwrap().to_string(), value);
    }
}

#[test]
fn from_str_is_parse() {
    let tp: TraceParent = VALID.parse().unwrap();
    assert_eq!(tp.trace_id(), trace_id());
    assert_eq!("".parse::<TraceParent>(), Err(TraceParentError::Empty));
}

// --- header value whitespace (RFC 9110 §5.5; test_traceparent_ows_handling) ---------

#[test]
fn ows_around_the_value_is_ignored() {
    for value in [
        format!(" {VALID}"),
        format!("\t{VALID}"),
        format!("{VALID} "),
        format!("{VALID}\t"),
        format!("\t {VALID} \t"),
    ] {
        let tp = TraceParent::parse(&value).unwrap();
        assert_eq!(tp.trace_id(), trace_id(), "{value:?}");
    }
}

#[test]
fn whitespace_inside_the_value_is_invalid() {
    assert_eq!(
        err("00- 12345678901234567890123456789012-1234567890123456-01"),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::TraceId,
            offset: 3,
            found: ' '
        }
    );
    assert_eq!(
        err("00-12345678901234567890123456789012-1234567890123456 -01"),
        TraceParentError::MissingDelimiter {
            after: TraceParentField::ParentId,
            offset: 52,
            found: ' '
        }
    );
}

#[test]
fn other_whitespace_around_the_value_is_not_ows() {
    // OWS is only SP and HTAB; a newline is a character of the value.
    assert!(matches!(
        err(&format!("\n{VALID}")),
        TraceParentError::MalformedVersion { .. }
    ));
    assert_eq!(
        err(&format!("{VALID}\n")),
        TraceParentError::TrailingData { found: '\n' }
    );
}

#[test]
fn empty_value_is_invalid() {
    assert_eq!(err(""), TraceParentError::Empty);
    assert_eq!(err(" \t "), TraceParentError::Empty);
}

// --- §3.2.2.1 version ---------------------------------------------------------------

#[test]
fn version_too_short_is_invalid() {
    assert_eq!(
        err(&header("0", TRACE, PARENT, "01")),
        TraceParentError::MalformedVersion {
            found: "0-1".into()
        }
    );
}

#[test]
fn version_too_long_is_invalid() {
    for version in ["000", "0000"] {
        assert!(
            matches!(
                err(&header(version, TRACE, PARENT, "01")),
                TraceParentError::MalformedVersion { .. }
            ),
            "{version}"
        );
    }
}

#[test]
fn version_illegal_characters_are_invalid() {
    assert_eq!(
        err(&header(".0", TRACE, PARENT, "01")),
        TraceParentError::MalformedVersion {
            found: ".0-".into()
        }
    );
    assert_eq!(
        err(&header("0.", TRACE, PARENT, "01")),
        TraceParentError::MalformedVersion {
            found: "0.-".into()
        }
    );
}

#[test]
fn version_uppercase_hex_is_invalid() {
    for version in ["CC", "0A", "Cc"] {
        assert!(
            matches!(
                err(&header(version, TRACE, PARENT, "01")),
                TraceParentError::MalformedVersion { .. }
            ),
            "{version}"
        );
    }
}

#[test]
fn version_ff_is_forbidden() {
    assert_eq!(
        err(&header("ff", TRACE, PARENT, "01")),
        TraceParentError::ForbiddenVersion
    );
    // Forbidden whatever follows.
    assert_eq!(
        err(&format!("{}-extra", header("ff", TRACE, PARENT, "01"))),
        TraceParentError::ForbiddenVersion
    );
}

// --- §3.2.2.2 version-format: version 00 is exactly 55 characters --------------------

#[test]
fn version_00_with_trailing_characters_is_invalid() {
    assert_eq!(
        err(&format!("{VALID}.")),
        TraceParentError::TrailingData { found: '.' }
    );
    assert_eq!(
        err(&format!("{VALID}-what-the-future-will-be-like")),
        TraceParentError::TrailingData { found: '-' }
    );
}

#[test]
fn shorter_than_55_characters_is_invalid() {
    assert_eq!(err("00-1234"), TraceParentError::TooShort { found: 7 });
    assert_eq!(err(&VALID[..54]), TraceParentError::TooShort { found: 54 });
}

#[test]
fn wrong_delimiters_are_invalid() {
    assert!(matches!(
        err(&VALID.replacen('-', "_", 1)),
        TraceParentError::MalformedVersion { .. }
    ));
    let mut after_trace = VALID.to_string();
    after_trace.replace_range(35..36, "_");
    assert_eq!(
        err(&after_trace),
        TraceParentError::MissingDelimiter {
            after: TraceParentField::TraceId,
            offset: 35,
            found: '_'
        }
    );
    let mut after_parent = VALID.to_string();
    after_parent.replace_range(52..53, ".");
    assert_eq!(
        err(&after_parent),
        TraceParentError::MissingDelimiter {
            after: TraceParentField::ParentId,
            offset: 52,
            found: '.'
        }
    );
}

// --- §3.2.2.3 trace-id ---------------------------------------------------------------

#[test]
fn trace_id_all_zero_is_invalid() {
    assert_eq!(
        err(&header(
            "00",
            "00000000000000000000000000000000",
            PARENT,
            "01"
        )),
        TraceParentError::ZeroTraceId
    );
}

#[test]
fn trace_id_illegal_characters_are_invalid() {
    assert_eq!(
        err(&header(
            "00",
            ".2345678901234567890123456789012",
            PARENT,
            "01"
        )),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::TraceId,
            offset: 3,
            found: '.'
        }
    );
    assert_eq!(
        err(&header(
            "00",
            "1234567890123456789012345678901.",
            PARENT,
            "01"
        )),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::TraceId,
            offset: 34,
            found: '.'
        }
    );
}

#[test]
fn trace_id_uppercase_hex_is_invalid() {
    assert_eq!(
        err(&header(
            "00",
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            PARENT,
            "01"
        )),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::TraceId,
            offset: 4,
            found: 'B'
        }
    );
}

#[test]
fn trace_id_too_long_is_invalid() {
    assert_eq!(
        err(&header(
            "00",
            "123456789012345678901234567890123",
            PARENT,
            "01"
        )),
        TraceParentError::MissingDelimiter {
            after: TraceParentField::TraceId,
            offset: 35,
            found: '3'
        }
    );
}

#[test]
fn trace_id_too_short_is_invalid() {
    assert_eq!(
        err(&header(
            "00",
            "1234567890123456789012345678901",
            PARENT,
            "01"
        )),
        TraceParentError::TooShort { found: 54 }
    );
}

#[test]
fn trace_id_non_ascii_is_reported_not_panicked_on() {
    let value = header("00", "1234567890123456789012345678901é", PARENT, "01");
    assert_eq!(
        err(&value),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::TraceId,
            offset: 34,
            found: 'é'
        }
    );
}

// --- §3.2.2.4 parent-id --------------------------------------------------------------

#[test]
fn parent_id_all_zero_is_invalid() {
    assert_eq!(
        err(&header("00", TRACE, "0000000000000000", "01")),
        TraceParentError::ZeroParentId
    );
}

#[test]
fn parent_id_illegal_characters_are_invalid() {
    assert_eq!(
        err(&header("00", TRACE, ".234567890123456", "01")),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::ParentId,
            offset: 36,
            found: '.'
        }
    );
    assert_eq!(
        err(&header("00", TRACE, "123456789012345.", "01")),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::ParentId,
            offset: 51,
            found: '.'
        }
    );
}

#[test]
fn parent_id_uppercase_hex_is_invalid() {
    assert_eq!(
        err(&header("00", TRACE, "00F067AA0BA902B7", "01")),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::ParentId,
            offset: 38,
            found: 'F'
        }
    );
}

#[test]
fn parent_id_too_long_is_invalid() {
    assert_eq!(
        err(&header("00", TRACE, "12345678901234567", "01")),
        TraceParentError::MissingDelimiter {
            after: TraceParentField::ParentId,
            offset: 52,
            found: '7'
        }
    );
}

#[test]
fn parent_id_too_short_is_invalid() {
    assert_eq!(
        err(&header("00", TRACE, "123456789012345", "01")),
        TraceParentError::TooShort { found: 54 }
    );
}

// --- §3.2.2.5 trace-flags --------------------------------------------------------------

#[test]
fn trace_flags_illegal_characters_are_invalid() {
    assert_eq!(
        err(&header("00", TRACE, PARENT, ".0")),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::TraceFlags,
            offset: 53,
            found: '.'
        }
    );
    assert_eq!(
        err(&header("00", TRACE, PARENT, "0.")),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::TraceFlags,
            offset: 54,
            found: '.'
        }
    );
}

#[test]
fn trace_flags_uppercase_hex_is_invalid() {
    assert_eq!(
        err(&header("00", TRACE, PARENT, "0A")),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::TraceFlags,
            offset: 54,
            found: 'A'
        }
    );
}

#[test]
fn trace_flags_too_long_is_invalid() {
    assert_eq!(
        err(&header("00", TRACE, PARENT, "001")),
        TraceParentError::TrailingData { found: '1' }
    );
}

#[test]
fn trace_flags_too_short_is_invalid() {
    assert_eq!(
        err(&header("00", TRACE, PARENT, "1")),
        TraceParentError::TooShort { found: 54 }
    );
}

#[test]
fn sampled_flag_is_the_least_significant_bit() {
    // §3.2.2.5: "both 01 and 03 represent that the trace has been sampled".
    for (flags, sampled) in [
        ("00", false),
        ("01", true),
        ("02", false),
        ("03", true),
        ("09", true),
        ("fe", false),
    ] {
        let tp = TraceParent::parse(&header("00", TRACE, PARENT, flags)).unwrap();
        assert_eq!(tp.sampled(), sampled, "flags {flags}");
    }
}

#[test]
fn random_trace_id_flag_is_the_second_bit() {
    // §3.2.2.5: "03 and 02 both represent that at least the right-most 7 bytes ... random".
    for (flags, random) in [
        ("00", false),
        ("01", false),
        ("02", true),
        ("03", true),
        ("06", true),
        ("fd", false),
    ] {
        let tp = TraceParent::parse(&header("00", TRACE, PARENT, flags)).unwrap();
        assert_eq!(tp.random_trace_id(), random, "flags {flags}");
    }
}

#[test]
fn other_flags_are_accepted_but_set_to_zero_on_output() {
    // §3.2.2.5.3 Other Flags: "Vendors MUST set those to zero."
    let tp = TraceParent::parse(&header("00", TRACE, PARENT, "ff")).unwrap();
    assert_eq!(tp.flags().bits(), 0x03);
    assert_eq!(tp.to_string(), header("00", TRACE, PARENT, "03"));
    let tp = TraceParent::parse(&header("00", TRACE, PARENT, "04")).unwrap();
    assert_eq!(tp.flags(), TraceFlags::NONE);
    assert_eq!(tp.to_string(), header("00", TRACE, PARENT, "00"));
}

#[test]
fn trace_flags_helpers_set_and_clear_bits() {
    assert_eq!(TraceFlags::from_bits_truncate(0xff).bits(), 0x03);
    assert_eq!(TraceFlags::NONE.with_sampled(true), TraceFlags::SAMPLED);
    assert_eq!(
        TraceFlags::from_bits_truncate(0x03).with_sampled(false),
        TraceFlags::RANDOM_TRACE_ID
    );
    assert_eq!(TraceFlags::from_bits_truncate(0x03).to_string(), "03");
}

// --- §3.2.4 Versioning of traceparent: higher versions ----------------------------------

#[test]
fn future_version_of_55_characters_is_parsed() {
    let tp = TraceParent::parse(&header("cc", TRACE, PARENT, "01")).unwrap();
    assert_eq!(tp.version(), 0xcc);
    assert_eq!(tp.trace_id(), trace_id());
    assert_eq!(tp.parent_id(), parent_id());
    assert!(tp.sampled());
}

#[test]
fn future_version_with_more_fields_after_a_dash_is_parsed() {
    let tp = TraceParent::parse(&format!(
        "{}-what-the-future-will-be-like",
        header("cc", TRACE, PARENT, "01")
    ))
    .unwrap();
    assert_eq!(tp.version(), 0xcc);
    assert_eq!(tp.trace_id(), trace_id());
    assert_eq!(tp.parent_id(), parent_id());
    assert!(tp.sampled());
    // A bare trailing dash is "followed by a dash" too.
    assert!(TraceParent::parse(&format!("{}-", header("01", TRACE, PARENT, "00"))).is_ok());
}

#[test]
fn future_version_flags_not_followed_by_dash_are_invalid() {
    assert_eq!(
        err(&format!(
            "{}.what-the-future-will-be-like",
            header("cc", TRACE, PARENT, "01")
        )),
        TraceParentError::MissingDelimiter {
            after: TraceParentField::TraceFlags,
            offset: 55,
            found: '.'
        }
    );
    // Three flag digits: the flags are not "at the end of the string or followed by a dash".
    assert_eq!(
        err(&header("cc", TRACE, PARENT, "011")),
        TraceParentError::MissingDelimiter {
            after: TraceParentField::TraceFlags,
            offset: 55,
            found: '1'
        }
    );
}

#[test]
fn future_version_shorter_than_55_characters_is_invalid() {
    assert_eq!(
        err(&header("cc", TRACE, PARENT, "1")),
        TraceParentError::TooShort { found: 54 }
    );
    assert_eq!(err("cc-1234"), TraceParentError::TooShort { found: 7 });
}

#[test]
fn future_version_fields_follow_the_version_00_rules() {
    assert_eq!(
        err(&header(
            "cc",
            "00000000000000000000000000000000",
            PARENT,
            "01"
        )),
        TraceParentError::ZeroTraceId
    );
    assert_eq!(
        err(&header("cc", TRACE, "0000000000000000", "01")),
        TraceParentError::ZeroParentId
    );
    assert_eq!(
        err(&header("cc", TRACE, "123456789012345A", "01")),
        TraceParentError::NotLowercaseHex {
            field: TraceParentField::ParentId,
            offset: 51,
            found: 'A'
        }
    );
    assert_eq!(
        err(&format!("cc-{TRACE}_{PARENT}-01-x")),
        TraceParentError::MissingDelimiter {
            after: TraceParentField::TraceId,
            offset: 35,
            found: '_'
        }
    );
}

#[test]
fn future_version_unknown_flags_are_dropped() {
    // §4.1.2 step 2.2: "Vendors will set all unparsed / unknown trace-flags to 0".
    let tp = TraceParent::parse(&format!("{}-ab", header("42", TRACE, PARENT, "f7"))).unwrap();
    assert_eq!(tp.flags().bits(), 0x03);
}

#[test]
fn future_version_is_sent_on_as_version_00_without_unknown_fields() {
    // §3.2.4: construct the new traceparent "according to the highest version ... known
    // to the implementation"; §3.4 "Downgrade the version".
    let tp = TraceParent::parse(&format!(
        "{}-what-the-future-will-be-like",
        header("cc", TRACE, PARENT, "05")
    ))
    .unwrap();
    assert_eq!(tp.to_string(), header("00", TRACE, PARENT, "01"));
    let next = tp.with_parent(SpanId([1, 2, 3, 4, 5, 6, 7, 8])).unwrap();
    assert_eq!(next.version(), 0);
    assert_eq!(
        next.to_string(),
        header("00", TRACE, "0102030405060708", "01")
    );
}

// --- §3.4 Mutating the traceparent field --------------------------------------------------

#[test]
fn update_parent_id_keeps_trace_id_and_flags() {
    let tp = TraceParent::parse(&header("00", TRACE, PARENT, "03")).unwrap();
    let span = SpanId([0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]);
    let next = tp.with_parent(span).unwrap();
    assert_eq!(next.trace_id(), trace_id());
    assert_eq!(next.parent_id(), span);
    assert_eq!(next.flags().bits(), 0x03);
    assert_eq!(
        next.to_string(),
        header("00", TRACE, "b7ad6b7169203331", "03")
    );
}

#[test]
fn update_parent_id_rejects_the_all_zero_id() {
    let tp = TraceParent::parse(VALID).unwrap();
    assert_eq!(
        tp.with_parent(SpanId::INVALID),
        Err(TraceParentError::ZeroParentId)
    );
    assert_eq!(
        tp.with_parent_sampled(SpanId::INVALID, true),
        Err(TraceParentError::ZeroParentId)
    );
}

#[test]
fn update_sampled_goes_with_a_new_parent_id_and_keeps_the_random_flag() {
    let tp = TraceParent::parse(&header("00", TRACE, PARENT, "03")).unwrap();
    let span = SpanId([9; 8]);
    let unsampled = tp.with_parent_sampled(span, false).unwrap();
    assert_eq!(unsampled.flags().bits(), 0x02);
    assert_eq!(unsampled.parent_id(), span);
    let sampled = unsampled.with_parent_sampled(SpanId([8; 8]), true).unwrap();
    assert_eq!(sampled.flags().bits(), 0x03);
}

#[test]
fn random_flag_is_propagated_when_the_trace_id_is_kept() {
    // The W3C suite's TraceContext2Test.test_propagates_random_flag.
    let tp = TraceParent::parse(&header("00", TRACE, PARENT, "02")).unwrap();
    let next = tp.child();
    assert_eq!(next.trace_id(), trace_id());
    assert_ne!(next.parent_id(), parent_id());
    assert!(next.random_trace_id());
    assert!(!next.sampled());
    // ... and not invented when it was unset.
    let tp = TraceParent::parse(&header("00", TRACE, PARENT, "01")).unwrap();
    assert!(!tp.child().random_trace_id());
}

#[test]
fn child_gets_a_new_valid_parent_id_each_time() {
    let tp = TraceParent::parse(VALID).unwrap();
    let a = tp.child();
    let b = tp.child();
    assert!(a.parent_id().is_valid());
    assert_ne!(a.parent_id(), b.parent_id());
    assert_eq!(a.trace_id(), b.trace_id());
}

#[test]
fn restart_makes_a_random_trace_id_with_the_random_flag() {
    let a = TraceParent::new_trace(true);
    let b = TraceParent::new_trace(false);
    assert!(a.trace_id().is_valid() && a.parent_id().is_valid());
    assert_ne!(a.trace_id(), b.trace_id());
    assert_eq!(a.flags().bits(), 0x03);
    assert_eq!(b.flags().bits(), 0x02);
    assert_eq!(a.version(), 0);
    // What it writes is a header this module accepts.
    assert_eq!(TraceParent::parse(&a.to_string()), Ok(a));
}

#[test]
fn new_rejects_all_zero_ids() {
    assert_eq!(
        TraceParent::new(TraceId::INVALID, parent_id(), TraceFlags::NONE),
        Err(TraceParentError::ZeroTraceId)
    );
    assert_eq!(
        TraceParent::new(trace_id(), SpanId::INVALID, TraceFlags::NONE),
        Err(TraceParentError::ZeroParentId)
    );
}

// --- more than one header (test_traceparent_duplicated) ---------------------------------

#[test]
fn no_traceparent_header_is_none() {
    assert_eq!(TraceParent::parse_headers([]), Ok(None));
}

#[test]
fn one_traceparent_header_is_parsed() {
    assert_eq!(
        TraceParent::parse_headers([VALID])
            .unwrap()
            .map(|tp| tp.trace_id()),
        Some(trace_id())
    );
}

#[test]
fn duplicated_traceparent_headers_are_invalid() {
    assert_eq!(
        TraceParent::parse_headers([
            "00-12345678901234567890123456789011-1234567890123456-01",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ]),
        Err(TraceParentError::Duplicated { count: 2 })
    );
}

// --- errors say what was wrong -----------------------------------------------------------

#[test]
fn error_messages_name_the_field_offset_and_character() {
    assert_eq!(
        err(&header("00", TRACE, "123456789012345.", "01")).to_string(),
        "parent-id must be lowercase hex digits, found '.' at offset 51"
    );
    assert_eq!(
        err(&format!("{VALID}x")).to_string(),
        "version 00 traceparent must end after trace-flags at offset 55, found 'x'"
    );
    assert_eq!(
        err(&header("ff", TRACE, PARENT, "01")).to_string(),
        "traceparent version ff is forbidden"
    );
}
