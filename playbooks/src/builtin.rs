//! The playbooks shipped with faultline (embedded), and a library that also takes a
//! directory of one's own.
//!
//! ```text
//!  BUILTIN (include_str!) ─┐
//!  --playbooks DIR/*.toml ─┴─► Library { playbooks by name; a file of the same name replaces the built-in }
//! ```

use std::path::{Path, PathBuf};

use faultline_analyzers::diagnosis::IncidentKind;

use crate::format::{Playbook, PlaybookError};

/// The built-in playbooks: one per incident kind (PRODUCT.md §7).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "network-partition",
        include_str!("../playbooks/network-partition.toml"),
    ),
    ("split-brain", include_str!("../playbooks/split-brain.toml")),
    ("quorum-loss", include_str!("../playbooks/quorum-loss.toml")),
    ("leader-loss", include_str!("../playbooks/leader-loss.toml")),
    (
        "election-storm",
        include_str!("../playbooks/election-storm.toml"),
    ),
    ("retry-storm", include_str!("../playbooks/retry-storm.toml")),
    (
        "cascading-failure",
        include_str!("../playbooks/cascading-failure.toml"),
    ),
    (
        "replication-lag",
        include_str!("../playbooks/replication-lag.toml"),
    ),
    ("stale-reads", include_str!("../playbooks/stale-reads.toml")),
    (
        "consumer-lag",
        include_str!("../playbooks/consumer-lag.toml"),
    ),
    (
        "poison-messages",
        include_str!("../playbooks/poison-messages.toml"),
    ),
    ("clock-skew", include_str!("../playbooks/clock-skew.toml")),
    (
        "hot-partition",
        include_str!("../playbooks/hot-partition.toml"),
    ),
];

/// Playbooks by name.
#[derive(Debug, Clone)]
pub struct Library {
    playbooks: Vec<Playbook>,
    /// Where each playbook came from (`built-in` or a path).
    origins: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error(transparent)]
    Invalid(#[from] PlaybookError),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Library {
    /// The built-in playbooks.
    pub fn builtin() -> Result<Library, LibraryError> {
        let mut library = Library {
            playbooks: Vec::new(),
            origins: Vec::new(),
        };
        for (name, text) in BUILTIN {
            library.add(Playbook::parse(name, text)?, "built-in".to_owned());
        }
        Ok(library)
    }

    /// The built-in playbooks, with every `*.toml` in `dir` added (a file named like a
    /// built-in one replaces it).
    pub fn with_dir(dir: &Path) -> Result<Library, LibraryError> {
        let mut library = Library::builtin()?;
        let io = |source| LibraryError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| LibraryError::Io {
                path: path.clone(),
                source,
            })?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let playbook = Playbook::parse(&name, &text).map_err(|mut e| {
                e.file = path.display().to_string();
                e
            })?;
            library.add(playbook, path.display().to_string());
        }
        Ok(library)
    }

    fn add(&mut self, playbook: Playbook, origin: String) {
        if let Some(i) = self.playbooks.iter().position(|p| p.name == playbook.name) {
            self.playbooks[i] = playbook;
            self.origins[i] = origin;
        } else {
            self.playbooks.push(playbook);
            self.origins.push(origin);
        }
    }

    pub fn all(&self) -> impl Iterator<Item = (&Playbook, &str)> {
        self.playbooks
            .iter()
            .zip(self.origins.iter().map(String::as_str))
    }

    pub fn get(&self, name: &str) -> Option<&Playbook> {
        self.playbooks.iter().find(|p| p.name == name)
    }

    /// The playbook for an incident kind: the one named by the diagnosis, else the
    /// first that says it handles it.
    pub fn for_incident(&self, kind: IncidentKind) -> Option<&Playbook> {
        self.get(kind.playbook())
            .or_else(|| self.playbooks.iter().find(|p| p.handles.contains(&kind)))
    }

    /// The names, for "did you mean" errors.
    pub fn names(&self) -> Vec<&str> {
        self.playbooks.iter().map(|p| p.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_builtin_playbook_is_valid_and_every_incident_kind_has_one() {
        let library = Library::builtin().unwrap_or_else(|e| panic!("{e}"));
        for kind in IncidentKind::ALL {
            let playbook = library
                .for_incident(kind)
                .unwrap_or_else(|| panic!("no playbook for {}", kind.as_str()));
            assert_eq!(playbook.name, kind.playbook());
            assert!(
                playbook.handles.contains(&kind),
                "{} does not say it handles {}",
                playbook.name,
                kind.as_str()
            );
        }
        assert_eq!(library.names().len(), BUILTIN.len());
    }

    #[test]
    fn a_directory_adds_and_replaces_playbooks_and_reports_bad_files() {
        let dir = std::env::temp_dir().join(format!("faultline-playbooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let retry = BUILTIN.iter().find(|(n, _)| *n == "retry-storm").unwrap().1;
        std::fs::write(
            dir.join("retry-storm.toml"),
            retry.replacen("title = ", "title = \"Ours\"\n#", 1),
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a playbook").unwrap();
        let library = Library::with_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(library.get("retry-storm").unwrap().title, "Ours");
        assert_eq!(library.names().len(), BUILTIN.len());
        std::fs::write(dir.join("broken.toml"), "title = 1").unwrap();
        let error = Library::with_dir(&dir).unwrap_err().to_string();
        assert!(error.contains("broken.toml"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
