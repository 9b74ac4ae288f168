//! The signals view: one panel per [`Signal`], its value at the time shown, its level
//! (dashboards' thresholds) in words and colour, and a sparkline of the seconds up to it.
//!
//! ```text
//!  Signals::value(signal, now_s) ──► value, level (App::level) ──► "42.2 ms ok"
//!  Signals::series(signal, now_s, width) ──► bars (None: a gap, "no data")
//!  wide   (≥ 100×24): 2 columns × 3 rows of panels, sparklines as tall as they fit
//!  narrow: one line per signal (title, value, level, thresholds, one-line bars),
//!          then a sentence for each signal over a line
//! ```

use faultline_dashboards::Level;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline, SparklineBar, Widget, Wrap};

use super::{bold, dim, fit, fit_right, level_style, level_tag};
use crate::app::App;
use crate::signals::Signal;

/// The one-line bar glyphs, from a zero to the top of the scale.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The grid needs this much room; smaller bodies get the list.
const GRID_MIN: (u16, u16) = (100, 24);

/// One signal as the view shows it.
struct Row {
    title: String,
    unit: String,
    /// Warning and critical thresholds, when the dashboards define the panel.
    levels: Option<(f64, f64)>,
    value: Option<f64>,
    level: Level,
}

impl Row {
    fn new(app: &App, signal: Signal, now_s: i64) -> Row {
        let panel = app.dashboard.panel(signal.id());
        // The second shown may have just begun; fall back to the one before it so the
        // value does not blink to "no data" at each second's start.
        let value = app
            .signals
            .value(signal, now_s)
            .or_else(|| app.signals.value(signal, now_s.saturating_sub(1)))
            .filter(|v| v.is_finite());
        Row {
            title: panel.map_or_else(|| signal.id().to_owned(), |p| p.title.clone()),
            unit: panel.map_or_else(String::new, |p| p.unit.clone()),
            levels: panel.map(|p| {
                let levels = p.levels(app.profile);
                (levels.warning, levels.critical)
            }),
            value,
            level: value.map_or(Level::Ok, |v| app.level(signal, v)),
        }
    }

    fn value_text(&self) -> String {
        self.value
            .map_or_else(|| "no data".to_owned(), |v| with_unit(v, &self.unit))
    }

    fn value_style(&self) -> Style {
        if self.value.is_some() {
            level_style(self.level)
        } else {
            dim()
        }
    }

    fn level_text(&self) -> &'static str {
        if self.value.is_some() {
            level_tag(self.level)
        } else {
            "-"
        }
    }
}

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let now_s = i64::try_from(app.now_ns() / 1_000_000_000).unwrap_or(i64::MAX);
    if area.width >= GRID_MIN.0 && area.height >= GRID_MIN.1 {
        render_grid(app, now_s, area, buf);
    } else {
        render_list(app, now_s, area, buf);
    }
}

fn render_grid(app: &App, now_s: i64, area: Rect, buf: &mut Buffer) {
    let rows = Layout::vertical([Constraint::Ratio(1, 3); 3]).split(area);
    for (i, signal) in Signal::ALL.into_iter().enumerate() {
        let Some(&row_area) = rows.get(i / 2) else {
            continue;
        };
        let columns = Layout::horizontal([Constraint::Ratio(1, 2); 2]).split(row_area);
        if let Some(&cell) = columns.get(i % 2) {
            render_panel(app, signal, now_s, cell, buf);
        }
    }
}

/// One signal in a box: value and level, thresholds, peak, and a sparkline.
fn render_panel(app: &App, signal: Signal, now_s: i64, area: Rect, buf: &mut Buffer) {
    let row = Row::new(app, signal, now_s);
    let unit = if row.unit.is_empty() {
        String::new()
    } else {
        format!(" ({})", row.unit)
    };
    let block = Block::bordered()
        .title(Line::from(vec![
            Span::styled(format!(" {}", row.title), bold()),
            Span::raw(format!("{unit} ")),
        ]))
        .border_style(if row.value.is_some() && row.level != Level::Ok {
            level_style(row.level)
        } else {
            Style::new()
        });
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    let width = usize::from(inner.width);
    let series = app.signals.series(signal, now_s, width);
    let mut head = vec![Span::styled(row.value_text(), row.value_style())];
    if row.value.is_some() {
        head.push(Span::raw(" "));
        head.push(Span::styled(row.level_text(), row.value_style()));
    }
    if let Some((warning, critical)) = row.levels {
        head.push(Span::styled(
            format!(
                "   warn > {} · crit > {}",
                with_unit(warning, &row.unit),
                with_unit(critical, &row.unit)
            ),
            dim(),
        ));
    }
    let mut lines = vec![Line::from(head)];
    if inner.height >= 4 {
        lines.push(Line::styled(summary(app, signal, &row, &series), dim()));
    }
    let text_rows = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    Paragraph::new(lines).render(inner, buf);
    // The axis under the bars needs a row of its own; tiny panels go without.
    let axis = inner.height > text_rows + 1;
    let spark_height = inner.height.saturating_sub(text_rows + u16::from(axis));
    if spark_height == 0 {
        return;
    }
    let spark_area = Rect {
        y: inner.y + text_rows,
        height: spark_height,
        ..inner
    };
    let top = scale_top(&series, row.levels);
    let ticks = u64::from(spark_height) * 8;
    let bars: Vec<SparklineBar> = series
        .iter()
        .map(|v| match v {
            Some(v) if v.is_finite() => {
                let level = app.level(signal, *v);
                SparklineBar::from(Some(eighths(*v, top, ticks))).style(Some(level_style(level)))
            }
            _ => SparklineBar::from(None::<u64>),
        })
        .collect();
    Sparkline::default()
        .data(bars)
        .max(ticks)
        .render(spark_area, buf);
    if axis {
        let axis_area = Rect {
            y: spark_area.y + spark_height,
            height: 1,
            ..inner
        };
        let left = format!("-{}s", width.saturating_sub(1));
        let right = "now";
        let gap = width.saturating_sub(left.chars().count() + right.len());
        Paragraph::new(Line::styled(
            format!("{left}{}{right}", "─".repeat(gap)),
            dim(),
        ))
        .render(axis_area, buf);
    }
}

/// A line about the window: its peak, and how long the signal has been over a line.
fn summary(app: &App, signal: Signal, row: &Row, series: &[Option<f64>]) -> String {
    let peak = series
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(None, |p: Option<f64>, v| Some(p.map_or(v, |p| p.max(v))));
    let Some(peak) = peak else {
        return format!("no data in the last {} s", series.len());
    };
    let mut text = format!(
        "peak {} in the last {} s",
        with_unit(peak, &row.unit),
        series.len()
    );
    if let Some((seconds, level)) = over_a_line(app, signal, series) {
        text.push_str(&format!(" · {} for {seconds} s", level_tag(level)));
    }
    text
}

/// How many seconds up to the time shown the signal has been above warning, and the
/// worst level in that run (None when the newest value is not above warning).
fn over_a_line(app: &App, signal: Signal, series: &[Option<f64>]) -> Option<(usize, Level)> {
    let mut seconds = 0;
    let mut worst = Level::Ok;
    // The newest second may be empty (just begun): skip trailing gaps of one second.
    let trailing_gap = usize::from(series.last().is_some_and(Option::is_none));
    for value in series.iter().rev().skip(trailing_gap) {
        match value.map(|v| app.level(signal, v)) {
            Some(level) if level > Level::Ok => {
                seconds += 1;
                worst = worst.max(level);
            }
            _ => break,
        }
    }
    (seconds > 0).then_some((seconds, worst))
}

/// The value at the top of the bars: the window's peak, but never below the warning
/// line, so a quiet signal draws low bars instead of filling the box with noise.
fn scale_top(series: &[Option<f64>], levels: Option<(f64, f64)>) -> f64 {
    let peak = series
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let floor = levels.map_or(0.0, |(warning, _)| warning);
    let top = peak.max(floor);
    if top > 0.0 { top } else { 1.0 }
}

/// A value as eighths of `ticks` (the bars' full height), at least one so that a
/// zero still shows as data rather than as a gap.
fn eighths(value: f64, top: f64, ticks: u64) -> u64 {
    let share = (value / top).clamp(0.0, 1.0);
    ((share * ticks as f64).round() as u64).clamp(1, ticks.max(1))
}

/// One line per signal, then what is over a line.
fn render_list(app: &App, now_s: i64, area: Rect, buf: &mut Buffer) {
    let width = usize::from(area.width);
    let rows: Vec<(Signal, Row)> = Signal::ALL
        .into_iter()
        .map(|s| (s, Row::new(app, s, now_s)))
        .collect();
    let title_w = rows
        .iter()
        .map(|(_, r)| r.title.chars().count())
        .max()
        .unwrap_or(0)
        .min(20);
    const VALUE_W: usize = 10;
    const LEVEL_W: usize = 4;
    // Thresholds only when there is room for at least 10 s of bars beside them.
    let fixed = title_w + VALUE_W + LEVEL_W + 3;
    let levels_w = if width >= fixed + 14 + 10 { 14 } else { 0 };
    let bars_w = width.saturating_sub(fixed + levels_w + usize::from(levels_w > 0));
    let mut lines = Vec::with_capacity(rows.len() * 2 + 2);
    let mut header = format!(
        "{} {} {} ",
        fit("signal", title_w),
        fit("now", VALUE_W),
        fit("lvl", LEVEL_W)
    );
    if levels_w > 0 {
        header.push_str(&fit("warn / crit", levels_w));
        header.push(' ');
    }
    if bars_w > 0 {
        header.push_str(&fit(&format!("last {bars_w} s"), bars_w));
    }
    lines.push(Line::styled(header, dim()));
    for (signal, row) in &rows {
        let mut spans = vec![
            Span::raw(format!("{} ", fit(&row.title, title_w))),
            Span::styled(
                format!("{} ", fit_right(&row.value_text(), VALUE_W)),
                row.value_style(),
            ),
            Span::styled(
                format!("{} ", fit(row.level_text(), LEVEL_W)),
                row.value_style(),
            ),
        ];
        if levels_w > 0 {
            let text = row
                .levels
                .map_or_else(String::new, |(w, c)| format!("{}/{}", number(w), number(c)));
            spans.push(Span::styled(format!("{} ", fit(&text, levels_w)), dim()));
        }
        if bars_w > 0 {
            spans.extend(bar_line(app, *signal, row, now_s, bars_w));
        }
        lines.push(Line::from(spans));
    }
    // What is over a line, in words: the list's levels say it per signal; this says
    // for how long and how far.
    lines.push(Line::default());
    let mut over = 0;
    for (signal, row) in &rows {
        let series = app.signals.series(*signal, now_s, bars_w.max(60));
        if let (Some((seconds, level)), Some(value)) =
            (over_a_line(app, *signal, &series), row.value)
        {
            over += 1;
            let peak = series.iter().flatten().copied().fold(value, f64::max);
            lines.push(Line::from(vec![
                Span::styled(format!("{} ", level_tag(level)), level_style(level)),
                Span::raw(format!(
                    "{} {} for {seconds} s (peak {})",
                    row.title,
                    with_unit(value, &row.unit),
                    with_unit(peak, &row.unit)
                )),
            ]));
        }
    }
    if over == 0 {
        let text = if rows.iter().any(|(_, r)| r.value.is_some()) {
            "every signal is within its levels"
        } else {
            "no signals yet: they come from spans (and the cluster's /status when attached)"
        };
        lines.push(Line::styled(text, dim()));
    }
    if bars_w > 0 {
        lines.push(Line::default());
        lines.push(Line::styled(
            "bars: one per second up to the time shown, as high as the window's peak or the \
             warning line, whichever is higher; blank: no data",
            dim(),
        ));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(area, buf);
}

/// The series as one line of ▁…█, coloured by each second's level; gaps are blank.
fn bar_line(app: &App, signal: Signal, row: &Row, now_s: i64, width: usize) -> Vec<Span<'static>> {
    let series = app.signals.series(signal, now_s, width);
    let top = scale_top(&series, row.levels);
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut run = String::new();
    let mut run_style = Style::new();
    for value in &series {
        let (glyph, style) = match value {
            Some(v) if v.is_finite() => {
                let index = usize::try_from(eighths(*v, top, 8).saturating_sub(1)).unwrap_or(0);
                (
                    BARS[index.min(BARS.len() - 1)],
                    level_style(app.level(signal, *v)),
                )
            }
            _ => (' ', Style::new()),
        };
        if style != run_style && !run.is_empty() {
            spans.push(Span::styled(std::mem::take(&mut run), run_style));
        }
        run_style = style;
        run.push(glyph);
    }
    if !run.is_empty() {
        spans.push(Span::styled(run, run_style));
    }
    spans
}

/// A number with as many decimals as its size deserves, k/M past 10 000.
fn number(v: f64) -> String {
    if !v.is_finite() {
        return "?".to_owned();
    }
    let a = v.abs();
    if a >= 1e10 {
        format!("{v:.1e}")
    } else if a >= 1e7 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A number with its unit: `42.2 ms`, `16%`, `1.42×`.
fn with_unit(v: f64, unit: &str) -> String {
    match unit {
        "" => number(v),
        "%" | "×" => format!("{}{unit}", number(v)),
        _ => format!("{} {unit}", number(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_at_any_size() {
        assert_eq!(with_unit(42.239, "ms"), "42.2 ms");
        assert_eq!(with_unit(1.4213, "×"), "1.42×");
        assert_eq!(with_unit(0.013, "s"), "0.013 s");
        assert_eq!(with_unit(2.0, "/min"), "2 /min");
        assert_eq!(with_unit(1.2e12, "ms"), "1.2e12 ms");
        assert_eq!(number(f64::NAN), "?");
        assert_eq!(number(-3.5), "-3.50");
    }

    #[test]
    fn zero_is_a_low_bar_and_the_scale_never_divides_by_zero() {
        assert_eq!(eighths(0.0, 1.0, 8), 1);
        assert_eq!(eighths(5.0, 5.0, 16), 16);
        assert_eq!(eighths(1e300, 1.0, 8), 8);
        assert_eq!(scale_top(&[None, Some(0.0)], None), 1.0);
        assert_eq!(scale_top(&[Some(40.0)], Some((500.0, 2000.0))), 500.0);
        assert_eq!(scale_top(&[Some(f64::INFINITY), Some(3.0)], None), 3.0);
    }
}
