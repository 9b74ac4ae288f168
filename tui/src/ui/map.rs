//! The service map: who calls whom, how often, how badly, with each service's health.
//!
//! ```text
//!  the analysis worker (analysis.rs, off the UI loop): the window's SpanTable
//!      ──► Calls (analyzers: caller side, sidecars looked through)
//!      ──► CallGraph: edges caller → callee { calls, errors, retries, p99 } (calls.rs)
//!  analysis at the time shown ──► findings ──► worst severity per service and per edge
//!
//!  caller → callee             svc   calls  err   amp   p99   call
//!  load                        ok
//!  └─► gateway                 CRIT   176   37%    -   12ms   CRIT
//!      └─► faultline-node      CRIT   294   22%    -    3ms   CRIT
//!  worker                      CRIT
//!  ├─► faultline-node          CRIT    40    0%    -    2ms
//!  └─► payments                CRIT    51   96% 4.90× 303ms   CRIT
//! ```
//!
//! Callers on the left, callees indented under them (a tree from the services nobody
//! calls); a service already drawn is not expanded again (`↑`). The graph is computed
//! with each analysis, so a frame only draws it, however many spans are held.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use faultline_analyzers::report::Report;
use faultline_analyzers::{Finding, Severity, Subject};
use faultline_dashboards::Level;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::overview::severity_level;
use super::{bold, count, dim, duration, fit, fit_right, level_style, level_tag};
use crate::app::App;
use crate::calls::CallGraph;
use crate::topology::NODE_SERVICE;

/// Rows of the tree at most (a service graph wider than this is cut).
const MAX_ROWS: usize = 500;

/// A service's health: the worst finding involving it (info counts as healthy).
#[derive(Debug, Clone, Copy)]
struct Health<'a> {
    severity: Option<Severity>,
    finding: Option<&'a Finding>,
}

/// Whether `finding` is about `service`: named by it, or about one of the nodes that
/// run the node service.
fn involves(finding: &Finding, service: &str, nodes: &BTreeSet<&str>) -> bool {
    if finding.subject.involves(service) {
        return true;
    }
    service == NODE_SERVICE
        && match &finding.subject {
            Subject::Node(n) => nodes.contains(n.as_str()),
            Subject::Nodes(ns) => ns.iter().any(|n| nodes.contains(n.as_str())),
            _ => false,
        }
}

/// The findings (warning and above) that involve `service`, worst first; among equals,
/// those about the service itself before those about its calls.
fn findings_about<'a>(
    report: &'a Report,
    service: &str,
    nodes: &BTreeSet<&str>,
) -> Vec<&'a Finding> {
    let mut found: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info && involves(f, service, nodes))
        .collect();
    found.sort_by_key(|f| {
        (
            std::cmp::Reverse(f.severity),
            matches!(f.subject, Subject::Edge(..)),
        )
    });
    found
}

fn health<'a>(report: Option<&'a Report>, service: &str, nodes: &BTreeSet<&str>) -> Health<'a> {
    let Some(report) = report else {
        return Health {
            severity: None,
            finding: None,
        };
    };
    let finding = findings_about(report, service, nodes).into_iter().next();
    Health {
        severity: Some(finding.map_or(Severity::Info, |f| f.severity)),
        finding,
    }
}

fn edge_severity(report: Option<&Report>, caller: &str, callee: &str) -> Option<Severity> {
    report?
        .findings
        .iter()
        .filter(|f| matches!(&f.subject, Subject::Edge(a, b) if a == caller && b == callee))
        .map(|f| f.severity)
        .max()
}

/// A severity as the views write it: `ok`, `WARN`, `CRIT`; `-` with no analysis.
fn tag(severity: Option<Severity>) -> (&'static str, Style) {
    match severity {
        None => ("-", dim()),
        Some(s) => {
            let level = severity_level(s);
            (level_tag(level), level_style(level))
        }
    }
}

/// One row of the tree: a service, under the caller it is drawn under.
struct TreeRow {
    /// `├─► ` / `└─► ` / `│   ` prefixes.
    prefix: String,
    service: String,
    /// The edge it was reached by (caller, callee).
    via: Option<(String, String)>,
    /// Already drawn above: not expanded again.
    repeated: bool,
}

/// The services nobody calls first (busiest first), then any left in cycles.
fn roots(graph: &CallGraph, services: &BTreeSet<String>) -> Vec<String> {
    let callees: BTreeSet<&str> = graph.edges.keys().map(|(_, b)| b.as_str()).collect();
    let mut out_calls: HashMap<&str, u64> = HashMap::new();
    for ((a, _), edge) in &graph.edges {
        *out_calls.entry(a.as_str()).or_default() += edge.calls;
    }
    let mut roots: Vec<&String> = services
        .iter()
        .filter(|s| !callees.contains(s.as_str()))
        .collect();
    roots.sort_by_key(|s| std::cmp::Reverse(out_calls.get(s.as_str()).copied().unwrap_or(0)));
    let mut roots: Vec<String> = roots.into_iter().cloned().collect();
    // Callers only reachable around a cycle: start from the busiest of them.
    let mut rest: Vec<(&str, u64)> = out_calls
        .iter()
        .map(|(s, n)| (*s, *n))
        .filter(|(s, _)| !roots.iter().any(|r| r == s))
        .collect();
    rest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    roots.extend(rest.into_iter().map(|(s, _)| s.to_owned()));
    roots
}

fn tree(graph: &CallGraph, services: &BTreeSet<String>) -> Vec<TreeRow> {
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in graph.edges.keys() {
        if a != b {
            children.entry(a.as_str()).or_default().push(b.as_str());
        }
    }
    let mut rows = Vec::new();
    let mut drawn: BTreeSet<String> = BTreeSet::new();
    for root in roots(graph, services) {
        if drawn.contains(&root) {
            continue;
        }
        // Depth-first, iteratively: (service, via, prefix of its row, prefix of its children).
        let mut stack = vec![(root, None::<(String, String)>, String::new(), String::new())];
        while let Some((service, via, prefix, child_prefix)) = stack.pop() {
            if rows.len() >= MAX_ROWS {
                return rows;
            }
            let repeated = !drawn.insert(service.clone());
            let next: Vec<&str> = if repeated {
                Vec::new()
            } else {
                children.get(service.as_str()).cloned().unwrap_or_default()
            };
            for (i, child) in next.iter().enumerate().rev() {
                let last = i + 1 == next.len();
                stack.push((
                    (*child).to_owned(),
                    Some((service.clone(), (*child).to_owned())),
                    format!("{child_prefix}{}", if last { "└─► " } else { "├─► " }),
                    format!("{child_prefix}{}", if last { "    " } else { "│   " }),
                ));
            }
            rows.push(TreeRow {
                prefix,
                service,
                via,
                repeated,
            });
        }
    }
    rows
}

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let empty = CallGraph::default();
    let graph = app.calls_now().map_or(&empty, |g| &**g);
    let report = app.analysis_now().map(|r| &**r);
    let nodes: BTreeSet<&str> = app.topology.nodes.keys().map(String::as_str).collect();
    let mut services: BTreeSet<String> = graph
        .edges
        .keys()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    services.extend(report.map(|r| r.services.clone()).unwrap_or_default());
    for proxy in &graph.proxies {
        services.remove(proxy);
    }
    let rows = tree(graph, &services);
    let window = match graph.span_ns {
        Some(span) => format!(
            " calls · last {:.0} s, {} traces ",
            span as f64 / 1e9,
            graph.traces
        ),
        None => " calls · analysing… ".to_owned(),
    };
    let tree_block = Block::bordered().title(Span::styled(window, bold()));
    // The tree as tall as it needs (header and legend included), the services below.
    let tree_h = u16::try_from(rows.len().max(1) + 4).unwrap_or(u16::MAX);
    let [tree_area, side_area] =
        Layout::vertical([Constraint::Max(tree_h), Constraint::Min(0)]).areas(area);
    let inner = tree_block.inner(tree_area);
    tree_block.render(tree_area, buf);
    render_tree(graph, &rows, report, &nodes, inner, buf);
    // The services and why they are not healthy, in tree order.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let listed: Vec<&str> = rows
        .iter()
        .map(|r| r.service.as_str())
        .chain(services.iter().map(String::as_str))
        .filter(|s| seen.insert(s))
        .collect();
    render_services(&listed, &graph.proxies, report, &nodes, side_area, buf);
}

fn render_tree(
    graph: &CallGraph,
    rows: &[TreeRow],
    report: Option<&Report>,
    nodes: &BTreeSet<&str>,
    area: Rect,
    buf: &mut Buffer,
) {
    if area.is_empty() {
        return;
    }
    if rows.is_empty() {
        Paragraph::new(
            "No calls between services yet: they come from the spans' parent/child links.",
        )
        .style(dim())
        .wrap(Wrap { trim: true })
        .render(area, buf);
        return;
    }
    let width = usize::from(area.width);
    // svc, calls, err, amp, p99, call: right-aligned figures after the tree.
    let figures: [(&str, usize); 6] = [
        ("svc", 4),
        ("calls", 6),
        ("err", 5),
        ("amp", 6),
        ("p99", 8),
        ("call", 5),
    ];
    let figures_w = |shown: usize| -> usize { figures[..shown].iter().map(|(_, w)| w + 1).sum() };
    // On a narrow screen the tree keeps at least 16 columns; figures are cut from the right.
    let mut shown = figures.len();
    while shown > 1 && width < 16 + figures_w(shown) {
        shown -= 1;
    }
    // The names column as wide as the widest row (figures stay near their names).
    let widest = rows
        .iter()
        .map(|r| r.prefix.chars().count() + r.service.chars().count() + 2)
        .max()
        .unwrap_or(0)
        .max("caller → callee".len() + 2);
    let tree_w = width.saturating_sub(figures_w(shown)).clamp(1, widest);
    let mut header = vec![Span::styled(fit("caller → callee", tree_w), dim())];
    for (name, w) in &figures[..shown] {
        header.push(Span::styled(format!(" {name:>w$}"), dim()));
    }
    let mut lines = vec![Line::from(header)];
    // Header and legend take a row each when there is room for a row of the tree too.
    let legend = area.height >= 3;
    let height = usize::from(area.height).saturating_sub(1 + usize::from(legend));
    let cut = rows.len() > height;
    for row in rows.iter().take(if cut {
        height.saturating_sub(1)
    } else {
        height
    }) {
        let (svc, svc_style) = tag(health(report, &row.service, nodes).severity);
        let mut name = format!("{}{}", row.prefix, row.service);
        if row.repeated {
            name.push_str(" ↑");
        }
        // The whole cell cut to width, then its tree prefix dim and the name plain.
        let cell = fit(&name, tree_w);
        let prefix_len = row.prefix.chars().count().min(tree_w);
        let mut spans = vec![
            Span::styled(cell.chars().take(prefix_len).collect::<String>(), dim()),
            Span::styled(
                cell.chars().skip(prefix_len).collect::<String>(),
                if row.via.is_none() {
                    bold()
                } else {
                    Style::new()
                },
            ),
        ];
        let edge = row
            .via
            .as_ref()
            .and_then(|key| graph.edges.get(key).map(|e| (key, e)));
        let mut cells: Vec<(String, Style)> = vec![(svc.to_owned(), svc_style)];
        match edge {
            Some(((caller, callee), e)) => {
                let error_share = share(e.errors, e.calls);
                cells.push((count(e.calls), Style::new()));
                cells.push((
                    error_share.clone(),
                    if e.errors > 0 {
                        level_style(Level::Warning)
                    } else {
                        Style::new()
                    },
                ));
                let first = e.calls.saturating_sub(e.retries);
                cells.push((
                    if e.retries > 0 && first > 0 {
                        format!("{:.2}×", e.calls as f64 / first as f64)
                    } else if e.retries > 0 {
                        "retry".to_owned()
                    } else {
                        "-".to_owned()
                    },
                    Style::new(),
                ));
                cells.push((
                    e.p99_ns().map_or_else(|| "-".to_owned(), duration),
                    Style::new(),
                ));
                let (t, s) = match edge_severity(report, caller, callee) {
                    Some(severity) => tag(Some(severity)),
                    None if report.is_some() => ("", Style::new()),
                    None => ("-", dim()),
                };
                cells.push((t.to_owned(), s));
            }
            None => cells.extend(std::iter::repeat_n((String::new(), Style::new()), 5)),
        }
        for ((text, style), (_, w)) in cells.iter().zip(&figures[..shown]) {
            spans.push(Span::styled(format!(" {}", fit_right(text, *w)), *style));
        }
        lines.push(Line::from(spans));
    }
    if cut {
        lines.push(Line::styled(
            format!("… {} more rows", rows.len() - (lines.len() - 1)),
            dim(),
        ));
    }
    if legend {
        lines.push(Line::styled(
            "svc/call: worst finding · err: failed calls · amp: attempts per call · ↑: above",
            dim(),
        ));
    }
    Paragraph::new(lines).render(area, buf);
}

/// `n` of `total` as a percentage; `-` for nothing.
fn share(n: u64, total: u64) -> String {
    if total == 0 {
        "-".to_owned()
    } else {
        format!("{:.0}%", 100.0 * n as f64 / total as f64)
    }
}

fn render_services(
    listed: &[&str],
    proxies: &[String],
    report: Option<&Report>,
    nodes: &BTreeSet<&str>,
    area: Rect,
    buf: &mut Buffer,
) {
    if area.height < 3 {
        return;
    }
    let block = Block::bordered().title(Span::styled(" services · worst finding ", bold()));
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    let width = usize::from(inner.width);
    let name_w = listed
        .iter()
        .chain(
            proxies
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .iter(),
        )
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .min(24);
    let mut lines: Vec<Line> = Vec::new();
    if listed.is_empty() && proxies.is_empty() {
        lines.push(Line::styled("no services seen yet", dim()));
    }
    // Unhealthy first, then the rest, in tree order.
    let mut ordered: Vec<(&str, Health, Vec<&Finding>)> = listed
        .iter()
        .map(|s| {
            let all = report
                .map(|r| findings_about(r, s, nodes))
                .unwrap_or_default();
            (*s, health(report, s, nodes), all)
        })
        .collect();
    ordered.sort_by_key(|(_, h, _)| std::cmp::Reverse(h.severity));
    // Every finding under its service when they all fit; else the worst one a line.
    let expanded: usize = ordered.iter().map(|(_, _, all)| all.len().max(1) + 1).sum();
    let expand = expanded + proxies.len() <= usize::from(inner.height);
    for (service, h, all) in &ordered {
        let (t, style) = tag(h.severity);
        let head = format!("{} ", fit(service, name_w));
        let mut spans = vec![
            Span::styled(format!("{t:<4} "), style),
            Span::styled(head.clone(), bold()),
        ];
        if expand && !all.is_empty() {
            lines.push(Line::from(spans));
            for f in all {
                let (t, style) = tag(Some(f.severity));
                lines.push(Line::from(vec![
                    Span::raw("     "),
                    Span::styled(format!("{t:<4} "), style),
                    Span::raw(
                        fit(&f.summary, width.saturating_sub(10))
                            .trim_end()
                            .to_owned(),
                    ),
                ]));
            }
            continue;
        }
        let more = all.len().saturating_sub(1);
        let reason = match (h.finding, report) {
            (Some(f), _) if more > 0 => format!("(+{more}) {}", f.summary),
            (Some(f), _) => f.summary.clone(),
            (None, Some(_)) => "no finding".to_owned(),
            (None, None) => "not analysed yet".to_owned(),
        };
        let room = width.saturating_sub(5 + head.chars().count());
        spans.push(Span::styled(
            fit(&reason, room).trim_end().to_owned(),
            if h.finding.is_some() {
                Style::new()
            } else {
                dim()
            },
        ));
        lines.push(Line::from(spans));
    }
    for proxy in proxies {
        let (t, style) = tag(health(report, proxy, nodes).severity);
        lines.push(Line::from(vec![
            Span::styled(format!("{t:<4} "), style),
            Span::styled(format!("{} ", fit(proxy, name_w)), bold()),
            Span::styled(
                "sidecar proxy: looked through, its hops are inside the calls",
                dim(),
            ),
        ]));
    }
    Paragraph::new(lines).render(inner, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::Edge;

    fn graph(edges: &[(&str, &str)]) -> CallGraph {
        let mut graph = CallGraph::default();
        for (a, b) in edges {
            graph.edges.insert(
                ((*a).to_owned(), (*b).to_owned()),
                Edge {
                    calls: 1,
                    ..Edge::default()
                },
            );
        }
        graph
    }

    #[test]
    fn the_tree_starts_at_services_nobody_calls_and_survives_cycles() {
        let g = graph(&[
            ("load", "gateway"),
            ("gateway", "node"),
            ("node", "gateway"),
            ("a", "b"),
            ("b", "a"),
        ]);
        let services: BTreeSet<String> = ["load", "gateway", "node", "a", "b", "idle"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let rows = tree(&g, &services);
        let text: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{}{}{}",
                    r.prefix,
                    r.service,
                    if r.repeated { " ↑" } else { "" }
                )
            })
            .collect();
        assert_eq!(
            text,
            [
                "load",
                "└─► gateway",
                "    └─► node",
                "        └─► gateway ↑",
                "idle",
                "a",
                "└─► b",
                "    └─► a ↑",
            ]
        );
    }

    #[test]
    fn p99_of_nothing_is_nothing() {
        assert_eq!(Edge::default().p99_ns(), None);
        let edge = Edge {
            durations_ns: (1..=100).collect(),
            ..Edge::default()
        };
        assert_eq!(edge.p99_ns(), Some(99));
        assert_eq!(share(1, 0), "-");
    }
}
