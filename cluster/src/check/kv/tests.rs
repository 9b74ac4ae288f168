use proptest::prelude::*;

use super::*;

type H = History<KvOp, KvRet>;

fn write(key: &str, value: &str, w: u8) -> KvOp {
    KvOp::Write {
        key: key.to_owned(),
        value: value.to_owned(),
        w,
    }
}
fn read(key: &str, r: u8) -> KvOp {
    KvOp::Read {
        key: key.to_owned(),
        r,
    }
}
fn written(version: Option<Version>) -> KvRet {
    KvRet::Written { version }
}
fn got(value: Option<&str>) -> KvRet {
    KvRet::Read {
        value: value.map(str::to_owned),
        version: None,
    }
}
fn fin(key: &str, value: Option<&str>) -> FinalRead {
    FinalRead {
        key: key.to_owned(),
        value: value.map(str::to_owned),
        version: None,
        replica: None,
    }
}
fn v(clock: u64) -> Version {
    Version { clock, node: 1 }
}

#[test]
fn surviving_and_superseded_writes_are_fine() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "a", 2), written(None));
    h.push_ok(2, 20, 30, write("k", "b", 2), written(None));
    let r = check_lost_writes(&h, &[fin("k", Some("b"))]);
    assert!(r.is_ok(), "{r}");
    assert_eq!((r.acked_quorum_writes, r.survived, r.superseded), (2, 1, 1));
    assert!(r.to_string().starts_with("kv lost writes: ok"), "{r}");
}

#[test]
fn concurrent_writes_either_may_win() {
    for winner in ["a", "b"] {
        let mut h = H::new();
        h.push_ok(1, 0, 10, write("k", "a", 2), written(None));
        h.push_ok(2, 5, 15, write("k", "b", 2), written(None));
        let r = check_lost_writes(&h, &[fin("k", Some(winner))]);
        assert!(r.is_ok(), "winner {winner}: {r}");
    }
}

#[test]
fn overwriting_an_acked_write_with_an_older_value_loses_it() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "a", 2), written(None));
    let lost = h.push_ok(2, 20, 30, write("k", "b", 2), written(None));
    let r = check_lost_writes(&h, &[fin("k", Some("a"))]);
    assert!(!r.is_ok());
    assert_eq!(r.lost.len(), 1);
    assert_eq!(r.lost[0].write.id, lost);
    assert_eq!(
        r.lost[0].final_writers,
        Writers {
            initial: false,
            writes: vec![0]
        }
    );
    let text = r.to_string();
    assert!(text.contains("LOST WRITES"), "{text}");
    assert!(text.contains("lost: #1 p2"), "{text}");
    assert!(
        text.contains("final value a written by #0, which precede it"),
        "{text}"
    );
}

#[test]
fn a_later_write_of_unknown_outcome_does_not_excuse_a_loss() {
    // `b` may have overwritten `a`, but the final state is the initial one, older than `a`.
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "a", 2), written(None));
    h.push_info(2, 20, write("k", "b", 2));
    let r = check_lost_writes(&h, &[fin("k", None)]);
    assert_eq!(r.lost.len(), 1, "{r}");
    assert!(
        r.to_string().contains("written by the initial state"),
        "{r}"
    );
    // Had `b` survived, `a` would be superseded.
    let r = check_lost_writes(&h, &[fin("k", Some("b"))]);
    assert!(r.is_ok(), "{r}");
}

#[test]
fn losses_below_quorum_are_counted_not_reported() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "a", 1), written(None));
    let r = check_lost_writes(&h, &[fin("k", None)]);
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.lost_below_quorum, 1);
}

#[test]
fn deletes_are_writes_of_absent() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "a", 2), written(None));
    h.push_ok(
        1,
        20,
        30,
        KvOp::Delete {
            key: "k".into(),
            w: 2,
        },
        written(None),
    );
    let r = check_lost_writes(&h, &[fin("k", None)]);
    assert!(r.is_ok(), "{r}");
    assert_eq!((r.survived, r.superseded), (1, 1));
}

#[test]
fn values_nobody_wrote_are_unexplained() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "a", 2), written(None));
    h.push_fail(1, 20, 30, write("k", "b", 2));
    let r = check_lost_writes(&h, &[fin("k", Some("b")), fin("other", Some("ghost"))]);
    assert!(!r.is_ok());
    assert_eq!(r.unexplained.len(), 2, "{r}");
    assert_eq!(r.unexplained[0].failed_writers, vec![1]);
    let text = r.to_string();
    assert!(
        text.contains("k = b, written only by operations reported failed: #1"),
        "{text}"
    );
    assert!(
        text.contains("other = ghost, written by no operation"),
        "{text}"
    );
}

#[test]
fn keys_never_read_back_are_unchecked() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "a", 2), written(None));
    let r = check_lost_writes(&h, &[]);
    assert_eq!(r.unchecked, vec![0]);
    assert!(!r.is_ok());
    assert!(r.to_string().contains("UNCHECKED KEYS"), "{r}");
}

#[test]
fn replicas_resolve_by_version_and_divergence_is_reported() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "a", 2), written(Some(v(1))));
    h.push_ok(2, 20, 30, write("k", "b", 2), written(Some(v(2))));
    let finals = [
        FinalRead {
            key: "k".into(),
            value: Some("a".into()),
            version: Some(v(1)),
            replica: Some("n3".into()),
        },
        FinalRead {
            key: "k".into(),
            value: Some("b".into()),
            version: Some(v(2)),
            replica: Some("n1".into()),
        },
    ];
    let r = check_lost_writes(&h, &finals);
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.divergent.len(), 1);
    assert!(r.to_string().contains("k: a (v1@n1) | b (v2@n1)"), "{r}");
}

#[test]
fn version_inversions_explain_lww_losses() {
    // The second write came later in real time but got a lower version (clock skew):
    // LWW keeps the first, and the second is lost.
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "a", 2), written(Some(v(50))));
    h.push_ok(2, 20, 30, write("k", "b", 2), written(Some(v(40))));
    let finals = [FinalRead {
        key: "k".into(),
        value: Some("a".into()),
        version: Some(v(50)),
        replica: None,
    }];
    let r = check_lost_writes(&h, &finals);
    assert_eq!(r.lost.len(), 1);
    assert_eq!(r.lost[0].write.id, 1);
    assert_eq!(
        r.version_inversions,
        vec![VersionInversion {
            key: "k".into(),
            earlier: (0, v(50)),
            later: (1, v(40))
        }]
    );
    assert!(
        r.to_string()
            .contains("k: #0 got v50@n1, then #1 got v40@n1"),
        "{r}"
    );
}

#[test]
fn versions_distinguish_writes_of_the_same_value() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "x", 2), written(Some(v(1))));
    h.push_ok(2, 20, 30, write("k", "x", 2), written(Some(v(2))));
    let old = [FinalRead {
        key: "k".into(),
        value: Some("x".into()),
        version: Some(v(1)),
        replica: None,
    }];
    let r = check_lost_writes(&h, &old);
    assert_eq!(
        r.lost.iter().map(|l| l.write.id).collect::<Vec<_>>(),
        vec![1],
        "{r}"
    );
}

#[test]
fn stale_read_after_an_acknowledged_overwrite() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "1", 1), written(None));
    h.push_ok(1, 20, 30, write("k", "2", 1), written(None));
    let stale = h.push_ok(2, 40, 50, read("k", 1), got(Some("1")));
    // Concurrent with the overwrite: either value is fine.
    h.push_ok(3, 25, 35, read("k", 2), got(Some("1")));
    h.push_ok(3, 45, 55, read("k", 2), got(Some("2")));
    let r = check_stale_reads(&h);
    assert_eq!((r.reads, r.stale), (3, 1), "{r}");
    assert_eq!(r.by_r.get(&1), Some(&(1, 1)));
    assert_eq!(r.by_r.get(&2), Some(&(2, 0)));
    assert_eq!(r.examples[0].read.id, stale);
    assert_eq!(r.examples[0].overwritten_by, 1);
    assert_eq!(r.examples[0].outdated_for_ns, 10);
    let text = r.to_string();
    assert!(
        text.starts_with("kv stale reads: 1 of 3 reads (33.33%)"),
        "{text}"
    );
    assert!(
        text.contains("stale: #2 p2 [0.000000s, 0.000000s] read(k, R=1) → 1 (overwritten by #1"),
        "{text}"
    );
}

#[test]
fn reading_absent_after_an_acknowledged_write_is_stale() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "1", 2), written(None));
    h.push_ok(2, 20, 30, read("k", 1), got(None));
    h.push_ok(2, 5, 8, read("k", 1), got(None));
    let r = check_stale_reads(&h);
    assert_eq!((r.reads, r.stale), (2, 1), "{r}");
}

#[test]
fn values_of_unknown_writes_are_never_stale_and_unknown_values_are_unexplained() {
    let mut h = H::new();
    h.push_info(1, 0, write("k", "maybe", 2));
    h.push_ok(1, 20, 30, write("k", "2", 2), written(None));
    h.push_ok(2, 100, 110, read("k", 1), got(Some("maybe")));
    let ghost = h.push_ok(2, 120, 130, read("k", 1), got(Some("ghost")));
    let r = check_stale_reads(&h);
    assert_eq!(r.stale, 0, "{r}");
    assert_eq!(r.unexplained, vec![ghost]);
    assert!(r.to_string().contains("UNEXPLAINED: 1 reads"), "{r}");
}

#[test]
fn kv_history_round_trips_as_json_lines() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("k", "a", 2), written(Some(v(3))));
    h.push_ok(
        2,
        20,
        30,
        read("k", 2),
        KvRet::Read {
            value: Some("a".into()),
            version: Some(v(3)),
        },
    );
    let mut buf = Vec::new();
    h.write_jsonl(&mut buf).unwrap();
    assert_eq!(H::read_jsonl(&buf[..]).unwrap(), h);
}

/// A last-writer-wins execution without faults: writes take effect at points inside
/// their intervals, in that order, and reads return the value current at theirs.
fn lww(spec: &[(bool, u8, u16, u16)]) -> (H, Vec<FinalRead>) {
    let mut h = H::new();
    let mut current: Option<String> = None;
    for (i, &(is_write, w, before, after)) in spec.iter().enumerate() {
        let effect = 1_000 + 100 * i as u64;
        let (invoke, complete) = (effect - u64::from(before), effect + u64::from(after));
        if is_write {
            let value = format!("v{i}");
            current = Some(value.clone());
            h.push_ok(
                i as u64,
                invoke,
                complete,
                write("k", &value, w),
                written(None),
            );
        } else {
            h.push_ok(
                i as u64,
                invoke,
                complete,
                read("k", 2),
                got(current.as_deref()),
            );
        }
    }
    let finals = vec![fin("k", current.as_deref())];
    (h, finals)
}

proptest! {
    #[test]
    fn fault_free_lww_loses_nothing_and_reads_nothing_stale(
        spec in prop::collection::vec((any::<bool>(), 1u8..4, 0u16..300, 0u16..300), 1..40),
    ) {
        let (h, finals) = lww(&spec);
        let lost = check_lost_writes(&h, &finals);
        prop_assert!(lost.is_ok(), "{}\n{}", lost, h);
        let stale = check_stale_reads(&h);
        prop_assert_eq!(stale.stale, 0, "{}\n{}", stale, h);
        prop_assert!(stale.unexplained.is_empty());
    }

    #[test]
    fn rolling_back_to_an_older_write_is_caught(
        spec in prop::collection::vec((any::<bool>(), 2u8..4, 0u16..40, 0u16..40), 2..40),
        pick in any::<prop::sample::Index>(),
    ) {
        let (h, _) = lww(&spec);
        // Intervals are at most 80 wide and effects 100 apart: writes never overlap, so
        // rolling back to any earlier write loses every acknowledged write after it.
        let writes: Vec<&KvOperation> = h.iter().filter(|o| matches!(o.op, KvOp::Write { .. })).collect();
        prop_assume!(writes.len() >= 2);
        let back = pick.index(writes.len() - 1);
        let KvOp::Write { value, .. } = &writes[back].op else { unreachable!() };
        let r = check_lost_writes(&h, &[fin("k", Some(value))]);
        let lost: Vec<usize> = r.lost.iter().map(|l| l.write.id).collect();
        let expected: Vec<usize> = writes[back + 1..].iter().map(|o| o.id).collect();
        prop_assert_eq!(lost, expected, "{}", r);
    }
}
