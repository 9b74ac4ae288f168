//! The provider's pure decisions: what a charge request must look like, how long a
//! served request holds its slot and whether it fails (drawn from an RNG the caller
//! owns, so a seed replays them), and how answers are counted.
//!
//! ```text
//!  body + idempotency-key ─► Charge::new ─► Charge | InvalidCharge (400)
//!  settings + rng ─► decide ─► Decision { service_time: latency ± U(jitter), fails: U(0,1) < error_rate }
//!  answer ─► Outcome ─► Totals (faultline_payments_requests_total{outcome})
//! ```

use std::time::Duration;

use rand::Rng;
use serde::Serialize;

use super::settings::{MAX_LATENCY_MS, PaymentsSettings};

/// Order ids and idempotency keys are remembered by the ledger: bound their size.
pub const MAX_KEY_BYTES: usize = 256;

/// A charge request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub order_id: String,
    pub amount_cents: u64,
    /// The `idempotency-key` header, or the order id without one.
    pub idempotency_key: String,
}

/// Why a charge request was refused before it was served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCharge {
    #[error("order_id must not be empty")]
    EmptyOrderId,
    #[error("idempotency-key must not be empty (leave the header out to use the order id)")]
    EmptyKey,
    #[error("{what} is {len} bytes long; at most {MAX_KEY_BYTES} are accepted")]
    TooLong { what: &'static str, len: usize },
}

impl Charge {
    pub fn new(
        order_id: String,
        amount_cents: u64,
        idempotency_key: Option<String>,
    ) -> Result<Charge, InvalidCharge> {
        if order_id.is_empty() {
            return Err(InvalidCharge::EmptyOrderId);
        }
        if order_id.len() > MAX_KEY_BYTES {
            return Err(InvalidCharge::TooLong {
                what: "order_id",
                len: order_id.len(),
            });
        }
        let idempotency_key = match idempotency_key {
            None => order_id.clone(),
            Some(key) if key.is_empty() => return Err(InvalidCharge::EmptyKey),
            Some(key) if key.len() > MAX_KEY_BYTES => {
                return Err(InvalidCharge::TooLong {
                    what: "idempotency-key",
                    len: key.len(),
                });
            }
            Some(key) => key,
        };
        Ok(Charge {
            order_id,
            amount_cents,
            idempotency_key,
        })
    }
}

/// What happens to one served request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// How long it holds its slot.
    pub service_time: Duration,
    /// Whether it then fails with `500 payment_failed`.
    pub fails: bool,
}

/// Draws a served request's fate: service time uniform in `latency ± jitter` (µs
/// resolution), failure with probability `error_rate`. Always draws the same two
/// numbers, so a seeded RNG replays the same decisions whatever the settings. Settings
/// out of range are clamped rather than trusted (they are validated before they get
/// here).
pub fn decide(settings: &PaymentsSettings, rng: &mut impl Rng) -> Decision {
    let latency_us = settings.latency_ms.min(MAX_LATENCY_MS) * 1000;
    let jitter_us = settings.jitter_ms.saturating_mul(1000).min(latency_us);
    // latency - jitter + U[0, 2 jitter]: never below 0, no signed arithmetic.
    let offset_us = rng.random_range(0..=2 * jitter_us);
    let draw: f64 = rng.random();
    Decision {
        service_time: Duration::from_micros(latency_us - jitter_us + offset_us),
        // U[0, 1) < rate: never for 0, always for 1, never for NaN.
        fails: draw < settings.error_rate,
    }
}

/// How a charge was answered: the `outcome` label of
/// `faultline_payments_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200, a new payment.
    Ok,
    /// 500 `payment_failed`.
    Error,
    /// 503 `overloaded`: the waiting line was full.
    Overloaded,
    /// 200, the first payment made under a known idempotency key.
    Duplicate,
    /// 400: not a valid charge request.
    Invalid,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Overloaded,
        Outcome::Duplicate,
        Outcome::Invalid,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Overloaded => "overloaded",
            Outcome::Duplicate => "duplicate",
            Outcome::Invalid => "invalid",
        }
    }
}

/// Charges answered since start, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub ok: u64,
    pub error: u64,
    pub overloaded: u64,
    pub duplicate: u64,
    pub invalid: u64,
}

impl Totals {
    pub fn count(&mut self, outcome: Outcome) {
        let n = self.get_mut(outcome);
        *n = n.saturating_add(1);
    }

    pub fn get(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Ok => self.ok,
            Outcome::Error => self.error,
            Outcome::Overloaded => self.overloaded,
            Outcome::Duplicate => self.duplicate,
            Outcome::Invalid => self.invalid,
        }
    }

    fn get_mut(&mut self, outcome: Outcome) -> &mut u64 {
        match outcome {
            Outcome::Ok => &mut self.ok,
            Outcome::Error => &mut self.error,
            Outcome::Overloaded => &mut self.overloaded,
            Outcome::Duplicate => &mut self.duplicate,
            Outcome::Invalid => &mut self.invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    use super::*;

    fn settings(latency_ms: u64, jitter_ms: u64, error_rate: f64) -> PaymentsSettings {
        PaymentsSettings {
            latency_ms,
            jitter_ms,
            error_rate,
            ..PaymentsSettings::default()
        }
    }

    #[test]
    fn charges_are_checked_and_the_key_defaults_to_the_order_id() {
        let charge = Charge::new("o-1".into(), 1299, None).unwrap();
        assert_eq!(charge.idempotency_key, "o-1");
        let keyed = Charge::new("o-1".into(), 1299, Some("k".into())).unwrap();
        assert_eq!(keyed.idempotency_key, "k");
        assert_eq!(
            Charge::new(String::new(), 1, None),
            Err(InvalidCharge::EmptyOrderId)
        );
        assert_eq!(
            Charge::new("o".into(), 1, Some(String::new())),
            Err(InvalidCharge::EmptyKey)
        );
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(
            Charge::new(long.clone(), 1, None).unwrap_err().to_string(),
            "order_id is 257 bytes long; at most 256 are accepted"
        );
        assert!(matches!(
            Charge::new("o".into(), 1, Some(long)),
            Err(InvalidCharge::TooLong {
                what: "idempotency-key",
                ..
            })
        ));
        assert!(Charge::new("x".repeat(MAX_KEY_BYTES), 1, None).is_ok());
    }

    #[test]
    fn without_jitter_the_service_time_is_the_latency() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let d = decide(&settings(100, 0, 0.0), &mut rng);
            assert_eq!(d.service_time, Duration::from_millis(100));
            assert!(!d.fails);
        }
    }

    /// Seeded, so the draws are fixed; the bounds are still ones a fair uniform draw
    /// meets with overwhelming probability (mean within ~9 standard errors), so a
    /// change of RNG stream would not make this fail either.
    #[test]
    fn service_times_spread_uniformly_over_latency_plus_minus_jitter() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let s = settings(40, 10, 0.0);
        let n = 20_000u32;
        let times: Vec<Duration> = (0..n).map(|_| decide(&s, &mut rng).service_time).collect();
        let min = times.iter().min().copied().unwrap();
        let max = times.iter().max().copied().unwrap();
        assert!(min >= Duration::from_millis(30), "{min:?}");
        assert!(max <= Duration::from_millis(50), "{max:?}");
        // Both ends are reached: the spread is the whole ±10 ms.
        assert!(min < Duration::from_micros(30_200), "{min:?}");
        assert!(max > Duration::from_micros(49_800), "{max:?}");
        // Uniform on [30, 50] ms: mean 40 ms, sd 5.77 ms, standard error 0.04 ms.
        let mean = times.iter().sum::<Duration>() / n;
        assert!(
            mean > Duration::from_micros(39_650) && mean < Duration::from_micros(40_350),
            "{mean:?}"
        );
        // Each quarter of the range holds about a quarter of the draws (sd ~ 61).
        let quarter = |q: u64| {
            let (lo, hi) = (30_000 + q * 5_000, 35_000 + q * 5_000);
            times
                .iter()
                .filter(|t| (lo..hi).contains(&(t.as_micros() as u64)))
                .count()
        };
        for q in 0..4 {
            let count = quarter(q);
            assert!((4_400..=5_600).contains(&count), "quarter {q}: {count}");
        }
    }

    #[test]
    fn failures_come_at_the_error_rate() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 20_000;
        for (rate, low, high) in [(0.3, 5_600, 6_400), (0.05, 820, 1_180)] {
            let s = settings(40, 10, rate);
            let failed = (0..n).filter(|_| decide(&s, &mut rng).fails).count();
            // Binomial(20000, rate): both bounds are more than 6 standard deviations out.
            assert!((low..=high).contains(&failed), "rate {rate}: {failed}");
        }
        let never = settings(40, 10, 0.0);
        assert!((0..n).all(|_| !decide(&never, &mut rng).fails));
        let always = settings(40, 10, 1.0);
        assert!((0..n).all(|_| decide(&always, &mut rng).fails));
    }

    #[test]
    fn the_same_seed_replays_the_same_decisions() {
        let s = settings(40, 10, 0.5);
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50).map(|_| decide(&s, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn out_of_range_settings_are_clamped_not_trusted() {
        let mut rng = StdRng::seed_from_u64(9);
        let wild = settings(u64::MAX, u64::MAX, f64::NAN);
        let d = decide(&wild, &mut rng);
        assert!(d.service_time <= Duration::from_millis(2 * MAX_LATENCY_MS));
        assert!(!d.fails);
    }

    #[test]
    fn totals_count_each_outcome_under_its_label() {
        let mut totals = Totals::default();
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                totals.count(outcome);
            }
        }
        let counted: Vec<_> = Outcome::ALL
            .iter()
            .map(|o| (o.label(), totals.get(*o)))
            .collect();
        assert_eq!(
            counted,
            [
                ("ok", 1),
                ("error", 2),
                ("overloaded", 3),
                ("duplicate", 4),
                ("invalid", 5)
            ]
        );
    }
}
