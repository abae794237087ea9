//! The History view's data: every question and query run in the workspace, with its outcome,
//! kept in `<data dir>/history.json` (newest last, at most `MAX_ENTRIES`; favourites are kept
//! beyond that). The file is written by the job runner, never while drawing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const MAX_ENTRIES: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Rows { rows: u64, elapsed_ms: u64 },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The question, when the SQL answered one; `None` for SQL typed by the user.
    pub question: Option<String>,
    pub sql: String,
    pub outcome: Outcome,
    /// Unix seconds.
    pub at: u64,
    #[serde(default)]
    pub favourite: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub entries: Vec<HistoryEntry>,
}

impl History {
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "aurora").map(|d| d.data_dir().join("history.json"))
    }

    /// The saved history; a missing file is an empty history, an unreadable one an error the
    /// workspace shows; it then starts empty and does not save, so the file stays as it is.
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("cannot read the history in {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes the whole history (write to a temporary file, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Per process: another workspace saving at the same moment has its own file.
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(self)?)?;
        std::fs::rename(tmp, path)
    }

    pub fn push(&mut self, entry: HistoryEntry) {
        self.entries.push(entry);
        let mut excess = self.entries.len().saturating_sub(MAX_ENTRIES);
        // The oldest entries that are not favourites go first.
        self.entries.retain(|e| {
            if excess > 0 && !e.favourite {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64, favourite: bool) -> HistoryEntry {
        HistoryEntry {
            question: Some(format!("q{n}")),
            sql: format!("SELECT {n}"),
            outcome: Outcome::Rows {
                rows: 1,
                elapsed_ms: 2,
            },
            at: n,
            favourite,
        }
    }

    #[test]
    fn keeps_the_newest_and_every_favourite() {
        let mut history = History::default();
        history.push(entry(0, true));
        for n in 1..=MAX_ENTRIES as u64 + 5 {
            history.push(entry(n, false));
        }
        assert_eq!(history.entries.len(), MAX_ENTRIES);
        assert_eq!(history.entries[0].at, 0, "the favourite stays");
        assert_eq!(
            history.entries[1].at, 7,
            "1,006 entries: the six oldest non-favourites went"
        );
        assert_eq!(
            history.entries.last().map(|e| e.at),
            Some(MAX_ENTRIES as u64 + 5)
        );
    }

    #[test]
    fn saves_and_loads_and_reports_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/history.json");
        assert_eq!(History::load(&path).unwrap(), History::default());
        let mut history = History::default();
        history.push(entry(1, true));
        history.push(HistoryEntry {
            outcome: Outcome::Failed("Code: 60. Unknown table".into()),
            ..entry(2, false)
        });
        history.save(&path).unwrap();
        assert_eq!(History::load(&path).unwrap(), history);
        std::fs::write(&path, "{not json").unwrap();
        assert!(History::load(&path).unwrap_err().contains("history.json"));
    }
}
