//! One or more tests per rule of W3C Trace Context Level 2 §3.3 and §3.5 (tracestate),
//! named after the rule, with the W3C test suite's vectors (`test/test.py`).

use super::*;

fn parse(value: &str) -> TraceState {
    match TraceState::parse(value) {
        Ok(state) => state,
        Err(error) => panic!("{value:?} should parse: {error}"),
    }
}

fn err(value: &str) -> TraceStateError {
    match TraceState::parse(value) {
        Ok(state) => panic!("{value:?} should be invalid, parsed as {state:?}"),
        Err(error) => error,
    }
}

fn member_error(value: &str) -> TraceStateMemberError {
    match err(value) {
        TraceStateError::InvalidMember { error, .. } => error,
        other => panic!("{value:?}: expected an invalid member, got {other:?}"),
    }
}

fn keys(state: &TraceState) -> Vec<&str> {
    state.iter().map(|(k, _)| k).collect()
}

fn numbered(range: std::ops::RangeInclusive<usize>) -> String {
    range
        .map(|i| format!("bar{i:02}={i:02}"))
        .collect::<Vec<_>>()
        .join(",")
}

// --- §3.3.2 list ---------------------------------------------------------------------------

#[test]
fn spec_examples_parse_in_order() {
    let state = parse("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert_eq!(
        state.iter().collect::<Vec<_>>(),
        [("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")]
    );
    assert_eq!(state.to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

#[test]
fn ows_around_list_members_is_ignored() {
    for value in [
        "foo=1 \t , \t bar=2, \t baz=3",
        "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
    ] {
        let state = parse(value);
        assert_eq!(
            state.iter().collect::<Vec<_>>(),
            [("foo", "1"), ("bar", "2"), ("baz", "3")],
            "{value:?}"
        );
    }
    for value in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
        assert_eq!(parse(value).get("foo"), Some("1"), "{value:?}");
    }
}

#[test]
fn empty_header_is_accepted_and_empty() {
    // §3.3.2: "Vendors MUST accept empty tracestate headers".
    let state = parse("");
    assert!(state.is_empty());
    assert_eq!(state.to_string(), "");
    assert!(parse(" \t ").is_empty());
}

#[test]
fn empty_and_whitespace_only_list_members_are_skipped() {
    let state = parse(",foo=1, ,\t,,bar=2,");
    assert_eq!(
        state.iter().collect::<Vec<_>>(),
        [("foo", "1"), ("bar", "2")]
    );
    assert_eq!(state.to_string(), "foo=1,bar=2");
}

#[test]
fn list_member_without_equals_is_invalid() {
    assert_eq!(
        err("foo=1,bar"),
        TraceStateError::InvalidMember {
            index: 1,
            member: "bar".into(),
            error: TraceStateMemberError::MissingEquals
        }
    );
}

#[test]
fn thirty_two_list_members_are_allowed() {
    // test_tracestate_member_count_limit, sent as four header lines.
    let state = TraceState::parse_headers([
        numbered(1..=10).as_str(),
        numbered(11..=20).as_str(),
        numbered(21..=30).as_str(),
        numbered(31..=32).as_str(),
    ])
    .unwrap();
    assert_eq!(state.len(), 32);
    assert_eq!(state.get("bar01"), Some("01"));
    assert_eq!(state.get("bar32"), Some("32"));
}

#[test]
fn thirty_three_list_members_are_invalid() {
    let result = TraceState::parse_headers([
        numbered(1..=10).as_str(),
        numbered(11..=20).as_str(),
        numbered(21..=30).as_str(),
        numbered(31..=33).as_str(),
    ]);
    assert_eq!(result, Err(TraceStateError::TooManyMembers { found: 33 }));
}

#[test]
fn empty_list_members_do_not_count_toward_the_limit() {
    let value = format!("{},,,, ,", numbered(1..=32));
    assert_eq!(parse(&value).len(), 32);
}

// --- multiple header lines (§3.3.2, RFC 9110 §5.3) --------------------------------------

#[test]
fn multiple_headers_combine_in_order() {
    // test_tracestate_multiple_headers_different_keys
    let state = TraceState::parse_headers(["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]).unwrap();
    assert_eq!(keys(&state), ["foo", "bar", "rojo", "congo", "baz"]);
    assert_eq!(state.to_string(), "foo=1,bar=2,rojo=1,congo=2,baz=3");
}

#[test]
fn empty_header_lines_combine_to_nothing() {
    // test_tracestate_empty_header
    assert!(TraceState::parse_headers([""]).unwrap().is_empty());
    assert_eq!(
        TraceState::parse_headers(["foo=1", ""]).unwrap().get("foo"),
        Some("1")
    );
    assert_eq!(
        TraceState::parse_headers(["", "foo=1"]).unwrap().get("foo"),
        Some("1")
    );
    assert!(TraceState::parse_headers([]).unwrap().is_empty());
}

#[test]
fn an_invalid_line_invalidates_the_combined_header() {
    // test_tracestate_key_length_limit: a bad second line loses "foo" from the first.
    let long_key = "z".repeat(257);
    let line = format!("{long_key}=1");
    assert!(TraceState::parse_headers(["foo=1", line.as_str()]).is_err());
}

// --- duplicate keys (§3.5; test_tracestate_duplicated_keys) -------------------------------

#[test]
fn duplicate_keys_keep_the_left_most_entry() {
    assert_eq!(parse("foo=1,foo=1").to_string(), "foo=1");
    let state = parse("foo=1,bar=2,foo=3");
    assert_eq!(state.to_string(), "foo=1,bar=2");
    assert_eq!(
        TraceState::parse_headers(["foo=1", "foo=2"])
            .unwrap()
            .to_string(),
        "foo=1"
    );
}

#[test]
fn duplicate_keys_still_count_toward_the_limit() {
    let value = format!("{},bar01=again", numbered(1..=32));
    assert_eq!(err(&value), TraceStateError::TooManyMembers { found: 33 });
}

// --- §3.3.2.2.1 key ------------------------------------------------------------------------

#[test]
fn key_with_all_allowed_characters_is_valid() {
    // test_tracestate_all_allowed_characters
    let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let key_with_at = format!("{key}@a-z0-9_-*/");
    let value = ' '..='~';
    let value: String = value.filter(|c| *c != ',' && *c != '=').collect();
    for key in [key, key_with_at.as_str()] {
        let state = parse(&format!("{key}={value}"));
        assert_eq!(state.get(key), Some(value.as_str()), "{key}");
    }
}

#[test]
fn key_may_start_with_a_digit() {
    assert_eq!(parse("1special=x").get("1special"), Some("x"));
}

#[test]
fn key_must_start_with_lcalpha_or_digit() {
    for (value, found) in [
        ("@foo=1,bar=2", '@'),
        ("_foo=1", '_'),
        ("-foo=1", '-'),
        ("Foo=1", 'F'),
    ] {
        assert_eq!(
            member_error(value),
            TraceStateMemberError::KeyStart { found },
            "{value:?}"
        );
    }
}

#[test]
fn key_illegal_characters_are_invalid() {
    // test_tracestate_key_illegal_characters
    assert_eq!(
        member_error("foo =1"),
        TraceStateMemberError::KeyChar {
            offset: 3,
            found: ' '
        }
    );
    assert_eq!(
        member_error("FOO=1"),
        TraceStateMemberError::KeyStart { found: 'F' }
    );
    assert_eq!(
        member_error("fOO=1"),
        TraceStateMemberError::KeyChar {
            offset: 1,
            found: 'O'
        }
    );
    assert_eq!(
        member_error("foo.bar=1"),
        TraceStateMemberError::KeyChar {
            offset: 3,
            found: '.'
        }
    );
    assert_eq!(
        member_error("foö=1"),
        TraceStateMemberError::KeyChar {
            offset: 2,
            found: 'ö'
        }
    );
}

#[test]
fn key_with_at_signs_after_the_first_character_is_valid() {
    // test_tracestate_key_illegal_vendor_format as fixed for Level 2 (w3c/trace-context#584).
    for (value, key) in [
        ("foo@=1,bar=2", "foo@"),
        ("foo@@bar=1,bar=2", "foo@@bar"),
        ("foo@bar@baz=1,bar=2", "foo@bar@baz"),
        ("fw529a3039@dt=1,bar=2", "fw529a3039@dt"),
    ] {
        let state = parse(value);
        assert_eq!(state.get(key), Some("1"), "{value:?}");
        assert_eq!(state.get("bar"), Some("2"), "{value:?}");
    }
}

#[test]
fn empty_key_is_invalid() {
    assert_eq!(member_error("=1"), TraceStateMemberError::EmptyKey);
}

#[test]
fn key_of_256_characters_is_valid_and_257_is_not() {
    // test_tracestate_key_length_limit
    let key = "z".repeat(256);
    assert_eq!(parse(&format!("foo=1,{key}=1")).get(&key), Some("1"));
    let key = "z".repeat(257);
    assert_eq!(
        member_error(&format!("foo=1,{key}=1")),
        TraceStateMemberError::KeyTooLong { len: 257 }
    );
}

#[test]
fn key_length_limit_counts_the_whole_key_including_at_signs() {
    for key in [
        format!("{}@{}", "t".repeat(241), "v".repeat(14)),
        format!("{}@v", "t".repeat(242)),
        format!("t@{}", "v".repeat(15)),
    ] {
        assert_eq!(
            parse(&format!("foo=1,{key}=1")).get(&key),
            Some("1"),
            "{key}"
        );
    }
    let key = format!("{}@{}", "t".repeat(241), "v".repeat(15));
    assert_eq!(
        member_error(&format!("{key}=1")),
        TraceStateMemberError::KeyTooLong { len: 257 }
    );
}

// --- §3.3.2.2.2 value ----------------------------------------------------------------------

#[test]
fn value_with_equals_is_invalid() {
    // test_tracestate_value_illegal_characters
    assert_eq!(
        member_error("foo=bar=baz"),
        TraceStateMemberError::ValueChar {
            offset: 3,
            found: '='
        }
    );
}

#[test]
fn empty_value_is_invalid() {
    assert_eq!(
        err("foo=,bar=3"),
        TraceStateError::InvalidMember {
            index: 0,
            member: "foo=".into(),
            error: TraceStateMemberError::EmptyValue
        }
    );
    // Only-space values are trailing OWS and so empty.
    assert_eq!(member_error("foo=   "), TraceStateMemberError::EmptyValue);
}

#[test]
fn value_control_and_non_ascii_characters_are_invalid() {
    assert_eq!(
        member_error("foo=a\tb"),
        TraceStateMemberError::ValueChar {
            offset: 1,
            found: '\t'
        }
    );
    assert_eq!(
        member_error("foo=a\nb"),
        TraceStateMemberError::ValueChar {
            offset: 1,
            found: '\n'
        }
    );
    assert_eq!(
        member_error("foo=a\u{7f}"),
        TraceStateMemberError::ValueChar {
            offset: 1,
            found: '\u{7f}'
        }
    );
    assert_eq!(
        member_error("foo=é"),
        TraceStateMemberError::ValueChar {
            offset: 0,
            found: 'é'
        }
    );
}

#[test]
fn value_leading_spaces_are_preserved() {
    let state = parse("foo=  bar");
    assert_eq!(state.get("foo"), Some("  bar"));
    assert_eq!(state.to_string(), "foo=  bar");
}

#[test]
fn value_trailing_spaces_are_optional_whitespace() {
    let state = parse("foo=bar   ,baz=1");
    assert_eq!(state.get("foo"), Some("bar"));
    assert_eq!(state.to_string(), "foo=bar,baz=1");
}

#[test]
fn value_inner_spaces_are_kept() {
    assert_eq!(parse("foo=a b").get("foo"), Some("a b"));
}

#[test]
fn value_of_256_characters_is_valid_and_257_is_not() {
    let value = "v".repeat(256);
    assert_eq!(
        parse(&format!("foo={value}")).get("foo"),
        Some(value.as_str())
    );
    let value = "v".repeat(257);
    assert_eq!(
        member_error(&format!("foo={value}")),
        TraceStateMemberError::ValueTooLong { len: 257 }
    );
}

// --- §3.5 mutating tracestate ------------------------------------------------------------

#[test]
fn insert_adds_a_new_key_on_the_left() {
    // §3.2 example: Rojo adds its entry to the left of Congo's.
    let mut state = parse("congo=t61rcWkgMzE");
    state.insert("rojo", "00f067aa0ba902b7").unwrap();
    assert_eq!(state.to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

#[test]
fn insert_of_an_existing_key_updates_it_and_moves_it_left() {
    // §3.2 example: Congo comes back; its entry is rewritten and moved left.
    let mut state = parse("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    state.insert("congo", "ucfJifl5GOE").unwrap();
    assert_eq!(state.to_string(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
    assert_eq!(state.len(), 2);
}

#[test]
fn insert_keeps_the_order_of_unmodified_entries() {
    let mut state = parse("a=1,b=2,c=3,d=4");
    state.insert("c", "x").unwrap();
    assert_eq!(keys(&state), ["c", "a", "b", "d"]);
}

#[test]
fn insert_beyond_32_entries_removes_the_right_most() {
    let mut state = parse(&numbered(1..=32));
    state.insert("ours", "1").unwrap();
    assert_eq!(state.len(), 32);
    assert_eq!(keys(&state).first(), Some(&"ours"));
    assert_eq!(state.get("bar32"), None);
    assert_eq!(state.get("bar31"), Some("31"));
}

#[test]
fn insert_rejects_what_the_grammar_rejects() {
    let mut state = parse("foo=1");
    assert_eq!(
        state.insert("Bad", "x"),
        Err(TraceStateMemberError::KeyStart { found: 'B' })
    );
    assert_eq!(
        state.insert("ok", "a,b"),
        Err(TraceStateMemberError::ValueChar {
            offset: 1,
            found: ','
        })
    );
    assert_eq!(
        state.insert("ok", "ab "),
        Err(TraceStateMemberError::ValueEndsWithSpace)
    );
    assert_eq!(
        state.insert("ok", ""),
        Err(TraceStateMemberError::EmptyValue)
    );
    assert_eq!(state.insert("", "x"), Err(TraceStateMemberError::EmptyKey));
    assert_eq!(state.to_string(), "foo=1");
}

#[test]
fn remove_deletes_only_that_key() {
    let mut state = parse("a=1,b=2,c=3");
    assert_eq!(state.remove("b"), Some("2".to_string()));
    assert_eq!(state.remove("b"), None);
    assert_eq!(state.to_string(), "a=1,c=3");
}

// --- §3.3.3.1 tracestate limits: truncation ---------------------------------------------

#[test]
fn truncation_removes_whole_entries_long_ones_first_then_from_the_right() {
    let long_a = format!("long={}", "a".repeat(130)); // 135 characters
    let long_b = format!("big={}", "b".repeat(200)); // 204 characters
    let mut state = parse(&format!("a=1,{long_a},b=2,{long_b},c=3"));
    // Room for everything but one long entry: the right-most long one goes.
    let removed = state.truncate_to_len(state.header_len() - 1);
    assert_eq!(removed, 1);
    assert_eq!(keys(&state), ["a", "long", "b", "c"]);
    // Not enough room for any long entry: the other goes too, short ones stay.
    assert_eq!(state.truncate_to_len(20), 1);
    assert_eq!(state.to_string(), "a=1,b=2,c=3");
    // Then from the right.
    assert_eq!(state.truncate_to_len(7), 1);
    assert_eq!(state.to_string(), "a=1,b=2");
    assert!(state.header_len() <= 7);
}

#[test]
fn truncation_keeps_a_header_that_fits() {
    let mut state = parse("a=1,b=2");
    assert_eq!(state.truncate_to_len(TraceState::MIN_PROPAGATED_LEN), 0);
    assert_eq!(state.to_string(), "a=1,b=2");
}

#[test]
fn header_len_is_the_formatted_length() {
    for value in ["", "a=1", "a=1,bb=22", &numbered(1..=32)] {
        let state = parse(value);
        assert_eq!(state.header_len(), state.to_string().len(), "{value:?}");
    }
}

// --- errors say what was wrong -----------------------------------------------------------

#[test]
fn error_messages_name_the_member_and_the_problem() {
    assert_eq!(
        err("foo=1,foo.bar=1").to_string(),
        "tracestate list-member 1 (\"foo.bar=1\"): key may only hold a-z, 0-9, '_', '-', '*', '/' \
         and '@', found '.' at offset 3"
    );
}
