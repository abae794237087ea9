//! CSV files as a source: a file or a glob, read record by record with the `csv` crate.
//!
//! Each record's position is the byte offset just past it in its file, so a restart resumes by
//! seeking, not re-reading. Positions are saved only for records the sink has acknowledged
//! (`CursorStore::commit`), in a small JSON file per pipeline. In follow mode a file is re-read
//! from the saved position as it grows, a last line without its newline is left for later (it
//! may still be being written), and new files matching the glob are picked up.
//!
//! A file is known by its identity (device, inode and a hash of its first bytes), saved with
//! its cursor, not only by its name: a file replaced under the same name is read from its
//! start as a new stream (`csv:<path>#<fingerprint>`), a renamed one goes on where it was, and one
//! truncated or rewritten in place stops the pipeline or, with `on_truncate: reread`, is read
//! again as a new stream. A saved position is only ever used on the file it was saved for.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use serde::{Deserialize, Serialize};

use super::{Warning, WarningReporter};
use crate::ingest::pipeline::{CsvSource, OnTruncate};
use crate::ingest::queue::RecordSender;
use crate::ingest::record::{Ack, Payload, Row, SourceRecord};

#[derive(Debug, thiserror::Error)]
pub enum CsvSourceError {
    #[error("`{pattern}` is not a valid file pattern: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("no file matches `{0}`")]
    NoFiles(String),
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error(
        "{path} was truncated or rewritten in place: {detail}. Nothing after that was read. \
         To read it again from its start as a new file, set `on_truncate: reread` on the source; \
         to go on with the old data, restore the file"
    )]
    Truncated { path: PathBuf, detail: String },
}

/// What identifies a file beyond its name: its device and inode, and a hash of its first
/// bytes. A file replaced under the same name (rotation, a new export) has a new inode; one
/// rewritten in place has a new head; a renamed one keeps both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// Where the file was last seen.
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    /// When the file was created (nanoseconds since the epoch), where the file system says:
    /// a deleted file's inode may be reused by the next file created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_ns: Option<u64>,
    /// How many leading bytes `head_sha256` covers (fewer than `HEAD_BYTES` for a file that
    /// was that short when first seen).
    pub head_len: u64,
    pub head_sha256: String,
}

impl FileIdentity {
    /// Whether two identities are of the same file (whatever its name and content now).
    fn same_file(&self, other: &FileIdentity) -> bool {
        self.dev == other.dev
            && self.ino == other.ino
            && match (self.created_ns, other.created_ns) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// The leading bytes a file's identity hashes.
const HEAD_BYTES: u64 = 1024;

/// A file as it is now: its identity (head hashed over up to `HEAD_BYTES`) and length.
struct Observed {
    identity: FileIdentity,
    len: u64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The first `n` bytes of a file (fewer if it is shorter).
fn head(path: &Path, n: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    File::open(path)?.take(n).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn observe(path: &Path) -> std::io::Result<Observed> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    let bytes = head(path, HEAD_BYTES)?;
    Ok(Observed {
        identity: FileIdentity {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            created_ns: meta
                .created()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| u64::try_from(d.as_nanos()).ok()),
            head_len: bytes.len() as u64,
            head_sha256: sha256_hex(&bytes),
        },
        len: meta.len(),
    })
}

/// How far each file has been stored, kept in `cursors.json` in the pipeline's state
/// directory, with each CSV file's identity (SQL sources keep only a cursor).
#[derive(Debug, Default)]
pub struct CursorStore {
    path: Option<PathBuf>,
    saved: Saved,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    #[serde(default)]
    cursors: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    files: BTreeMap<String, FileIdentity>,
}

/// `cursors.json` as this version writes it, or as versions before file identities did
/// (a plain map of cursors).
#[derive(Deserialize)]
#[serde(untagged)]
enum OnDisk {
    Current(Saved),
    Cursors(BTreeMap<String, u64>),
}

impl CursorStore {
    /// Loads the store at `path`; a missing file means "from the start". A file that is there
    /// but cannot be read is an error: starting over would read everything again.
    pub fn open(path: PathBuf) -> std::io::Result<Self> {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: Some(path),
                    saved: Saved::default(),
                })
            }
            Err(e) => return Err(e),
        };
        let saved = match serde_json::from_str::<OnDisk>(&text) {
            Ok(OnDisk::Current(saved)) => saved,
            Ok(OnDisk::Cursors(cursors)) => Saved {
                cursors,
                files: BTreeMap::new(),
            },
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "it is not a cursor file Aurora wrote ({e}); move it away to start over"
                    ),
                ))
            }
        };
        Ok(Self {
            path: Some(path),
            saved,
        })
    }

    pub fn in_memory() -> Self {
        Self::default()
    }

    pub fn get(&self, source_id: &str) -> u64 {
        self.saved(source_id).unwrap_or(0)
    }

    /// The saved position of a stream, if one was ever saved.
    pub fn saved(&self, source_id: &str) -> Option<u64> {
        self.saved.cursors.get(source_id).copied()
    }

    /// Every stream with a saved position.
    pub fn cursors(&self) -> impl Iterator<Item = (&str, u64)> {
        self.saved.cursors.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Whether a source id was ever given to a stream (it must never name another one).
    fn is_taken(&self, source_id: &str) -> bool {
        self.saved.cursors.contains_key(source_id) || self.saved.files.contains_key(source_id)
    }

    /// Records that everything up to each ack's offset is stored, and saves the file
    /// atomically (write, then rename).
    pub fn commit(&mut self, acks: &[Ack]) -> std::io::Result<()> {
        for ack in acks {
            let e = self
                .saved
                .cursors
                .entry(ack.source_id.to_string())
                .or_insert(0);
            *e = (*e).max(ack.offset);
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.saved).map_err(std::io::Error::other)?;
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

/// Which stream a file on disk is, and where to go on reading it.
struct Resolved {
    id: Arc<str>,
    start: u64,
}

/// Matches the files a pattern names to the streams read before, by identity rather than by
/// name, and hands out new source ids for new files.
struct Streams<'a> {
    spec: &'a CsvSource,
    cursors: &'a Mutex<CursorStore>,
    warn: &'a WarningReporter,
    /// Positions handed out in this run, so follow mode continues from there rather than
    /// from the last acknowledged cursor (which lags behind).
    sent: BTreeMap<Arc<str>, u64>,
    /// The length each stream's file had when last read in this run.
    seen_len: BTreeMap<Arc<str>, u64>,
}

impl Streams<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, CursorStore> {
        self.cursors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the stream `id` stands: what this run sent, else the saved cursor.
    fn position(&self, id: &str) -> u64 {
        self.sent
            .get(id)
            .copied()
            .unwrap_or_else(|| self.lock().get(id))
    }

    /// `listing` is every file the pattern names now, so that a file renamed to another
    /// matching name is not taken for gone.
    fn resolve(
        &mut self,
        path: &Path,
        now: &Observed,
        listing: &[(PathBuf, Observed)],
    ) -> Result<Resolved, CsvSourceError> {
        let read_err = |e: std::io::Error| CsvSourceError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        // The stream whose file this is: same device, inode and creation time.
        let same_inode: Option<(String, FileIdentity)> = self
            .lock()
            .saved
            .files
            .iter()
            .find(|(_, f)| f.same_file(&now.identity))
            .map(|(id, f)| (id.clone(), f.clone()));
        if let Some((id, known)) = same_inode {
            let position = self.position(&id);
            let head_now = if now.len >= known.head_len {
                Some(sha256_hex(&head(path, known.head_len).map_err(read_err)?))
            } else {
                None
            };
            let problem = if head_now.as_deref() != Some(known.head_sha256.as_str()) {
                Some(format!(
                    "its first {} bytes are not the ones it had when reading began",
                    known.head_len
                ))
            } else if now.len < position {
                Some(format!(
                    "it is {} bytes long now, but {position} bytes of it had been read",
                    now.len
                ))
            } else {
                None
            };
            let id: Arc<str> = Arc::from(id);
            if let Some(detail) = problem {
                return self.truncated(path, now, id, detail);
            }
            // Same file: keep its identity current (a rename, a head that grew longer).
            let mut store = self.lock();
            if let Some(f) = store.saved.files.get_mut(&*id) {
                f.path = path.to_path_buf();
                if now.identity.head_len > f.head_len {
                    f.head_len = now.identity.head_len;
                    f.head_sha256 = now.identity.head_sha256.clone();
                }
            }
            return Ok(Resolved {
                id,
                start: position,
            });
        }
        let path_id = source_id(path);
        let legacy = {
            let store = self.lock();
            store.saved(&path_id).is_some() && !store.saved.files.contains_key(&path_id)
        };
        if legacy {
            // Saved by a version that kept no identity: take the file at the path as it.
            let id: Arc<str> = Arc::from(path_id);
            let position = self.position(&id);
            if now.len < position {
                let detail = format!(
                    "it is {} bytes long now, but {position} bytes of it had been read",
                    now.len
                );
                return self.truncated(path, now, id, detail);
            }
            self.lock()
                .saved
                .files
                .insert(id.to_string(), now.identity.clone());
            return Ok(Resolved {
                id,
                start: position,
            });
        }
        // A file not read before. If another one was at this path and is not among the
        // files now, it was replaced.
        let listed = |f: &FileIdentity| listing.iter().any(|(_, o)| f.same_file(&o.identity));
        let previous = self
            .lock()
            .saved
            .files
            .iter()
            .find(|(_, f)| f.path == path && !listed(f))
            .map(|(id, _)| id.clone());
        if let Some(old) = previous {
            // Its cursor stays, so its id is never handed out again.
            self.lock().saved.files.remove(&old);
            let read = self.position(&old);
            let unread = self
                .seen_len
                .get(old.as_str())
                .map(|len| len.saturating_sub(read))
                .filter(|n| *n > 0)
                .map(|n| format!("; {n} bytes it had when last seen were not read (it is gone)"))
                .unwrap_or_default();
            (self.warn)(Warning::new(
                "file_replaced",
                format!(
                    "{} was replaced by another file; the old one was read to byte {read}{unread}; \
                     reading the new one from its start",
                    path.display()
                ),
            ));
        }
        self.new_stream(path, now)
    }

    /// A file truncated or rewritten in place: an error, or with `on_truncate: reread`, a new
    /// stream from its start.
    fn truncated(
        &mut self,
        path: &Path,
        now: &Observed,
        old: Arc<str>,
        detail: String,
    ) -> Result<Resolved, CsvSourceError> {
        if self.spec.on_truncate == OnTruncate::Fail {
            return Err(CsvSourceError::Truncated {
                path: path.to_path_buf(),
                detail,
            });
        }
        (self.warn)(Warning::new(
            "file_truncated",
            format!(
                "{} was truncated or rewritten in place ({detail}); reading it again from its start (`on_truncate: reread`)",
                path.display()
            ),
        ));
        // The old stream keeps its cursor, so its id is never handed out again.
        self.lock().saved.files.remove(&*old);
        self.new_stream(path, now)
    }

    /// Gives a file its source id: its path and a fingerprint of the file itself,
    /// `csv:<path>#<fingerprint>`. A fingerprint, not a counter, so that a state directory
    /// started afresh names a file as before (its rows are recognised as stored) and a
    /// different file differently (its rows are not taken for another's). A stream read again
    /// after a truncation gets `-2`, `-3`, ... after it.
    fn new_stream(&mut self, path: &Path, now: &Observed) -> Result<Resolved, CsvSourceError> {
        let base = format!("{}#{}", source_id(path), fingerprint(&now.identity));
        let mut store = self.lock();
        let id = std::iter::once(base.clone())
            .chain((2u32..).map(|n| format!("{base}-{n}")))
            .find(|id| !store.is_taken(id))
            .unwrap_or(base);
        store.saved.files.insert(id.clone(), now.identity.clone());
        Ok(Resolved {
            id: Arc::from(id),
            start: 0,
        })
    }
}

/// Twelve hex digits naming one file: its device, inode, creation time and first KiB. A file
/// that was shorter when first seen and grew is named differently when seen afresh (read again
/// in full: duplicates rather than a loss); the same complete file, the same way.
fn fingerprint(identity: &FileIdentity) -> String {
    let mut bytes = Vec::with_capacity(96);
    bytes.extend_from_slice(&identity.dev.to_le_bytes());
    bytes.extend_from_slice(&identity.ino.to_le_bytes());
    bytes.extend_from_slice(&identity.created_ns.unwrap_or(0).to_le_bytes());
    bytes.extend_from_slice(identity.head_sha256.as_bytes());
    sha256_hex(&bytes)[..12].to_string()
}

/// Reads the files of `spec` (pattern already resolved against the pipeline file) and sends
/// their records on `tx` until done (or, in follow mode, until cancelled). Blocking: run it on
/// a blocking thread.
pub fn run(
    spec: &CsvSource,
    pattern: &str,
    cursors: Arc<Mutex<CursorStore>>,
    tx: RecordSender,
    cancel: CancellationToken,
    warn: WarningReporter,
) -> Result<(), CsvSourceError> {
    let delimiter = spec.delimiter.as_bytes().first().copied().unwrap_or(b',');
    let mut streams = Streams {
        spec,
        cursors: &cursors,
        warn: &warn,
        sent: BTreeMap::new(),
        seen_len: BTreeMap::new(),
    };
    loop {
        let files = matching_files(pattern)?;
        if files.is_empty() && !spec.follow {
            return Err(CsvSourceError::NoFiles(pattern.to_string()));
        }
        let mut listing = Vec::with_capacity(files.len());
        for file in files {
            match observe(&file) {
                Ok(now) => listing.push((file, now)),
                // Gone between the listing and now (rotated away): the next poll sees what
                // is there instead.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && spec.follow => {}
                Err(e) => {
                    return Err(CsvSourceError::Read {
                        path: file,
                        reason: e.to_string(),
                    })
                }
            }
        }
        for (file, now) in &listing {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let Resolved { id, start } = streams.resolve(file, now, &listing)?;
            let end = read_file(file, &id, start, spec, delimiter, &tx, &cancel)?;
            streams.seen_len.insert(id.clone(), now.len);
            streams.sent.insert(id, end);
        }
        if !spec.follow || cancel.is_cancelled() || tx.is_closed() {
            return Ok(());
        }
        std::thread::sleep(spec.poll_interval);
    }
}

/// Records read before they are queued together.
const SEND_BURST: usize = 256;

/// Sends the complete records of `path` after byte `start`; returns where it stopped.
fn read_file(
    path: &Path,
    id: &Arc<str>,
    start: u64,
    spec: &CsvSource,
    delimiter: u8,
    tx: &RecordSender,
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
    let headers: Arc<[String]> = if spec.header {
        reader
            .headers()
            .map_err(|e| read_err(e.to_string()))?
            .iter()
            .map(str::to_string)
            .collect()
    } else {
        Arc::from([])
    };
    if start > reader.position().byte() {
        let mut pos = csv::Position::new();
        pos.set_byte(start);
        reader.seek(pos).map_err(|e| read_err(e.to_string()))?;
    }
    let mut position = reader.position().byte().max(start);
    let mut record = csv::StringRecord::new();
    let mut lines = LineWriter::new(delimiter);
    // Records go to the queue in bursts: entering the runtime once per record cost more than
    // parsing it. `position` follows what was sent.
    let mut pending = Vec::with_capacity(SEND_BURST);
    let send = |pending: &mut Vec<SourceRecord>, position: &mut u64| {
        let Some(last) = pending.last().map(|r| r.offset) else {
            return true;
        };
        let count = pending.len();
        let sent = tx.blocking_send_all(pending.drain(..));
        if sent == count {
            *position = last;
        }
        sent == count
    };
    loop {
        // Checked between bursts: a burst is read in well under a millisecond.
        if pending.is_empty() && cancel.is_cancelled() {
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
        pending.push(SourceRecord {
            source_id: id.clone(),
            offset: end,
            raw: lines.line(&record),
            payload: Ok(Payload::Row(Row {
                header: headers.clone(),
                fields: record.clone(),
            })),
        });
        if pending.len() == SEND_BURST && !send(&mut pending, &mut position) {
            // The pipeline is shutting down.
            return Ok(position);
        }
    }
    send(&mut pending, &mut position);
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

/// The header of the first file `pattern` names (for records re-read from their raw line).
pub fn header_of_first_file(pattern: &str, delimiter: u8) -> Result<Vec<String>, CsvSourceError> {
    let file = matching_files(pattern)?
        .into_iter()
        .next()
        .ok_or_else(|| CsvSourceError::NoFiles(pattern.to_string()))?;
    let read_err = |e: csv::Error| CsvSourceError::Read {
        path: file.clone(),
        reason: e.to_string(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_path(&file)
        .map_err(read_err)?;
    Ok(reader
        .headers()
        .map_err(read_err)?
        .iter()
        .map(str::to_string)
        .collect())
}

/// One raw CSV line (as the dead-letter table keeps it) as the record the source made of it.
pub fn parse_line(
    headers: &[String],
    delimiter: u8,
    raw: &str,
) -> Result<serde_json::Value, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(raw.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(Row {
            header: Arc::from(headers),
            fields: record,
        }
        .to_json()),
        Ok(false) => Err("the line is empty".into()),
        Err(e) => Err(format!("not a CSV line: {e}")),
    }
}

/// Writes records back as CSV lines, for the dead-letter table. One per file: a `csv::Writer`
/// set up per record would allocate (and zero) its whole buffer every time.
struct LineWriter(csv::Writer<LineBuffer>);

/// What the writer writes into, taken out after each record.
#[derive(Default)]
struct LineBuffer(std::cell::RefCell<Vec<u8>>);

impl std::io::Write for LineBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.get_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LineWriter {
    fn new(delimiter: u8) -> LineWriter {
        LineWriter(
            csv::WriterBuilder::new()
                .delimiter(delimiter)
                .flexible(true)
                .buffer_capacity(1024)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(LineBuffer::default()),
        )
    }

    /// The record as one line, without its newline.
    fn line(&mut self, record: &csv::StringRecord) -> String {
        if self.0.write_record(record).is_err() || self.0.flush().is_err() {
            self.0.get_ref().0.take();
            return record.iter().collect::<Vec<_>>().join(",");
        }
        let mut bytes = self.0.get_ref().0.take();
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        // The fields came from a `StringRecord`, so the line is UTF-8.
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
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
            on_truncate: OnTruncate::Fail,
        }
    }

    /// One run over `pattern` in `dir`: its records, its warnings, or its error.
    struct Outcome {
        records: Vec<SourceRecord>,
        warnings: Vec<Warning>,
        result: Result<(), CsvSourceError>,
    }

    fn read_with(
        spec: &CsvSource,
        dir: &Path,
        pattern: &str,
        cursors: Arc<Mutex<CursorStore>>,
    ) -> Outcome {
        let (tx, mut rx) = crate::ingest::queue::channel(1000, 1 << 30);
        let pattern = dir.join(pattern).display().to_string();
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let sink = warnings.clone();
        let warn: WarningReporter = Arc::new(move |w| sink.lock().unwrap().push(w));
        // As in the engine: a blocking thread of a runtime.
        let spec = spec.clone();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let task = runtime.spawn_blocking(move || {
            run(&spec, &pattern, cursors, tx, CancellationToken::new(), warn)
        });
        let result = runtime.block_on(task).unwrap();
        let mut records = Vec::new();
        while let Some(r) = rx.try_recv() {
            records.push(r);
        }
        let warnings = warnings.lock().unwrap().clone();
        Outcome {
            records,
            warnings,
            result,
        }
    }

    fn collect(dir: &Path, pattern: &str, cursors: Arc<Mutex<CursorStore>>) -> Vec<SourceRecord> {
        let outcome = read_with(&spec(false), dir, pattern, cursors);
        outcome.result.unwrap();
        outcome.records
    }

    fn ids(records: &[SourceRecord]) -> Vec<String> {
        records
            .iter()
            .map(|r| {
                r.payload.clone().unwrap().into_json()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    /// Saves, as the engine would once stored, the position of every record read.
    fn store_all(store: &Arc<Mutex<CursorStore>>, records: &[SourceRecord]) {
        let acks: Vec<Ack> = records
            .iter()
            .map(|r| Ack {
                source_id: r.source_id.clone(),
                offset: r.offset,
            })
            .collect();
        store.lock().unwrap().commit(&acks).unwrap();
    }

    fn reopen(dir: &Path) -> Arc<Mutex<CursorStore>> {
        Arc::new(Mutex::new(
            CursorStore::open(dir.join("cursors.json")).unwrap(),
        ))
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
        let first = records[0].payload.clone().unwrap().into_json();
        assert_eq!(first["name"], "Smith, Jo");
        assert_eq!(first["note"], serde_json::Value::Null);
        assert_eq!(
            records[1].payload.clone().unwrap().into_json()["name"],
            "say \"hi\""
        );
        assert!(records[0].offset < records[1].offset);
        assert_eq!(records[1].raw, "2,\"say \"\"hi\"\"\",x");
    }

    #[test]
    fn resumes_after_the_committed_position() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "id\n1\n2\n3\n").unwrap();
        let store = reopen(dir.path());
        let all = collect(dir.path(), "a.csv", store.clone());
        assert_eq!(all.len(), 3);
        store_all(&store, &all[..2]);
        // A new process reading the saved cursors continues with record 3.
        let rest = collect(dir.path(), "a.csv", reopen(dir.path()));
        assert_eq!(ids(&rest), ["3"]);
    }

    #[test]
    fn a_file_replaced_under_its_name_is_read_from_its_start_as_a_new_stream() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.csv");
        std::fs::write(&file, "id\n1\n2\n3\n").unwrap();
        let store = reopen(dir.path());
        let first = collect(dir.path(), "a.csv", store.clone());
        store_all(&store, &first);
        // A new export with longer lines: the old cursor points into the middle of a record.
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, "id\n1000\n2000\n3000\n4000\n").unwrap();
        let second = read_with(&spec(false), dir.path(), "a.csv", reopen(dir.path()));
        second.result.unwrap();
        assert_eq!(ids(&second.records), ["1000", "2000", "3000", "4000"]);
        let new_id = &second.records[0].source_id;
        assert_ne!(new_id, &first[0].source_id);
        assert!(new_id.contains("a.csv#"), "{new_id}");
        assert_eq!(second.warnings.len(), 1);
        assert_eq!(second.warnings[0].kind, "file_replaced");
    }

    #[test]
    fn a_fresh_state_names_the_same_file_as_before_and_another_file_differently() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.csv");
        std::fs::write(&file, "id\n1\n2\n").unwrap();
        let fresh = || Arc::new(Mutex::new(CursorStore::in_memory()));
        let first = collect(dir.path(), "a.csv", fresh());
        let again = collect(dir.path(), "a.csv", fresh());
        assert_eq!(first[0].source_id, again[0].source_id);
        // Replaced by another file: whatever state reads it, it is not the first one.
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, "id\n3\n4\n").unwrap();
        let other = collect(dir.path(), "a.csv", fresh());
        assert_ne!(first[0].source_id, other[0].source_id);
    }

    #[test]
    fn a_renamed_file_goes_on_where_it_was() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "id\n1\n2\n").unwrap();
        let store = reopen(dir.path());
        let first = collect(dir.path(), "*.csv", store.clone());
        store_all(&store, &first);
        std::fs::rename(dir.path().join("a.csv"), dir.path().join("b.csv")).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("b.csv"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"3\n").unwrap();
        let second = read_with(&spec(false), dir.path(), "*.csv", reopen(dir.path()));
        second.result.unwrap();
        assert_eq!(ids(&second.records), ["3"]);
        assert_eq!(second.records[0].source_id, first[0].source_id);
        assert!(second.warnings.is_empty(), "{:?}", second.warnings);
    }

    #[test]
    fn a_truncated_file_fails_or_is_reread_as_the_setting_says() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.csv");
        std::fs::write(&file, "id\n1\n2\n3\n4\n").unwrap();
        let store = reopen(dir.path());
        let first = collect(dir.path(), "a.csv", store.clone());
        store_all(&store, &first);
        // Same inode, same head, shorter: cut in place.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(7)
            .unwrap();
        let failed = read_with(&spec(false), dir.path(), "a.csv", reopen(dir.path()));
        let err = failed.result.unwrap_err().to_string();
        assert!(
            err.contains("truncated") && err.contains("on_truncate: reread"),
            "{err}"
        );
        assert!(failed.records.is_empty());
        let mut reread = spec(false);
        reread.on_truncate = OnTruncate::Reread;
        let again = read_with(&reread, dir.path(), "a.csv", reopen(dir.path()));
        again.result.unwrap();
        assert_eq!(ids(&again.records), ["1", "2"]);
        assert_ne!(again.records[0].source_id, first[0].source_id);
        assert_eq!(again.warnings[0].kind, "file_truncated");
        // Rewritten in place (copytruncate, then new lines): a new head, the same inode.
        std::fs::write(&file, "id\n77\n").unwrap();
        let rewritten = read_with(&spec(false), dir.path(), "a.csv", reopen(dir.path()));
        assert!(rewritten.result.unwrap_err().to_string().contains("first"));
    }

    #[test]
    fn cursors_saved_before_file_identities_still_resume() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.csv");
        std::fs::write(&file, "id\n1\n2\n3\n").unwrap();
        let id = source_id(&file);
        std::fs::write(
            dir.path().join("cursors.json"),
            serde_json::json!({ id.clone(): 5 }).to_string(),
        )
        .unwrap();
        let store = reopen(dir.path());
        assert_eq!(store.lock().unwrap().saved(&id), Some(5));
        let rest = collect(dir.path(), "a.csv", store.clone());
        assert_eq!(ids(&rest), ["2", "3"]);
        store_all(&store, &rest);
        let saved = std::fs::read_to_string(dir.path().join("cursors.json")).unwrap();
        assert!(saved.contains("head_sha256"), "{saved}");
    }

    #[test]
    fn an_unreadable_cursor_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cursors.json"), "{\"cursors\": [1,").unwrap();
        let err = CursorStore::open(dir.path().join("cursors.json")).unwrap_err();
        assert!(err.to_string().contains("move it away"), "{err}");
        assert!(CursorStore::open(dir.path().join("missing.json")).is_ok());
    }

    #[test]
    fn no_matching_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = read_with(
            &spec(false),
            dir.path(),
            "*.csv",
            Arc::new(Mutex::new(CursorStore::in_memory())),
        );
        assert!(outcome
            .result
            .unwrap_err()
            .to_string()
            .contains("no file matches"));
    }
}
