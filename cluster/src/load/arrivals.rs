//! When requests are sent: the open-loop arrival schedule.
//!
//! ```text
//!  rate, seed ─► Arrivals::next() ─► 0.031s, 0.052s, 0.140s, …   (offsets from the start of the run)
//!                                        │
//!  the shell sleeps until start + offset and sends, whether or not earlier requests answered
//! ```
//!
//! Open loop: arrival times depend on the rate and the seed only, never on how fast the
//! system answers. A closed loop (send, wait, send) slows down with the system it
//! measures and hides the queueing an incident is made of (Schroeder, Wierman,
//! Harchol-Balter, "Open Versus Closed: A Cautionary Tale", NSDI 2006).
//!
//! - **Poisson** (default): exponentially distributed gaps with mean 1/rate — many
//!   independent users; bursts happen, as in production.
//! - **Uniform**: exactly 1/rate apart — for runs that should look the same every time.
//!
//! Offsets are absolute (from the start), not gaps slept one after the other, so a slow
//! send or a late timer never shifts the arrivals after it.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

use super::LoadError;

/// The highest rate accepted: beyond it the shell's timer, not the schedule, decides.
pub const MAX_RATE: f64 = 100_000.0;

/// How arrivals are spread in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrivalProcess {
    Poisson,
    Uniform,
}

/// The arrival schedule: an endless sequence of offsets from the start of the run.
#[derive(Debug)]
pub struct Arrivals {
    process: ArrivalProcess,
    mean_gap_ns: f64,
    /// Poisson: the offset of the next arrival; uniform: unused (computed from `count`).
    next_ns: f64,
    count: u64,
    rng: StdRng,
}

impl Arrivals {
    /// `rate` arrivals per second on average.
    pub fn new(rate: f64, process: ArrivalProcess, seed: u64) -> Result<Arrivals, LoadError> {
        if !(rate > 0.0 && rate <= MAX_RATE) {
            return Err(LoadError::Rate {
                rate,
                max: MAX_RATE,
            });
        }
        Ok(Arrivals {
            process,
            mean_gap_ns: 1e9 / rate,
            next_ns: 0.0,
            count: 0,
            // Its own stream (not the planner's), so changing the mix keeps the times.
            rng: StdRng::seed_from_u64(seed ^ 0xa5a5_5a5a_0f0f_f0f0),
        })
    }

    /// The offset from the start at which the next request is due.
    pub fn next_offset(&mut self) -> Duration {
        let ns = match self.process {
            // k × gap rather than a running sum: no rounding drift over long runs.
            ArrivalProcess::Uniform => self.count as f64 * self.mean_gap_ns,
            ArrivalProcess::Poisson => {
                // Inverse transform: u in [0, 1) makes 1 - u in (0, 1], so ln is finite.
                let u: f64 = self.rng.random();
                self.next_ns += -(1.0 - u).ln() * self.mean_gap_ns;
                self.next_ns
            }
        };
        self.count += 1;
        Duration::from_nanos(ns as u64)
    }

    pub fn process(&self) -> ArrivalProcess {
        self.process
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(rate: f64, process: ArrivalProcess, seed: u64, n: usize) -> Vec<Duration> {
        let mut a = Arrivals::new(rate, process, seed).unwrap();
        (0..n).map(|_| a.next_offset()).collect()
    }

    #[test]
    fn uniform_arrivals_are_evenly_spaced_from_zero() {
        let o = offsets(20.0, ArrivalProcess::Uniform, 1, 5);
        let ms: Vec<u128> = o.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 50, 100, 150, 200]);
        // No drift after many arrivals.
        let mut a = Arrivals::new(3.0, ArrivalProcess::Uniform, 1).unwrap();
        let last = (0..=3_000).map(|_| a.next_offset()).last().unwrap();
        assert_eq!(last.as_millis(), 1_000_000);
    }

    #[test]
    fn poisson_arrivals_have_the_rate_on_average_and_vary() {
        let o = offsets(50.0, ArrivalProcess::Poisson, 7, 20_000);
        assert!(o.windows(2).all(|w| w[0] <= w[1]), "offsets only grow");
        let seconds = o.last().unwrap().as_secs_f64();
        let rate = o.len() as f64 / seconds;
        assert!((47.0..53.0).contains(&rate), "measured rate {rate}");
        // Exponential gaps: standard deviation ≈ mean (uniform gaps would have 0).
        let gaps: Vec<f64> = o.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        let cv = var.sqrt() / mean;
        assert!((0.9..1.1).contains(&cv), "coefficient of variation {cv}");
    }

    #[test]
    fn the_seed_decides_the_schedule() {
        let a = offsets(100.0, ArrivalProcess::Poisson, 42, 100);
        assert_eq!(a, offsets(100.0, ArrivalProcess::Poisson, 42, 100));
        assert_ne!(a, offsets(100.0, ArrivalProcess::Poisson, 43, 100));
    }

    #[test]
    fn unusable_rates_are_refused() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_RATE * 2.0] {
            let err = Arrivals::new(rate, ArrivalProcess::Poisson, 1).unwrap_err();
            assert!(matches!(err, LoadError::Rate { .. }), "{rate}: {err}");
        }
        assert!(Arrivals::new(0.001, ArrivalProcess::Uniform, 1).is_ok());
    }
}
