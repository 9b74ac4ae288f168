//! What each arrival sends: the operation mix and, for reads, which order.
//!
//! ```text
//!  arrival k ─► draw (seeded, 5 numbers per arrival whatever happens)
//!                ├─ u < post_share ─► POST /orders   id o-{run}-{k}, customer c-N, amount
//!                └─ else ─► GET /orders/{id}          correlation id r-{run}-{k}
//!                             ├─ u < hot_key_share ─► the hot order (the first order readable)
//!                             └─ else ─► uniform among the `read_recent` newest readable orders
//!
//!  acknowledged(id, at) ─► waiting (until at + read_delay) ─► readable (newest `read_recent` kept)
//! ```
//!
//! Reads go to orders whose write is known to have happened (the gateway answered with
//! its version), a few milliseconds after the answer by default: that is where a read
//! served by a lagging replica finds nothing, which the stale-read checker counts. An
//! order whose write is unknown (timeout, 5xx) is never read: a 404 there proves nothing.
//! A GET drawn before any order is readable is sent as a POST, so that every arrival
//! sends something.
//!
//! The draws per arrival are fixed, so the sequence of operations, customers and
//! amounts depends on the seed only; which order a GET reads also depends on which
//! writes had been answered by then.

use std::collections::VecDeque;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::{LoadError, Op};

/// The customers orders are drawn from: `c-1` … `c-CUSTOMERS`.
pub const CUSTOMERS: u64 = 100;

/// The shape of the traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    /// Fraction of arrivals that create an order; the rest read one.
    pub post_share: f64,
    /// Fraction of reads aimed at one single order (the hot-key scenario).
    pub hot_key_share: f64,
    /// How long after its write was answered an order becomes readable.
    pub read_delay: Duration,
    /// Reads choose among this many most recently readable orders.
    pub read_recent: usize,
}

impl Mix {
    pub fn validate(self) -> Result<Mix, LoadError> {
        for (what, value) in [("POST", self.post_share), ("hot-key", self.hot_key_share)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(LoadError::Share { what, value });
            }
        }
        if self.read_recent == 0 {
            return Err(LoadError::ReadWindow);
        }
        Ok(self)
    }
}

/// A new order to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// Also the request's `x-correlation-id`, which the gateway makes the order id.
    pub order_id: String,
    pub amount_cents: u64,
    pub customer: String,
}

/// An order to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRead {
    pub order_id: String,
    /// The request's own `x-correlation-id`.
    pub correlation_id: String,
    /// Aimed at the hot order.
    pub hot: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(NewOrder),
    Read(OrderRead),
}

/// One arrival's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The arrival's number in the run (0, 1, …); also its process id in the history.
    pub seq: u64,
    pub request: Request,
}

impl Planned {
    pub fn op(&self) -> Op {
        match self.request {
            Request::Create(_) => Op::CreateOrder,
            Request::Read(_) => Op::ReadOrder,
        }
    }

    pub fn correlation_id(&self) -> &str {
        match &self.request {
            Request::Create(order) => &order.order_id,
            Request::Read(read) => &read.correlation_id,
        }
    }
}

/// Decides each arrival's request (see the module doc).
#[derive(Debug)]
pub struct Planner {
    mix: Mix,
    run: String,
    rng: StdRng,
    seq: u64,
    /// Written orders not readable yet: (readable from, id), in order of acknowledgement.
    waiting: VecDeque<(Duration, String)>,
    /// Readable orders, newest last, at most `read_recent`.
    readable: VecDeque<String>,
    hot: Option<String>,
}

impl Planner {
    /// `run` tags the ids (see [`run_tag`]); `seed` drives every draw.
    pub fn new(mix: Mix, run: impl Into<String>, seed: u64) -> Planner {
        Planner {
            mix,
            run: run.into(),
            rng: StdRng::seed_from_u64(seed),
            seq: 0,
            waiting: VecDeque::new(),
            readable: VecDeque::new(),
            hot: None,
        }
    }

    /// The order `id`'s write is known to have happened, as of `at` (since the start).
    pub fn acknowledged(&mut self, id: String, at: Duration) {
        self.waiting.push_back((at + self.mix.read_delay, id));
    }

    /// The request of the next arrival, due at `now` (since the start).
    pub fn next(&mut self, now: Duration) -> Planned {
        self.promote(now);
        let seq = self.seq;
        self.seq += 1;
        let (op, hot, pick): (f64, f64, f64) =
            (self.rng.random(), self.rng.random(), self.rng.random());
        let customer = self.rng.random_range(1..=CUSTOMERS);
        let amount_cents = self.rng.random_range(100..=99_999u64);
        let read = if op < self.mix.post_share {
            None
        } else if hot < self.mix.hot_key_share
            && let Some(id) = &self.hot
        {
            Some((id.clone(), true))
        } else {
            // `pick` in [0, 1): an index below the length (the min guards rounding).
            let n = self.readable.len();
            let index = ((pick * n as f64) as usize).min(n.saturating_sub(1));
            self.readable.get(index).map(|id| (id.clone(), false))
        };
        let request = match read {
            Some((order_id, hot)) => Request::Read(OrderRead {
                order_id,
                correlation_id: format!("r-{}-{seq}", self.run),
                hot,
            }),
            None => Request::Create(NewOrder {
                order_id: format!("o-{}-{seq}", self.run),
                amount_cents,
                customer: format!("c-{customer}"),
            }),
        };
        Planned { seq, request }
    }

    /// Orders readable now, newest last.
    pub fn readable(&self) -> impl Iterator<Item = &str> {
        self.readable.iter().map(String::as_str)
    }

    /// The order hot reads go to, once there is one.
    pub fn hot(&self) -> Option<&str> {
        self.hot.as_deref()
    }

    fn promote(&mut self, now: Duration) {
        while let Some((from, _)) = self.waiting.front() {
            if *from > now {
                break;
            }
            let Some((_, id)) = self.waiting.pop_front() else {
                break;
            };
            if self.hot.is_none() {
                self.hot = Some(id.clone());
            }
            self.readable.push_back(id);
            if self.readable.len() > self.mix.read_recent {
                self.readable.pop_front();
            }
        }
    }
}

/// A seed for a run that was given none.
pub fn fresh_seed() -> u64 {
    rand::random()
}

/// The tag in this run's ids (`o-{tag}-{n}`): 8 hex digits from the seed and the start
/// time. The time is in it so that a run repeated with the same seed against the same
/// cluster writes new orders: reusing an id would let the new run read the old run's
/// order and take a lost write for a present one.
pub fn run_tag(seed: u64, started_unix_ns: u128) -> String {
    let mixed = splitmix64(seed ^ (started_unix_ns as u64) ^ ((started_unix_ns >> 64) as u64));
    format!("{:08x}", mixed >> 32)
}

/// SplitMix64's output function (Steele, Lea, Flood 2014): spreads nearby inputs.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(post_share: f64, hot_key_share: f64) -> Mix {
        Mix {
            post_share,
            hot_key_share,
            read_delay: Duration::ZERO,
            read_recent: 4,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn reads_wait_for_a_readable_order_and_posts_get_fresh_ids() {
        let mut p = Planner::new(mix(0.0, 0.0), "t", 1);
        // Nothing readable: a drawn GET is sent as a POST.
        let first = p.next(ms(0));
        assert_eq!(first.seq, 0);
        assert_eq!(first.op(), Op::CreateOrder);
        assert_eq!(first.correlation_id(), "o-t-0");
        let Request::Create(order) = &first.request else {
            unreachable!()
        };
        assert!(order.customer.starts_with("c-"), "{order:?}");
        assert!((100..100_000).contains(&order.amount_cents));
        p.acknowledged("o-t-0".into(), ms(5));
        assert_eq!(p.next(ms(4)).op(), Op::CreateOrder, "acknowledged later");
        let read = p.next(ms(5));
        assert_eq!(
            read.request,
            Request::Read(OrderRead {
                order_id: "o-t-0".into(),
                correlation_id: "r-t-2".into(),
                hot: false,
            })
        );
    }

    #[test]
    fn the_read_delay_holds_orders_back() {
        let mut p = Planner::new(
            Mix {
                read_delay: ms(100),
                ..mix(0.0, 0.0)
            },
            "t",
            1,
        );
        p.acknowledged("a".into(), ms(10));
        p.acknowledged("b".into(), ms(50));
        assert_eq!(p.next(ms(109)).op(), Op::CreateOrder);
        assert_eq!(p.readable().collect::<Vec<_>>(), Vec::<&str>::new());
        let r = p.next(ms(110));
        assert!(matches!(r.request, Request::Read(ref r) if r.order_id == "a"));
        assert_eq!(p.readable().collect::<Vec<_>>(), ["a"]);
        p.next(ms(150));
        assert_eq!(p.readable().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn reads_spread_over_the_newest_orders_only() {
        let mut p = Planner::new(mix(0.0, 0.0), "t", 3);
        for i in 0..10 {
            p.acknowledged(format!("o{i}"), ms(i));
        }
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..4_000 {
            let Request::Read(r) = p.next(ms(100)).request else {
                panic!("all reads")
            };
            *seen.entry(r.order_id).or_insert(0) += 1;
        }
        assert_eq!(
            seen.keys().collect::<Vec<_>>(),
            ["o6", "o7", "o8", "o9"],
            "the window keeps the 4 newest"
        );
        assert!(
            seen.values().all(|&n| (800..1_200).contains(&n)),
            "{seen:?}"
        );
    }

    #[test]
    fn hot_reads_go_to_the_first_readable_order() {
        let mut p = Planner::new(mix(0.0, 0.8), "t", 5);
        for i in 0..10 {
            p.acknowledged(format!("o{i}"), ms(i));
        }
        let reads: Vec<OrderRead> = (0..5_000)
            .filter_map(|_| match p.next(ms(100)).request {
                Request::Read(r) => Some(r),
                Request::Create(_) => None,
            })
            .collect();
        assert_eq!(p.hot(), Some("o0"));
        let hot = reads.iter().filter(|r| r.order_id == "o0").count();
        assert!(reads.iter().all(|r| r.hot == (r.order_id == "o0")));
        let share = hot as f64 / reads.len() as f64;
        assert!((0.77..0.83).contains(&share), "hot share {share}");
    }

    #[test]
    fn the_post_share_holds_and_the_seed_decides_the_sequence() {
        let run = |seed| {
            let mut p = Planner::new(mix(0.3, 0.0), "t", seed);
            p.acknowledged("x".into(), ms(0));
            (0..10_000).map(|_| p.next(ms(1))).collect::<Vec<_>>()
        };
        let a = run(9);
        let posts = a.iter().filter(|p| p.op() == Op::CreateOrder).count();
        assert!((2_800..3_200).contains(&posts), "{posts} POSTs of 10000");
        assert_eq!(a, run(9));
        assert_ne!(a, run(10));
    }

    #[test]
    fn shares_and_window_are_validated() {
        assert!(mix(0.3, 0.0).validate().is_ok());
        assert!(mix(1.0, 1.0).validate().is_ok());
        for (post, hot) in [(1.5, 0.0), (-0.1, 0.0), (0.3, 2.0), (f64::NAN, 0.0)] {
            let err = mix(post, hot).validate().unwrap_err();
            assert!(err.to_string().contains("between 0 and 1"), "{err}");
        }
        let err = Mix {
            read_recent: 0,
            ..mix(0.3, 0.0)
        }
        .validate()
        .unwrap_err();
        assert!(matches!(err, LoadError::ReadWindow));
    }

    #[test]
    fn run_tags_differ_by_seed_and_start() {
        let a = run_tag(1, 1_700_000_000_000_000_000);
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, run_tag(1, 1_700_000_000_000_000_000));
        assert_ne!(a, run_tag(2, 1_700_000_000_000_000_000));
        assert_ne!(a, run_tag(1, 1_700_000_000_000_000_001));
    }
}
