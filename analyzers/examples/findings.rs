//! Prints every detector's findings on the given captures (a development aid).
use faultline_analyzers::detector::{Context, run_all};
use faultline_analyzers::load::{TimeFilter, load};
use faultline_analyzers::{Thresholds, detectors};
use faultline_model::ReadOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let only: Option<String> = std::env::var("DETECTOR").ok();
    for path in std::env::args().skip(1) {
        let (table, _) = load(
            &[path.clone().into()],
            &ReadOptions::default(),
            TimeFilter::default(),
        )?;
        let thresholds = Thresholds::demo();
        let cx = Context::new(&table, &thresholds);
        let labels =
            std::fs::read_to_string(path.replace(".jsonl.zst", ".labels.json")).unwrap_or_default();
        let injected: i64 = serde_json::from_str::<serde_json::Value>(&labels)
            .ok()
            .and_then(|v| v["injected_at_ms"].as_i64())
            .unwrap_or(0);
        println!(
            "== {path} (injection at +{:.1} s)",
            (injected * 1_000_000 - cx.start_ns) as f64 / 1e9
        );
        let all: Vec<_> = detectors::all()
            .into_iter()
            .filter(|d| only.as_deref().is_none_or(|o| o == d.name()))
            .collect();
        for f in run_all(&all, &cx) {
            println!(
                "  {:8} {:20} {:28} +{:5.1}s {} | {}",
                f.severity.as_str(),
                f.kind.as_str(),
                f.subject.to_string(),
                (f.starts_ns() - cx.start_ns) as f64 / 1e9,
                f.summary,
                f.figures
                    .iter()
                    .map(|x| format!("{}={:.2}{}", x.name, x.value, x.unit))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    Ok(())
}
