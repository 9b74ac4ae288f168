//! The Markdown record of a run: what was checked and seen, what it meant, what was
//! done, and how it ended — the start of a postmortem timeline.
//!
//! ```text
//!  Run (log of Entry::Checked / Entry::Remedied, conclusion) + RunInfo ─► Markdown
//!     # Playbook run · summary table · timeline table · each step in full · conclusion
//! ```

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use crate::run::{Entry, RemedyOutcome, Run, Verdict};

/// What the transcript says about where the run happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// `capture samples/leader-crash.jsonl.zst`, `live cluster /…/cluster.json`.
    pub source: String,
    /// Wall-clock start and end, ns since the epoch.
    pub started_ns: i64,
    pub ended_ns: i64,
    /// Whether remedies could run (a live cluster) or were only named (a capture).
    pub live: bool,
}

/// A time as UTC, to the millisecond.
pub fn utc(ns: i64) -> String {
    let ns = u64::try_from(ns).unwrap_or(0);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

/// A transcript's file name: `NAME-20261122T111403.md` (UTC, to the second).
pub fn file_name(playbook: &str, ns: i64) -> String {
    let stamp: String = utc(ns).replace([':', '-'], "").chars().take(15).collect();
    format!("{playbook}-{stamp}.md")
}

/// The run as Markdown.
pub fn markdown(run: &Run, info: &RunInfo) -> String {
    let playbook = run.playbook();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Playbook run: {} ({})\n",
        playbook.title, playbook.name
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| Source | {} |", cell(&info.source));
    let _ = writeln!(out, "| Started | {} |", utc(info.started_ns));
    let _ = writeln!(out, "| Ended | {} |", utc(info.ended_ns));
    if let Some(conclusion) = run.conclusion() {
        let _ = writeln!(
            out,
            "| Verdict | **{}**: {} |",
            conclusion.verdict.as_str(),
            cell(&conclusion.summary)
        );
    }
    if !run.bindings().is_empty() {
        let bound: Vec<String> = run
            .bindings()
            .iter()
            .map(|(k, v)| format!("{k} = `{v}`"))
            .collect();
        let _ = writeln!(out, "| Found | {} |", cell(&bound.join(", ")));
    }
    if !info.live {
        let _ = writeln!(
            out,
            "| Remedies | named, not run: a capture is a record of the past |"
        );
    }

    let _ = writeln!(out, "\n## Timeline\n");
    let _ = writeln!(
        out,
        "| data time | step | result | meaning |\n|---|---|---|---|"
    );
    for entry in run.log() {
        match entry {
            Entry::Checked {
                step,
                result,
                meaning,
                at_ns,
            } => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    at_ns.map_or("—".to_owned(), utc),
                    cell(&run.step(*step).title),
                    result.outcome.mark(),
                    cell(meaning)
                );
            }
            Entry::Remedied {
                step,
                action,
                target,
                outcome,
                at_ns,
            } => {
                let _ = writeln!(
                    out,
                    "| {} | {} | remedy `{}{}` {} | {} |",
                    at_ns.map_or("—".to_owned(), utc),
                    cell(&run.step(*step).title),
                    action,
                    target
                        .as_deref()
                        .map(|t| format!(" {t}"))
                        .unwrap_or_default(),
                    remedy_word(outcome),
                    cell(&remedy_detail(outcome))
                );
            }
        }
    }

    let _ = writeln!(out, "\n## Steps\n");
    for (n, entry) in run.log().iter().enumerate() {
        match entry {
            Entry::Checked {
                step,
                result,
                meaning,
                ..
            } => {
                let step = run.step(*step);
                let kind = if step.verify { "verification" } else { "check" };
                let _ = writeln!(
                    out,
                    "### {}. {} ({kind}: {})\n",
                    n + 1,
                    step.title,
                    result.outcome.mark()
                );
                let _ = writeln!(
                    out,
                    "- **Looked at:** {}",
                    one_line(&crate::check::fill(&step.look, run.bindings()))
                );
                let _ = writeln!(out, "- **Seen:** {}", one_line(&result.detail));
                let _ = writeln!(out, "- **Means:** {}", one_line(meaning));
                if !result.evidence.is_empty() {
                    let ids: Vec<String> = result
                        .evidence
                        .iter()
                        .take(5)
                        .map(|id| format!("`{id}`"))
                        .collect();
                    let _ = writeln!(out, "- **Evidence traces:** {}", ids.join(", "));
                }
                let _ = writeln!(out);
            }
            Entry::Remedied {
                step,
                action,
                target,
                outcome,
                ..
            } => {
                let step = run.step(*step);
                let _ = writeln!(
                    out,
                    "### {}. {} (remedy `{}`{}: {})\n",
                    n + 1,
                    step.title,
                    action,
                    target
                        .as_deref()
                        .map(|t| format!(" on {t}"))
                        .unwrap_or_default(),
                    remedy_word(outcome)
                );
                let _ = writeln!(
                    out,
                    "- **Looked at:** {}",
                    one_line(&crate::check::fill(&step.look, run.bindings()))
                );
                if let Some(remedy) = &step.remedy {
                    let _ = writeln!(
                        out,
                        "- **Why:** {}",
                        one_line(&crate::check::fill(&remedy.why, run.bindings()))
                    );
                }
                let _ = writeln!(
                    out,
                    "- **Outcome:** {}\n",
                    one_line(&remedy_detail(outcome))
                );
            }
        }
    }

    let _ = writeln!(out, "## Conclusion\n");
    match run.conclusion() {
        Some(conclusion) => {
            let _ = writeln!(
                out,
                "**{}.** {}",
                capitalised(conclusion.verdict),
                conclusion.summary
            );
            if !info.live && conclusion.verdict == Verdict::Resolved {
                let _ = writeln!(
                    out,
                    "\nOn a capture this means the signals were back to normal by its end; nothing was done here."
                );
            }
        }
        None => {
            let _ = writeln!(out, "The run was stopped before it concluded.");
        }
    }
    out
}

fn capitalised(verdict: Verdict) -> String {
    let text = verdict.as_str();
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn remedy_word(outcome: &RemedyOutcome) -> &'static str {
    match outcome {
        RemedyOutcome::Applied(_) => "applied",
        RemedyOutcome::Declined => "declined",
        RemedyOutcome::Skipped(_) => "not run",
        RemedyOutcome::Failed(_) => "FAILED",
    }
}

fn remedy_detail(outcome: &RemedyOutcome) -> String {
    match outcome {
        RemedyOutcome::Applied(what) => what.clone(),
        RemedyOutcome::Declined => "declined at the prompt".to_owned(),
        RemedyOutcome::Skipped(why) | RemedyOutcome::Failed(why) => why.clone(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text safe inside a table cell.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::check::{CheckResult, Outcome};
    use crate::format::Playbook;

    #[test]
    fn file_names_carry_the_utc_time_to_the_second() {
        assert_eq!(
            file_name("leader-loss", 1_795_321_799_640_000_000),
            "leader-loss-20261122T042959.md"
        );
    }

    #[test]
    fn the_transcript_records_checks_remedies_and_the_verdict() {
        let playbook = Playbook::parse(
            "poison-messages",
            r#"
title = "Poison messages"
handles = ["poison_messages"]
summary = "Bad messages."
[[step]]
id = "confirm"
title = "Confirm | poison"
look = "DLQ"
check = { finding = "poison_message" }
bind = "queue"
pass = "Poison in {queue}."
fail = "None."
on_fail = "stop"
[[step]]
id = "park"
title = "Park them"
look = "DLQ of {queue}"
remedy = { action = "park_dead_letters", target = "{queue}", why = "Keep them aside." }
[[step]]
id = "verify"
title = "DLQ quiet"
look = "DLQ"
check = { finding = "dead_letters", expect = "absent", scope = "recent" }
pass = "Quiet."
fail = "Growing."
verify = true
"#,
        )
        .unwrap();
        let mut run = Run::new(playbook);
        let seen = |outcome, subject: Option<&str>| CheckResult {
            outcome,
            subject: subject.map(str::to_owned),
            value: Some(20.0),
            detail: "20 poison messages".to_owned(),
            evidence: Vec::new(),
        };
        run.checked(seen(Outcome::Pass, Some("payments")), Some(1_000_000_000));
        run.remedied(RemedyOutcome::Skipped("a capture".to_owned()), None);
        run.checked(seen(Outcome::Pass, None), Some(2_000_000_000));
        let text = markdown(
            &run,
            &RunInfo {
                source: "capture `x.jsonl`".to_owned(),
                started_ns: 0,
                ended_ns: 1,
                live: false,
            },
        );
        assert!(text.starts_with("# Playbook run: Poison messages (poison-messages)"));
        assert!(
            text.contains("| Verdict | **resolved**: Quiet. |"),
            "{text}"
        );
        assert!(text.contains("| Found | queue = `payments` |"), "{text}");
        assert!(
            text.contains(
                "| 1970-01-01T00:00:01.000Z | Confirm \\| poison | ✓ pass | Poison in payments. |"
            ),
            "{text}"
        );
        assert!(
            text.contains("remedy `park_dead_letters payments` not run | a capture |"),
            "{text}"
        );
        assert!(text.contains("- **Looked at:** DLQ of payments"), "{text}");
        assert!(text.contains("nothing was done here"), "{text}");
    }
}
