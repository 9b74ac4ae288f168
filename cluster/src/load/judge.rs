//! What an answer of the gateway means: for the history (did the write happen? what
//! was read?), for the summary (ok, or which error), and for the planner (may this
//! order be read now?).
//!
//! ```text
//!  Reply ─► judge::write / judge::read ─► Verdict { outcome: ok(ret) | fail | info,  → history
//!                                                   error: None | "503 kv_unavailable", → tally
//!                                                   quorum: the W or R the gateway reported,
//!                                                   written: the order is known stored }  → planner
//! ```
//!
//! | answer | POST /orders (write of `order:{id}`) | GET /orders/{id} (read) |
//! |---|---|---|
//! | 201 / 200 | `ok`, written with the version | `ok`, the order's id and version |
//! | 404 | `fail` | `ok`: absent (error `404 not_found` in the summary) |
//! | other 4xx | `fail`: refused before anything was done | `fail` |
//! | 503 `stage: "enqueue"` | `ok`: the order is stored (its payment job is not) | — |
//! | 503 `stage: "kv"`, `node_status: 400` | `fail`: the node refused the request before coordinating it | — |
//! | other 5xx | `info`: some replica may have kept the write | `fail` |
//! | timeout, connection error | `info` | `fail` |
//!
//! When in doubt a write is `info` (docs in [`crate::check::history`]): calling a write
//! that may have happened `fail` makes the checkers report violations that are not
//! there. A read changes nothing, so a read without an answer is simply `fail`.
//!
//! Versions come as the node's KV [`Version`](crate::kv::Version) (a JSON object, or its
//! `PHYSICAL.LOGICAL@NODE` text) and are packed for the checkers by [`check_version`].

use serde_json::Value;

use crate::check::Outcome;
use crate::check::kv::{KvRet, Version as CheckVersion};
use crate::kv::Version;

/// What came back from one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An HTTP answer; `body` is its JSON, if it was JSON.
    Answered { status: u16, body: Option<Value> },
    /// No complete answer within the request timeout.
    TimedOut,
    /// The connection could not be made.
    Unreachable,
    /// The exchange broke (connection reset, malformed HTTP, …).
    Broken,
}

/// The meaning of one [`Reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome<KvRet>,
    /// `None` for a success; else the kind counted in the summary (`timeout`,
    /// `connect`, `transport`, `STATUS ERROR` such as `503 kv_unavailable`, or `STATUS`).
    pub error: Option<String>,
    /// The W (write) or R (read) the gateway reported using.
    pub quorum: Option<u8>,
    /// The order is known to be stored: reads may go to it.
    pub written: bool,
}

/// Packs a KV version the way the checkers compare them: `clock` = physical ms << 22 |
/// logical, which keeps the HLC's order. `None` (version unknown, which the checkers
/// accept) for a logical counter of 2²² or more or a physical time past 2¹⁴², neither
/// of which a running cluster produces.
pub fn check_version(v: Version) -> Option<CheckVersion> {
    if v.ts.logical >= 1 << 22 || v.ts.physical_ms >= 1 << 42 {
        return None;
    }
    Some(CheckVersion {
        clock: (v.ts.physical_ms << 22) | u64::from(v.ts.logical),
        node: v.node,
    })
}

/// A `version` field: the KV's JSON object or its text form.
fn version_in(body: Option<&Value>) -> Option<CheckVersion> {
    let value = body?.get("version")?;
    let version = match value {
        Value::String(text) => text.parse::<Version>().ok()?,
        other => serde_json::from_value::<Version>(other.clone()).ok()?,
    };
    check_version(version)
}

fn quorum_in(body: Option<&Value>, field: &str) -> Option<u8> {
    body?
        .get(field)?
        .as_u64()
        .and_then(|n| u8::try_from(n).ok())
}

fn str_in<'a>(body: Option<&'a Value>, field: &str) -> Option<&'a str> {
    body?.get(field)?.as_str()
}

/// The summary's name for a failed exchange.
fn error_kind(reply: &Reply) -> String {
    match reply {
        Reply::Answered { status, body } => match str_in(body.as_ref(), "error") {
            Some(kind) => format!("{status} {kind}"),
            None => status.to_string(),
        },
        Reply::TimedOut => "timeout".to_owned(),
        Reply::Unreachable => "connect".to_owned(),
        Reply::Broken => "transport".to_owned(),
    }
}

/// The meaning of the answer to `POST /orders`.
pub fn write(reply: &Reply) -> Verdict {
    let Reply::Answered { status, body } = reply else {
        return verdict(Outcome::Info, Some(error_kind(reply)), None);
    };
    let body = body.as_ref();
    let stored = || {
        Outcome::Ok(KvRet::Written {
            version: version_in(body),
        })
    };
    let outcome = match status {
        200..=299 => {
            return Verdict {
                outcome: stored(),
                error: None,
                quorum: quorum_in(body, "w"),
                written: true,
            };
        }
        400..=499 => Outcome::Fail,
        // The KV write succeeded (the gateway holds its version); only the job is missing.
        503 if str_in(body, "stage") == Some("enqueue") => stored(),
        503 if str_in(body, "stage") == Some("kv")
            && body.and_then(|b| b.get("node_status")?.as_u64()) == Some(400) =>
        {
            Outcome::Fail
        }
        _ => Outcome::Info,
    };
    let written = matches!(outcome, Outcome::Ok(_));
    Verdict {
        written,
        ..verdict(outcome, Some(error_kind(reply)), quorum_in(body, "w"))
    }
}

/// The meaning of the answer to `GET /orders/{order_id}`.
pub fn read(order_id: &str, reply: &Reply) -> Verdict {
    let Reply::Answered { status, body } = reply else {
        return verdict(Outcome::Fail, Some(error_kind(reply)), None);
    };
    let body = body.as_ref();
    match status {
        200..=299 => {
            // What was read is the order the body holds; an answer without one is taken
            // to be the order asked for.
            let value = body
                .and_then(|b| b.get("order")?.get("id")?.as_str())
                .unwrap_or(order_id);
            Verdict {
                written: true,
                ..verdict(
                    Outcome::Ok(KvRet::Read {
                        value: Some(value.to_owned()),
                        version: version_in(body),
                    }),
                    None,
                    quorum_in(body, "r"),
                )
            }
        }
        404 => verdict(
            Outcome::Ok(KvRet::Read {
                value: None,
                version: version_in(body),
            }),
            Some(error_kind(reply)),
            quorum_in(body, "r"),
        ),
        _ => verdict(Outcome::Fail, Some(error_kind(reply)), quorum_in(body, "r")),
    }
}

fn verdict(outcome: Outcome<KvRet>, error: Option<String>, quorum: Option<u8>) -> Verdict {
    Verdict {
        outcome,
        error,
        quorum,
        written: false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kv::HlcTimestamp;

    fn answered(status: u16, body: Value) -> Reply {
        Reply::Answered {
            status,
            body: Some(body),
        }
    }

    fn kv_version(physical_ms: u64, logical: u32, node: u64) -> Version {
        Version {
            ts: HlcTimestamp {
                physical_ms,
                logical,
            },
            node,
        }
    }

    const V: CheckVersion = CheckVersion {
        clock: (1_700_000_000_123 << 22) | 4,
        node: 2,
    };

    #[test]
    fn versions_pack_in_hlc_order() {
        let v = kv_version(1_700_000_000_123, 4, 2);
        assert_eq!(check_version(v), Some(V));
        let later_logical = check_version(kv_version(1_700_000_000_123, 5, 1)).unwrap();
        let later_ms = check_version(kv_version(1_700_000_000_124, 0, 1)).unwrap();
        assert!(V < later_logical && later_logical < later_ms);
        assert_eq!(check_version(kv_version(1, 1 << 22, 1)), None);
        assert_eq!(check_version(kv_version(1 << 42, 0, 1)), None);
        // Both the JSON object and the text form are understood.
        let object = json!({ "version": serde_json::to_value(v).unwrap() });
        assert_eq!(version_in(Some(&object)), Some(V));
        let text = json!({ "version": "1700000000123.4@2" });
        assert_eq!(version_in(Some(&text)), Some(V));
        assert_eq!(version_in(Some(&json!({ "version": null }))), None);
        assert_eq!(version_in(Some(&json!({ "version": "soon" }))), None);
    }

    #[test]
    fn a_created_order_is_an_acknowledged_write_with_its_version_and_w() {
        let reply = answered(
            201,
            json!({"order_id": "o-1", "version": {"ts": {"physical_ms": 1_700_000_000_123u64, "logical": 4}, "node": 2}, "w": 1}),
        );
        let v = write(&reply);
        assert_eq!(v.outcome, Outcome::Ok(KvRet::Written { version: Some(V) }));
        assert_eq!((v.error, v.quorum, v.written), (None, Some(1), true));
        // A 201 whose body is not understood is still an acknowledged write.
        let v = write(&Reply::Answered {
            status: 201,
            body: None,
        });
        assert_eq!(v.outcome, Outcome::Ok(KvRet::Written { version: None }));
        assert_eq!(v.quorum, None);
    }

    #[test]
    fn write_refusals_fail_and_doubt_is_info() {
        let refused = write(&answered(400, json!({"error": "invalid"})));
        assert_eq!(refused.outcome, Outcome::Fail);
        assert_eq!(refused.error.as_deref(), Some("400 invalid"));
        assert!(!refused.written);

        let unknown = write(&answered(
            503,
            json!({"error": "kv_unavailable", "stage": "kv", "node_status": 503}),
        ));
        assert_eq!(
            unknown.outcome,
            Outcome::Info,
            "fewer than W acks: may appear"
        );
        assert_eq!(unknown.error.as_deref(), Some("503 kv_unavailable"));
        let no_status = write(&answered(
            503,
            json!({"error": "kv_unavailable", "stage": "kv"}),
        ));
        assert_eq!(no_status.outcome, Outcome::Info, "no answer from the node");
        let node_refused = write(&answered(
            503,
            json!({"error": "kv_unavailable", "stage": "kv", "node_status": 400}),
        ));
        assert_eq!(node_refused.outcome, Outcome::Fail);

        let stored = write(&answered(
            503,
            json!({"error": "queue_unavailable", "stage": "enqueue", "version": "1700000000123.4@2"}),
        ));
        assert_eq!(
            stored.outcome,
            Outcome::Ok(KvRet::Written { version: Some(V) })
        );
        assert!(stored.written);
        assert_eq!(stored.error.as_deref(), Some("503 queue_unavailable"));

        for (reply, kind) in [
            (Reply::TimedOut, "timeout"),
            (Reply::Unreachable, "connect"),
            (Reply::Broken, "transport"),
            (
                Reply::Answered {
                    status: 502,
                    body: None,
                },
                "502",
            ),
            (answered(500, json!({"error": "internal"})), "500 internal"),
        ] {
            let v = write(&reply);
            assert_eq!(v.outcome, Outcome::Info, "{kind}");
            assert_eq!(v.error.as_deref(), Some(kind));
            assert!(!v.written);
        }
    }

    #[test]
    fn reads_return_the_order_or_absent() {
        let found = read(
            "o-1",
            &answered(
                200,
                json!({"order": {"id": "o-1", "status": "pending"}, "version": "1700000000123.4@2", "r": 1, "payment": null}),
            ),
        );
        assert_eq!(
            found.outcome,
            Outcome::Ok(KvRet::Read {
                value: Some("o-1".into()),
                version: Some(V)
            })
        );
        assert_eq!((found.error, found.quorum), (None, Some(1)));
        // What the body holds is what was read, even when it is another order.
        let other = read("o-1", &answered(200, json!({"order": {"id": "o-9"}})));
        assert!(
            matches!(other.outcome, Outcome::Ok(KvRet::Read { value: Some(ref v), .. }) if v == "o-9")
        );

        let absent = read("o-1", &answered(404, json!({"error": "not_found"})));
        assert_eq!(
            absent.outcome,
            Outcome::Ok(KvRet::Read {
                value: None,
                version: None
            })
        );
        assert_eq!(absent.error.as_deref(), Some("404 not_found"));

        for reply in [
            Reply::TimedOut,
            answered(503, json!({"error": "kv_unavailable"})),
            answered(400, json!({})),
        ] {
            let v = read("o-1", &reply);
            assert_eq!(v.outcome, Outcome::Fail, "{reply:?}");
            assert!(v.error.is_some());
        }
    }
}
