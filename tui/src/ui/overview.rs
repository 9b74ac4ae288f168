//! The overview view: the cluster's nodes, who can reach whom, and what is in effect.
//!
//! ```text
//!  faults: injected (FAULT …) │ the top diagnosis
//!  ┌ nodes · source · leader ──────────────────────┐┌ reachability · last 10 s ┐
//!  │ cluster attached: each node's /status          ││ from\to node-1 node-2 … │
//!  │ else the spans (Topology): role, term, leader, ││ node-1    —     ok      │
//!  │ up / no leader / silent, last span             ││ legend                  │
//!  └────────────────────────────────────────────────┘└─────────────────────────┘
//!  ┌ cluster findings: the analysis's, about nodes, their links, the quorum ───┐
//!  ┌ timeline of the top diagnosis (wide only) ────────────────────────────────┐
//! ```
//!
//! From [`WIDE`] columns the matrix sits beside the nodes; narrower, it sits under
//! them, beside the findings. Links come from [`Topology::link`] in every case: a
//! node's `/status` cannot say which links work.

use std::cmp::Ordering;

use faultline_analyzers::{Finding, Severity, Subject};
use faultline_dashboards::Level;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::{bold, clock, count, dim, fit, fit_right, level_style, level_tag};
use crate::app::App;
use crate::cluster::{ClusterSnapshot, Health};
use crate::topology::{LINK_WINDOW_S, Link, Topology};

/// From this body width the nodes and the matrix sit side by side.
const WIDE: u16 = 120;
/// A node not seen for longer than this while others are is silent.
const SILENT_NS: u64 = 3_000_000_000;
/// Rewound, the nodes' state is rebuilt from the spans of this much data time before
/// the time shown (the topology itself only keeps the newest state).
const LOOKBACK_NS: u64 = 30_000_000_000;
/// …and from at most this many spans, newest first, so that a frame stays cheap with
/// a million spans held.
const SPAN_BUDGET: usize = 20_000;
/// How far out of order batches may arrive (exporters flush every few seconds).
const ARRIVAL_SLACK_NS: u64 = 10_000_000_000;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let now = app.now_ns();
    let rebuilt;
    let topology = if app.topology.nodes.values().all(|n| n.last_seen_ns <= now) {
        &app.topology
    } else {
        rebuilt = topology_at(app, now);
        &rebuilt
    };
    let snapshot = app.cluster_now();
    let names = node_names(app, snapshot);
    let nodes = match snapshot {
        Some(snapshot) => cluster_rows(app, snapshot, topology, &names, now),
        None => span_rows(topology, &names, now),
    };
    let wide = area.width >= WIDE;
    let effect = in_effect(app);
    let matrix_w = matrix_width(&names);
    let nodes_h = u16::try_from(nodes.rows.len().max(1) + 3).unwrap_or(u16::MAX);
    let matrix_rows = u16::try_from(names.len().max(1) + 1).unwrap_or(u16::MAX);
    let [effect_area, rest] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    Paragraph::new(effect).render(effect_area, buf);
    if wide {
        // Nodes | matrix (legend on two lines); findings; the top diagnosis's timeline.
        let matrix_h = matrix_rows.saturating_add(6);
        let box_w = u16::try_from(matrix_w + 2).unwrap_or(u16::MAX).max(40);
        let findings_h =
            u16::try_from(cluster_findings(app, &names).len().max(1) + 2).unwrap_or(u16::MAX);
        let [top, findings, timeline] = Layout::vertical([
            Constraint::Length(nodes_h.max(matrix_h)),
            Constraint::Max(findings_h),
            Constraint::Min(0),
        ])
        .areas(rest);
        let [left, right] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(box_w)]).areas(top);
        render_nodes(&nodes, left, buf);
        render_matrix(app, &names, now, false, right, buf);
        render_findings(app, &names, findings, buf);
        render_timeline(app, now, timeline, buf);
    } else {
        // Nodes; then the matrix (legend one entry a line) beside the findings.
        let [top, bottom] =
            Layout::vertical([Constraint::Length(nodes_h), Constraint::Min(0)]).areas(rest);
        render_nodes(&nodes, top, buf);
        let box_w = u16::try_from(matrix_w + 2).unwrap_or(u16::MAX).max(24);
        if bottom.width >= box_w.saturating_add(30) {
            let [matrix, findings] =
                Layout::horizontal([Constraint::Length(box_w), Constraint::Min(0)]).areas(bottom);
            render_matrix(app, &names, now, true, matrix, buf);
            render_findings(app, &names, findings, buf);
        } else {
            let [matrix, findings] = Layout::vertical([
                Constraint::Length(matrix_rows.saturating_add(8)),
                Constraint::Min(0),
            ])
            .areas(bottom);
            render_matrix(app, &names, now, true, matrix, buf);
            render_findings(app, &names, findings, buf);
        }
    }
}

/// The faults injected and the top diagnosis, on one line.
fn in_effect(app: &App) -> Line<'static> {
    let mut spans = vec![Span::styled("faults: ", dim())];
    if app.faults.active.is_empty() {
        spans.push(Span::raw("none"));
    } else {
        let faults: Vec<String> = app
            .faults
            .active
            .iter()
            .map(|(id, label)| {
                // Bounded: both come from the cluster's control, as it answered.
                let id = fit(id, 40).trim_end().to_owned();
                let label = fit(label, 60).trim_end().to_owned();
                if label.is_empty() || label == id {
                    id
                } else {
                    format!("{id} ({label})")
                }
            })
            .collect();
        spans.push(Span::styled(
            format!("FAULT {}", faults.join(", ")),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    spans.push(Span::styled(" │ ", dim()));
    match app.analysis_now() {
        Some(report) => match report.diagnoses.first() {
            Some(top) => {
                let level = severity_level(top.severity);
                spans.push(Span::styled(
                    format!("{} ", level_tag(level)),
                    level_style(level),
                ));
                spans.push(Span::raw(format!(
                    "{} ({:.0}%)",
                    fit(&top.title, 160).trim_end(),
                    top.confidence * 100.0
                )));
            }
            None => spans.push(Span::raw("no diagnosis")),
        },
        None => spans.push(Span::styled("not analysed yet", dim())),
    }
    Line::from(spans)
}

pub(super) fn severity_level(severity: Severity) -> Level {
    match severity {
        Severity::Info => Level::Ok,
        Severity::Warning => Level::Warning,
        Severity::Critical => Level::Critical,
    }
}

/// Every node known: polled, or seen in spans; `node-2` before `node-10`.
fn node_names(app: &App, snapshot: Option<&ClusterSnapshot>) -> Vec<String> {
    let mut names: Vec<String> = app.topology.node_names();
    if let Some(snapshot) = snapshot {
        names.extend(snapshot.nodes.iter().map(|n| n.name.clone()));
    }
    names.sort_by(|a, b| natural(a, b));
    names.dedup();
    names
}

/// Names compared with their trailing numbers as numbers.
fn natural(a: &str, b: &str) -> Ordering {
    // (text before the number, the number's length without leading zeros, its digits):
    // compares numbers of any length without parsing them.
    let split = |s: &str| {
        let head = s.trim_end_matches(|c: char| c.is_ascii_digit());
        let digits = s[head.len()..].trim_start_matches('0');
        (head.to_owned(), digits.len(), digits.to_owned())
    };
    split(a).cmp(&split(b)).then_with(|| a.cmp(b))
}

/// The nodes' state up to `now` from the spans held around it: used when the time
/// cursor is behind the newest data, since [`Topology`] only keeps the newest state.
/// Bounded: the [`LOOKBACK_NS`] before `now`, at most [`SPAN_BUDGET`] spans.
fn topology_at(app: &App, now: u64) -> Topology {
    let mut topology = Topology::default();
    let from = now.saturating_sub(LOOKBACK_NS);
    let batches: Vec<_> = app.store.batches().collect();
    // Batches arrive roughly in time order: skip those that begin well after `now`.
    let until = now.saturating_add(ARRIVAL_SLACK_NS);
    let end = batches.partition_point(|b| b.spans.first().is_none_or(|s| s.end_ns <= until));
    let mut budget = SPAN_BUDGET;
    let mut older = 0;
    for batch in batches.get(..end).unwrap_or_default().iter().rev() {
        let mut newest = 0;
        for span in batch.spans.iter() {
            newest = newest.max(span.end_ns);
            if span.end_ns > from && span.end_ns <= now {
                topology.observe(span);
            }
        }
        budget = budget.saturating_sub(batch.spans.len());
        // Several batches wholly before the window in a row: the rest are older still.
        older = if newest <= from { older + 1 } else { 0 };
        if budget == 0 || older >= 8 {
            break;
        }
    }
    topology
}

/// The nodes table, ready to draw.
struct Nodes {
    title: String,
    columns: Vec<Column>,
    rows: Vec<Vec<(String, Style)>>,
}

struct Column {
    header: &'static str,
    /// Fixed width, or `None` for the one that takes what is left.
    width: Option<usize>,
    right: bool,
}

const fn col(header: &'static str, width: usize, right: bool) -> Column {
    Column {
        header,
        width: Some(width),
        right,
    }
}

fn health_style(health: &Health) -> Style {
    match health {
        Health::Up => level_style(Level::Ok),
        Health::NoLeader => level_style(Level::Warning),
        Health::Down(_) => level_style(Level::Critical),
    }
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Rows from the nodes' `/status`.
fn cluster_rows(
    app: &App,
    snapshot: &ClusterSnapshot,
    seen: &Topology,
    names: &[String],
    now: u64,
) -> Nodes {
    let age = now.saturating_sub(snapshot.at_ns);
    let mut title = format!(" nodes · /status polled at {}", clock(snapshot.at_ns));
    if age > SILENT_NS {
        title.push_str(&format!(
            " ({:.0} s before the time shown)",
            age as f64 / 1e9
        ));
    }
    match snapshot.leader() {
        Some(leader) => title.push_str(&format!(" · leader {leader} ")),
        None => title.push_str(" · NO LEADER "),
    }
    let columns = vec![
        col("node", 10, false),
        col("role", 9, false),
        col("term", 5, true),
        col("leader", 9, false),
        Column {
            header: "health",
            width: None,
            right: false,
        },
        col("lag", 7, true),
        col("DLQ", 5, true),
        // The sidecar's inbound requests and failures per second (its /metrics).
        col("in/s", 6, true),
        col("5xx/s", 6, true),
        col("queue", 6, true),
        col("commit", 8, true),
        col("last span", 10, true),
    ];
    let rows = names
        .iter()
        .map(|name| {
            let last_span = seen
                .nodes
                .get(name)
                .map_or_else(|| "-".to_owned(), |n| ago(now, n.last_seen_ns));
            match snapshot.nodes.iter().find(|n| n.name == *name) {
                Some(node) => {
                    let health = match &node.health {
                        Health::Down(reason) => format!("DOWN: {reason}"),
                        other => other.label().to_owned(),
                    };
                    let role = node.role.clone().unwrap_or_else(|| "-".to_owned());
                    let role_style = if role == "leader" {
                        bold()
                    } else {
                        Style::new()
                    };
                    let rates = app.agent_rates(name);
                    let per_second = |v: f64| format!("{v:.0}");
                    vec![
                        (name.clone(), bold()),
                        (role, role_style),
                        (opt(node.term), Style::new()),
                        (opt(node.leader.as_deref()), Style::new()),
                        (health, health_style(&node.health)),
                        (opt(node.max_follower_lag_s.map(seconds)), Style::new()),
                        (opt(node.dlq_depth.map(count)), Style::new()),
                        (opt(rates.map(|r| per_second(r.0))), Style::new()),
                        (opt(rates.map(|r| per_second(r.1))), Style::new()),
                        (opt(node.queue_depth.map(count)), Style::new()),
                        (opt(node.commit_index.map(count)), Style::new()),
                        (last_span, dim()),
                    ]
                }
                // Seen in spans, but not among the nodes polled.
                None => vec![
                    (name.clone(), bold()),
                    ("-".to_owned(), dim()),
                    (opt(seen.nodes.get(name).and_then(|n| n.term)), dim()),
                    ("-".to_owned(), dim()),
                    ("not polled".to_owned(), dim()),
                    ("-".to_owned(), dim()),
                    ("-".to_owned(), dim()),
                    ("-".to_owned(), dim()),
                    ("-".to_owned(), dim()),
                    ("-".to_owned(), dim()),
                    ("-".to_owned(), dim()),
                    (last_span, dim()),
                ],
            }
        })
        .collect();
    Nodes {
        title,
        columns,
        rows,
    }
}

fn seconds(s: f64) -> String {
    if !s.is_finite() {
        "?".to_owned()
    } else if s < 10.0 {
        format!("{s:.2}s")
    } else if s < 1e6 {
        format!("{s:.0}s")
    } else {
        format!("{:.0}d", s / 86_400.0)
    }
}

fn ago(now: u64, then: u64) -> String {
    if then > now {
        return "later".to_owned();
    }
    let s = (now - then) as f64 / 1e9;
    if s < 100.0 {
        format!("{s:.1}s ago")
    } else {
        format!("{} ago", seconds(s))
    }
}

/// Rows from what the spans show (no cluster attached).
fn span_rows(seen: &Topology, names: &[String], now: u64) -> Nodes {
    let leader = seen.leader(now).map(|(name, term)| (name.to_owned(), term));
    let age = |name: &str| {
        seen.nodes
            .get(name)
            .filter(|n| n.last_seen_ns > 0 && n.last_seen_ns <= now)
            .map(|n| now - n.last_seen_ns)
    };
    let recent = |name: &str| age(name).is_some_and(|a| a <= SILENT_NS);
    let any_recent = names.iter().any(|n| recent(n));
    // A leader whose appends stopped is no leader any more.
    let leading = leader.as_ref().filter(|(name, _)| {
        seen.nodes
            .get(name)
            .and_then(|n| n.led_at_ns)
            .is_some_and(|t| now.saturating_sub(t) <= SILENT_NS)
    });
    let mut title = " nodes · from spans (no cluster attached)".to_owned();
    match (&leading, &leader) {
        (Some((name, term)), _) => {
            title.push_str(&format!(" · leader {name} (term {}) ", opt(*term)));
        }
        (None, Some((name, term))) => title.push_str(&format!(
            " · NO LEADER (last: {name}, term {}) ",
            opt(*term)
        )),
        (None, None) => title.push_str(" · no leader seen "),
    }
    let columns = vec![
        col("node", 10, false),
        col("role", 16, false),
        col("term", 5, true),
        col("leader", 9, false),
        Column {
            header: "health",
            width: None,
            right: false,
        },
        col("last span", 11, true),
    ];
    let rows = names
        .iter()
        .map(|name| {
            let node = seen.nodes.get(name);
            let silent = any_recent && !recent(name);
            let is_leader = leading.as_ref().is_some_and(|(l, _)| l == name);
            let role = if is_leader {
                ("leader".to_owned(), bold())
            } else if let Some(term) = node.and_then(|n| n.led_term).filter(|_| silent) {
                (format!("led term {term}"), Style::new())
            } else if silent || !any_recent {
                ("-".to_owned(), dim())
            } else {
                ("follower".to_owned(), Style::new())
            };
            let (health, style) = match age(name) {
                _ if !any_recent => ("no recent spans".to_owned(), dim()),
                Some(a) if silent => (
                    format!("silent {:.1}s (DOWN?)", a as f64 / 1e9),
                    level_style(Level::Critical),
                ),
                None => (
                    format!("silent (none in {} s)", LOOKBACK_NS / 1_000_000_000),
                    level_style(Level::Critical),
                ),
                Some(_) if leading.is_none() => {
                    ("no leader".to_owned(), level_style(Level::Warning))
                }
                Some(_) => ("up".to_owned(), level_style(Level::Ok)),
            };
            let follows = match (&leading, silent) {
                (Some((l, _)), false) => l.clone(),
                _ => "-".to_owned(),
            };
            vec![
                (name.clone(), bold()),
                role,
                (opt(node.and_then(|n| n.term)), Style::new()),
                (follows, Style::new()),
                (health, style),
                (
                    node.filter(|n| n.last_seen_ns > 0)
                        .map_or_else(|| "-".to_owned(), |n| ago(now, n.last_seen_ns)),
                    dim(),
                ),
            ]
        })
        .collect();
    Nodes {
        title,
        columns,
        rows,
    }
}

fn render_nodes(nodes: &Nodes, area: Rect, buf: &mut Buffer) {
    let block = Block::bordered().title(Span::styled(nodes.title.clone(), bold()));
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    if nodes.rows.is_empty() {
        Paragraph::new(
            "No nodes yet: no cluster is attached and no faultline-node spans have arrived.",
        )
        .style(dim())
        .wrap(Wrap { trim: true })
        .render(inner, buf);
        return;
    }
    let widths = column_widths(&nodes.columns, usize::from(inner.width));
    let mut lines = Vec::with_capacity(nodes.rows.len() + 1);
    let header: Vec<Span> = nodes
        .columns
        .iter()
        .zip(&widths)
        .filter(|(_, w)| **w > 0)
        .map(|(c, &w)| Span::styled(format!("{} ", cell(c.header, w, c.right)), dim()))
        .collect();
    lines.push(Line::from(header));
    for row in &nodes.rows {
        let spans: Vec<Span> = nodes
            .columns
            .iter()
            .zip(&widths)
            .zip(row)
            .filter(|((_, w), _)| **w > 0)
            .map(|((c, &w), (text, style))| {
                Span::styled(format!("{} ", cell(text, w, c.right)), *style)
            })
            .collect();
        lines.push(Line::from(spans));
    }
    Paragraph::new(lines).render(inner, buf);
}

/// Column widths for `total` columns: the flexible one takes what is left (at least
/// 12); when even that does not fit, the rightmost fixed columns are dropped.
fn column_widths(columns: &[Column], total: usize) -> Vec<usize> {
    // Health is the one column never cut short of its common values
    // (`silent 8.1s (DOWN?)`, `DOWN: refused conn…`).
    const FLEX_MIN: usize = 19;
    let mut widths: Vec<usize> = columns.iter().map(|c| c.width.unwrap_or(0)).collect();
    let used = |widths: &[usize]| -> usize {
        widths
            .iter()
            .filter(|w| **w > 0)
            .map(|w| w + 1)
            .sum::<usize>()
            + FLEX_MIN
            + 1
    };
    // Drop from the right (the least essential figures) until it fits.
    for i in (0..columns.len()).rev() {
        if used(&widths) <= total || i < 2 {
            break;
        }
        if columns[i].width.is_some() {
            widths[i] = 0;
        }
    }
    let fixed: usize = widths.iter().filter(|w| **w > 0).map(|w| w + 1).sum();
    let flex = total.saturating_sub(fixed + 1).max(1);
    for (w, c) in widths.iter_mut().zip(columns) {
        if c.width.is_none() {
            *w = flex;
        }
    }
    widths
}

fn cell(text: &str, width: usize, right: bool) -> String {
    if right {
        fit_right(text, width)
    } else {
        fit(text, width)
    }
}

/// Columns of the matrix: the row label, then one cell per node.
fn matrix_cell_width(names: &[String]) -> (usize, usize) {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(4);
    let label = longest.max("from\\to".len()) + 1;
    let cell = longest.clamp(3, 10) + 1;
    (label, cell)
}

fn matrix_width(names: &[String]) -> usize {
    let (label, cell) = matrix_cell_width(names);
    label + cell * names.len()
}

fn link_style(link: Link) -> Style {
    match link {
        Link::Ok => level_style(Level::Ok),
        Link::Degraded => level_style(Level::Warning),
        Link::Cut => level_style(Level::Critical),
        Link::Unknown => dim(),
    }
}

/// The matrix, its legend under it (one entry a line when `narrow`).
fn render_matrix(
    app: &App,
    names: &[String],
    now: u64,
    narrow: bool,
    area: Rect,
    buf: &mut Buffer,
) {
    let block = Block::bordered().title(Span::styled(
        format!(" reachability · last {LINK_WINDOW_S} s "),
        bold(),
    ));
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    let now_s = i64::try_from(now / 1_000_000_000).unwrap_or(i64::MAX);
    let (label_w, cell_w) = matrix_cell_width(names);
    let mut lines = Vec::with_capacity(names.len() + 4);
    if names.is_empty() {
        lines.push(Line::styled("no nodes, no links", dim()));
    } else {
        let mut header = vec![Span::styled(fit("from\\to", label_w), dim())];
        header.extend(
            names
                .iter()
                .map(|n| Span::styled(centre(&cut_left(n, cell_w - 1), cell_w), bold())),
        );
        lines.push(Line::from(header));
        for from in names {
            let mut row = vec![Span::styled(fit(from, label_w), bold())];
            for to in names {
                if from == to {
                    row.push(Span::styled(centre("—", cell_w), dim()));
                } else {
                    let link = app.topology.link(from, to, now_s);
                    row.push(Span::styled(centre(link.glyph(), cell_w), link_style(link)));
                }
            }
            lines.push(Line::from(row));
        }
    }
    lines.push(Line::default());
    let legend = [
        (Link::Ok, "calls succeed"),
        (Link::Degraded, "half or more fail"),
        (Link::Cut, "cut: 90 % or more fail"),
        (Link::Unknown, "no calls seen"),
    ];
    let entry = |(link, what): (Link, &str)| {
        [
            Span::styled(format!("{:>2}", link.glyph()), link_style(link)),
            Span::raw(format!(" {what}  ")),
        ]
    };
    if narrow {
        lines.extend(legend.into_iter().map(|e| Line::from(entry(e).to_vec())));
    } else {
        lines.push(Line::from([entry(legend[0]), entry(legend[1])].concat()));
        lines.push(Line::from([entry(legend[2]), entry(legend[3])].concat()));
    }
    lines.push(Line::styled("rows call columns (from → to)", dim()));
    Paragraph::new(lines).render(inner, buf);
}

/// A node name cut to `width` from the left, keeping the part that differs
/// (`node-12` → `…12`).
fn cut_left(name: &str, width: usize) -> String {
    let len = name.chars().count();
    if len <= width {
        name.to_owned()
    } else if width == 0 {
        String::new()
    } else {
        let tail: String = name.chars().skip(len - (width - 1)).collect();
        format!("…{tail}")
    }
}

fn centre(text: &str, width: usize) -> String {
    let len = text.chars().count();
    if len >= width {
        return fit(text, width);
    }
    let left = (width - len) / 2;
    format!(
        "{}{text}{}",
        " ".repeat(left),
        " ".repeat(width - len - left)
    )
}

/// Whether a finding is about the cluster (its nodes, their links, its quorum).
fn about_cluster(subject: &Subject, names: &[String]) -> bool {
    match subject {
        Subject::Node(_)
        | Subject::Nodes(_)
        | Subject::RaftLinks
        | Subject::KvQuorum { .. }
        | Subject::Cluster => true,
        Subject::Edge(from, to) => names.iter().any(|n| n == from || n == to),
        Subject::Service(_) | Subject::Queue(_) | Subject::Key(_) => false,
    }
}

/// The analysis's findings about the cluster, most severe first.
fn cluster_findings<'a>(app: &'a App, names: &[String]) -> Vec<&'a Finding> {
    let Some(report) = app.analysis_now() else {
        return Vec::new();
    };
    let mut findings: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| about_cluster(&f.subject, names))
        .collect();
    // Most severe first; the report's order otherwise.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings
}

/// The top diagnosis's timeline, times relative to the time shown.
fn render_timeline(app: &App, now: u64, area: Rect, buf: &mut Buffer) {
    if area.height < 3 {
        return;
    }
    let Some(top) = app.analysis_now().and_then(|r| r.diagnoses.first()) else {
        return;
    };
    let block = Block::bordered().title(Span::styled(
        format!(" timeline · {} ", fit(&top.title, 160).trim_end()),
        bold(),
    ));
    let inner = block.inner(area);
    block.render(area, buf);
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let lines: Vec<Line> = top
        .timeline
        .iter()
        .map(|moment| {
            let at = u64::try_from(moment.at_ns).unwrap_or(0);
            let relative = moment.at_ns.saturating_sub(now) as f64 / 1e9;
            Line::from(vec![
                Span::styled(format!("{} {relative:>+7.1}s  ", clock(at)), dim()),
                Span::raw(fit(&moment.what, 400).trim_end().to_owned()),
            ])
        })
        .collect();
    if lines.is_empty() {
        Paragraph::new("no timeline")
            .style(dim())
            .render(inner, buf);
    } else {
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .render(inner, buf);
    }
}

fn render_findings(app: &App, names: &[String], area: Rect, buf: &mut Buffer) {
    if area.height < 3 {
        return;
    }
    let block = Block::bordered().title(Span::styled(" cluster findings ", bold()));
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    if app.analysis_now().is_none() {
        Paragraph::new("not analysed yet")
            .style(dim())
            .render(inner, buf);
        return;
    }
    let findings = cluster_findings(app, names);
    if findings.is_empty() {
        Paragraph::new("nothing found about the nodes, their links or the quorum")
            .style(dim())
            .render(inner, buf);
        return;
    }
    let width = usize::from(inner.width);
    let height = usize::from(inner.height);
    let shown = findings.len().min(height);
    let mut lines: Vec<Line> = findings
        .iter()
        .take(if findings.len() > height {
            height.saturating_sub(1)
        } else {
            shown
        })
        .map(|f| {
            let level = severity_level(f.severity);
            let tag = match f.severity {
                Severity::Info => "info",
                _ => level_tag(level),
            };
            let style = if f.severity == Severity::Info {
                dim()
            } else {
                level_style(level)
            };
            Line::from(vec![
                Span::styled(format!("{tag:<4} "), style),
                Span::raw(
                    fit(&f.summary, width.saturating_sub(5))
                        .trim_end()
                        .to_owned(),
                ),
            ])
        })
        .collect();
    if findings.len() > height {
        lines.push(Line::styled(
            format!(
                "… {} more in the diagnoses view",
                findings.len() - lines.len()
            ),
            dim(),
        ));
    }
    Paragraph::new(lines).render(inner, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_their_numbers() {
        let mut names = vec!["node-10", "node-2", "node-1", "alpha"];
        names.sort_by(|a, b| natural(a, b));
        assert_eq!(names, ["alpha", "node-1", "node-2", "node-10"]);
        // A number too long for any integer still sorts without a panic.
        assert_eq!(
            natural("n-99999999999999999999999999999999999999999", "n-1"),
            Ordering::Greater
        );
    }

    #[test]
    fn narrow_tables_drop_figures_before_the_health() {
        let columns = vec![
            col("node", 10, false),
            col("role", 9, false),
            Column {
                header: "health",
                width: None,
                right: false,
            },
            col("commit", 8, true),
            col("lag", 7, true),
        ];
        assert_eq!(column_widths(&columns, 80), [10, 9, 41, 8, 7]);
        assert_eq!(column_widths(&columns, 40), [10, 9, 18, 0, 0]);
        assert!(column_widths(&columns, 0).iter().all(|&w| w <= 10));
        assert_eq!(cut_left("node-12", 4), "…-12");
        assert_eq!(centre("×", 4), " ×  ");
    }
}
