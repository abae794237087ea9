//! The context a follow-up question refines: the questions asked so far and the query that
//! answered the last one. The TUI keeps one in memory; `aurora ask --follow-up` keeps it in
//! a file in the data directory so that consecutive commands form one conversation.

use std::path::{Path, PathBuf};

use super::prompt::Turn;

/// Questions and accepted queries, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conversation {
    pub turns: Vec<Turn>,
}

impl Conversation {
    /// The exchange a follow-up builds on.
    pub fn last(&self) -> Option<&Turn> {
        self.turns.last()
    }

    pub fn push(&mut self, question: &str, sql: &str) {
        self.turns.push(Turn {
            question: question.to_string(),
            sql: sql.to_string(),
        });
    }

    pub fn clear(&mut self) {
        self.turns.clear();
    }

    /// The questions so far, joined: what schema linking reads for a follow-up, so that
    /// "only JFK" keeps the tables of the question it refines.
    pub fn linking_text(&self, question: &str) -> String {
        let mut text: Vec<&str> = self.turns.iter().map(|t| t.question.as_str()).collect();
        text.push(question);
        text.join(" ")
    }

    /// Where `aurora ask` keeps it between commands.
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "aurora")
            .map(|d| d.data_dir().join("conversation.json"))
    }

    /// A missing or unreadable file is an empty conversation: losing the context of a
    /// follow-up is not worth failing a question for.
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        assert_eq!(Conversation::load(&path), Conversation::default());
        let mut c = Conversation::default();
        c.push("flights per day", "SELECT 1");
        c.push("only JFK", "SELECT 2");
        c.save(&path).unwrap();
        let loaded = Conversation::load(&path);
        assert_eq!(loaded.last().unwrap().sql, "SELECT 2");
        assert_eq!(
            loaded.linking_text("by week"),
            "flights per day only JFK by week"
        );
        let mut loaded = loaded;
        loaded.clear();
        assert!(loaded.last().is_none());
    }
}
