//! The traces view: the trace list, or one trace's waterfall with its critical path
//! and the selected span's details.
//!
//! ```text
//!  no trace open:  App::visible_traces() ─► only the rows on screen are formatted
//!  a trace open:   App::waterfall() ─► critical::critical_path ─► ◆ rows
//!                                  └─► span_selected ─► details (beside at ≥ 120 columns, below otherwise)
//! ```
//!
//! The list can hold hundreds of thousands of traces (a million spans): per frame only
//! `visible_traces()` walks them; formatting is limited to the rows that fit.

use faultline_model::{Span, StatusCode};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span as Part};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Widget, Wrap};

use super::{bold, clock, dim, duration, scroll, selected_style, short};
use crate::app::App;
use crate::critical::critical_path;
use crate::store::{TraceSummary, is_error};

/// The mark of a span on the critical path, in the waterfall and its legend.
const CRITICAL: &str = "◆";
/// Attributes and events shown in the details pane (the rest are counted).
const MAX_ATTRIBUTES: usize = 40;
const MAX_EVENTS: usize = 20;
/// Characters of an attribute value shown.
const MAX_VALUE: usize = 160;
/// Indentation stops deepening past this depth, so deep traces keep their names.
const MAX_INDENT: usize = 12;
/// From this width the span details sit beside the waterfall.
const SIDE_BY_SIDE: u16 = 120;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    match app.traces.open {
        None => render_list(app, area, buf),
        Some(_) => render_trace(app, area, buf),
    }
}

/// A duration that fits its 8-cell column: hours past 10 000 s (bad clocks, orphans).
fn column_duration(ns: u64) -> String {
    if ns >= 10_000_000_000_000 {
        format!("{:.0}h", ns as f64 / 3.6e12)
    } else {
        duration(ns)
    }
}

fn error_style() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

fn render_list(app: &App, area: Rect, buf: &mut Buffer) {
    let traces = app.visible_traces();
    let filter = app.traces.filter.trim();
    let title = if filter.is_empty() {
        format!(" traces · {} (newest first) · / filters ", traces.len())
    } else {
        format!(
            " traces · {} match /{} · Esc clears ",
            traces.len(),
            short(&filter, 40)
        )
    };
    let block = Block::bordered().title(Line::styled(title, bold()));
    let inner = block.inner(area);
    block.render(area, buf);
    if traces.is_empty() {
        let text = if !filter.is_empty() {
            format!(
                "No trace matches /{}. Filter terms: error, svc:NAME, a trace id prefix, a correlation id. Esc clears the filter.",
                short(&filter, 60)
            )
        } else if app.store.is_empty() {
            "No traces yet: spans appear here as they arrive.".to_owned()
        } else {
            "No trace started by the time shown (L returns to live).".to_owned()
        };
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .render(inner, buf);
        return;
    }
    // Wide terminals show whole correlation ids and longer trace id prefixes.
    let wide = inner.width >= SIDE_BY_SIDE;
    let (correlation_width, trace_width) = if wide { (36, 16) } else { (10, 8) };
    let widths = [
        Constraint::Length(1),
        Constraint::Length(12),
        Constraint::Fill(1),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(correlation_width),
        Constraint::Length(trace_width),
    ];
    let header = Row::new([
        Line::raw(""),
        Line::raw("start"),
        Line::raw("root span: service operation"),
        Line::raw("duration").right_aligned(),
        Line::raw("spans").right_aligned(),
        Line::raw("errors"),
        Line::raw("correlation"),
        Line::raw("trace"),
    ])
    .style(bold());
    let selected = app.traces.selected.min(traces.len() - 1);
    let height = usize::from(inner.height.saturating_sub(1));
    let rows = scroll(selected, traces.len(), height).map(|index| {
        trace_row(
            traces[index],
            index == selected,
            correlation_width,
            trace_width,
        )
    });
    Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .render(inner, buf);
}

fn trace_row(
    trace: &TraceSummary,
    selected: bool,
    correlation_width: u16,
    trace_width: u16,
) -> Row<'static> {
    let root = match &trace.root {
        Some((service, name)) => Line::from(vec![
            Part::styled(short(service, 60), bold()),
            Part::raw(" "),
            Part::raw(short(name, 120)),
        ]),
        None => {
            let service = trace
                .services
                .first()
                .map_or(String::new(), |s| short(s, 60));
            Line::from(vec![
                Part::raw(service),
                Part::styled(" (root span not received)", dim()),
            ])
        }
    };
    let errors = if trace.errors > 0 {
        Line::styled(format!("ERR {}", trace.errors), error_style())
    } else {
        Line::styled("-", dim())
    };
    let correlation = trace
        .correlation_id
        .as_deref()
        .map_or(String::new(), |c| short(&c, usize::from(correlation_width)));
    let id = trace.trace_id.to_string();
    let id = id.get(..usize::from(trace_width)).unwrap_or(&id).to_owned();
    let row = Row::new([
        Cell::from(if selected { "▶" } else { " " }),
        Cell::from(clock(trace.start_ns)),
        Cell::from(root),
        Cell::from(Line::raw(column_duration(trace.duration_ns())).right_aligned()),
        Cell::from(Line::raw(trace.span_count().to_string()).right_aligned()),
        Cell::from(errors),
        Cell::from(Line::styled(correlation, dim())),
        Cell::from(id),
    ]);
    if selected {
        row.style(selected_style())
    } else {
        row
    }
}

fn render_trace(app: &App, area: Rect, buf: &mut Buffer) {
    let rows = app.waterfall();
    let [waterfall, details] = if area.width >= SIDE_BY_SIDE {
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area)
    } else {
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area)
    };
    let Some(id) = app.traces.open else {
        return;
    };
    let mut title = format!(" trace {} ", short(&id, 8));
    if let Some(summary) = app.store.trace(&id) {
        if let Some((service, name)) = &summary.root {
            title.push_str(&format!("· {} {} ", short(service, 30), short(name, 40)));
        }
        title.push_str(&format!(
            "· {} · {} spans ",
            duration(summary.duration_ns()),
            summary.span_count()
        ));
    }
    let block = Block::bordered()
        .title(Line::styled(title, bold()))
        .title_bottom(format!(
            " {CRITICAL} critical path: the spans the end-to-end time waited on · Esc back "
        ));
    let inner = block.inner(waterfall);
    block.render(waterfall, buf);
    if rows.is_empty() {
        Paragraph::new(
            "This trace is no longer held: its spans were evicted past the span cap. Esc goes back to the list.",
        )
        .wrap(Wrap { trim: true })
        .render(inner, buf);
        return;
    }
    let selected = app.traces.span_selected.min(rows.len() - 1);
    render_waterfall(&rows, selected, inner, buf);
    render_details(&rows, selected, details, buf);
}

fn render_waterfall(rows: &[(usize, &Span)], selected: usize, area: Rect, buf: &mut Buffer) {
    let mut on_path = vec![false; rows.len()];
    for index in critical_path(rows) {
        on_path[index] = true;
    }
    let start = rows.iter().map(|(_, s)| s.start_ns).min().unwrap_or(0);
    let end = rows
        .iter()
        .map(|(_, s)| s.end_ns.max(s.start_ns))
        .max()
        .unwrap_or(start);
    let total = end.saturating_sub(start);
    // Marks, name, bar, duration, error: the bar takes two fifths of what the name
    // and bar share.
    let shared = area.width.saturating_sub(2 + 8 + 3 + 4);
    let bar_width = shared * 2 / 5;
    let widths = [
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(bar_width),
        Constraint::Length(8),
        Constraint::Length(3),
    ];
    let axis = format!(
        "0{:>width$}",
        duration(total),
        width = usize::from(bar_width.saturating_sub(1))
    );
    let header = Row::new([
        Line::raw(""),
        Line::raw("span · service"),
        Line::raw(axis),
        Line::raw("duration").right_aligned(),
        Line::raw("err"),
    ])
    .style(bold());
    let height = usize::from(area.height.saturating_sub(1));
    let visible = scroll(selected, rows.len(), height).map(|index| {
        let (depth, span) = rows[index];
        let critical = on_path[index];
        let name_style = if critical { bold() } else { Style::new() };
        let indent = "  ".repeat(depth.min(MAX_INDENT));
        let name = Line::from(vec![
            Part::raw(indent),
            Part::styled(short(&span.name, 120), name_style),
            Part::raw(" "),
            Part::styled(short(&span.service_name(), 60), dim()),
        ]);
        let error = is_error(span);
        let bar_style = if error {
            Style::new().fg(Color::Red)
        } else if critical {
            Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Blue)
        };
        let marks = format!(
            "{}{}",
            if index == selected { "▶" } else { " " },
            if critical { CRITICAL } else { " " }
        );
        let row = Row::new([
            Cell::from(marks),
            Cell::from(name),
            Cell::from(Line::styled(
                bar(span, start, total, usize::from(bar_width), critical),
                bar_style,
            )),
            Cell::from(Line::raw(column_duration(span.duration_ns())).right_aligned()),
            Cell::from(if error {
                Line::styled("ERR", error_style())
            } else {
                Line::raw("")
            }),
        ]);
        if index == selected {
            row.style(selected_style())
        } else {
            row
        }
    });
    Table::new(visible, widths)
        .header(header)
        .column_spacing(1)
        .render(area, buf);
}

/// A span's place in the trace as a bar `width` cells wide: where it starts and how
/// long it lasts, scaled to the trace (at least one cell, so instant spans show).
fn bar(span: &Span, start: u64, total: u64, width: usize, critical: bool) -> String {
    if width == 0 {
        return String::new();
    }
    let scale = |ns: u64| -> usize {
        if total == 0 {
            0
        } else {
            // u128: ns × width overflows u64 for traces longer than a few minutes.
            (u128::from(ns) * width as u128 / u128::from(total)) as usize
        }
    };
    let from = scale(span.start_ns.saturating_sub(start)).min(width - 1);
    let to = scale(span.end_ns.max(span.start_ns).saturating_sub(start)).clamp(from + 1, width);
    let fill = if critical { '█' } else { '▆' };
    (0..width)
        .map(|cell| {
            if (from..to).contains(&cell) {
                fill
            } else {
                ' '
            }
        })
        .collect()
}

fn render_details(rows: &[(usize, &Span)], selected: usize, area: Rect, buf: &mut Buffer) {
    let Some(&(_, span)) = rows.get(selected) else {
        return;
    };
    let trace_start = rows
        .iter()
        .map(|(_, s)| s.start_ns)
        .min()
        .unwrap_or(span.start_ns);
    // Compact: identity, status and times in four lines, so attributes show at 80×24.
    let label = |text: &'static str| Part::styled(text, dim());
    let mut lines = vec![
        Line::styled(short(&span.name, 200), bold()),
        Line::from(
            [
                vec![
                    Part::raw(short(&span.service_name(), 80)),
                    label(" · "),
                    Part::raw(span.kind.as_str()),
                    label(" · status "),
                ],
                status(span),
            ]
            .concat(),
        ),
        Line::from(vec![
            label("span "),
            Part::raw(span.span_id.to_string()),
            label(" · parent "),
            Part::raw(
                span.parent_span_id
                    .map_or("none (the root)".to_owned(), |p| p.to_string()),
            ),
        ]),
    ];
    let mut times = vec![
        label("start "),
        Part::raw(format!(
            "{} (+{})",
            clock(span.start_ns),
            duration(span.start_ns.saturating_sub(trace_start))
        )),
        label(" · end "),
        Part::raw(clock(span.end_ns)),
        label(" · "),
    ];
    if span.end_ns < span.start_ns {
        times.push(Part::styled(
            format!(
                "ends {} before it starts (clocks disagree)",
                duration(span.start_ns - span.end_ns)
            ),
            Style::new().fg(Color::Yellow),
        ));
    } else {
        times.push(Part::styled(duration(span.duration_ns()), bold()));
    }
    lines.push(Line::from(times));
    lines.push(Line::styled(
        format!("attributes ({})", span.attributes.len()),
        bold(),
    ));
    for kv in span.attributes.iter().take(MAX_ATTRIBUTES) {
        lines.push(Line::from(vec![
            Part::raw("  "),
            Part::styled(short(&kv.key, 80), dim()),
            Part::raw(" = "),
            Part::raw(short(&kv.value, MAX_VALUE)),
        ]));
    }
    more(&mut lines, span.attributes.len(), MAX_ATTRIBUTES);
    if !span.events.is_empty() {
        lines.push(Line::styled(
            format!("events ({})", span.events.len()),
            bold(),
        ));
        for event in span.events.iter().take(MAX_EVENTS) {
            let mut parts = vec![
                Part::raw(format!(
                    "  +{} ",
                    duration(event.time_ns.saturating_sub(span.start_ns))
                )),
                Part::raw(short(&event.name, 80)),
            ];
            for kv in event.attributes.iter().take(4) {
                parts.push(Part::styled(format!(" {}=", short(&kv.key, 40)), dim()));
                parts.push(Part::raw(short(&kv.value, 80)));
            }
            lines.push(Line::from(parts));
        }
        more(&mut lines, span.events.len(), MAX_EVENTS);
    }
    let dropped = [
        (span.links.len() as u64, "links"),
        (
            u64::from(span.dropped_attributes_count),
            "attributes dropped",
        ),
        (u64::from(span.dropped_events_count), "events dropped"),
    ];
    let dropped: Vec<String> = dropped
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    if !dropped.is_empty() {
        lines.push(Line::styled(dropped.join(" · "), dim()));
    }
    lines.push(Line::from(vec![
        label("trace "),
        Part::raw(span.trace_id.to_string()),
    ]));
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(Line::styled(" span details · ↑↓ select ", bold())))
        .render(area, buf);
}

fn status(span: &Span) -> Vec<Part<'static>> {
    let (word, style) = match span.status.code {
        StatusCode::Error => ("ERROR", error_style()),
        StatusCode::Ok => ("ok", Style::new()),
        StatusCode::Unset => ("unset", Style::new()),
    };
    let mut parts = vec![Part::styled(word, style)];
    if !span.status.message.is_empty() {
        parts.push(Part::raw(format!(": {}", short(&span.status.message, 200))));
    }
    if span.status.code != StatusCode::Error && is_error(span) {
        parts.push(Part::styled(" · ERR: an HTTP 5xx answer", error_style()));
    }
    parts
}

fn more(lines: &mut Vec<Line<'static>>, len: usize, shown: usize) {
    if len > shown {
        lines.push(Line::styled(format!("  … {} more", len - shown), dim()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_dashboards::Profile;
    use faultline_model::{Event, KeyValue, Resource, SpanId, TraceId, Value};
    use ratatui::buffer::Buffer;

    use super::*;
    use crate::app::{Action, SourceKind, View};

    fn span(id: u8, parent: Option<u8>, service: &str, start: u64, end: u64) -> Span {
        let mut span = Span::new(TraceId([7; 16]), SpanId([id; 8]), format!("op{id}"));
        span.parent_span_id = parent.map(|p| SpanId([p; 8]));
        span.resource = Arc::new(Resource::with_service(service));
        span.start_ns = start;
        span.end_ns = end;
        span
    }

    /// Drawn straight into a buffer: works at zero sizes, which `TestBackend` refuses.
    fn draw(app: &App, width: u16, height: u16) {
        let area = ratatui::layout::Rect::new(0, 0, width, height);
        let mut buf = Buffer::empty(area);
        ratatui::widgets::Widget::render(app, area, &mut buf);
    }

    fn text(app: &App, width: u16, height: u16) -> String {
        crate::ui::drawn(app, width, height)
    }

    /// A trace with the odd data the view must survive: an end before its start, an
    /// instant span, a huge attribute, non-ASCII and control characters, an orphan.
    fn odd_app() -> App {
        let mut app = App::new(SourceKind::Demo, Profile::Demo, 1000);
        let mut root = span(1, None, "gâteway-東京", 1_000, 9_000);
        root.attributes
            .insert("huge", Value::Str("x".repeat(5_000_000)));
        root.attributes.insert("line\nbreak", "a\tb\u{1b}[31mred");
        root.events.push(Event {
            time_ns: 500, // before the span starts
            name: "exception".to_owned(),
            attributes: [KeyValue::new("exception.message", "boom ✗")]
                .into_iter()
                .collect(),
            dropped_attributes_count: 0,
        });
        let backwards = span(2, Some(1), "db", 8_000, 2_000);
        let instant = span(3, Some(1), "db", 5_000, 5_000);
        let orphan = span(4, Some(99), "queue", 0, u64::MAX);
        app.update(Action::Spans(vec![root, backwards, instant, orphan]));
        app.update(Action::Show(View::Traces));
        app
    }

    #[test]
    fn an_empty_app_renders_at_any_size() {
        let mut app = App::new(SourceKind::Demo, Profile::Demo, 10);
        app.update(Action::Show(View::Traces));
        for (w, h) in [(0, 0), (1, 1), (20, 5), (80, 24)] {
            draw(&app, w, h);
        }
        assert!(text(&app, 80, 24).contains("No traces yet"));
        // Open with nothing held (an evicted trace).
        app.traces.open = Some(TraceId([1; 16]));
        for (w, h) in [(0, 0), (20, 5), (80, 24), (160, 48)] {
            draw(&app, w, h);
        }
        assert!(text(&app, 80, 24).contains("no longer held"));
    }

    #[test]
    fn odd_spans_render_in_the_list_and_the_waterfall_at_any_size() {
        let mut app = odd_app();
        let list = text(&app, 80, 24);
        assert!(list.contains("gâteway-東京"), "{list}");
        app.update(Action::Enter);
        assert!(app.traces.open.is_some());
        for (w, h) in [(0, 0), (1, 1), (20, 5), (30, 8), (80, 24), (160, 48)] {
            draw(&app, w, h);
        }
        // Every row, the selected one's details included.
        for _ in 0..4 {
            text(&app, 80, 24);
            text(&app, 160, 48);
            app.update(Action::Down);
        }
        // The orphan starts first, so the root is the second row.
        app.update(Action::Top);
        app.update(Action::Down);
        let wide = text(&app, 160, 48);
        assert!(wide.contains("xxxxxxxx"), "{wide}");
        assert!(wide.contains('…'), "the huge attribute is cut: {wide}");
        assert!(wide.contains("exception"), "{wide}");
        // The root is on the critical path, and the legend says what the mark means.
        assert!(wide.contains("▶◆ op1"), "{wide}");
        assert!(wide.contains("critical path"), "{wide}");
        // A duration too long for its column is written in hours, not cut.
        assert!(wide.contains("5124096h"), "{wide}");
    }

    #[test]
    fn bars_are_scaled_to_the_trace_and_never_empty() {
        let s = span(1, None, "a", 150, 200);
        assert_eq!(bar(&s, 100, 100, 10, false), "     ▆▆▆▆▆");
        assert_eq!(bar(&s, 100, 100, 10, true), "     █████");
        // Instant, backwards, zero-length trace, zero width.
        assert_eq!(
            bar(&span(1, None, "a", 100, 100), 100, 100, 4, false),
            "▆   "
        );
        assert_eq!(
            bar(&span(1, None, "a", 150, 120), 100, 100, 4, false),
            "  ▆ "
        );
        assert_eq!(bar(&s, 150, 0, 3, false), "▆  ");
        assert_eq!(bar(&s, 100, 100, 0, false), "");
        // A span reaching the end of a huge trace does not overflow.
        let long = span(1, None, "a", 0, u64::MAX);
        assert_eq!(bar(&long, 0, u64::MAX, 3, false), "▆▆▆");
    }

    #[test]
    fn short_cuts_long_text_with_an_ellipsis_and_blanks_control_characters() {
        assert_eq!(short(&"abc", 3), "abc");
        assert_eq!(short(&"abcd", 3), "ab…");
        assert_eq!(short(&"東京駅前", 3), "東京…");
        assert_eq!(short(&"a\nb", 5), "a b");
        assert_eq!(short(&"abc", 0), "");
    }
}
