//! Tests per rule of W3C Baggage, with the vectors of the W3C reference tests
//! (`test/test_baggage.py` in w3c/baggage) and the spec's examples.

use super::*;

fn parse(value: &str) -> Baggage {
    match Baggage::parse(value) {
        Ok(baggage) => baggage,
        Err(error) => panic!("{value:?} should parse: {error}"),
    }
}

fn member_error(value: &str) -> BaggageMemberError {
    match Baggage::parse(value) {
        Err(BaggageError::InvalidMember { error, .. }) => error,
        other => panic!("{value:?}: expected an invalid member, got {other:?}"),
    }
}

fn props(member: &BaggageMember) -> Vec<(&str, Option<&str>)> {
    member
        .properties()
        .iter()
        .map(|p| (p.key(), p.value()))
        .collect()
}

/// The reference tests' `urllib.parse.quote("\t \"';=asdf!@#$%^&*()")`.
const QUOTED: &str = "%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29";
const UNQUOTED: &str = "\t \"';=asdf!@#$%^&*()";

// --- list-member and key ---------------------------------------------------------------

#[test]
fn simple_member_parses() {
    let baggage = parse("SomeKey=SomeValue");
    assert_eq!(baggage.len(), 1);
    let member = baggage.member("SomeKey").unwrap();
    assert_eq!(member.value(), "SomeValue");
    assert!(member.properties().is_empty());
}

#[test]
fn multiple_members_with_properties_parse_in_order() {
    let baggage = parse("SomeKey=SomeValue;SomeProp,SomeKey2=SomeValue2;ValueProp=PropVal");
    let members: Vec<_> = baggage.iter().collect();
    assert_eq!(members.len(), 2);
    assert_eq!(
        (members[0].key(), members[0].value()),
        ("SomeKey", "SomeValue")
    );
    assert_eq!(props(members[0]), [("SomeProp", None)]);
    assert_eq!(
        (members[1].key(), members[1].value()),
        ("SomeKey2", "SomeValue2")
    );
    assert_eq!(props(members[1]), [("ValueProp", Some("PropVal"))]);
}

#[test]
fn ows_around_keys_values_and_properties_is_ignored() {
    let baggage = parse(
        "SomeKey \t = \t SomeValue \t ; \t SomeProp \t , \t SomeKey2 \t = \t SomeValue2 \t ; \t \
         ValueProp \t = \t PropVal",
    );
    assert_eq!(baggage.get("SomeKey"), Some("SomeValue"));
    assert_eq!(
        props(baggage.member("SomeKey").unwrap()),
        [("SomeProp", None)]
    );
    assert_eq!(baggage.get("SomeKey2"), Some("SomeValue2"));
    assert_eq!(
        props(baggage.member("SomeKey2").unwrap()),
        [("ValueProp", Some("PropVal"))]
    );
    // The spec's example with spaces.
    let baggage = Baggage::parse_headers([
        "userId =   alice",
        "serverNode = DF%2028, isProduction = false",
    ])
    .unwrap();
    assert_eq!(baggage.get("userId"), Some("alice"));
    assert_eq!(baggage.get("serverNode"), Some("DF 28"));
    assert_eq!(baggage.get("isProduction"), Some("false"));
}

#[test]
fn value_may_contain_equals_signs() {
    assert_eq!(
        parse("SomeKey=SomeValue=equals").get("SomeKey"),
        Some("SomeValue=equals")
    );
}

#[test]
fn value_may_be_empty() {
    // value = *baggage-octet
    let baggage = parse("a=,b= ");
    assert_eq!(baggage.get("a"), Some(""));
    assert_eq!(baggage.get("b"), Some(""));
    assert_eq!(baggage.to_string(), "a=,b=");
}

#[test]
fn keys_are_tokens_and_case_sensitive() {
    let baggage = parse("Key!#$%&'*+-.^_`|~09=1,key=2");
    assert_eq!(baggage.get("Key!#$%&'*+-.^_`|~09"), Some("1"));
    assert_eq!(baggage.get("key"), Some("2"));
    assert_eq!(baggage.get("KEY"), None);
}

#[test]
fn key_with_non_token_characters_is_invalid() {
    assert_eq!(
        member_error("some key=1"),
        BaggageMemberError::NotToken {
            part: BaggagePart::Key,
            offset: 4,
            found: ' '
        }
    );
    assert_eq!(
        member_error("k(1)=1"),
        BaggageMemberError::NotToken {
            part: BaggagePart::Key,
            offset: 1,
            found: '('
        }
    );
    assert_eq!(
        member_error("clé=1"),
        BaggageMemberError::NotToken {
            part: BaggagePart::Key,
            offset: 2,
            found: 'é'
        }
    );
}

#[test]
fn member_without_equals_or_key_is_invalid() {
    assert_eq!(member_error("justakey"), BaggageMemberError::MissingEquals);
    assert_eq!(
        member_error("=value"),
        BaggageMemberError::Empty {
            part: BaggagePart::Key
        }
    );
}

#[test]
fn value_with_characters_that_must_be_encoded_is_invalid() {
    for (value, offset, found) in [
        ("k=a b", 1, ' '),
        ("k=a\"b", 1, '"'),
        ("k=a\\b", 1, '\\'),
        ("k=é", 0, 'é'),
        ("k=a\tb", 1, '\t'),
    ] {
        assert_eq!(
            member_error(value),
            BaggageMemberError::NotEncoded {
                part: BaggagePart::Value,
                offset,
                found
            },
            "{value:?}"
        );
    }
}

#[test]
fn empty_members_are_skipped() {
    let baggage = parse(",a=1,, \t ,b=2,");
    assert_eq!(baggage.len(), 2);
    assert_eq!(baggage.to_string(), "a=1,b=2");
    assert!(parse("").is_empty());
}

#[test]
fn multiple_headers_combine() {
    let baggage =
        Baggage::parse_headers(["userId=alice", "serverNode=DF%2028,isProduction=false"]).unwrap();
    assert_eq!(
        baggage.to_string(),
        "userId=alice,serverNode=DF%2028,isProduction=false"
    );
}

#[test]
fn duplicate_keys_are_kept_in_order_and_get_returns_the_first() {
    let baggage = parse("k=1,other=x,k=2");
    assert_eq!(baggage.len(), 3);
    assert_eq!(baggage.get("k"), Some("1"));
    assert_eq!(baggage.to_string(), "k=1,other=x,k=2");
}

// --- properties ----------------------------------------------------------------------------

#[test]
fn properties_keep_their_order_and_duplicates() {
    let baggage = parse("SomeKey=SomeValue;SomeProp;SomeProp=PropValue;SomeProp=AnotherPropValue");
    assert_eq!(
        props(baggage.member("SomeKey").unwrap()),
        [
            ("SomeProp", None),
            ("SomeProp", Some("PropValue")),
            ("SomeProp", Some("AnotherPropValue"))
        ]
    );
}

#[test]
fn key_only_property_is_not_percent_decoded() {
    let baggage = parse("SomeKey=SomeValue;ValueProp%20%09%20%3D%20%09%20PropVal");
    assert_eq!(
        props(baggage.member("SomeKey").unwrap()),
        [("ValueProp%20%09%20%3D%20%09%20PropVal", None)]
    );
}

#[test]
fn property_value_is_percent_decoded_and_encoded() {
    let baggage = parse(&format!("SomeKey=SomeValue;SomePropKey={QUOTED}"));
    let member = baggage.member("SomeKey").unwrap();
    assert_eq!(props(member), [("SomePropKey", Some(UNQUOTED))]);
    assert_eq!(
        member.to_string(),
        "SomeKey=SomeValue;SomePropKey=%09%20%22'%3B=asdf!@#$%25^&*()"
    );
}

#[test]
fn invalid_properties_are_invalid() {
    assert_eq!(
        member_error("k=v;"),
        BaggageMemberError::Empty {
            part: BaggagePart::PropertyKey
        }
    );
    assert_eq!(
        member_error("k=v;=x"),
        BaggageMemberError::Empty {
            part: BaggagePart::PropertyKey
        }
    );
    assert_eq!(
        member_error("k=v;a b"),
        BaggageMemberError::NotToken {
            part: BaggagePart::PropertyKey,
            offset: 1,
            found: ' '
        }
    );
    assert_eq!(
        member_error("k=v;p=a b"),
        BaggageMemberError::NotEncoded {
            part: BaggagePart::PropertyValue,
            offset: 1,
            found: ' '
        }
    );
}

// --- value encoding ------------------------------------------------------------------------

#[test]
fn values_are_percent_decoded() {
    let baggage = parse(&format!("SomeKey={QUOTED}"));
    assert_eq!(baggage.get("SomeKey"), Some(UNQUOTED));
    let baggage = parse(&format!("SomeKey \t = \t {QUOTED} \t "));
    assert_eq!(baggage.get("SomeKey"), Some(UNQUOTED));
}

#[test]
fn values_are_decoded_as_utf8() {
    let baggage = parse("userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false");
    assert_eq!(baggage.get("userId"), Some("Amélie"));
    assert_eq!(baggage.get("serverNode"), Some("DF 28"));
    // Either case of hex digits.
    assert_eq!(parse("k=%c3%a9").get("k"), Some("é"));
}

#[test]
fn invalid_utf8_sequences_decode_to_the_replacement_character() {
    assert_eq!(parse("k=a%FFb").get("k"), Some("a\u{FFFD}b"));
    assert_eq!(parse("k=%C3").get("k"), Some("\u{FFFD}"));
}

#[test]
fn a_percent_without_two_hex_digits_is_kept() {
    assert_eq!(parse("k=100%").get("k"), Some("100%"));
    assert_eq!(parse("k=%zz%4").get("k"), Some("%zz%4"));
}

#[test]
fn only_required_characters_are_encoded() {
    let mut baggage = Baggage::new();
    baggage.insert("k", UNQUOTED).unwrap();
    assert_eq!(baggage.to_string(), "k=%09%20%22'%3B=asdf!@#$%25^&*()");
    let mut baggage = Baggage::new();
    baggage.insert("userId", "Amélie").unwrap();
    baggage.insert("serverNode", "DF 28").unwrap();
    baggage.insert("isProduction", "false").unwrap();
    assert_eq!(
        baggage.to_string(),
        "userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false"
    );
    // Comma, semicolon and backslash.
    let mut baggage = Baggage::new();
    baggage.insert("k", "a,b;c\\d").unwrap();
    assert_eq!(baggage.to_string(), "k=a%2Cb%3Bc%5Cd");
}

#[test]
fn encoding_then_decoding_gives_back_the_value() {
    for value in [
        UNQUOTED,
        "Amélie",
        "100%",
        "%41",
        "∑ 日本 🚀",
        "",
        "a=b",
        "\u{FFFD}",
    ] {
        let mut baggage = Baggage::new();
        baggage.insert("k", value).unwrap();
        assert_eq!(
            parse(&baggage.to_string()).get("k"),
            Some(value),
            "{value:?}"
        );
    }
}

// --- limits ---------------------------------------------------------------------------------

fn members(count: usize) -> String {
    (0..count)
        .map(|i| format!("key{i}=value"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn limit_64_members_are_kept() {
    let baggage = parse(&members(64));
    assert_eq!(baggage.len(), 64);
    assert_eq!(baggage.to_string().split(',').count(), 64);
}

#[test]
fn limit_members_beyond_64_are_dropped_whole() {
    let baggage = parse(&members(70));
    assert_eq!(baggage.len(), 64);
    assert_eq!(baggage.get("key63"), Some("value"));
    assert_eq!(baggage.get("key64"), None);
    let (lenient, dropped) = Baggage::parse_lenient(&members(66));
    assert_eq!(lenient.len(), 64);
    assert_eq!(
        dropped,
        [
            BaggageError::OverLimit {
                index: 64,
                key: "key64".into()
            },
            BaggageError::OverLimit {
                index: 65,
                key: "key65".into()
            }
        ]
    );
}

#[test]
fn limit_8192_bytes_are_kept() {
    // The reference test_serialize_long_entry: "a=" + 8190 characters.
    let header = format!("a={}", "0123456789".repeat(819));
    assert_eq!(header.len(), 8192);
    let baggage = parse(&header);
    assert_eq!(baggage.len(), 1);
    assert_eq!(baggage.to_string().len(), 8192);
}

#[test]
fn limit_members_that_would_pass_8192_bytes_are_dropped_and_later_small_ones_kept() {
    let big = format!("big={}", "x".repeat(8189)); // 8193 bytes alone
    let header = format!("a=1,{big},b=2");
    let (baggage, dropped) = Baggage::parse_lenient(&header);
    assert_eq!(baggage.to_string(), "a=1,b=2");
    assert_eq!(
        dropped,
        [BaggageError::OverLimit {
            index: 1,
            key: "big".into()
        }]
    );
    assert_eq!(parse(&header).to_string(), "a=1,b=2");
}

#[test]
fn limit_counts_the_combined_headers() {
    let first = members(40);
    let second = (40..80)
        .map(|i| format!("key{i}=value"))
        .collect::<Vec<_>>()
        .join(",");
    let baggage = Baggage::parse_headers([first.as_str(), second.as_str()]).unwrap();
    assert_eq!(baggage.len(), 64);
}

#[test]
fn limit_is_measured_on_the_re_encoded_header() {
    // "%41" is sent on as "A": 8192 bytes with escapes fit after decoding.
    let header = format!("a={}", "%41".repeat(4000));
    let baggage = parse(&header);
    assert_eq!(baggage.get("a").map(str::len), Some(4000));
    assert_eq!(baggage.header_len(), 4002);
}

#[test]
fn insert_refuses_to_exceed_the_limits() {
    let mut baggage = parse(&members(64));
    assert_eq!(
        baggage.insert("one-more", "x"),
        Err(BaggageError::LimitExceeded {
            members: 65,
            bytes: baggage.header_len() + 11
        })
    );
    assert_eq!(baggage.len(), 64);
    // Updating an existing key is fine.
    baggage.insert("key0", "changed").unwrap();
    assert_eq!(baggage.get("key0"), Some("changed"));
    let mut baggage = Baggage::new();
    assert!(matches!(
        baggage.insert("k", &"x".repeat(8191)),
        Err(BaggageError::LimitExceeded {
            members: 1,
            bytes: 8193
        })
    ));
    assert!(baggage.is_empty());
}

#[test]
fn header_len_is_the_formatted_length() {
    for value in ["", "a=1", "a=1;p;q=%20,b=2", &members(64)] {
        let baggage = parse(value);
        assert_eq!(baggage.header_len(), baggage.to_string().len(), "{value:?}");
    }
}

// --- malformed input: strict and lenient ---------------------------------------------------

#[test]
fn strict_parse_rejects_the_whole_header() {
    assert_eq!(
        Baggage::parse("a=1,bad member,b=2"),
        Err(BaggageError::InvalidMember {
            index: 1,
            member: "bad member".into(),
            error: BaggageMemberError::MissingEquals
        })
    );
}

#[test]
fn lenient_parse_drops_only_the_offending_members() {
    let (baggage, dropped) = Baggage::parse_lenient("a=1,bad member,b=2,c=x y");
    assert_eq!(baggage.to_string(), "a=1,b=2");
    assert_eq!(dropped.len(), 2);
    assert!(matches!(
        dropped[0],
        BaggageError::InvalidMember { index: 1, .. }
    ));
    assert!(matches!(
        dropped[1],
        BaggageError::InvalidMember {
            index: 3,
            error: BaggageMemberError::NotEncoded { .. },
            ..
        }
    ));
}

// --- mutation --------------------------------------------------------------------------------

#[test]
fn insert_appends_a_new_key() {
    let mut baggage = parse("a=1");
    baggage.insert("b", "2").unwrap();
    assert_eq!(baggage.to_string(), "a=1,b=2");
}

#[test]
fn insert_updates_the_first_in_place_and_removes_duplicates() {
    let mut baggage = parse("k=1;p,a=x,k=2,b=y");
    baggage.insert("k", "new").unwrap();
    assert_eq!(baggage.to_string(), "k=new,a=x,b=y");
}

#[test]
fn insert_rejects_a_key_that_is_not_a_token() {
    let mut baggage = Baggage::new();
    assert_eq!(
        baggage.insert("bad key", "1"),
        Err(BaggageError::Member(BaggageMemberError::NotToken {
            part: BaggagePart::Key,
            offset: 3,
            found: ' '
        }))
    );
    assert_eq!(
        baggage.insert("", "1"),
        Err(BaggageError::Member(BaggageMemberError::Empty {
            part: BaggagePart::Key
        }))
    );
}

#[test]
fn insert_member_keeps_properties() {
    let mut baggage = Baggage::new();
    let member = BaggageMember::new("k", "v")
        .unwrap()
        .with_property("ttl", Some("30 s"))
        .unwrap()
        .with_property("flag", None)
        .unwrap();
    baggage.insert_member(member).unwrap();
    assert_eq!(baggage.to_string(), "k=v;ttl=30%20s;flag");
    assert_eq!(parse(&baggage.to_string()), baggage);
    assert!(
        BaggageMember::new("k", "v")
            .unwrap()
            .with_property("a;b", None)
            .is_err()
    );
}

#[test]
fn remove_deletes_all_members_with_the_key() {
    let mut baggage = parse("k=1,a=x,k=2");
    assert_eq!(
        baggage.remove("k").map(|m| m.value().to_string()),
        Some("1".to_string())
    );
    assert_eq!(baggage.to_string(), "a=x");
    assert_eq!(baggage.remove("k"), None);
}

#[test]
fn error_messages_say_what_was_wrong() {
    assert_eq!(
        Baggage::parse("a=1,b=x y").unwrap_err().to_string(),
        "baggage list-member 1 (\"b=x y\"): value holds ' ' at offset 1, which must be percent-encoded"
    );
}
