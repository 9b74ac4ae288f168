//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

/// `../shared/interop` beside the repository: trace files written by other projects'
/// tools. It lives outside the repo, so tests that use it skip (saying so) where it is
/// absent — unless `FAULTLINE_REQUIRE_INTEROP=1`, as in CI, where absence is a failure.
pub fn interop_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/interop");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("FAULTLINE_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!(
            "FAULTLINE_REQUIRE_INTEROP=1 but {} is absent",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: {} is absent; the interop corpus lives outside the repo (see README)",
        dir.display()
    );
    None
}

/// Fails if a file in one of `folders` (under the interop dir) has no expectations, so
/// that a file added to the corpus cannot go untested.
pub fn assert_all_files_expected(dir: &std::path::Path, folders: &[&str], expected: &[&str]) {
    for folder in folders {
        for entry in std::fs::read_dir(dir.join(folder)).unwrap() {
            let name = format!("{folder}/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(
                expected.contains(&name.as_str()),
                "no expectations for {name}"
            );
        }
    }
}
