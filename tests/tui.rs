//! The TUI in a real terminal: `faultline demo` under tmux, driven by keystrokes.
//!
//! Start the demo, open the faults view, pick leader-crash and confirm with keys, wait
//! for the leader-loss diagnosis and a new leader on screen, open the diagnosis's
//! playbook, confirm its remedy (restart the node) and wait for its verification to
//! say resolved, quit with `q`; the terminal must be back (no alternate screen) and no
//! cluster process left.
//!
//! Needs tmux. Without it the test says so and passes, unless
//! `FAULTLINE_REQUIRE_TMUX` is set (as `.ci/run` does, after installing it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Two demo clusters at once would starve each other on a small machine.
static ONE_DEMO_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A tmux server of the test's own (`-L`), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, command: &str, width: u16, height: u16) -> Tmux {
        let tmux = Tmux {
            socket: format!("faultline-test-{}-{name}", std::process::id()),
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs")
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "demo"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "demo"]).stdout)
            .into_owned()
    }

    fn alternate_screen(&self) -> bool {
        let out = self.run(&["display-message", "-p", "-t", "demo", "#{alternate_on}"]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// Waits until `check` holds for the screen; fails with the last screen.
    fn wait_for(&self, what: &str, limit: Duration, check: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < limit,
                "waited {limit:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// `faultline demo` running in a tmux terminal of its own, healthy. Dropped: the
/// tmux server is killed, then `demo down` makes sure nothing is left.
struct Demo {
    tmux: Tmux,
    dir: std::path::PathBuf,
    _down: common::DemoDown,
    _state: tempfile::TempDir,
    _one: std::sync::MutexGuard<'static, ()>,
}

impl Demo {
    /// Starts `faultline demo --dir DIR ARGS` + `then` (shell) at `width`×`height`, and
    /// waits for the cluster to be healthy.
    fn start(name: &str, args: &str, then: &str, width: u16, height: u16) -> Demo {
        let one = ONE_DEMO_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("demo");
        let down = common::DemoDown(dir.clone());
        let command = format!(
            "{} demo --dir {} {args}{then}",
            env!("CARGO_BIN_EXE_faultline"),
            dir.display()
        );
        let tmux = Tmux::start(name, &command, width, height);
        tmux.wait_for("the cluster healthy", Duration::from_secs(90), |s| {
            s.contains("healthy in")
        });
        Demo {
            tmux,
            dir,
            _down: down,
            _state: state,
            _one: one,
        }
    }
}

fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("FAULTLINE_REQUIRE_TMUX").is_none(),
            "FAULTLINE_REQUIRE_TMUX is set but tmux is not installed"
        );
        eprintln!("skipping: tmux is not installed (apt-get install tmux)");
    }
    found
}

/// The processes of the cluster recorded in `dir`'s cluster file that still run.
fn cluster_processes_left(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("cluster.json")).expect("cluster file");
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let group = file["process_group"].as_u64().expect("a process group");
    let out = Command::new("pgrep")
        .arg("-a")
        .arg("-g")
        .arg(group.to_string())
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The index of `name` in the faults menu: the catalog comes first, in the order
/// `demo scenario list` prints it.
fn catalog_index(name: &str) -> usize {
    let out = common::faultline()
        .args(["demo", "scenario", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .skip(1)
        .position(|l| l.split_whitespace().next() == Some(name))
        .expect("leader-crash is in the catalog")
}

/// The overview's node rows (inside the nodes box: `│node-N …`).
fn node_rows(screen: &str) -> impl Iterator<Item = &str> {
    screen
        .lines()
        .map(|l| l.trim_start_matches('│').trim_start())
        .filter(|l| l.starts_with("node-"))
}

#[test]
fn demo_under_tmux_injects_leader_crash_by_keys_heals_it_by_its_playbook_and_quits_clean() {
    if !tmux_available() {
        return;
    }
    let demo = Demo::start(
        "inject",
        "--rate 20",
        "; echo FAULTLINE-EXIT=$?; sleep 600",
        160,
        48,
    );
    let (tmux, dir) = (&demo.tmux, &demo.dir);
    assert!(
        tmux.alternate_screen(),
        "the TUI runs on the alternate screen"
    );
    // The overview: every node answers and names a leader before a fault goes in.
    tmux.keys(&["1"]);
    tmux.wait_for("three nodes up", Duration::from_secs(60), |s| {
        node_rows(s).filter(|l| l.contains(" up ")).count() == 3
    });
    // As a user would: let the analysis see healthy traffic first (the confirmation
    // warns while it has seen less than ten seconds).
    std::thread::sleep(Duration::from_secs(12));

    // The faults view, leader-crash selected by moving down from the top, confirmed.
    tmux.keys(&["f"]);
    tmux.wait_for("the faults view", Duration::from_secs(10), |s| {
        s.contains("leader-crash")
    });
    tmux.keys(&["g"]);
    for _ in 0..catalog_index("leader-crash") {
        tmux.keys(&["j"]);
    }
    tmux.keys(&["Enter"]);
    tmux.wait_for("the confirmation", Duration::from_secs(10), |s| {
        s.contains("Inject leader-crash?")
    });
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("the injection", Duration::from_secs(60), |s| {
        s.contains("injected leader-crash")
    });
    let crashed = screen
        .lines()
        .find_map(|l| l.split("node_crash at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the crashed node is named")
        .to_owned();

    // The diagnosis (header and diagnoses view) and the new leader (overview).
    tmux.keys(&["5"]);
    tmux.wait_for("the leader-loss diagnosis", Duration::from_secs(60), |s| {
        s.contains(&format!("{crashed} went down; leader election"))
    });
    tmux.keys(&["1"]);
    let overview = tmux.wait_for("a new leader", Duration::from_secs(60), |s| {
        // A node row whose role is leader: `node-N  leader  term …`, not the crashed one.
        node_rows(s).any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.first() != Some(&crashed.as_str()) && words.get(1) == Some(&"leader")
        })
    });
    assert!(
        overview.contains(&crashed),
        "the crashed node stays listed:\n{overview}"
    );

    // The diagnosis opens its playbook (p); its steps tick as analyses arrive, up to the
    // remedy, which runs after a confirmation; its verification then judges the cluster.
    tmux.keys(&["5"]);
    tmux.wait_for("the diagnoses view", Duration::from_secs(10), |s| {
        s.contains(&format!("{crashed} went down; leader election"))
    });
    tmux.keys(&["p"]);
    tmux.wait_for("the restart offered", Duration::from_secs(120), |s| {
        s.contains("remedy due: Enter applies it") && s.contains("restart_node")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the remedy's confirmation", Duration::from_secs(10), |s| {
        s.contains("Apply restart_node")
    });
    tmux.keys(&["y"]);
    let verdict = tmux.wait_for("the verdict", Duration::from_secs(150), |s| {
        s.contains(" verdict ") && (s.contains(" RESOLVED ") || s.contains(" NOT RESOLVED "))
    });
    assert!(
        verdict.contains(" RESOLVED ") && verdict.contains("⚙ applied"),
        "{verdict}"
    );
    // And from the overview: the crashed node is up again.
    tmux.keys(&["1"]);
    tmux.wait_for("the crashed node back", Duration::from_secs(60), |s| {
        node_rows(s)
            .any(|l| l.split_whitespace().next() == Some(crashed.as_str()) && l.contains(" up "))
    });

    // q: the terminal is restored, the command exits 0, nothing is left running.
    tmux.keys(&["q"]);
    let end = tmux.wait_for("faultline to exit", Duration::from_secs(60), |s| {
        s.contains("FAULTLINE-EXIT=")
    });
    assert!(end.contains("FAULTLINE-EXIT=0"), "{end}");
    assert!(end.contains("cluster stopped"), "{end}");
    assert!(
        !tmux.alternate_screen(),
        "the terminal is back from the alternate screen"
    );
    let left = cluster_processes_left(dir);
    assert!(left.is_empty(), "processes left: {left:?}");
}

/// Closing the terminal (tmux kills its server: SIGHUP) stops the cluster as `q` does.
#[test]
fn closing_the_terminal_stops_the_demo_cluster() {
    if !tmux_available() {
        return;
    }
    let demo = Demo::start("close", "--rate 5", "", 100, 30);
    let dir = demo.dir.clone();
    assert!(!cluster_processes_left(&dir).is_empty(), "the cluster runs");
    // Kill the tmux server (the terminal closes), keeping the state and the guards.
    let Demo {
        tmux,
        _state,
        _down,
        _one,
        ..
    } = demo;
    drop(tmux);
    let started = Instant::now();
    loop {
        let left = cluster_processes_left(&dir);
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "processes left 30 s after the terminal closed: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
