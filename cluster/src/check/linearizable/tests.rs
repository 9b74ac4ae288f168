use std::collections::BTreeMap;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::check::history::{History, Outcome};

type H = History<RegisterOp, RegisterRet>;

fn read(key: &str) -> RegisterOp {
    RegisterOp::Read {
        key: key.to_owned(),
    }
}
fn write(key: &str, value: &str) -> RegisterOp {
    RegisterOp::Write {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}
fn cas(key: &str, expected: Option<&str>, new: &str) -> RegisterOp {
    RegisterOp::Cas {
        key: key.to_owned(),
        expected: expected.map(str::to_owned),
        new: new.to_owned(),
    }
}
fn got(value: Option<&str>) -> RegisterRet {
    RegisterRet::Read(value.map(str::to_owned))
}

fn verdict(h: &H) -> Verdict {
    let verdict = check(&RegisterMap, h).verdict();
    assert_eq!(
        check(&Plain, h).verdict(),
        verdict,
        "the hints must not change the verdict"
    );
    verdict
}

/// The register semantics without any of the optional hints (read-only, blind,
/// unobservable): the search must reach the same verdicts, only slower.
#[derive(Debug)]
struct Plain;

impl Model for Plain {
    type Op = RegisterOp;
    type Output = RegisterRet;
    type State = Option<String>;
    type Partition = String;

    fn init(&self) -> Option<String> {
        None
    }

    fn partition(&self, op: &RegisterOp) -> String {
        RegisterMap.partition(op)
    }

    fn step(
        &self,
        state: &Option<String>,
        op: &RegisterOp,
        output: Option<&RegisterRet>,
    ) -> Option<Option<String>> {
        RegisterMap.step(state, op, output)
    }
}

#[test]
fn stale_read_after_completed_write_is_a_violation() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("x", "1"), RegisterRet::Written);
    h.push_ok(1, 20, 30, write("x", "2"), RegisterRet::Written);
    let stale = h.push_ok(2, 40, 50, read("x"), got(Some("1")));
    let report = check(&RegisterMap, &h);
    assert_eq!(report.verdict(), Verdict::NotLinearizable, "{report}");
    let v = &report.violations[0];
    assert_eq!(v.partition, "x");
    assert_eq!(v.culprit.as_ref().map(|c| c.id), Some(stale));
    assert_eq!(v.prefix_ops, 3);
    let order: Vec<usize> = v.witness.iter().map(|s| s.op.id).collect();
    assert_eq!(order, vec![0, 1]);
    assert_eq!(v.witness[1].state_after, Some("2".to_owned()));
    assert!(v.concurrent.is_empty());
    let text = report.to_string();
    assert!(text.contains("NOT LINEARIZABLE"), "{text}");
    assert!(
        text.contains("cannot linearize: #2 p2 [0.000000s, 0.000000s] read(x) → 1"),
        "{text}"
    );
    assert!(text.contains("write(x, 2) → ok  ⇒ Some(\"2\")"), "{text}");
}

#[test]
fn concurrent_write_and_read_may_go_either_way() {
    for seen in [None, Some("1")] {
        let mut h = H::new();
        h.push_ok(1, 0, 10, write("x", "1"), RegisterRet::Written);
        h.push_ok(2, 5, 15, read("x"), got(seen));
        assert_eq!(verdict(&h), Verdict::Linearizable, "read {seen:?}");
    }
    // Once the write has completed, only the new value may be read.
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("x", "1"), RegisterRet::Written);
    h.push_ok(2, 11, 15, read("x"), got(None));
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
}

#[test]
fn touching_intervals_count_as_concurrent() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("x", "1"), RegisterRet::Written);
    h.push_ok(2, 10, 20, read("x"), got(None));
    assert_eq!(verdict(&h), Verdict::Linearizable);
}

#[test]
fn info_write_may_take_effect_late_or_never() {
    let mut h = H::new();
    h.push_info(1, 0, write("x", "1"));
    h.push_ok(2, 10, 20, read("x"), got(None));
    h.push_ok(2, 100, 110, read("x"), got(Some("1")));
    assert_eq!(verdict(&h), Verdict::Linearizable, "took effect late");

    let mut h = H::new();
    h.push_info(1, 0, write("x", "1"));
    h.push_ok(2, 100, 110, read("x"), got(None));
    assert_eq!(verdict(&h), Verdict::Linearizable, "never took effect");

    // But not before it was invoked.
    let mut h = H::new();
    h.push_ok(2, 0, 10, read("x"), got(Some("1")));
    h.push_info(1, 20, write("x", "1"));
    assert_eq!(verdict(&h), Verdict::NotLinearizable);

    // And once observed it cannot be undone.
    let mut h = H::new();
    h.push_info(1, 0, write("x", "1"));
    h.push_ok(2, 10, 20, read("x"), got(Some("1")));
    h.push_ok(2, 30, 40, read("x"), got(None));
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
}

#[test]
fn failed_operations_did_not_happen() {
    let mut h = H::new();
    h.push_fail(1, 0, 10, write("x", "1"));
    h.push_ok(2, 5, 20, read("x"), got(Some("1")));
    let report = check(&RegisterMap, &h);
    assert_eq!(report.verdict(), Verdict::NotLinearizable);
    assert_eq!(report.dropped, 1);
    let v = &report.violations[0];
    assert!(v.witness.is_empty());
    assert!(
        report
            .to_string()
            .contains("impossible from the initial state"),
        "{report}"
    );
}

#[test]
fn cas_and_delete_follow_the_register() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, cas("x", None, "a"), RegisterRet::Cas(true));
    h.push_ok(1, 20, 30, cas("x", None, "b"), RegisterRet::Cas(false));
    h.push_ok(1, 40, 50, cas("x", Some("a"), "c"), RegisterRet::Cas(true));
    h.push_ok(1, 60, 70, read("x"), got(Some("c")));
    h.push_ok(
        1,
        80,
        90,
        RegisterOp::Delete { key: "x".into() },
        RegisterRet::Deleted,
    );
    h.push_ok(1, 100, 110, read("x"), got(None));
    assert_eq!(verdict(&h), Verdict::Linearizable);

    // Two concurrent CAS from the same expected value cannot both win.
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("x", "0"), RegisterRet::Written);
    h.push_ok(1, 20, 30, cas("x", Some("0"), "1"), RegisterRet::Cas(true));
    h.push_ok(2, 20, 30, cas("x", Some("0"), "2"), RegisterRet::Cas(true));
    assert_eq!(verdict(&h), Verdict::NotLinearizable);

    // A wrong-kind result is impossible.
    let mut h = H::new();
    h.push_ok(1, 0, 10, read("x"), RegisterRet::Written);
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
}

#[test]
fn keys_are_checked_independently() {
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("x", "1"), RegisterRet::Written);
    h.push_ok(1, 0, 10, write("y", "1"), RegisterRet::Written);
    h.push_ok(2, 20, 30, read("x"), got(Some("1")));
    h.push_ok(2, 20, 30, read("y"), got(None));
    let report = check(&RegisterMap, &h);
    assert_eq!(report.partitions, 2);
    assert_eq!(report.violations.len(), 1);
    assert_eq!(report.violations[0].partition, "y");
}

#[test]
fn culprit_is_the_first_unexplainable_return() {
    // The violation is at #2; later operations pile on but the prefix stops there.
    let mut h = H::new();
    h.push_ok(1, 0, 10, write("x", "1"), RegisterRet::Written);
    h.push_ok(2, 5, 30, write("x", "2"), RegisterRet::Written);
    h.push_ok(3, 40, 50, read("x"), got(Some("1")));
    h.push_ok(3, 60, 70, read("x"), got(Some("2")));
    for i in 0..20 {
        h.push_ok(1, 100 + i * 10, 105 + i * 10, read("x"), got(Some("2")));
    }
    let report = check(&RegisterMap, &h);
    let v = &report.violations[0];
    // Read "1" at 40 is fine (write 2 may precede write 1); then read "2" at 60 is the
    // stale one... no: after read 1 (write 2 before write 1), "2" can never come back.
    assert_eq!(v.culprit.as_ref().map(|c| c.id), Some(3), "{report}");
    assert_eq!(v.prefix_ops, 4);
    assert_eq!(v.partition_ops, 24);
}

#[test]
fn budget_exhaustion_is_unknown_not_a_verdict() {
    let h = generate(7, 6, 400, 1, 0.2);
    let report = check_with(
        &RegisterMap,
        &h,
        &Config {
            max_steps: 50,
            ..Config::default()
        },
    );
    assert_eq!(report.verdict(), Verdict::Unknown, "{report}");
    assert_eq!(report.undecided[0].limit, Limit::Steps);
    assert!(report.to_string().contains("undecided after"), "{report}");
    let report = check_with(
        &RegisterMap,
        &h,
        &Config {
            max_memo_bytes: 1_000,
            ..Config::default()
        },
    );
    assert_eq!(report.verdict(), Verdict::Unknown);
    assert_eq!(report.undecided[0].limit, Limit::Memory);
}

#[test]
fn generated_histories_with_thousands_of_ops_per_key_pass() {
    // 3000 ops on one key, 5 concurrent clients, 5% timeouts.
    let h = generate(1, 5, 3000, 1, 0.05);
    let report = check(&RegisterMap, &h);
    assert_eq!(report.verdict(), Verdict::Linearizable, "{report}");
    // Proving a violation is an exhaustive search, and timeouts make it costlier: 1% here.
    let h = generate(1, 5, 3000, 1, 0.01);
    let report = check(&RegisterMap, &h);
    assert_eq!(report.verdict(), Verdict::Linearizable, "{report}");
    // The same with one read corrupted to a value nobody wrote.
    let (h, victim) = corrupt_last_read(&h);
    let report = check(&RegisterMap, &h);
    assert_eq!(report.verdict(), Verdict::NotLinearizable);
    assert_eq!(
        report.violations[0].culprit.as_ref().map(|c| c.id),
        Some(victim),
        "{report}"
    );
}

#[test]
fn an_early_violation_in_a_long_history_is_explained_cheaply() {
    let h = generate(5, 5, 3000, 1, 0.01);
    let mut ops = h.ops().to_vec();
    let victim = ops
        .iter()
        .position(|o| {
            o.id > 100
                && matches!(
                    (&o.op, &o.outcome),
                    (
                        RegisterOp::Read { .. },
                        Outcome::Ok(RegisterRet::Read(Some(_)))
                    )
                )
        })
        .unwrap();
    ops[victim].outcome = Outcome::Ok(got(Some("never-written")));
    let h = History::from(ops);
    let report = check(&RegisterMap, &h);
    let v = &report.violations[0];
    assert_eq!(v.culprit.as_ref().map(|c| c.id), Some(victim), "{report}");
    assert_eq!(v.stuck_at.as_ref().map(|c| c.id), Some(victim));
    assert!(v.prefix_ops < 200, "{report}");
    // Without the explanation, the furthest point is still reported.
    let quick = check_with(
        &RegisterMap,
        &h,
        &Config {
            explain: false,
            ..Config::default()
        },
    );
    let v = &quick.violations[0];
    assert!(v.culprit.is_none());
    assert_eq!(v.stuck_at.as_ref().map(|c| c.id), Some(victim));
    assert!(
        quick
            .to_string()
            .contains("no order gets past the return of: #"),
        "{quick}"
    );
}

#[test]
fn hundreds_of_timeouts_stay_cheap() {
    // 10% of 3000 operations time out, half of them never taking effect: each is a
    // pending write for the rest of the history. A budget of 1 M steps is plenty.
    let h = generate(3, 5, 3000, 1, 0.1);
    let limits = Config {
        max_steps: 1_000_000,
        ..Config::default()
    };
    let report = check_with(&RegisterMap, &h, &limits);
    assert_eq!(report.verdict(), Verdict::Linearizable, "{report}");
}

/// Checking speed on generated histories; run with
/// `cargo test --release -p faultline-cluster linearizable::tests::speed -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, not a test"]
fn speed() {
    let runs = [
        (5, 20_000, 1, 0.0, false),
        (5, 20_000, 1, 0.01, false),
        (5, 20_000, 1, 0.05, false),
        (10, 20_000, 1, 0.05, false),
        (20, 20_000, 1, 0.01, false),
        (10, 100_000, 50, 0.05, false),
        (5, 20_000, 1, 0.0, true),
        (10, 20_000, 1, 0.0, true),
        (5, 5_000, 1, 0.01, true),
        (10, 100_000, 50, 0.01, true),
    ];
    for (clients, ops, keys, info, bad) in runs {
        let mut h = generate(42, clients, ops, keys, info);
        if bad {
            h = corrupt_last_read(&h).0;
        }
        let start = std::time::Instant::now();
        let report = check(&RegisterMap, &h);
        let took = start.elapsed();
        println!(
            "{clients:>2} clients, {ops:>6} ops, {keys:>2} keys, {:>4.1}% info{}: {:?} in {took:.2?} ({:.0} ops/s, {} steps)",
            info * 100.0,
            if bad { ", one read corrupted" } else { "" },
            report.verdict(),
            ops as f64 / took.as_secs_f64(),
            report.steps
        );
    }
}

/// The history with its last `ok` read of a value changed to one never written, and the
/// id of that read.
fn corrupt_last_read(h: &H) -> (H, usize) {
    let mut ops = h.ops().to_vec();
    let victim = ops
        .iter()
        .rposition(|o| {
            matches!(
                (&o.op, &o.outcome),
                (
                    RegisterOp::Read { .. },
                    Outcome::Ok(RegisterRet::Read(Some(_)))
                )
            )
        })
        .unwrap_or(0);
    ops[victim].outcome = Outcome::Ok(got(Some("never-written")));
    let id = ops[victim].id;
    (History::from(ops), id)
}

/// A linearizable history: `clients` sequential clients, each operation taking effect at a
/// random point inside its interval; outputs come from applying the operations in the
/// order of those points. A fraction `info_rate` of operations time out (applied or not).
fn generate(seed: u64, clients: u64, ops: usize, keys: usize, info_rate: f64) -> H {
    let mut rng = StdRng::seed_from_u64(seed);
    // (effect time, invoke, complete, process, op, applied, info)
    let mut planned = Vec::with_capacity(ops);
    let mut clock = vec![0u64; clients as usize];
    for n in 0..ops {
        let p = n % clients as usize;
        let invoke = clock[p] + rng.random_range(0..50);
        let effect = invoke + rng.random_range(1..200);
        let complete = effect + rng.random_range(1..200);
        clock[p] = complete;
        let key = format!("k{}", rng.random_range(0..keys));
        let value = format!("{n}");
        let op = match rng.random_range(0..10) {
            0..=4 => RegisterOp::Read { key },
            5..=7 => RegisterOp::Write { key, value },
            8 => RegisterOp::Cas {
                key,
                expected: Some(format!("{}", rng.random_range(0..n.max(1)))),
                new: value,
            },
            _ => RegisterOp::Delete { key },
        };
        let info = rng.random_bool(info_rate);
        let applied = !info || rng.random_bool(0.5);
        planned.push((effect, invoke, complete, p as u64, op, applied, info));
    }
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| planned[i].0);
    let mut state: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut outputs = vec![None; planned.len()];
    for i in order {
        let (_, _, _, _, op, applied, _) = &planned[i];
        if !applied {
            continue;
        }
        let current = state.get(op.key()).cloned().flatten();
        let (next, out) = apply(&current, op);
        state.insert(op.key().to_owned(), next);
        outputs[i] = Some(out);
    }
    let mut sorted: Vec<usize> = (0..planned.len()).collect();
    sorted.sort_by_key(|&i| planned[i].1);
    let mut h = H::new();
    for i in sorted {
        let (_, invoke, complete, p, op, _, info) = planned[i].clone();
        match (info, outputs[i].take()) {
            (false, Some(out)) => h.push_ok(p, invoke, complete, op, out),
            _ => h.push(p, invoke, Some(complete), op, Outcome::Info),
        };
    }
    h
}

/// The register semantics written out independently of [`RegisterMap::step`].
fn apply(state: &Option<String>, op: &RegisterOp) -> (Option<String>, RegisterRet) {
    match op {
        RegisterOp::Read { .. } => (state.clone(), RegisterRet::Read(state.clone())),
        RegisterOp::Write { value, .. } => (Some(value.clone()), RegisterRet::Written),
        RegisterOp::Cas { expected, new, .. } if state == expected => {
            (Some(new.clone()), RegisterRet::Cas(true))
        }
        RegisterOp::Cas { .. } => (state.clone(), RegisterRet::Cas(false)),
        RegisterOp::Delete { .. } => (None, RegisterRet::Deleted),
    }
}

/// Brute force: try every order consistent with real time, on the whole map at once (no
/// partitioning, no memo). `info` operations may be placed anywhere after their
/// invocation, or left out.
fn brute_force(h: &H) -> bool {
    let ops: Vec<_> = h.iter().filter(|o| !o.is_fail()).collect();
    fn go(
        ops: &[&Operation<RegisterOp, RegisterRet>],
        placed: &mut Vec<bool>,
        state: &BTreeMap<String, Option<String>>,
    ) -> bool {
        let must_remaining: Vec<usize> = (0..ops.len())
            .filter(|&i| !placed[i] && ops[i].return_ns().is_some())
            .collect();
        if must_remaining.is_empty() {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            // i can go next only if no remaining must-op completed before i was invoked.
            if must_remaining.iter().any(|&j| ops[j].precedes(ops[i])) {
                continue;
            }
            let current = state.get(ops[i].op.key()).cloned().flatten();
            let (next, out) = apply(&current, &ops[i].op);
            if let Some(seen) = ops[i].ok()
                && ops[i].return_ns().is_some()
                && *seen != out
            {
                continue;
            }
            let mut state = state.clone();
            state.insert(ops[i].op.key().to_owned(), next);
            placed[i] = true;
            if go(ops, placed, &state) {
                return true;
            }
            placed[i] = false;
        }
        false
    }
    go(&ops, &mut vec![false; ops.len()], &BTreeMap::new())
}

/// Small random histories: (kind, key, value, start, length, outcome) per operation.
fn small_ops() -> impl Strategy<Value = Vec<(u8, u8, u8, u16, u16, u8)>> {
    prop::collection::vec((0u8..10, 0u8..2, 0u8..3, 0u16..60, 0u16..30, 0u8..20), 1..8)
}

fn key_of(k: u8) -> String {
    ["a", "b"][k as usize].to_owned()
}

fn value_of(v: u8) -> String {
    v.to_string()
}

fn op_of(kind: u8, key: u8, value: u8) -> RegisterOp {
    let key = key_of(key);
    match kind {
        0..=3 => RegisterOp::Read { key },
        4..=6 => RegisterOp::Write {
            key,
            value: value_of(value),
        },
        7 | 8 => RegisterOp::Cas {
            key,
            expected: (value > 0).then(|| value_of(value - 1)),
            new: value_of(value),
        },
        _ => RegisterOp::Delete { key },
    }
}

/// A linearizable history from a sequential execution: operation `i` takes effect at
/// `10 * i` and its interval stretches randomly around that point.
fn sequential(spec: &[(u8, u8, u8, u16, u16, u8)]) -> H {
    let mut state: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut h = H::new();
    for (i, &(kind, key, value, before, after, outcome)) in spec.iter().enumerate() {
        let op = op_of(kind, key, value);
        let effect = 100 + 10 * i as u64;
        let invoke = effect - u64::from(before);
        let complete = effect + u64::from(after);
        let applied = !matches!(outcome, 1 | 2); // 1: info not applied, 2: fail
        let out = if applied {
            let current = state.get(op.key()).cloned().flatten();
            let (next, out) = apply(&current, &op);
            state.insert(op.key().to_owned(), next);
            Some(out)
        } else {
            None
        };
        let outcome = match (outcome, out) {
            (0 | 1, _) => Outcome::Info,
            (2, _) => Outcome::Fail,
            (_, Some(out)) => Outcome::Ok(out),
            (_, None) => Outcome::Info,
        };
        h.push(i as u64, invoke, Some(complete), op, outcome);
    }
    h
}

/// Random damage: a result changed, a CAS flipped, an interval moved.
fn corrupt(h: &H, which: usize, how: u8, value: u8, shift: u16) -> H {
    let mut ops = h.ops().to_vec();
    let i = which % ops.len();
    let op = &mut ops[i];
    match (how % 3, &mut op.outcome) {
        (0, Outcome::Ok(RegisterRet::Read(v))) => *v = (value > 0).then(|| value_of(value - 1)),
        (0 | 1, Outcome::Ok(RegisterRet::Cas(b))) => *b = !*b,
        (1, outcome) => *outcome = Outcome::Ok(got(Some(&value_of(value)))),
        _ => {
            op.invoke_ns += u64::from(shift);
            op.complete_ns = op.complete_ns.map(|c| c + u64::from(shift));
        }
    }
    History::from(ops)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sequential_executions_are_linearizable(spec in small_ops()) {
        let h = sequential(&spec);
        let report = check(&RegisterMap, &h);
        prop_assert!(report.is_linearizable(), "{}\n{}", report, h);
        prop_assert!(check(&Plain, &h).is_linearizable(), "{}", h);
        prop_assert!(brute_force(&h), "brute force disagrees on a sequential history\n{}", h);
    }

    #[test]
    fn agrees_with_brute_force_on_corrupted_histories(
        spec in small_ops(), which in 0usize..8, how in 0u8..3, value in 0u8..4, shift in 0u16..80,
    ) {
        let h = corrupt(&sequential(&spec), which, how, value, shift);
        let report = check(&RegisterMap, &h);
        let expected = if brute_force(&h) { Verdict::Linearizable } else { Verdict::NotLinearizable };
        prop_assert_eq!(report.verdict(), expected, "{}\n{}", report, h);
        prop_assert_eq!(check(&Plain, &h).verdict(), expected, "{}", h);
        if let Some(v) = report.violations.first() {
            prop_assert!(v.culprit.is_some(), "{}", report);
        }
    }

    #[test]
    fn agrees_with_brute_force_on_random_histories(
        spec in prop::collection::vec((0u8..10, 0u8..2, 0u8..3, 0u16..60, 0u16..30, 0u8..20, 0u8..4, any::<bool>()), 1..8),
    ) {
        let mut h = H::new();
        for (i, &(kind, key, value, start, len, outcome, result, flag)) in spec.iter().enumerate() {
            let op = op_of(kind, key, value);
            let ret = match op {
                RegisterOp::Read { .. } => got((result > 0).then(|| value_of(result - 1)).as_deref()),
                RegisterOp::Write { .. } => RegisterRet::Written,
                RegisterOp::Cas { .. } => RegisterRet::Cas(flag),
                RegisterOp::Delete { .. } => RegisterRet::Deleted,
            };
            let outcome = match outcome { 0 => Outcome::Info, 1 => Outcome::Fail, _ => Outcome::Ok(ret) };
            h.push(i as u64, u64::from(start), Some(u64::from(start) + u64::from(len)), op, outcome);
        }
        let report = check(&RegisterMap, &h);
        let expected = if brute_force(&h) { Verdict::Linearizable } else { Verdict::NotLinearizable };
        prop_assert_eq!(report.verdict(), expected, "{}\n{}", report, h);
        prop_assert_eq!(check(&Plain, &h).verdict(), expected, "{}", h);
    }
}
