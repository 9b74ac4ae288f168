//! Reachability: which instances can still call which, which are cut off from the rest,
//! and which went silent.
//!
//! ```text
//!  client spans (instance A, peer B) ──► call matrix A→B per window (calls, failures)
//!                                          ├─► Unreachable  A→B worked, now ≥ 90 % of calls fail
//!  spans per (service, instance) ──► silence ┼─► NodeDown     A's own spans stop, calls to A fail
//!                                          └─► Partition    the live instances split into groups
//!                                                           whose calls across all fail
//! ```
//!
//! **Symptom**: a network partition, a dead process, a link that stopped working.
//!
//! **Rule**: a directed instance pair is *cut* in a window when at least 90 % of at
//! least [`CUT_MIN_CALLS`] calls fail (timeout, reset, 5xx, error status); one that
//! worked before and stays cut is [`FindingKind::Unreachable`]. An instance is *down*
//! when a service that ran there in every baseline window stops emitting spans while
//! the same service goes on at its other instances (expected: its baseline rate times
//! the pace of the busiest other instance, at least [`SILENT_MIN_EXPECTED`] spans) and
//! the calls made to it fail: [`FindingKind::NodeDown`]. Every condition must hold in
//! two windows at least (see [`episodes`]).
//! The instances still alive are grouped by the calls that succeed between them
//! (connected components); two or more groups with cut links between them and no call
//! getting across are a [`FindingKind::Partition`], named by its minority side and
//! critical once it lasts longer than `partition_critical_ms`. A dead instance is never
//! a partition side: being unreachable because nobody is there is a crash, not a split.
//!
//! **Where it comes from**: the reachability matrix of mesh probers (Bloomberg's
//! goldpinger draws who-can-reach-whom from calls between instances), partitions as
//! connected components of the "can talk" graph (Jepsen's partition nemeses describe
//! them the same way, as groups and the links cut between them), and silence as a
//! missing heartbeat compared with its peers (Kubernetes' node controller; Prometheus'
//! `absent_over_time`), corroborated by failing calls so that an idle instance is not
//! called dead.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use crate::detector::{Context, Detector, onset};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use crate::index::{NO_ROW, is_outgoing};

/// A pair whose calls fail at least this often in a window is cut in that window.
const CUT_SHARE: f64 = 0.9;
/// ... given at least this many calls: one or two failed calls are not a cut link.
const CUT_MIN_CALLS: u32 = 3;
/// A stream of spans is silent in a window when it emits at most this share of what
/// its peers' activity says it should ...
const SILENT_SHARE: f64 = 0.05;
/// ... and that expectation is at least this many spans (a Poisson count of mean 5 is
/// zero by chance less than 1 % of the time).
const SILENT_MIN_EXPECTED: f64 = 5.0;

#[derive(Debug, Default)]
pub struct Reachability;

impl Detector for Reachability {
    fn name(&self) -> &'static str {
        "reachability"
    }

    fn symptom(&self) -> &'static str {
        "instances that cannot call each other, split into groups, or went silent"
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let traffic = Traffic::build(cx);
        if traffic.links.is_empty() {
            return Vec::new();
        }
        let silences = traffic.silences(cx);
        let mut findings = traffic.unreachable(cx);
        findings.extend(
            silences
                .outages
                .iter()
                .map(|outage| traffic.node_down(cx, outage)),
        );
        findings.extend(traffic.partitions(cx, &silences));
        findings
    }
}

/// Runs of abnormal windows from `from` on: each starts where [`onset`] says a rise
/// sticks and lasts until two normal windows in a row (or the end of the capture).
/// A run needs two abnormal windows: [`onset`] also accepts the last window alone, but
/// on a capture cut at some instant (a live view, a replay) the last window is partial,
/// and a partial window is quiet or failing by chance too often to be called on its own.
/// Shared by the cluster detectors (elections, quorum) that report episodes.
pub(crate) fn episodes(abnormal: &[bool], from: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut from = from;
    while let Some(start) = onset(abnormal, from) {
        let mut end = start + 1;
        let mut w = start + 1;
        while w < abnormal.len() {
            if abnormal[w] {
                end = w + 1;
            } else if !abnormal.get(w + 1).copied().unwrap_or(false) {
                break;
            }
            w += 1;
        }
        if abnormal[start..end].iter().filter(|&&a| a).count() >= 2 {
            runs.push(start..end);
        }
        from = end;
    }
    runs
}

/// Whether a run of windows reaches the end of the analysed time (its last window, or
/// the partial one after it): the condition is still going on.
pub(crate) fn ongoing(windows: usize, run: &Range<usize>) -> bool {
    run.end + 1 >= windows
}

/// The end of a run of windows, in ns (the capture's end for a run still going on).
pub(crate) fn episode_end_ns(cx: &Context<'_>, run: &Range<usize>) -> i64 {
    cx.window_start(run.end).min(cx.end_ns)
}

/// Calls from one instance to another, per window.
#[derive(Debug)]
struct Link {
    from: usize,
    to: usize,
    calls: Vec<u32>,
    failures: Vec<u32>,
    /// The first failed call of each window (evidence), or [`NO_ROW`].
    first_failure: Vec<u32>,
}

impl Link {
    fn cut(&self, w: usize) -> bool {
        let calls = self.calls[w];
        calls >= CUT_MIN_CALLS && f64::from(self.failures[w]) >= CUT_SHARE * f64::from(calls)
    }

    fn successes(&self, w: usize) -> u32 {
        self.calls[w] - self.failures[w]
    }

    fn totals(&self, windows: Range<usize>) -> (u32, u32) {
        windows.fold((0, 0), |(calls, failures), w| {
            (calls + self.calls[w], failures + self.failures[w])
        })
    }
}

/// The spans one service emitted at one instance, per window.
#[derive(Debug)]
struct Stream {
    service: u32,
    instance: usize,
    spans: Vec<u32>,
    /// The latest span end per window: the last sign of life before a silence.
    last_end_ns: Vec<i64>,
}

/// Quiet streams and outages.
#[derive(Debug)]
struct Silences {
    outages: Vec<Outage>,
    /// Per instance, the windows in which one of its steady services was quiet.
    quiet: HashMap<usize, Vec<bool>>,
}

/// A run of windows during which an instance was down.
#[derive(Debug)]
struct Outage {
    instance: usize,
    windows: Range<usize>,
    /// The services that went silent there.
    services: Vec<u32>,
    /// Spans those services would have emitted, judging by their peers.
    missing_spans: f64,
    onset_ns: i64,
    /// Calls made to it while it was silent, and how many failed.
    calls: u32,
    failures: u32,
}

#[derive(Debug)]
struct Traffic {
    /// Interned instance names; everything below indexes into this.
    instances: Vec<u32>,
    links: Vec<Link>,
    streams: Vec<Stream>,
    windows: usize,
}

impl Traffic {
    fn build(cx: &Context<'_>) -> Traffic {
        let table = cx.table;
        let windows = cx.windows();
        // Instance names are few and interned early: a dense map from their string id
        // to their index makes the per-row lookups (own instance, peer) array reads.
        let mut instances: Vec<u32> = Vec::new();
        let mut seen: HashSet<u32> = HashSet::new();
        let mut previous = 0;
        for &instance in &table.instance {
            if instance != 0 && instance != previous {
                previous = instance;
                if seen.insert(instance) {
                    instances.push(instance);
                }
            }
        }
        let mut instance_index =
            vec![usize::MAX; instances.iter().max().map_or(0, |&m| m as usize + 1)];
        for (index, &instance) in instances.iter().enumerate() {
            instance_index[instance as usize] = index;
        }
        let index_of = |id: u32| {
            instance_index
                .get(id as usize)
                .copied()
                .filter(|&i| i != usize::MAX)
        };
        let mut link_index: HashMap<(usize, usize), usize> = HashMap::new();
        let mut links: Vec<Link> = Vec::new();
        let mut stream_index: HashMap<(u32, usize), usize> = HashMap::new();
        let mut streams: Vec<Stream> = Vec::new();
        // Rows come in resource batches: remember the last stream to skip most lookups.
        let mut last: Option<((u32, u32), usize, usize)> = None;
        for row in 0..table.len() {
            let instance = table.instance[row];
            if instance == 0 {
                continue;
            }
            let key = (table.service[row], instance);
            let (from, stream) = match last {
                Some((k, from, stream)) if k == key => (from, stream),
                _ => {
                    let Some(from) = index_of(instance) else {
                        continue;
                    };
                    let stream = *stream_index.entry((key.0, from)).or_insert_with(|| {
                        streams.push(Stream {
                            service: key.0,
                            instance: from,
                            spans: vec![0; windows],
                            last_end_ns: vec![i64::MIN; windows],
                        });
                        streams.len() - 1
                    });
                    last = Some((key, from, stream));
                    (from, stream)
                }
            };
            let w = cx.window_of(table.start_ns[row]);
            let s = &mut streams[stream];
            s.spans[w] += 1;
            s.last_end_ns[w] = s.last_end_ns[w].max(table.end_ns[row]);

            let peer = table.peer[row];
            if !is_outgoing(table.kind[row]) || peer == 0 || peer == instance {
                continue;
            }
            let Some(to) = index_of(peer) else {
                continue;
            };
            let link = *link_index.entry((from, to)).or_insert_with(|| {
                links.push(Link {
                    from,
                    to,
                    calls: vec![0; windows],
                    failures: vec![0; windows],
                    first_failure: vec![NO_ROW; windows],
                });
                links.len() - 1
            });
            let link = &mut links[link];
            link.calls[w] += 1;
            if table.error[row] {
                link.failures[w] += 1;
                if link.first_failure[w] == NO_ROW {
                    link.first_failure[w] = row as u32;
                }
            }
        }
        Traffic {
            instances,
            links,
            streams,
            windows,
        }
    }

    fn name(&self, cx: &Context<'_>, instance: usize) -> String {
        cx.table.str(self.instances[instance]).to_owned()
    }

    /// Calls from other instances to `instance` over `windows`: (calls, failures).
    fn calls_to(&self, instance: usize, windows: &Range<usize>) -> (u32, u32) {
        self.links
            .iter()
            .filter(|link| link.to == instance)
            .map(|link| link.totals(windows.clone()))
            .fold((0, 0), |(c, f), (calls, failures)| {
                (c + calls, f + failures)
            })
    }

    /// Failed calls on `links` over `windows`, the earliest windows first.
    fn failure_rows<'a>(
        &'a self,
        links: impl Iterator<Item = &'a Link> + Clone,
        windows: Range<usize>,
    ) -> Vec<u32> {
        windows
            .flat_map(|w| {
                links
                    .clone()
                    .map(move |link| link.first_failure[w])
                    .filter(|&row| row != NO_ROW)
            })
            .collect()
    }

    /// Streams that went quiet while their service went on at other instances, per
    /// instance; and, of those instances, the ones to which calls failed: the outages.
    fn silences(&self, cx: &Context<'_>) -> Silences {
        let baseline = cx.baseline_windows().min(self.windows);
        // A steady stream (spans in every baseline window) of a service that runs at
        // two instances or more has a yardstick: its peers' pace.
        let mut instances_of: HashMap<u32, usize> = HashMap::new();
        for stream in &self.streams {
            *instances_of.entry(stream.service).or_default() += 1;
        }
        let base_rate: Vec<Option<f64>> = self
            .streams
            .iter()
            .map(|stream| {
                let steady = instances_of.get(&stream.service).copied().unwrap_or(0) >= 2
                    && baseline > 0
                    && stream.spans[..baseline].iter().all(|&spans| spans > 0);
                steady.then(|| {
                    f64::from(stream.spans[..baseline].iter().sum::<u32>()) / baseline as f64
                })
            })
            .collect();
        // The service's pace per window (spans against the baseline rate), the two
        // fastest steady streams: a stream is judged against the fastest of the others,
        // so that one dead peer does not make a second one look merely slow.
        let mut pace: HashMap<u32, Vec<[(f64, usize); 2]>> = HashMap::new();
        for (index, stream) in self.streams.iter().enumerate() {
            let Some(rate) = base_rate[index] else {
                continue;
            };
            let top = pace
                .entry(stream.service)
                .or_insert_with(|| vec![[(0.0, usize::MAX); 2]; self.windows]);
            for (w, &spans) in stream.spans.iter().enumerate() {
                let p = f64::from(spans) / rate;
                let top = &mut top[w];
                if p > top[0].0 {
                    top[1] = top[0];
                    top[0] = (p, index);
                } else if p > top[1].0 {
                    top[1] = (p, index);
                }
            }
        }

        let mut quiet: HashMap<usize, Vec<bool>> = HashMap::new();
        let mut quiet_streams: HashMap<usize, Vec<(usize, Range<usize>)>> = HashMap::new();
        for (index, stream) in self.streams.iter().enumerate() {
            let (Some(rate), Some(top)) = (base_rate[index], pace.get(&stream.service)) else {
                continue;
            };
            let expected = |w: usize| {
                let [first, second] = top[w];
                rate * if first.1 == index { second.0 } else { first.0 }
            };
            // A window whose peers were too quiet to judge by (the partial last one of a
            // replay, say) keeps the previous window's verdict unless the stream spoke.
            let mut silent_before = false;
            let silent: Vec<bool> = (0..self.windows)
                .map(|w| {
                    let expected = expected(w);
                    if expected >= SILENT_MIN_EXPECTED {
                        silent_before = f64::from(stream.spans[w]) <= expected * SILENT_SHARE;
                    } else if stream.spans[w] > 0 {
                        silent_before = false;
                    }
                    silent_before
                })
                .collect();
            for run in episodes(&silent, baseline) {
                quiet
                    .entry(stream.instance)
                    .or_insert_with(|| vec![false; self.windows])[run.clone()]
                .fill(true);
                quiet_streams
                    .entry(stream.instance)
                    .or_default()
                    .push((index, run));
            }
        }

        let mut outages = Vec::new();
        let mut instances: Vec<usize> = quiet.keys().copied().collect();
        instances.sort_unstable();
        for instance in instances {
            let mask = &quiet[&instance];
            for run in episodes(mask, baseline) {
                // Quiet alone could be idleness or a broken exporter: the instance is
                // down only if the calls made to it fail too (judged after the first
                // window, which holds the calls that got through before it died).
                let after = run.start + 1..run.end;
                let (calls, failures) = match self.calls_to(instance, &after) {
                    (calls, failures) if calls >= CUT_MIN_CALLS => (calls, failures),
                    _ => self.calls_to(instance, &run),
                };
                if calls < CUT_MIN_CALLS || f64::from(failures) < CUT_SHARE * f64::from(calls) {
                    continue;
                }
                let mut services = Vec::new();
                let mut missing_spans = 0.0;
                let mut last_seen = i64::MIN;
                for (index, stream_run) in quiet_streams.get(&instance).into_iter().flatten() {
                    if stream_run.end <= run.start || stream_run.start >= run.end {
                        continue;
                    }
                    let stream = &self.streams[*index];
                    let (Some(rate), Some(top)) = (base_rate[*index], pace.get(&stream.service))
                    else {
                        continue;
                    };
                    missing_spans += stream_run
                        .clone()
                        .map(|w| {
                            let [first, second] = top[w];
                            rate * if first.1 == *index { second.0 } else { first.0 }
                                - f64::from(stream.spans[w])
                        })
                        .sum::<f64>();
                    if !services.contains(&stream.service) {
                        services.push(stream.service);
                    }
                    for w in stream_run.start.saturating_sub(1)..=stream_run.start {
                        last_seen = last_seen.max(stream.last_end_ns[w]);
                    }
                }
                let onset_ns = self.outage_onset_ns(cx, instance, &run, last_seen);
                outages.push(Outage {
                    instance,
                    windows: run,
                    services,
                    missing_spans: missing_spans.max(0.0),
                    onset_ns,
                    calls,
                    failures,
                });
            }
        }
        Silences { outages, quiet }
    }

    /// When an instance went down: the first failed call to it after its last sign of
    /// life (the last span end of its silent services), else the start of the silence.
    fn outage_onset_ns(
        &self,
        cx: &Context<'_>,
        instance: usize,
        run: &Range<usize>,
        last_seen: i64,
    ) -> i64 {
        let table = cx.table;
        let from = run.start.saturating_sub(1);
        let first_failure = self
            .links
            .iter()
            .filter(|link| link.to == instance)
            .flat_map(|link| link.first_failure[from..=run.start].iter().copied())
            .filter(|&row| row != NO_ROW)
            .map(|row| table.start_ns[row as usize])
            .filter(|&ns| ns >= last_seen)
            .min();
        first_failure.unwrap_or_else(|| cx.window_start(run.start).max(last_seen))
    }

    fn node_down(&self, cx: &Context<'_>, outage: &Outage) -> Finding {
        let table = cx.table;
        let name = self.name(cx, outage.instance);
        let (calls, failures) = (outage.calls, outage.failures);
        let end_ns = episode_end_ns(cx, &outage.windows);
        let silent_s = (end_ns - outage.onset_ns).max(0) as f64 / 1e9;
        let services: Vec<&str> = outage.services.iter().map(|&s| table.str(s)).collect();
        let ongoing = ongoing(self.windows, &outage.windows);
        let rows = self.failure_rows(
            self.links.iter().filter(|link| link.to == outage.instance),
            outage.windows.clone(),
        );
        Finding {
            kind: FindingKind::NodeDown,
            severity: Severity::Critical,
            subject: Subject::Node(name.clone()),
            window: Window {
                start_ns: outage.onset_ns,
                end_ns,
            },
            onset_ns: Some(outage.onset_ns),
            summary: format!(
                "{name} is down: {} stopped emitting spans there (about {:.0} expected) while \
                 it runs on elsewhere, and {failures} of {calls} calls to {name} failed; silent \
                 for {silent_s:.1} s{}",
                services.join(" and "),
                outage.missing_spans,
                if ongoing { " and counting" } else { "" },
            ),
            figures: vec![
                Figure::new("silent", silent_s, "s"),
                Figure::new("missing_spans", outage.missing_spans.round(), "spans"),
                Figure::new("calls_to_node", f64::from(calls), "calls"),
                Figure::new(
                    "failed_share",
                    100.0 * f64::from(failures) / f64::from(calls.max(1)),
                    "%",
                ),
            ],
            evidence: cx.evidence(rows),
            detector: "reachability",
        }
    }

    /// Directed pairs that worked and then stopped working.
    fn unreachable(&self, cx: &Context<'_>) -> Vec<Finding> {
        let baseline = cx.baseline_windows().min(self.windows);
        let mut findings = Vec::new();
        for link in &self.links {
            let cut: Vec<bool> = (0..self.windows).map(|w| link.cut(w)).collect();
            for run in episodes(&cut, baseline) {
                let (before, failed_before) = link.totals(0..run.start);
                if before < CUT_MIN_CALLS || 2 * failed_before >= before {
                    continue;
                }
                let (calls, failures) = link.totals(run.clone());
                let onset_ns = cut_onset_ns(cx, &[link], &run);
                let end_ns = episode_end_ns(cx, &run);
                let from = self.name(cx, link.from);
                let to = self.name(cx, link.to);
                let share = 100.0 * f64::from(failures) / f64::from(calls.max(1));
                let share_before = 100.0 * f64::from(failed_before) / f64::from(before);
                let lasted_s = (end_ns - onset_ns).max(0) as f64 / 1e9;
                findings.push(Finding {
                    kind: FindingKind::Unreachable,
                    severity: Severity::Warning,
                    subject: Subject::Edge(from.clone(), to.clone()),
                    window: Window {
                        start_ns: onset_ns,
                        end_ns,
                    },
                    onset_ns: Some(onset_ns),
                    summary: format!(
                        "{from} cannot reach {to}: {share:.0} % of {calls} calls failed for \
                         {lasted_s:.1} s, against {share_before:.0} % before"
                    ),
                    figures: vec![
                        Figure::new("failed_share", share, "%"),
                        Figure::new("calls", f64::from(calls), "calls"),
                        Figure::new("failed_share_before", share_before, "%"),
                        Figure::new("duration", lasted_s, "s"),
                    ],
                    evidence: cx.evidence(self.failure_rows(std::iter::once(link), run.clone())),
                    detector: "reachability",
                });
            }
        }
        findings
    }

    /// Live instances split into groups that cannot call each other.
    fn partitions(&self, cx: &Context<'_>, silences: &Silences) -> Vec<Finding> {
        let baseline = cx.baseline_windows().min(self.windows);
        let n = self.instances.len();
        // An instance whose own services went quiet is not a live side of a split, even
        // when the failing calls that would make it an outage are missing.
        let mut down = vec![vec![false; self.windows]; n];
        for (&instance, mask) in &silences.quiet {
            down[instance].copy_from_slice(mask);
        }
        let mut emitting = vec![vec![false; self.windows]; n];
        for stream in &self.streams {
            for (w, &spans) in stream.spans.iter().enumerate() {
                emitting[stream.instance][w] |= spans > 0;
            }
        }
        let alive = |i: usize, w: usize| emitting[i][w] && !down[i][w];

        let mut worked = vec![false; self.links.len()];
        let mut splits: Vec<Option<Split>> = Vec::with_capacity(self.windows);
        for w in 0..self.windows {
            splits.push(self.split(w, &worked, &alive));
            for (k, link) in self.links.iter().enumerate() {
                worked[k] |= link.successes(w) > 0;
            }
        }

        // One episode per minority side seen.
        let mut sides: Vec<Vec<usize>> = Vec::new();
        for split in splits.iter().flatten() {
            if !sides.contains(&split.minority) {
                sides.push(split.minority.clone());
            }
        }
        let mut findings = Vec::new();
        for side in sides {
            let flagged: Vec<bool> = splits
                .iter()
                .map(|split| split.as_ref().is_some_and(|s| s.minority == side))
                .collect();
            for run in episodes(&flagged, baseline) {
                findings.push(self.partition(cx, &side, &splits, run));
            }
        }
        findings
    }

    /// How the live instances split in window `w`, if they do.
    fn split(
        &self,
        w: usize,
        worked: &[bool],
        alive: &impl Fn(usize, usize) -> bool,
    ) -> Option<Split> {
        let n = self.instances.len();
        let mut groups = UnionFind::new(n);
        let mut touched = vec![false; n];
        let mut cuts = Vec::new();
        for (k, link) in self.links.iter().enumerate() {
            if link.calls[w] == 0 || !alive(link.from, w) || !alive(link.to, w) {
                continue;
            }
            if link.cut(w) {
                // A link that never worked is a misconfiguration, not a split.
                if worked[k] {
                    cuts.push(k);
                    touched[link.from] = true;
                    touched[link.to] = true;
                }
            } else if link.successes(w) > 0 {
                groups.union(link.from, link.to);
                touched[link.from] = true;
                touched[link.to] = true;
            }
        }
        let across: Vec<usize> = cuts
            .into_iter()
            .filter(|&k| groups.find(self.links[k].from) != groups.find(self.links[k].to))
            .collect();
        if across.is_empty() {
            return None;
        }
        let mut involved = vec![false; n];
        for &k in &across {
            involved[groups.find(self.links[k].from)] = true;
            involved[groups.find(self.links[k].to)] = true;
        }
        // Members per involved group, and the calls that succeed inside it (to pick the
        // majority side when two groups are the same size).
        let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, _) in touched.iter().enumerate().filter(|(_, touched)| **touched) {
            let root = groups.find(i);
            if involved[root] {
                members.entry(root).or_default().push(i);
            }
        }
        let mut inside_calls: HashMap<usize, u32> = HashMap::new();
        for link in &self.links {
            let root = groups.find(link.from);
            if members.contains_key(&root) && root == groups.find(link.to) {
                *inside_calls.entry(root).or_default() += link.successes(w);
            }
        }
        let mut sides: Vec<Vec<usize>> = members.into_values().collect();
        sides.sort_by_key(|side| {
            let root = groups.find(side[0]);
            (
                std::cmp::Reverse(side.len()),
                std::cmp::Reverse(inside_calls.get(&root).copied().unwrap_or(0)),
                side[0],
            )
        });
        let majority = sides.first().cloned().unwrap_or_default();
        let mut minority: Vec<usize> = sides.into_iter().skip(1).flatten().collect();
        minority.sort_unstable_by_key(|&i| self.instances[i]);
        Some(Split {
            minority,
            majority,
            across,
        })
    }

    fn partition(
        &self,
        cx: &Context<'_>,
        side: &[usize],
        splits: &[Option<Split>],
        run: Range<usize>,
    ) -> Finding {
        let mut across: Vec<usize> = Vec::new();
        let mut majority: Vec<usize> = Vec::new();
        for split in splits[run.clone()].iter().flatten() {
            if split.minority != side {
                continue;
            }
            for &k in &split.across {
                if !across.contains(&k) {
                    across.push(k);
                }
            }
            for &i in &split.majority {
                if !majority.contains(&i) {
                    majority.push(i);
                }
            }
        }
        let links: Vec<&Link> = across.iter().map(|&k| &self.links[k]).collect();
        let (calls, failures) = links
            .iter()
            .map(|link| link.totals(run.clone()))
            .fold((0, 0), |(c, f), (calls, failures)| {
                (c + calls, f + failures)
            });
        let onset_ns = cut_onset_ns(cx, &links, &run);
        let end_ns = episode_end_ns(cx, &run);
        let lasted_ms = (end_ns - onset_ns).max(0) as f64 / 1e6;
        let mut names: Vec<String> = side.iter().map(|&i| self.name(cx, i)).collect();
        names.sort();
        let mut others: Vec<String> = majority.iter().map(|&i| self.name(cx, i)).collect();
        others.sort();
        let severity = if lasted_ms > cx.thresholds.partition_critical_ms {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let share = 100.0 * f64::from(failures) / f64::from(calls.max(1));
        Finding {
            kind: FindingKind::Partition,
            severity,
            subject: Subject::Nodes(names.clone()),
            window: Window {
                start_ns: onset_ns,
                end_ns,
            },
            onset_ns: Some(onset_ns),
            summary: format!(
                "network partition: {{{}}} is cut off from {{{}}}, both sides still running; \
                 {share:.0} % of {calls} calls across failed for {:.1} s{}",
                names.join(", "),
                others.join(", "),
                lasted_ms / 1000.0,
                if ongoing(self.windows, &run) {
                    " and counting"
                } else {
                    ""
                },
            ),
            figures: vec![
                Figure::new("duration", lasted_ms / 1000.0, "s"),
                Figure::new("calls_across", f64::from(calls), "calls"),
                Figure::new("failed_share", share, "%"),
                Figure::new("minority_size", names.len() as f64, "instances"),
                Figure::new("majority_size", others.len() as f64, "instances"),
            ],
            evidence: cx.evidence(self.failure_rows(links.iter().copied(), run.clone())),
            detector: "reachability",
        }
    }
}

/// How the instances split in one window.
#[derive(Debug, Clone)]
struct Split {
    /// Every side but the largest, by instance name order.
    minority: Vec<usize>,
    majority: Vec<usize>,
    /// The cut links between sides.
    across: Vec<usize>,
}

/// When the cut began: the first failure in the window before the run when the links
/// were already mostly failing there (the cut fell inside it), else in the run's first.
fn cut_onset_ns(cx: &Context<'_>, links: &[&Link], run: &Range<usize>) -> i64 {
    let table = cx.table;
    let first_failure = |w: usize| {
        links
            .iter()
            .map(|link| link.first_failure[w])
            .filter(|&row| row != NO_ROW)
            .map(|row| table.start_ns[row as usize])
            .min()
    };
    if let Some(before) = run.start.checked_sub(1) {
        let (calls, failures) = links.iter().fold((0, 0), |(c, f), link| {
            (c + link.calls[before], f + link.failures[before])
        });
        if calls > 0
            && 2 * failures >= calls
            && let Some(ns) = first_failure(before)
        {
            return ns;
        }
    }
    first_failure(run.start).unwrap_or_else(|| cx.window_start(run.start))
}

/// Disjoint sets over instance indices (path halving, union by size).
#[derive(Debug)]
struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{Resource, Span, SpanId, SpanKind, StatusCode, TraceId};

    use super::*;
    use crate::config::Thresholds;
    use crate::table::from_spans;

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_700_000_000_000 * MS;
    const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];

    /// Spans of a small cluster, built window by window.
    struct Capture {
        spans: Vec<Span>,
        next: u64,
        resources: HashMap<(&'static str, &'static str), Arc<Resource>>,
    }

    impl Capture {
        fn new() -> Self {
            Capture {
                spans: Vec::new(),
                next: 1,
                resources: HashMap::new(),
            }
        }

        fn span(&mut self, service: &'static str, node: &'static str, at_ms: u64) -> &mut Span {
            let resource = self
                .resources
                .entry((service, node))
                .or_insert_with(|| {
                    let mut resource = Resource::with_service(service);
                    resource.attributes.insert("faultline.node", node);
                    Arc::new(resource)
                })
                .clone();
            let id = self.next;
            self.next += 1;
            let mut trace = [0u8; 16];
            trace[..8].copy_from_slice(&id.to_be_bytes());
            let mut span = Span::new(TraceId(trace), SpanId(id.to_be_bytes()), "op");
            span.start_ns = T0 + at_ms * MS;
            span.end_ns = span.start_ns + MS;
            span.resource = resource;
            self.spans.push(span);
            let last = self.spans.len() - 1;
            &mut self.spans[last]
        }

        /// Ten spans of the node's own service in second `s`, unless it is down.
        fn alive(&mut self, node: &'static str, s: u64) {
            for i in 0..10 {
                self.span("app", node, s * 1000 + i * 90).kind = SpanKind::Server;
            }
        }

        /// Five calls from one node's sidecar to another in second `s`.
        fn calls(&mut self, from: &'static str, to: &'static str, s: u64, failing: usize) {
            for i in 0..5 {
                let span = self.span("agent", from, s * 1000 + 10 + i as u64 * 150);
                span.kind = SpanKind::Client;
                span.attributes.insert("server.address", to);
                if i < failing {
                    span.status.code = StatusCode::Error;
                }
            }
        }

        /// 20 s: everyone alive and calling everyone; from second 8 on, `fault` says
        /// whether a node is alive and how many of a pair's five calls fail.
        fn run(
            fault: impl Fn(&'static str) -> bool,
            failing: impl Fn(&'static str, &'static str) -> usize,
        ) -> Vec<Finding> {
            let mut capture = Capture::new();
            for s in 0..20 {
                for node in NODES {
                    if s < 8 || !fault(node) {
                        capture.alive(node, s);
                    }
                    for peer in NODES {
                        if peer != node && (s < 8 || !fault(node)) {
                            let failing = if s < 8 { 0 } else { failing(node, peer) };
                            capture.calls(node, peer, s, failing);
                        }
                    }
                }
            }
            let table = from_spans(&capture.spans);
            let thresholds = Thresholds::demo();
            let cx = Context::new(&table, &thresholds);
            Reachability.check(&cx)
        }
    }

    fn kinds(findings: &[Finding]) -> Vec<(FindingKind, Subject)> {
        let mut kinds: Vec<(FindingKind, Subject)> = findings
            .iter()
            .map(|f| (f.kind, f.subject.clone()))
            .collect();
        kinds.sort();
        kinds
    }

    fn node(name: &str) -> String {
        name.to_owned()
    }

    #[test]
    fn a_node_cut_off_but_running_is_a_partition_named_by_its_side() {
        let cut = |a: &str, b: &str| usize::from(a == "node-2" || b == "node-2") * 5;
        let findings = Capture::run(|_| false, cut);
        let partition: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.kind == FindingKind::Partition)
            .collect();
        assert_eq!(partition.len(), 1, "{findings:#?}");
        assert_eq!(partition[0].subject, Subject::Nodes(vec![node("node-2")]));
        assert_eq!(partition[0].severity, Severity::Critical);
        assert!(partition[0].summary.contains("{node-1, node-3}"));
        let edges: Vec<Subject> = findings
            .iter()
            .filter(|f| f.kind == FindingKind::Unreachable)
            .map(|f| f.subject.clone())
            .collect();
        assert_eq!(edges.len(), 4);
        assert!(edges.contains(&Subject::Edge(node("node-1"), node("node-2"))));
        assert!(findings.iter().all(|f| f.kind != FindingKind::NodeDown));
    }

    #[test]
    fn a_dead_node_is_down_not_a_partition() {
        let dead = |n: &str| n == "node-1";
        let findings = Capture::run(dead, |_, b| usize::from(b == "node-1") * 5);
        let down: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.kind == FindingKind::NodeDown)
            .collect();
        assert_eq!(down.len(), 1, "{findings:#?}");
        assert_eq!(down[0].subject, Subject::Node(node("node-1")));
        assert_eq!(down[0].severity, Severity::Critical);
        assert!(findings.iter().all(|f| f.kind != FindingKind::Partition));
    }

    #[test]
    fn a_silent_node_that_still_answers_is_not_down() {
        // Its own spans stop (an exporter died, say), but calls to it succeed.
        let findings = Capture::run(|n| n == "node-3", |_, _| 0);
        assert!(kinds(&findings).is_empty(), "{findings:#?}");
    }

    #[test]
    fn flaky_links_are_neither_cut_nor_a_partition() {
        // Two calls in five fail on every link: slow and lossy, but connected.
        let findings = Capture::run(|_| false, |_, _| 2);
        assert!(kinds(&findings).is_empty(), "{findings:#?}");
    }

    #[test]
    fn a_healthy_cluster_has_no_findings() {
        assert!(Capture::run(|_| false, |_, _| 0).is_empty());
    }

    #[test]
    fn episodes_need_two_abnormal_windows() {
        let (t, f) = (true, false);
        assert_eq!(episodes(&[f, t, t, f, t, f, f, t], 0), vec![1..5]);
        assert_eq!(episodes(&[f, f, f, t], 0), Vec::<Range<usize>>::new());
        assert_eq!(episodes(&[t, t, f, f, t, t], 2), vec![4..6]);
    }
}
