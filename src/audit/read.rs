//! Reading the audit log back: its files in chain order, its records, and the chain's check.

use std::path::{Path, PathBuf};

use super::{line_hash, Record, GENESIS};

/// The log's files in chain order: the rotated ones (`<path>.<first seq>`, oldest first), then
/// the active one when it exists.
pub fn files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.");
    let mut rotated: Vec<(u64, PathBuf)> = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                let file_name = entry.file_name();
                let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                    continue;
                };
                if let Ok(first) = rest.parse::<u64>() {
                    rotated.push((first, entry.path()));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    rotated.sort();
    let mut all: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        all.push(path.to_path_buf());
    }
    Ok(all)
}

/// Every record of the log, in chain order; lines that are not records are skipped (`verify`
/// reports them).
pub fn read_all(path: &Path) -> std::io::Result<Vec<Record>> {
    let mut records = Vec::new();
    for file in files(path)? {
        let text = std::fs::read(&file)?;
        records.extend(
            text.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .filter_map(|l| serde_json::from_slice::<Record>(l).ok()),
        );
    }
    Ok(records)
}

/// A place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line in `file`.
    pub line: usize,
    pub message: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub files: Vec<PathBuf>,
    pub records: u64,
    /// The hash of the last line: what the next record's `prev` will be.
    pub head: Option<String>,
    /// Whether the head noted earlier (`--head`) is one of the chain's lines.
    pub expected_head_found: Option<bool>,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.problems.is_empty() && self.expected_head_found != Some(false)
    }
}

/// Walks the chain from its first record to its last. Every line must be a record whose `prev`
/// is the hash of the line before it and whose `seq` is one more than that line's: an edited
/// line breaks the link after it, a removed one breaks the link and leaves a gap, a moved one
/// breaks links and sends `seq` backwards. `expected_head` is a head noted earlier, which must
/// still be in the chain (records cut from the end otherwise leave no trace).
pub fn verify(path: &Path, expected_head: Option<&str>) -> std::io::Result<VerifyReport> {
    let mut report = VerifyReport {
        files: files(path)?,
        ..VerifyReport::default()
    };
    let mut prev_hash = GENESIS.to_string();
    let mut prev_seq: Option<u64> = None;
    let mut found_head = false;
    for file in report.files.clone() {
        let text = std::fs::read(&file)?;
        let body = text.strip_suffix(b"\n").unwrap_or(&text);
        if !text.is_empty() && !text.ends_with(b"\n") {
            report.problems.push(Problem {
                file: file.clone(),
                line: body.split(|&b| b == b'\n').count(),
                message: "the file does not end with a newline: its last write was cut short"
                    .into(),
            });
        }
        if body.is_empty() {
            continue;
        }
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            let hash = line_hash(line);
            let mut problem = |message: String| {
                report.problems.push(Problem {
                    file: file.clone(),
                    line: i + 1,
                    message,
                })
            };
            match serde_json::from_slice::<Record>(line) {
                Err(e) => problem(format!("not an audit record ({e}): edited or damaged")),
                Ok(record) => {
                    report.records += 1;
                    let expected_seq = prev_seq.map_or(1, |s| s + 1);
                    if record.seq != expected_seq {
                        problem(match prev_seq {
                            None => format!(
                                "the chain starts at record {}: records 1 to {} are missing",
                                record.seq,
                                record.seq.saturating_sub(1)
                            ),
                            Some(p) if record.seq > expected_seq => format!(
                                "record {} follows record {p}: {} missing",
                                record.seq,
                                if record.seq - p == 2 {
                                    format!("record {expected_seq} is")
                                } else {
                                    format!("records {expected_seq} to {} are", record.seq - 1)
                                }
                            ),
                            Some(p) => format!(
                                "record {} follows record {p}: records are out of order",
                                record.seq
                            ),
                        });
                    }
                    if record.prev != prev_hash {
                        problem(match prev_seq {
                            None => "the first record links to a line that is not in the log \
                                     (older files removed?)"
                                .to_string(),
                            Some(p) => format!(
                                "record {}'s link does not match the line before it (record {p}): \
                                 that line was edited, or lines between them were removed or moved",
                                record.seq
                            ),
                        });
                    }
                    prev_seq = Some(record.seq);
                }
            }
            if expected_head == Some(hash.as_str()) {
                found_head = true;
            }
            prev_hash = hash;
        }
    }
    if report.records > 0 || !report.problems.is_empty() {
        report.head = Some(prev_hash);
    }
    if expected_head.is_some() {
        report.expected_head_found = Some(found_head);
    }
    Ok(report)
}
