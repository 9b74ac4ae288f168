//! The provider's service slots: a FIFO-fair `tokio::sync::Semaphore` with `capacity`
//! permits, a bounded waiting line in front of it, and a capacity that changes while
//! permits are held.
//!
//! ```text
//!  enter ─┬─ a permit free ─────────────────────────────────────► Slot (in service)
//!         ├─ waiting ≥ queue_limit ─► Err(Overloaded), at once
//!         └─ waiting += 1 ─► semaphore.acquire (FIFO) ─► waiting -= 1 ─► Slot
//!  Slot dropped ─┬─ owed > 0 ─► forget the permit (owed -= 1)      (a lowered capacity draining)
//!                └─ else ─► back to the semaphore ─► the longest waiter
//!  resize(higher) ─► cancel what is owed first, add_permits(the rest)
//!  resize(lower)  ─► forget_permits(the free ones); owe the rest until their holders leave
//! ```
//!
//! Invariant, under the state lock: free permits + held permits − owed = capacity. A
//! lowered capacity therefore holds as soon as enough slots are released, without
//! cutting short the requests in service.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{Semaphore, SemaphorePermit};

/// The waiting line was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "payments is overloaded: {in_service} requests in service and {waiting} waiting (queue_limit {queue_limit})"
)]
pub struct Overloaded {
    pub in_service: u32,
    pub waiting: u32,
    pub queue_limit: u32,
}

/// What the slots are doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SlotsSnapshot {
    pub(super) capacity: u32,
    /// Requests holding a slot (above `capacity` while a lowered capacity drains).
    pub(super) in_service: u32,
    /// Requests waiting for a slot.
    pub(super) waiting: u32,
    pub(super) queue_limit: u32,
    /// Slots still to be retired after a lowered capacity.
    pub(super) draining: u32,
}

#[derive(Debug)]
pub(super) struct Slots {
    semaphore: Semaphore,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    capacity: u32,
    queue_limit: u32,
    in_service: u32,
    waiting: u32,
    /// Permits to forget as their holders release them.
    owed: u32,
}

/// One service slot, released (or retired, see the module doc) when dropped.
#[derive(Debug)]
pub(super) struct Slot<'a> {
    slots: &'a Slots,
    permit: Option<SemaphorePermit<'a>>,
}

/// A place in the waiting line, left when dropped (a caller that gave up).
struct Waiting<'a> {
    slots: &'a Slots,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.slots.lock();
        state.waiting = state.waiting.saturating_sub(1);
    }
}

impl Slots {
    pub(super) fn new(capacity: u32, queue_limit: u32) -> Slots {
        Slots {
            semaphore: Semaphore::new(capacity as usize),
            state: Mutex::new(State {
                capacity,
                queue_limit,
                in_service: 0,
                waiting: 0,
                owed: 0,
            }),
        }
    }

    /// A slot: at once if one is free, else after the requests ahead in line; refused
    /// at once when `queue_limit` requests are already waiting.
    pub(super) async fn enter(&self) -> Result<Slot<'_>, Overloaded> {
        let waiting = {
            let mut state = self.lock();
            // A released permit goes straight to the oldest waiter, so a free permit
            // means nobody waits: taking it jumps no queue.
            if let Ok(permit) = self.semaphore.try_acquire() {
                state.in_service += 1;
                return Ok(self.slot(permit));
            }
            if state.waiting >= state.queue_limit {
                return Err(Overloaded {
                    in_service: state.in_service,
                    waiting: state.waiting,
                    queue_limit: state.queue_limit,
                });
            }
            state.waiting += 1;
            Waiting { slots: self }
        };
        let acquired = self.semaphore.acquire().await;
        drop(waiting);
        let mut state = self.lock();
        match acquired {
            Ok(permit) => {
                state.in_service += 1;
                Ok(self.slot(permit))
            }
            // The semaphore is never closed; were it, refusing is the honest answer.
            Err(_) => Err(Overloaded {
                in_service: state.in_service,
                waiting: state.waiting,
                queue_limit: state.queue_limit,
            }),
        }
    }

    fn slot<'a>(&'a self, permit: SemaphorePermit<'a>) -> Slot<'a> {
        Slot {
            slots: self,
            permit: Some(permit),
        }
    }

    /// Applies a new capacity and waiting-line bound (validated by the caller).
    pub(super) fn resize(&self, capacity: u32, queue_limit: u32) {
        let mut state = self.lock();
        state.queue_limit = queue_limit;
        if capacity > state.capacity {
            let more = capacity - state.capacity;
            let cancelled = more.min(state.owed);
            state.owed -= cancelled;
            self.semaphore.add_permits((more - cancelled) as usize);
        } else {
            let fewer = state.capacity - capacity;
            let forgotten = self.semaphore.forget_permits(fewer as usize);
            // At most `fewer`, which is a u32.
            let forgotten = u32::try_from(forgotten).unwrap_or(fewer);
            state.owed += fewer - forgotten;
        }
        state.capacity = capacity;
    }

    pub(super) fn snapshot(&self) -> SlotsSnapshot {
        let state = self.lock();
        SlotsSnapshot {
            capacity: state.capacity,
            in_service: state.in_service,
            waiting: state.waiting,
            queue_limit: state.queue_limit,
            draining: state.owed,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned lock guards consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let retire = {
            let mut state = self.slots.lock();
            state.in_service = state.in_service.saturating_sub(1);
            let retire = state.owed > 0;
            if retire {
                state.owed -= 1;
            }
            retire
        };
        // Unless retired, dropping the permit returns it to the semaphore.
        if let Some(permit) = self.permit.take()
            && retire
        {
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// `free + held - owed = capacity`, read through the public snapshot and the
    /// semaphore.
    fn assert_invariant(slots: &Slots) {
        let s = slots.snapshot();
        let free = slots.semaphore.available_permits() as u32;
        assert_eq!(
            free + s.in_service - s.draining,
            s.capacity,
            "{s:?}, free {free}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn free_slots_are_taken_at_once_and_a_full_line_refuses() {
        let slots = Slots::new(2, 1);
        let a = slots.enter().await.unwrap();
        let _b = slots.enter().await.unwrap();
        let waiter = slots.enter();
        tokio::pin!(waiter);
        // Registers in line without completing.
        assert!(
            tokio::time::timeout(Duration::from_millis(1), &mut waiter)
                .await
                .is_err()
        );
        assert_eq!(slots.snapshot().waiting, 1);
        let refused = slots.enter().await.unwrap_err();
        assert_eq!(
            refused,
            Overloaded {
                in_service: 2,
                waiting: 1,
                queue_limit: 1
            }
        );
        drop(a);
        let _c = waiter.await.unwrap();
        let s = slots.snapshot();
        assert_eq!((s.in_service, s.waiting), (2, 0));
        assert_invariant(&slots);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_leaves_the_line() {
        let slots = Slots::new(1, 1);
        let _held = slots.enter().await.unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(1), slots.enter()).await;
        assert!(gave_up.is_err());
        assert_eq!(slots.snapshot().waiting, 0);
        // Its place is free again.
        let again = tokio::time::timeout(Duration::from_millis(1), slots.enter()).await;
        assert!(again.is_err(), "waits rather than being refused");
    }

    #[tokio::test(start_paused = true)]
    async fn lowering_capacity_in_use_retires_slots_as_they_are_released() {
        let slots = Slots::new(3, 10);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(slots.enter().await.unwrap());
        }
        slots.resize(1, 10);
        assert_eq!(slots.snapshot().draining, 2);
        assert_invariant(&slots);
        // The first two slots released are retired; only the third comes back.
        held.pop();
        held.pop();
        assert_eq!(slots.snapshot().draining, 0);
        assert_eq!(slots.semaphore.available_permits(), 0);
        assert_invariant(&slots);
        held.pop();
        assert_eq!(slots.semaphore.available_permits(), 1);
        assert_invariant(&slots);
    }

    #[tokio::test(start_paused = true)]
    async fn raising_capacity_first_cancels_what_a_lowering_still_owes() {
        let slots = Slots::new(4, 10);
        let first = slots.enter().await.unwrap();
        let second = slots.enter().await.unwrap();
        // Two free permits are forgotten at once, two are owed.
        slots.resize(0, 10);
        assert_eq!(slots.snapshot().draining, 2);
        assert_eq!(slots.semaphore.available_permits(), 0);
        slots.resize(3, 10);
        assert_eq!(slots.snapshot().draining, 0);
        assert_eq!(slots.semaphore.available_permits(), 1);
        assert_invariant(&slots);
        drop(first);
        drop(second);
        assert_eq!(slots.semaphore.available_permits(), 3);
        assert_invariant(&slots);
    }
}
