//! CSV files as a source: a file or a glob, read record by record with the `csv` crate.
//!
//! Each record's position is the byte offset just past it in its file, so a restart resumes by
//! seeking, not re-reading. Positions are saved only for records the sink has acknowledged
//! (`CursorStore::commit`), in a small JSON file per pipeline. In follow mode a file is re-read
//! from the saved position as it grows, a last line without its newline is left for later (it
//! may still be being written), and new files matching the glob are picked up.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ingest::pipeline::CsvSource;
use crate::ingest::record::{Ack, SourceRecord};

#[derive(Debug, thiserror::Error)]
pub enum CsvSourceError {
    #[error("`{pattern}` is not a valid file pattern: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("no file matches `{0}`")]
    NoFiles(String),
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
}

/// How far each file has been stored, kept in `cursors.json` in the pipeline's state directory.
#[derive(Debug, Default)]
pub struct CursorStore {
    path: Option<PathBuf>,
    cursors: BTreeMap<String, u64>,
}

impl CursorStore {
    /// Loads the store at `path` (a missing or unreadable file means "from the start").
    pub fn open(path: PathBuf) -> Self {
        let cursors = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Self {
            path: Some(path),
            cursors,
        }
    }

    pub fn in_memory() -> Self {
        Self::default()
    }

    pub fn get(&self, source_id: &str) -> u64 {
        self.saved(source_id).unwrap_or(0)
    }

    /// The saved position of a stream, if one was ever saved.
    pub fn saved(&self, source_id: &str) -> Option<u64> {
        self.cursors.get(source_id).copied()
    }

    /// Records that everything up to each ack's offset is stored, and saves the file
    /// atomically (write, then rename).
    pub fn commit(&mut self, acks: &[Ack]) -> std::io::Result<()> {
        for ack in acks {
            let e = self.cursors.entry(ack.source_id.to_string()).or_insert(0);
            *e = (*e).max(ack.offset);
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.cursors).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

/// The files a pattern names now, sorted so every run reads them in the same order.
pub fn matching_files(pattern: &str) -> Result<Vec<PathBuf>, CsvSourceError> {
    let paths = glob::glob(pattern).map_err(|e| CsvSourceError::Pattern {
        pattern: pattern.to_string(),
        reason: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

pub fn source_id(path: &Path) -> String {
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("csv:{}", absolute.display())
}

/// Reads the files of `spec` (pattern already resolved against the pipeline file) and sends
/// their records on `tx` until done (or, in follow mode, until cancelled). Blocking: run it on
/// a blocking thread.
pub fn run(
    spec: &CsvSource,
    pattern: &str,
    cursors: Arc<Mutex<CursorStore>>,
    tx: mpsc::Sender<SourceRecord>,
    cancel: CancellationToken,
) -> Result<(), CsvSourceError> {
    let delimiter = spec.delimiter.as_bytes().first().copied().unwrap_or(b',');
    // Positions handed out in this run, so follow mode continues from there rather than
    // from the last acknowledged cursor (which lags behind).
    let mut sent: BTreeMap<PathBuf, u64> = BTreeMap::new();
    loop {
        let files = matching_files(pattern)?;
        if files.is_empty() && !spec.follow {
            return Err(CsvSourceError::NoFiles(pattern.to_string()));
        }
        for file in files {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let id: Arc<str> = Arc::from(source_id(&file));
            let start = match sent.get(&file) {
                Some(&p) => p,
                None => cursors.lock().map(|c| c.get(&id)).unwrap_or(0),
            };
            let end = read_file(&file, &id, start, spec, delimiter, &tx, &cancel)?;
            sent.insert(file, end);
        }
        if !spec.follow || cancel.is_cancelled() || tx.is_closed() {
            return Ok(());
        }
        std::thread::sleep(spec.poll_interval);
    }
}

/// Sends the complete records of `path` after byte `start`; returns where it stopped.
fn read_file(
    path: &Path,
    id: &Arc<str>,
    start: u64,
    spec: &CsvSource,
    delimiter: u8,
    tx: &mpsc::Sender<SourceRecord>,
    cancel: &CancellationToken,
) -> Result<u64, CsvSourceError> {
    let read_err = |reason: String| CsvSourceError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|e| read_err(e.to_string()))?;
    let len = file.metadata().map_err(|e| read_err(e.to_string()))?.len();
    if start >= len {
        return Ok(start);
    }
    let ends_with_newline = last_byte_is_newline(path, len);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(spec.header)
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(file);
    let headers: Vec<String> = if spec.header {
        reader
            .headers()
            .map_err(|e| read_err(e.to_string()))?
            .iter()
            .map(str::to_string)
            .collect()
    } else {
        Vec::new()
    };
    if start > reader.position().byte() {
        let mut pos = csv::Position::new();
        pos.set_byte(start);
        reader.seek(pos).map_err(|e| read_err(e.to_string()))?;
    }
    let mut position = reader.position().byte().max(start);
    let mut record = csv::StringRecord::new();
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A broken quote makes the rest of the file unreadable as CSV; say where.
                return Err(read_err(format!("line {line}: {e}")));
            }
        }
        let end = reader.position().byte();
        if end >= len && !ends_with_newline && spec.follow {
            // Possibly half-written: leave it for the next poll.
            break;
        }
        let payload = to_object(&headers, &record);
        let raw = raw_line(&record, delimiter);
        let message = SourceRecord {
            source_id: id.clone(),
            offset: end,
            payload: Ok(payload),
            raw,
        };
        if tx.blocking_send(message).is_err() {
            // The pipeline is shutting down.
            break;
        }
        position = end;
    }
    Ok(position)
}

fn last_byte_is_newline(path: &Path, len: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut b = [0u8; 1];
    len > 0
        && f.seek(SeekFrom::Start(len - 1)).is_ok()
        && f.read_exact(&mut b).is_ok()
        && b[0] == b'\n'
}

/// A CSV record as a JSON object: header → text, with empty fields as null. Without a header
/// the fields are named `c1`, `c2`, ...
fn to_object(headers: &[String], record: &csv::StringRecord) -> serde_json::Value {
    let mut map = serde_json::Map::with_capacity(record.len());
    for (i, field) in record.iter().enumerate() {
        let name = headers
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("c{}", i + 1));
        let value = if field.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::String(field.to_string())
        };
        map.insert(name, value);
    }
    serde_json::Value::Object(map)
}

/// The record written back as one CSV line, for the dead-letter table.
fn raw_line(record: &csv::StringRecord, delimiter: u8) -> String {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    if w.write_record(record).is_err() {
        return record.iter().collect::<Vec<_>>().join(",");
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches('\n')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(follow: bool) -> CsvSource {
        CsvSource {
            path: String::new(),
            header: true,
            delimiter: ",".into(),
            follow,
            poll_interval: std::time::Duration::from_millis(10),
        }
    }

    fn collect(dir: &Path, pattern: &str, cursors: Arc<Mutex<CursorStore>>) -> Vec<SourceRecord> {
        let (tx, mut rx) = mpsc::channel(1000);
        let pattern = dir.join(pattern).display().to_string();
        run(
            &spec(false),
            &pattern,
            cursors,
            tx,
            CancellationToken::new(),
        )
        .unwrap();
        let mut out = Vec::new();
        while let Ok(r) = rx.try_recv() {
            out.push(r);
        }
        out
    }

    #[test]
    fn reads_quoted_fields_and_empty_as_null() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.csv"),
            "id,name,note\n1,\"Smith, Jo\",\n2,\"say \"\"hi\"\"\",x\n",
        )
        .unwrap();
        let records = collect(
            dir.path(),
            "*.csv",
            Arc::new(Mutex::new(CursorStore::in_memory())),
        );
        assert_eq!(records.len(), 2);
        let first = records[0].payload.as_ref().unwrap();
        assert_eq!(first["name"], "Smith, Jo");
        assert_eq!(first["note"], serde_json::Value::Null);
        assert_eq!(records[1].payload.as_ref().unwrap()["name"], "say \"hi\"");
        assert!(records[0].offset < records[1].offset);
        assert_eq!(records[1].raw, "2,\"say \"\"hi\"\"\",x");
    }

    #[test]
    fn resumes_after_the_committed_position() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "id\n1\n2\n3\n").unwrap();
        let store = Arc::new(Mutex::new(CursorStore::open(
            dir.path().join("cursors.json"),
        )));
        let all = collect(dir.path(), "a.csv", store.clone());
        assert_eq!(all.len(), 3);
        store
            .lock()
            .unwrap()
            .commit(&[Ack {
                source_id: all[1].source_id.clone(),
                offset: all[1].offset,
            }])
            .unwrap();
        // A new process reading the saved cursors continues with record 3.
        let reopened = Arc::new(Mutex::new(CursorStore::open(
            dir.path().join("cursors.json"),
        )));
        let rest = collect(dir.path(), "a.csv", reopened);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].payload.as_ref().unwrap()["id"], "3");
    }

    #[test]
    fn no_matching_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = mpsc::channel(1);
        let pattern = dir.path().join("*.csv").display().to_string();
        let err = run(
            &spec(false),
            &pattern,
            Arc::new(Mutex::new(CursorStore::in_memory())),
            tx,
            CancellationToken::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no file matches"));
    }
}
