//! The answers the user confirmed (`aurora ask --remember`, `a` in the workspace), kept as
//! worked examples for later questions: one JSON line each in the data directory. Only
//! confirmed ones: a query that runs is not necessarily right, and a wrong example would be
//! copied into every similar answer. A later line for the same question replaces an earlier
//! one, so a corrected query (edited in the workspace, run, then confirmed) wins.
//!
//! For a question, the examples on the tables it links to are ranked by BM25 (Okapi, k1 =
//! 1.2, b = 0.75) over their questions' stemmed words, stop words left out.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::linking::{is_stop_word, words};
use super::prompt::Example;

/// The file of confirmed examples, in the data directory.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "aurora")
        .map(|d| d.data_dir().join("assistant-history.jsonl"))
}

/// The confirmed examples in the data directory (none when it has no file).
pub fn load_default() -> Vec<Example> {
    default_path().map(|p| load(&p)).unwrap_or_default()
}

/// The confirmed examples in `path`, the latest per question, oldest first. A missing file
/// is no examples; a line that is not an example is skipped.
pub fn load(path: &Path) -> Vec<Example> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut latest: BTreeMap<String, (usize, Example)> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if let Ok(example) = serde_json::from_str::<Example>(line) {
            latest.insert(question_key(&example.question), (i, example));
        }
    }
    let mut examples: Vec<(usize, Example)> = latest.into_values().collect();
    examples.sort_by_key(|(i, _)| *i);
    examples.into_iter().map(|(_, e)| e).collect()
}

/// Appends a confirmed example to `path` (creating the file and its directory).
pub fn append(path: &Path, example: &Example) -> std::io::Result<()> {
    let line = serde_json::to_string(example).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{line}")
}

/// Adds `example` to `examples`, in place of one for the same question.
pub fn replace_or_add(examples: &mut Vec<Example>, example: Example) {
    let key = question_key(&example.question);
    examples.retain(|e| question_key(&e.question) != key);
    examples.push(example);
}

/// Two questions are the same when their words are.
fn question_key(question: &str) -> String {
    question
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The words BM25 compares: stemmed, no stop words.
fn terms(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| !is_stop_word(w))
        .collect()
}

/// Indices of `documents` by their BM25 score for `query`, best first; documents that share
/// no term with the query are left out.
pub fn bm25_rank(query: &str, documents: &[&str]) -> Vec<(usize, f64)> {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;
    let docs: Vec<Vec<String>> = documents.iter().map(|d| terms(d)).collect();
    if docs.is_empty() {
        return Vec::new();
    }
    let n = docs.len() as f64;
    let average = docs.iter().map(Vec::len).sum::<usize>() as f64 / n;
    let query: BTreeSet<String> = terms(query).into_iter().collect();
    let mut scored: Vec<(usize, f64)> = docs
        .iter()
        .enumerate()
        .filter_map(|(i, doc)| {
            let mut score = 0.0;
            for term in &query {
                let tf = doc.iter().filter(|w| *w == term).count() as f64;
                if tf == 0.0 {
                    continue;
                }
                let df = docs.iter().filter(|d| d.contains(term)).count() as f64;
                let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                let norm = 1.0 - B + B * doc.len() as f64 / average.max(1.0);
                score += idf * tf * (K1 + 1.0) / (tf + K1 * norm);
            }
            (score > 0.0).then_some((i, score))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

/// The `n` confirmed examples most similar to `question` among those that read one of
/// `tables` (qualified names).
pub fn similar(question: &str, examples: &[Example], tables: &[String], n: usize) -> Vec<Example> {
    let usable: Vec<&Example> = examples
        .iter()
        .filter(|e| tables.iter().any(|t| e.sql.contains(t.as_str())))
        .collect();
    let questions: Vec<&str> = usable.iter().map(|e| e.question.as_str()).collect();
    bm25_rank(question, &questions)
        .into_iter()
        .take(n)
        .map(|(i, _)| usable[i].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(question: &str, sql: &str) -> Example {
        Example {
            question: question.into(),
            sql: sql.into(),
        }
    }

    #[test]
    fn bm25_prefers_rare_shared_words_and_leaves_out_unrelated_questions() {
        let docs = [
            "How many purchases per country?",
            "Revenue per device",
            "Page views per country",
            "Which tables exist?",
        ];
        let ranked = bm25_rank("purchases by country last week", &docs);
        assert_eq!(ranked.first().map(|r| r.0), Some(0));
        // "country" is in two questions, "device" in one: the rarer word weighs more, and of
        // two matches on one word the shorter question ranks first.
        let ranked = bm25_rank("country device", &docs);
        assert_eq!(ranked.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 0, 2]);
        assert!(bm25_rank("stock levels", &docs).is_empty());
        assert!(bm25_rank("anything", &[]).is_empty());
    }

    #[test]
    fn only_examples_on_the_linked_tables_are_chosen() {
        let examples = [
            example(
                "purchases per country",
                "SELECT country, count() FROM demo.events",
            ),
            example(
                "airports per country",
                "SELECT country, count() FROM vega.airports",
            ),
        ];
        let chosen = similar(
            "how many airports per country",
            &examples,
            &["demo.events".into()],
            1,
        );
        assert_eq!(chosen, [examples[0].clone()]);
        assert!(similar("airports", &examples, &["demo.products".into()], 1).is_empty());
    }

    #[test]
    fn a_correction_replaces_the_earlier_answer_to_the_same_question() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deeper/examples.jsonl");
        assert!(load(&path).is_empty());
        append(&path, &example("Purchases per day?", "SELECT 1")).unwrap();
        append(&path, &example("revenue per day", "SELECT 2")).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"not json\n")
            .unwrap();
        append(&path, &example("purchases  per day", "SELECT 3")).unwrap();
        assert_eq!(
            load(&path),
            [
                example("revenue per day", "SELECT 2"),
                example("purchases  per day", "SELECT 3"),
            ]
        );
        let mut examples = load(&path);
        replace_or_add(&mut examples, example("Revenue per day!", "SELECT 4"));
        assert_eq!(examples.len(), 2);
        assert_eq!(examples[1].sql, "SELECT 4");
    }
}
