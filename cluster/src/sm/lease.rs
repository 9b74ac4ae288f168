//! Leases with fencing tokens.
//!
//! ```text
//!  holder A: acquire ─► token 7 ──── pause (GC, SIGSTOP, partition) ─────────── wake: FencedPut(token 7) ─► refused: StaleToken
//!  lease:    [ held by A, token 7 ][expired]
//!  holder B:                               acquire ─► token 9 ─► FencedPut(token 9) ─► accepted
//! ```
//!
//! A lease is a named, time-limited claim: `acquire(name, holder, ttl_ms)` succeeds if the
//! lease is free, expired, or already held by the same holder, and returns a **fencing
//! token**. Tokens come from one counter for the whole state machine, so every new grant
//! gets a token larger than any token ever issued, for any lease. A lease is held until
//! `expires_at_ms`; at that time (state-machine time, see the module docs of `sm`) the
//! holder loses it, whether or not anyone else has taken it, and `renew` is refused.
//!
//! A lease alone cannot stop a holder that *believes* it still holds the lease (it was
//! paused past the expiry and has not looked at a clock yet). The store must check:
//! `FencedPut { lease, token }` is accepted only if `token` is the latest token issued for
//! that lease. This is Kleppmann's fencing rule ("token ≥ the highest token seen"): since
//! tokens are only issued here, any higher token was never issued and is refused too.
//! Liveness is deliberately *not* required: a holder whose lease lapsed with no successor
//! may still write (no newer holder exists to conflict with), but as soon as anyone
//! acquires the lease, every write with the old token is refused.
//!
//! Semantics chosen for retries (the client of a replicated store retries on timeouts):
//! - re-acquiring a live lease you hold extends it and returns the *same* token (a new
//!   token would fence your own in-flight writes);
//! - releasing a lease that is already free (released or never re-acquired) succeeds
//!   with `was_live: false`.
//!
//! The record of a lease name (its latest token) is kept after release and expiry, so
//! fencing keeps working; the number of names is bounded by [`limits::MAX_LEASES`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{SmError, check_name, limits};

/// A granted or renewed lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    pub name: String,
    pub holder: String,
    /// The fencing token to present with [`super::Op::FencedPut`].
    pub token: u64,
    pub ttl_ms: u64,
    pub expires_at_ms: u64,
    /// False for a fresh grant (a new token); true when an existing holding was extended.
    pub extended: bool,
}

/// A lease as seen by a query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    pub name: String,
    /// The last holder (even if expired; `None` after a release).
    pub holder: Option<String>,
    /// The holder's token.
    pub token: Option<u64>,
    pub expires_at_ms: Option<u64>,
    /// Whether the holding is live at the query's time.
    pub live: bool,
    /// The latest token issued for this lease: the only one fenced writes accept.
    pub latest_token: u64,
}

/// Why a lease operation or a fenced write was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum LeaseError {
    #[error(
        "lease `{lease}` is held by `{holder}` (token {token}) until {expires_at_ms} ms, {remaining_ms} ms from now"
    )]
    Held {
        lease: String,
        holder: String,
        token: u64,
        expires_at_ms: u64,
        remaining_ms: u64,
    },
    #[error("no lease named `{lease}` has ever been acquired")]
    Unknown { lease: String },
    #[error("lease `{lease}` is not held by anyone (released); acquire it again")]
    NotHeld { lease: String },
    #[error(
        "lease `{lease}` is held by `{current_holder}` with token {current_token}, not by `{holder}` with token {token}"
    )]
    NotHolder {
        lease: String,
        holder: String,
        token: u64,
        current_holder: String,
        current_token: u64,
    },
    #[error(
        "lease `{lease}` held by `{holder}` (token {token}) expired at {expired_at_ms} ms; acquire it again for a new token"
    )]
    Expired {
        lease: String,
        holder: String,
        token: u64,
        expired_at_ms: u64,
    },
    #[error(
        "fenced write refused: token {presented} for lease `{lease}` is stale, the lease has since been granted with token {latest}{}",
        holder_suffix(.holder)
    )]
    StaleToken {
        lease: String,
        presented: u64,
        latest: u64,
        holder: Option<String>,
    },
    #[error(
        "fenced write refused: token {presented} was never issued for lease `{lease}` (its latest token is {latest})"
    )]
    TokenNotIssued {
        lease: String,
        presented: u64,
        latest: u64,
    },
}

fn holder_suffix(holder: &Option<String>) -> String {
    match holder {
        Some(h) => format!(" (to `{h}`)"),
        None => String::new(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Holding {
    holder: String,
    token: u64,
    ttl_ms: u64,
    acquired_at_ms: u64,
    expires_at_ms: u64,
}

impl Holding {
    fn live(&self, now: u64) -> bool {
        now < self.expires_at_ms
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct LeaseRecord {
    /// The current or last holding; `None` after a release.
    holding: Option<Holding>,
    /// The latest token issued for this lease.
    latest_token: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeaseTable {
    leases: BTreeMap<String, LeaseRecord>,
    /// The last token issued, for any lease.
    last_token: u64,
}

fn check_ttl(ttl_ms: u64) -> Result<(), SmError> {
    if ttl_ms == 0 || ttl_ms > limits::MAX_LEASE_TTL_MS {
        return Err(SmError::invalid(
            "ttl_ms",
            format!(
                "must be between 1 and {} ms (24 h), got {ttl_ms}",
                limits::MAX_LEASE_TTL_MS
            ),
        ));
    }
    Ok(())
}

impl LeaseTable {
    pub(crate) fn live(&self, now: u64) -> u64 {
        self.leases
            .values()
            .filter(|r| r.holding.as_ref().is_some_and(|h| h.live(now)))
            .count() as u64
    }

    pub(crate) fn known(&self) -> u64 {
        self.leases.len() as u64
    }

    pub(crate) fn last_token(&self) -> u64 {
        self.last_token
    }

    pub(crate) fn acquire(
        &mut self,
        name: String,
        holder: String,
        ttl_ms: u64,
        now: u64,
    ) -> Result<LeaseGrant, SmError> {
        check_name("lease name", &name)?;
        check_name("holder", &holder)?;
        check_ttl(ttl_ms)?;
        let expires_at_ms = now.saturating_add(ttl_ms);
        if let Some(record) = self.leases.get_mut(&name)
            && let Some(h) = record.holding.as_mut()
            && h.live(now)
        {
            if h.holder != holder {
                return Err(LeaseError::Held {
                    lease: name,
                    holder: h.holder.clone(),
                    token: h.token,
                    expires_at_ms: h.expires_at_ms,
                    remaining_ms: h.expires_at_ms - now,
                }
                .into());
            }
            h.ttl_ms = ttl_ms;
            h.expires_at_ms = expires_at_ms;
            return Ok(LeaseGrant {
                name,
                holder,
                token: h.token,
                ttl_ms,
                expires_at_ms,
                extended: true,
            });
        }
        if !self.leases.contains_key(&name) && self.leases.len() >= limits::MAX_LEASES {
            return Err(SmError::limit("leases", limits::MAX_LEASES));
        }
        self.last_token += 1;
        let token = self.last_token;
        self.leases.insert(
            name.clone(),
            LeaseRecord {
                holding: Some(Holding {
                    holder: holder.clone(),
                    token,
                    ttl_ms,
                    acquired_at_ms: now,
                    expires_at_ms,
                }),
                latest_token: token,
            },
        );
        Ok(LeaseGrant {
            name,
            holder,
            token,
            ttl_ms,
            expires_at_ms,
            extended: false,
        })
    }

    /// Finds the holding `(holder, token)` claims, or says why it does not exist.
    fn holding_mut(
        &mut self,
        name: &str,
        holder: &str,
        token: u64,
    ) -> Result<&mut Holding, SmError> {
        check_name("lease name", name)?;
        check_name("holder", holder)?;
        let record = self
            .leases
            .get_mut(name)
            .ok_or_else(|| LeaseError::Unknown {
                lease: name.to_owned(),
            })?;
        let h = record.holding.as_mut().ok_or_else(|| LeaseError::NotHeld {
            lease: name.to_owned(),
        })?;
        if h.holder != holder || h.token != token {
            return Err(LeaseError::NotHolder {
                lease: name.to_owned(),
                holder: holder.to_owned(),
                token,
                current_holder: h.holder.clone(),
                current_token: h.token,
            }
            .into());
        }
        Ok(h)
    }

    pub(crate) fn renew(
        &mut self,
        name: &str,
        holder: &str,
        token: u64,
        now: u64,
    ) -> Result<LeaseGrant, SmError> {
        let h = self.holding_mut(name, holder, token)?;
        if !h.live(now) {
            return Err(LeaseError::Expired {
                lease: name.to_owned(),
                holder: holder.to_owned(),
                token,
                expired_at_ms: h.expires_at_ms,
            }
            .into());
        }
        h.expires_at_ms = now.saturating_add(h.ttl_ms);
        Ok(LeaseGrant {
            name: name.to_owned(),
            holder: holder.to_owned(),
            token,
            ttl_ms: h.ttl_ms,
            expires_at_ms: h.expires_at_ms,
            extended: true,
        })
    }

    /// Releases the holding; returns whether it was still live.
    pub(crate) fn release(
        &mut self,
        name: &str,
        holder: &str,
        token: u64,
        now: u64,
    ) -> Result<bool, SmError> {
        match self.holding_mut(name, holder, token) {
            Ok(h) => {
                let was_live = h.live(now);
                if let Some(record) = self.leases.get_mut(name) {
                    record.holding = None;
                }
                Ok(was_live)
            }
            // Already released (a retried release): nothing to do.
            Err(SmError::Lease(LeaseError::NotHeld { .. })) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The fencing rule: `token` must be the latest token issued for `lease`.
    pub(crate) fn check_fence(&self, lease: &str, token: u64) -> Result<(), SmError> {
        check_name("lease name", lease)?;
        let record = self.leases.get(lease).ok_or_else(|| LeaseError::Unknown {
            lease: lease.to_owned(),
        })?;
        if token < record.latest_token {
            return Err(LeaseError::StaleToken {
                lease: lease.to_owned(),
                presented: token,
                latest: record.latest_token,
                holder: record.holding.as_ref().map(|h| h.holder.clone()),
            }
            .into());
        }
        if token > record.latest_token {
            return Err(LeaseError::TokenNotIssued {
                lease: lease.to_owned(),
                presented: token,
                latest: record.latest_token,
            }
            .into());
        }
        Ok(())
    }

    pub(crate) fn info(&self, name: &str, now: u64) -> Option<LeaseInfo> {
        let record = self.leases.get(name)?;
        let h = record.holding.as_ref();
        Some(LeaseInfo {
            name: name.to_owned(),
            holder: h.map(|h| h.holder.clone()),
            token: h.map(|h| h.token),
            expires_at_ms: h.map(|h| h.expires_at_ms),
            live: h.is_some_and(|h| h.live(now)),
            latest_token: record.latest_token,
        })
    }

    #[cfg(test)]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        for (name, r) in &self.leases {
            if r.latest_token == 0 || r.latest_token > self.last_token {
                return Err(format!(
                    "lease {name}: latest token {} outside 1..={}",
                    r.latest_token, self.last_token
                ));
            }
            if let Some(h) = &r.holding
                && h.token != r.latest_token
            {
                return Err(format!(
                    "lease {name}: holding token {} is not the latest {}",
                    h.token, r.latest_token
                ));
            }
        }
        Ok(())
    }
}
