//! The idempotency ledger: idempotency key → the first payment made under it, so a
//! repeated key is answered with that payment (`"duplicate": true`) instead of
//! charging twice.
//!
//! ```text
//!  settle(key, mint) ─┬─ key known ─► (first payment, duplicate)
//!                     └─ new ─► mint() ─► remember (evict the oldest key past the limit) ─► (payment, first)
//! ```
//!
//! Bounded: a long demo must not grow it forever. Past `limit` keys the oldest is
//! forgotten (and counted); a retry that old would be charged again, as with a real
//! provider whose idempotency keys expire.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

/// The default bound on remembered keys.
pub const DEFAULT_LEDGER_LIMIT: usize = 100_000;

/// One successful charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    pub payment_id: String,
    pub order_id: String,
    pub amount_cents: u64,
}

/// What [`Ledger::settle`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The payment made under the key: the one just minted, or the first one.
    pub payment: Payment,
    /// Whether the key was already known.
    pub duplicate: bool,
}

/// Remembered keys and their payments, oldest first.
#[derive(Debug)]
pub struct Ledger {
    limit: usize,
    payments: HashMap<String, Payment>,
    /// Keys in the order they were first settled: the eviction order.
    order: VecDeque<String>,
    evictions: u64,
}

/// How full the ledger is, for `/status` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LedgerStats {
    pub entries: usize,
    pub limit: usize,
    /// Keys forgotten to stay within the limit.
    pub evictions: u64,
}

impl Ledger {
    /// A ledger remembering at most `limit` keys (at least one).
    pub fn new(limit: usize) -> Ledger {
        Ledger {
            limit: limit.max(1),
            payments: HashMap::new(),
            order: VecDeque::new(),
            evictions: 0,
        }
    }

    /// The first payment made under `key`; without one, `mint()` is the payment, and
    /// it is remembered.
    pub fn settle(&mut self, key: &str, mint: impl FnOnce() -> Payment) -> Settlement {
        if let Some(first) = self.payments.get(key) {
            return Settlement {
                payment: first.clone(),
                duplicate: true,
            };
        }
        let payment = mint();
        while self.payments.len() >= self.limit {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.payments.remove(&oldest);
            self.evictions += 1;
        }
        self.payments.insert(key.to_owned(), payment.clone());
        self.order.push_back(key.to_owned());
        Settlement {
            payment,
            duplicate: false,
        }
    }

    /// The payment remembered under `key`.
    pub fn get(&self, key: &str) -> Option<&Payment> {
        self.payments.get(key)
    }

    pub fn stats(&self) -> LedgerStats {
        LedgerStats {
            entries: self.payments.len(),
            limit: self.limit,
            evictions: self.evictions,
        }
    }
}

/// The id of the `sequence`-th payment minted by provider instance `instance`: unique
/// within a run (the sequence) and, in all likelihood, across runs (the instance, drawn
/// at start).
pub fn payment_id(instance: u32, sequence: u64) -> String {
    format!("pay-{instance:08x}-{sequence:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(n: u64) -> Payment {
        Payment {
            payment_id: payment_id(0xab, n),
            order_id: format!("order-{n}"),
            amount_cents: 100 + n,
        }
    }

    #[test]
    fn a_repeated_key_gets_the_first_payment_marked_duplicate() {
        let mut ledger = Ledger::new(10);
        let first = ledger.settle("k", || payment(1));
        assert_eq!(
            first,
            Settlement {
                payment: payment(1),
                duplicate: false
            }
        );
        let again = ledger.settle("k", || unreachable!("a known key mints nothing"));
        assert_eq!(
            again,
            Settlement {
                payment: payment(1),
                duplicate: true
            }
        );
        let other = ledger.settle("other", || payment(2));
        assert!(!other.duplicate);
        assert_eq!(other.payment.payment_id, "pay-000000ab-000002");
        assert_eq!(ledger.stats().entries, 2);
    }

    #[test]
    fn past_the_limit_the_oldest_keys_are_forgotten_and_counted() {
        let mut ledger = Ledger::new(3);
        for n in 0..5 {
            ledger.settle(&format!("k{n}"), || payment(n));
        }
        assert_eq!(
            ledger.stats(),
            LedgerStats {
                entries: 3,
                limit: 3,
                evictions: 2
            }
        );
        assert_eq!(ledger.get("k0"), None);
        assert_eq!(ledger.get("k1"), None);
        assert_eq!(ledger.get("k2"), Some(&payment(2)));
        // A duplicate neither evicts nor refreshes: k2 is still the oldest.
        assert!(ledger.settle("k2", || payment(99)).duplicate);
        ledger.settle("k5", || payment(5));
        assert_eq!(ledger.get("k2"), None);
        assert_eq!(ledger.get("k3"), Some(&payment(3)));
        assert_eq!(ledger.stats().evictions, 3);
        // A forgotten key is charged again.
        assert!(!ledger.settle("k0", || payment(6)).duplicate);
    }

    #[test]
    fn a_zero_limit_still_remembers_the_latest_key() {
        let mut ledger = Ledger::new(0);
        ledger.settle("a", || payment(1));
        assert!(ledger.settle("a", || payment(2)).duplicate);
        ledger.settle("b", || payment(3));
        assert_eq!(ledger.stats().entries, 1);
        assert_eq!(ledger.stats().evictions, 1);
    }
}
