//! `faultline bench tui`: the TUI's frame time, input-to-frame latency and ingest rate
//! with a full span store, against PRODUCT.md §8's target (frame ≤ 10 ms with 1 M
//! spans stored).
//!
//! ```text
//!  Synth::incident ─► batches of 1,000 ─► App::update(Action::Spans) ─► store at its cap (--spans)
//!  analysis::batches ─► analysis::action (2-min window: report + call graph)        (live analysis)
//!  per view and overlay: terminal.draw(&App) into a TestBackend, --frames times   (frame time)
//!  per key: KeyEvent ─► keys::action ─► App::update ─► terminal.draw              (input to frame)
//!  more batches, evicting: alone, then with a frame after every 16 ms of ingest   (ingest)
//! ```
//!
//! The terminal is ratatui's `TestBackend`, as in the TUI's own tests: the figures are
//! faultline's work (state, layout, widgets, buffer diff), not a terminal emulator's.
//! Generating the synthetic spans is never timed. The App is driven only through
//! `App::update`, as the live loop drives it, so whatever the update keeps up to date
//! for the views is paid for where the live TUI pays for it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use faultline_model::Span;
use faultline_model::synth::Synth;
use faultline_tui::app::{Action, App, SourceKind, View};
use faultline_tui::{analysis, keys};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde::Serialize;

use crate::fmt::{self, OutputFormat};

/// PRODUCT.md §8: a frame takes at most this long…
const TARGET_FRAME_MS: f64 = 10.0;
/// …with this many spans stored.
const TARGET_SPANS: usize = 1_000_000;
/// Spans per `Action::Spans`, about what the receiver hands the TUI per request.
const BATCH: usize = 1000;
/// While ingesting, a frame is drawn after this much work (60 frames a second).
const FRAME_EVERY: Duration = Duration::from_millis(16);
/// The traces filter typed in the filter measurements.
const FILTER: &str = "error";

#[derive(Debug, clap::Args)]
pub(crate) struct TuiArgs {
    /// Spans stored (the store's cap: ingest past it evicts).
    #[arg(long, default_value_t = 1_000_000)]
    spans: usize,
    /// Terminal width in columns.
    #[arg(long, default_value_t = 160)]
    width: u16,
    /// Terminal height in rows.
    #[arg(long, default_value_t = 48)]
    height: u16,
    /// Frames (or key presses) timed per measurement.
    #[arg(long, default_value_t = 100)]
    frames: usize,
    /// Seed of the synthetic traffic.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

#[derive(Debug, Serialize)]
struct TuiBench {
    /// `release` or `debug`: debug figures say little about the target.
    build: &'static str,
    spans: usize,
    traces: usize,
    width: u16,
    height: u16,
    frames_per_measurement: usize,
    target: Target,
    fill: Ingest,
    /// Resident memory of the process once the store is full (Linux), and how much of it
    /// filling the store took.
    rss_bytes: Option<u64>,
    rss_growth_bytes: Option<u64>,
    analysis: AnalysisTime,
    frames: Vec<Row>,
    input_to_frame: Vec<Row>,
    ingest: IngestAtCap,
}

#[derive(Debug, Serialize)]
struct Target {
    frame_ms: f64,
    spans: usize,
    /// Which figure is held to `frame_ms`.
    checked: &'static str,
    /// Whether this run stored as many spans as the target speaks of.
    at_target_scale: bool,
    /// Every frame row, input row and the frames drawn while ingesting within the target.
    met: bool,
}

#[derive(Debug, Serialize)]
struct Row {
    name: String,
    /// The keys pressed (input rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    keys: Option<&'static str>,
    #[serde(flatten)]
    latency: Latency,
}

#[derive(Debug, Clone, Serialize)]
struct Latency {
    samples: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// p99 within the frame target.
    meets_target: bool,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort();
        // Nearest rank: the smallest sample at or above the quantile.
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).max(1);
            samples.get(rank - 1).map_or(0.0, ms)
        };
        let p99_ms = at(0.99);
        Latency {
            samples: samples.len(),
            p50_ms: at(0.5),
            p99_ms,
            max_ms: samples.last().map_or(0.0, ms),
            meets_target: p99_ms <= TARGET_FRAME_MS,
        }
    }
}

#[derive(Debug, Serialize)]
struct Ingest {
    spans: u64,
    seconds: f64,
    spans_per_sec: f64,
}

impl Ingest {
    fn new(spans: u64, time: Duration) -> Ingest {
        let seconds = time.as_secs_f64();
        Ingest {
            spans,
            seconds,
            spans_per_sec: spans as f64 / seconds.max(f64::MIN_POSITIVE),
        }
    }
}

#[derive(Debug, Serialize)]
struct IngestAtCap {
    batch: usize,
    /// `App::update(Action::Spans)` back to back.
    alone: Ingest,
    /// Batches until 16 ms of ingest have passed, a frame of the traces list, repeat;
    /// `seconds` counts both.
    while_rendering: Ingest,
    frame_every_ms: u64,
    /// The frames drawn while ingesting.
    frames: Latency,
    /// Spans evicted during the two phases (the store was at its cap throughout).
    evicted: u64,
}

#[derive(Debug, Serialize)]
struct AnalysisTime {
    /// Spans that end in the two minutes up to the newest span.
    window_spans: u64,
    /// `analysis::batches`, on the UI loop.
    batches_ms: f64,
    /// `analysis::action` (what the blocking pool runs each second): the median of `runs`.
    run_ms: f64,
    runs: usize,
    diagnoses: usize,
}

/// Synthetic traffic cut into batches the way it arrives: traces may straddle batches.
struct Feed {
    synth: Synth,
    pending: Vec<Span>,
}

impl Feed {
    fn new(seed: u64) -> Feed {
        Feed {
            synth: Synth::incident(seed),
            pending: Vec::new(),
        }
    }

    fn batch(&mut self, n: usize) -> Vec<Span> {
        while self.pending.len() < n {
            let trace = self.synth.trace();
            self.pending.extend(trace);
        }
        let rest = self.pending.split_off(n);
        std::mem::replace(&mut self.pending, rest)
    }
}

type Screen = Terminal<TestBackend>;

fn draw(terminal: &mut Screen, app: &App) -> anyhow::Result<()> {
    terminal.draw(|frame| frame.render_widget(app, frame.area()))?;
    Ok(())
}

fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn run(args: TuiArgs) -> anyhow::Result<ExitCode> {
    if args.spans == 0 || args.frames == 0 || args.width == 0 || args.height == 0 {
        bail!("--spans, --frames, --width and --height must be at least 1");
    }
    let result = measure(&args)?;
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        OutputFormat::Text => print_text(&result),
    }
    Ok(ExitCode::SUCCESS)
}

fn measure(args: &TuiArgs) -> anyhow::Result<TuiBench> {
    let mut feed = Feed::new(args.seed);
    let mut app = App::new(
        SourceKind::Replay("bench (synthetic)".to_owned()),
        faultline_dashboards::Profile::Demo,
        args.spans,
    );
    let mut terminal = Terminal::new(TestBackend::new(args.width, args.height))?;

    eprintln!(
        "faultline bench: storing {} spans",
        fmt::count(args.spans as u64)
    );
    let rss_before = rss_bytes();
    let fill = ingest(&mut app, &mut feed, args.spans as u64);
    let rss_after = rss_bytes();

    eprintln!("faultline bench: live analysis");
    let analysis = analyse(&mut app, args.frames.clamp(1, 3));

    eprintln!("faultline bench: frames");
    let mut frames = Vec::new();
    for (name, setup) in scenes() {
        reset(&mut app);
        for action in setup {
            app.update(action);
        }
        draw(&mut terminal, &app)?; // the first frame of a view redraws every cell
        let mut samples = Vec::with_capacity(args.frames);
        for _ in 0..args.frames {
            let started = Instant::now();
            draw(&mut terminal, &app)?;
            samples.push(started.elapsed());
        }
        frames.push(Row {
            name,
            keys: None,
            latency: Latency::of(samples),
        });
    }

    eprintln!("faultline bench: input to frame");
    let mut input_to_frame = Vec::new();
    for scene in key_scenes() {
        reset(&mut app);
        for action in scene.setup {
            app.update(action);
        }
        draw(&mut terminal, &app)?;
        let mut samples = Vec::with_capacity(args.frames);
        for i in 0..args.frames {
            let (key, after) = (scene.step)(i);
            let started = Instant::now();
            press(&mut app, key);
            draw(&mut terminal, &app)?;
            samples.push(started.elapsed());
            for key in after {
                press(&mut app, key);
            }
        }
        input_to_frame.push(Row {
            name: scene.name.to_owned(),
            keys: Some(scene.keys),
            latency: Latency::of(samples),
        });
    }

    eprintln!("faultline bench: ingest at the cap");
    reset(&mut app);
    let dropped_before = app.store.dropped();
    let alone = ingest(&mut app, &mut feed, (args.spans as u64 / 2).max(1));
    app.update(Action::Show(View::Traces));
    let (while_rendering, ingest_frames) =
        ingest_rendering(&mut app, &mut feed, &mut terminal, args.frames)?;
    let evicted = app.store.dropped() - dropped_before;

    let mut result = TuiBench {
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        spans: args.spans,
        traces: app.store.trace_count(),
        width: args.width,
        height: args.height,
        frames_per_measurement: args.frames,
        target: Target {
            frame_ms: TARGET_FRAME_MS,
            spans: TARGET_SPANS,
            checked: "p99",
            at_target_scale: args.spans >= TARGET_SPANS,
            met: false,
        },
        fill,
        rss_bytes: rss_after,
        rss_growth_bytes: rss_before
            .zip(rss_after)
            .map(|(before, after)| after.saturating_sub(before)),
        analysis,
        frames,
        input_to_frame,
        ingest: IngestAtCap {
            batch: BATCH,
            alone,
            while_rendering,
            frame_every_ms: FRAME_EVERY.as_millis() as u64,
            frames: ingest_frames,
            evicted,
        },
    };
    result.target.met = result
        .frames
        .iter()
        .chain(&result.input_to_frame)
        .map(|row| &row.latency)
        .chain([&result.ingest.frames])
        .all(|l| l.meets_target);
    Ok(result)
}

/// Pushes `spans` spans through `App::update` in batches; only the updates are timed.
fn ingest(app: &mut App, feed: &mut Feed, spans: u64) -> Ingest {
    let mut left = spans;
    let mut time = Duration::ZERO;
    while left > 0 {
        let batch = feed.batch(BATCH.min(left as usize));
        left -= batch.len() as u64;
        let started = Instant::now();
        app.update(Action::Spans(batch));
        time += started.elapsed();
    }
    Ingest::new(spans, time)
}

/// Ingests batches until [`FRAME_EVERY`] of ingest has passed, draws a frame, and again
/// until `frames` frames are drawn.
fn ingest_rendering(
    app: &mut App,
    feed: &mut Feed,
    terminal: &mut Screen,
    frames: usize,
) -> anyhow::Result<(Ingest, Latency)> {
    let mut spans = 0u64;
    let mut total = Duration::ZERO;
    let mut since_frame = Duration::ZERO;
    let mut samples = Vec::with_capacity(frames);
    while samples.len() < frames {
        let batch = feed.batch(BATCH);
        spans += batch.len() as u64;
        let started = Instant::now();
        app.update(Action::Spans(batch));
        let took = started.elapsed();
        since_frame += took;
        total += took;
        if since_frame >= FRAME_EVERY {
            let started = Instant::now();
            draw(terminal, app)?;
            let took = started.elapsed();
            samples.push(took);
            total += took;
            since_frame = Duration::ZERO;
        }
    }
    Ok((Ingest::new(spans, total), Latency::of(samples)))
}

/// One live analysis over the two minutes up to the newest span, as the live loop runs
/// it, then handed to the app so the views show its diagnoses.
fn analyse(app: &mut App, runs: usize) -> AnalysisTime {
    let until = app.store.latest_ns();
    let started = Instant::now();
    let batches = analysis::batches(&app.store);
    let batches_time = started.elapsed();
    let from = until.saturating_sub(analysis::WINDOW_NS);
    let window_spans = batches
        .iter()
        .flat_map(|b| b.spans.iter())
        .filter(|s| s.end_ns > from && s.end_ns <= until)
        .count() as u64;
    let mut times = Vec::with_capacity(runs);
    let mut analysed = None;
    for _ in 0..runs {
        let started = Instant::now();
        analysed = Some(analysis::action(
            &batches,
            analysis::Window::last(analysis::WINDOW_NS, until),
            None,
        ));
        times.push(started.elapsed());
    }
    times.sort();
    let mut diagnoses = 0;
    if let Some(action) = analysed {
        if let Action::Analysis { report, .. } = &action {
            diagnoses = report.diagnoses.len();
        }
        app.update(action);
    }
    AnalysisTime {
        window_spans,
        batches_ms: ms(&batches_time),
        run_ms: times.get(times.len() / 2).map_or(0.0, ms),
        runs,
        diagnoses,
    }
}

/// Back to the starting state: normal mode, live, no waterfall or filter, the first row
/// of every list selected, the overview shown.
fn reset(app: &mut App) {
    // Esc closes, in turn, an overlay or typing, the waterfall, the filter, the pause.
    for _ in 0..4 {
        app.update(Action::Back);
    }
    for view in [View::Traces, View::Diagnoses, View::Faults] {
        app.update(Action::Show(view));
        app.update(Action::Top);
    }
    app.update(Action::Show(View::Overview));
}

/// The screens timed for frame time: every view, the traces view with a waterfall open
/// and with a filter, and the help overlay.
fn scenes() -> Vec<(String, Vec<Action>)> {
    let mut scenes: Vec<(String, Vec<Action>)> = View::ALL
        .into_iter()
        .map(|view| (view.title().to_owned(), vec![Action::Show(view)]))
        .collect();
    scenes.push((
        "traces, waterfall open".to_owned(),
        vec![Action::Show(View::Traces), Action::Enter],
    ));
    let mut filter = vec![Action::StartFilter];
    filter.extend(FILTER.chars().map(Action::Type));
    filter.push(Action::Submit);
    scenes.push((format!("traces, filter {FILTER:?}"), filter));
    scenes.push(("help overlay".to_owned(), vec![Action::Help]));
    scenes
}

/// A key timed from press to the end of its frame; `step(i)` gives the i-th press and
/// the keys (untimed) that set up the next one.
struct KeyScene {
    name: &'static str,
    keys: &'static str,
    setup: Vec<Action>,
    step: fn(usize) -> (KeyEvent, Vec<KeyEvent>),
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(app: &mut App, key: KeyEvent) {
    if let Some(action) = keys::action(&app.mode, app.view, key) {
        app.update(action);
    }
}

fn key_scenes() -> Vec<KeyScene> {
    vec![
        KeyScene {
            name: "trace list: next row",
            keys: "↓",
            setup: vec![Action::Show(View::Traces)],
            step: |_| (key(KeyCode::Down), Vec::new()),
        },
        KeyScene {
            name: "next view",
            keys: "Tab",
            setup: Vec::new(),
            step: |_| (key(KeyCode::Tab), Vec::new()),
        },
        KeyScene {
            name: "open a trace",
            keys: "Enter (then Esc ↓)",
            setup: vec![Action::Show(View::Traces)],
            step: |_| {
                (
                    key(KeyCode::Enter),
                    vec![key(KeyCode::Esc), key(KeyCode::Down)],
                )
            },
        },
        KeyScene {
            name: "waterfall: next span",
            keys: "j",
            setup: vec![Action::Show(View::Traces), Action::Enter],
            step: |_| (key(KeyCode::Char('j')), Vec::new()),
        },
        KeyScene {
            name: "type the filter",
            keys: "/ e r r o r",
            setup: vec![Action::StartFilter],
            step: |i| {
                let chars: Vec<char> = FILTER.chars().collect();
                let typed = key(KeyCode::Char(chars[i % chars.len()]));
                // After the whole word, erase it for the next round.
                let after = if i % chars.len() == chars.len() - 1 {
                    vec![key(KeyCode::Backspace); chars.len()]
                } else {
                    Vec::new()
                };
                (typed, after)
            },
        },
        KeyScene {
            name: "time cursor step",
            keys: "[ ]",
            setup: vec![Action::Show(View::Traces)],
            step: |i| {
                let c = if i % 2 == 0 { '[' } else { ']' };
                (key(KeyCode::Char(c)), Vec::new())
            },
        },
    ]
}

/// The process's resident memory (Linux; `None` elsewhere).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn print_text(r: &TuiBench) {
    println!(
        "faultline bench tui: {} spans stored in {} traces, {}×{} terminal, {} frames per row ({} build)",
        fmt::count(r.spans as u64),
        fmt::count(r.traces as u64),
        r.width,
        r.height,
        r.frames_per_measurement,
        r.build
    );
    let scale = if r.target.at_target_scale {
        String::new()
    } else {
        format!(
            " — measured at {} spans, below the target's {}",
            fmt::count(r.spans as u64),
            fmt::count(r.target.spans as u64)
        )
    };
    println!(
        "target: frame ≤ {} ms with {} spans stored, checked on p99{scale}",
        r.target.frame_ms,
        fmt::count(r.target.spans as u64)
    );
    println!();
    let header = |what: &str, keys: &str| {
        println!(
            "{what:<26} {keys:<20} {:>8} {:>8} {:>8}  {}",
            "p50 ms",
            "p99 ms",
            "max ms",
            format_args!("≤ {} ms", r.target.frame_ms)
        );
    };
    let row = |name: &str, keys: &str, l: &Latency| {
        println!(
            "{name:<26} {keys:<20} {:>8.2} {:>8.2} {:>8.2}  {}",
            l.p50_ms,
            l.p99_ms,
            l.max_ms,
            if l.meets_target { "yes" } else { "NO" }
        );
    };
    header("frame", "");
    for f in &r.frames {
        row(&f.name, "", &f.latency);
    }
    println!();
    header("input to frame", "keys");
    for f in &r.input_to_frame {
        row(&f.name, f.keys.unwrap_or(""), &f.latency);
    }
    println!();
    let i = &r.ingest;
    println!(
        "ingest (App::update, batches of {}), spans/s:",
        fmt::count(i.batch as u64)
    );
    println!(
        "  filling the store (no eviction)      {:>12}",
        fmt::count(r.fill.spans_per_sec as u64)
    );
    println!(
        "  at the cap, alone                    {:>12}",
        fmt::count(i.alone.spans_per_sec as u64)
    );
    println!(
        "  at the cap, a frame every {} ms      {:>12}",
        i.frame_every_ms,
        fmt::count(i.while_rendering.spans_per_sec as u64)
    );
    println!(
        "  ({} spans evicted; {} frames of the traces list drawn while ingesting)",
        fmt::count(i.evicted),
        i.frames.samples
    );
    row("frames while ingesting", "", &i.frames);
    println!();
    let a = &r.analysis;
    println!(
        "live analysis of the last 2 minutes ({} spans): {:.1} ms (median of {}), {} diagnos{}; taking the store's batches: {:.3} ms",
        fmt::count(a.window_spans),
        a.run_ms,
        a.runs,
        a.diagnoses,
        if a.diagnoses == 1 { "is" } else { "es" },
        a.batches_ms
    );
    if let Some(rss) = r.rss_bytes {
        let growth = r.rss_growth_bytes.map_or(String::new(), |g| {
            format!(", {} of it filling the store", fmt::bytes(g))
        });
        println!("memory: {} resident{growth}", fmt::bytes(rss));
    }
    println!();
    let verdict = match (r.target.met, r.target.at_target_scale) {
        (true, true) => "met",
        (false, _) => "NOT met",
        (true, false) => "met at this scale (run with --spans 1000000 for the target)",
    };
    println!(
        "target frame ≤ {} ms with {} spans: {verdict}",
        r.target.frame_ms,
        fmt::count(r.target.spans as u64)
    );
}
