//! The audit log: one JSON line per platform action (who did what to what, and how it ended),
//! each line carrying the SHA-256 of the line before it, so that `aurora audit verify` finds a
//! record that was edited, removed or moved.
//!
//! A record (the full format is in docs/security.md):
//!
//! ```text
//! {"seq":7,"time":"2026-12-07T20:40:01.123Z","actor":{"user":"ana","uid":1000,"via":"os"},
//!  "action":"query.run","resource":"demo.events","outcome":"ok",
//!  "detail":{"sql":"SELECT ...","query_id":"...","rows":3,"ms":12},"prev":"9f2c..."}
//! ```
//!
//! `prev` is the SHA-256 (hex) of the previous line's bytes without its newline; the first
//! record ever has 64 zeros. Records are appended under an exclusive lock on `<path>.lock`, so
//! the workspace, `aurora serve` and one-off commands share one chain. A file that has grown
//! past `max_file_size` is renamed `<path>.<seq of its first record, 12 digits>` and the chain
//! goes on in a new file. Files and their directory are readable by their owner only.
//!
//! What a chain cannot show by itself: records cut from the end (the newest). `verify --head`
//! checks the chain against a head noted earlier (`aurora audit head`), e.g. one kept elsewhere.

mod read;
pub mod syslog;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use read::{files, read_all, verify, Problem, VerifyReport};

use crate::config::{AuditConfig, AuditSql};

/// `prev` of the first record ever.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted: the local OS user until a sign-in says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// How the user is known: `os` (the process's user).
    pub via: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Actor {
    /// The user this process runs as.
    pub fn os_user() -> Self {
        let uid = nix::unistd::getuid();
        let user = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string());
        Actor {
            user,
            uid: Some(uid.as_raw()),
            via: "os".into(),
            groups: Vec::new(),
        }
    }

    /// [`Actor::os_user`] with the names of the user's groups (which role bindings may name).
    pub fn os_user_with_groups() -> Self {
        let mut actor = Self::os_user();
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten();
        if let Some(user) = user {
            let name = std::ffi::CString::new(user.name.as_str()).ok();
            let gids = name
                .and_then(|n| nix::unistd::getgrouplist(&n, user.gid).ok())
                .unwrap_or_default();
            for gid in gids {
                if let Ok(Some(g)) = nix::unistd::Group::from_gid(gid) {
                    if !actor.groups.contains(&g.name) {
                        actor.groups.push(g.name);
                    }
                }
            }
        }
        actor
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// The action was tried and failed (the reason in `detail.error`).
    Error,
    /// Refused before it ran (a permission, or the audit log itself).
    Denied,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Denied => "denied",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub actor: Actor,
    /// What was done, `area.verb`: `query.run`, `ask`, `export`, `dashboard.deploy`,
    /// `pipeline.start`, `pipeline.pause`, ...
    pub action: String,
    /// What it was done to: a table, a dashboard, a pipeline, a file.
    pub resource: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub detail: Map<String, Value>,
    pub prev: String,
}

/// An action to record; the log adds the sequence number, time, actor and chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub action: String,
    pub resource: String,
    pub outcome: Outcome,
    pub detail: Map<String, Value>,
    /// Who acted, when not the log's own user (a control API client).
    pub actor: Option<Actor>,
}

impl Event {
    pub fn new(action: impl Into<String>, resource: impl Into<String>, outcome: Outcome) -> Self {
        Event {
            action: action.into(),
            resource: resource.into(),
            outcome,
            detail: Map::new(),
            actor: None,
        }
    }

    /// The action was done by `actor`, not by this process's user.
    pub fn by(mut self, actor: &Actor) -> Self {
        self.actor = Some(actor.clone());
        self
    }

    /// Adds a detail (`rows`, `ms`, `query_id`, `error`, ...).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }

    /// Marks the action failed, with the reason.
    pub fn failed(mut self, error: impl std::fmt::Display) -> Self {
        self.outcome = Outcome::Error;
        self.with("error", error.to_string())
    }

    /// Adds a query's text, or only its SHA-256 where the log is set to `sql: hash`.
    pub fn with_sql(self, key: &str, sql: &str, policy: AuditSql) -> Self {
        match policy {
            AuditSql::Full => self.with(key, sql),
            AuditSql::Hash => self.with(&format!("{key}_sha256"), hex(&Sha256::digest(sql))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot write the audit log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock the audit log {path}: {source}")]
    Lock { path: PathBuf, source: nix::Error },
}

impl AuditError {
    /// The error and its hint in one line, for front ends that show errors as text.
    pub fn with_hint(&self) -> String {
        format!("{self} (hint: {})", self.hint())
    }

    pub fn hint(&self) -> &'static str {
        "every action is recorded before Aurora reports it done; fix the file's permissions or \
         free space, or set `audit.path` to a writable place (see docs/security.md)"
    }
}

/// An append-only, hash-chained log at one path.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
    max_file_size: u64,
    actor: Actor,
    /// Where each record is also sent, after it is on disk.
    syslog: Option<std::sync::Arc<syslog::Syslog>>,
}

impl AuditLog {
    pub fn new(path: PathBuf, max_file_size: u64, actor: Actor) -> Self {
        AuditLog {
            path,
            max_file_size: max_file_size.max(1),
            actor,
            syslog: None,
        }
    }

    /// Each record is also sent to this syslog server.
    pub fn with_syslog(mut self, syslog: syslog::Syslog) -> Self {
        self.syslog = Some(std::sync::Arc::new(syslog));
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Appends `event` as the next record of the chain and waits until it is on disk.
    pub fn append(&self, event: Event) -> Result<Record, AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let lock = self.lock()?;
        let mut file = self.open_active().map_err(io)?;
        let mut tail = tail_of(&mut file, &self.path).map_err(io)?;
        if tail.len >= self.max_file_size {
            drop(file);
            let first = first_seq(&self.path).map_err(io)?.unwrap_or(tail.next_seq);
            std::fs::rename(&self.path, rotated_path(&self.path, first)).map_err(io)?;
            file = self.open_active().map_err(io)?;
            tail.len = 0;
            tail.torn = false;
        }
        let record = Record {
            seq: tail.next_seq,
            time: now(),
            actor: event.actor.unwrap_or_else(|| self.actor.clone()),
            action: event.action,
            resource: event.resource,
            outcome: event.outcome,
            detail: event.detail,
            prev: tail.prev,
        };
        let json = serde_json::to_string(&record).map_err(|e| io(e.into()))?;
        let mut line = Vec::with_capacity(json.len() + 2);
        if tail.torn {
            line.push(b'\n');
        }
        line.extend_from_slice(json.as_bytes());
        line.push(b'\n');
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)?;
        // Sent outside the lock: a slow syslog server must not hold up every other writer.
        drop(lock);
        if let Some(syslog) = &self.syslog {
            syslog.send(&json, record.outcome);
        }
        Ok(record)
    }

    /// Whether a record could be appended now (the lock taken, the file opened for appending),
    /// without appending one: asked before an action that cannot be undone.
    pub fn check_writable(&self) -> Result<(), AuditError> {
        let _lock = self.lock()?;
        self.open_active()
            .map(drop)
            .map_err(|source| AuditError::Io {
                path: self.path.clone(),
                source,
            })
    }

    fn lock(&self) -> Result<nix::fcntl::Flock<File>, AuditError> {
        let lock_path = sibling(&self.path, ".lock");
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| AuditError::Io {
                    path: self.path.clone(),
                    source,
                })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| AuditError::Io {
                path: lock_path.clone(),
                source,
            })?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, source)| {
            AuditError::Lock {
                path: lock_path,
                source,
            }
        })
    }

    fn open_active(&self) -> std::io::Result<File> {
        OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
    }
}

/// Where the chain stands at the end of the active file.
struct Tail {
    prev: String,
    next_seq: u64,
    len: u64,
    /// The file does not end with a newline (a write cut short).
    torn: bool,
}

/// The hash and sequence number the next record continues from: the active file's last line,
/// or, when it is empty, the newest rotated file's.
fn tail_of(file: &mut File, path: &Path) -> std::io::Result<Tail> {
    if let Some(tail) = end_of(file)? {
        return Ok(tail);
    }
    if let Some(newest) = files(path)?.into_iter().rev().find(|f| f != path) {
        if let Some(tail) = end_of(&mut File::open(&newest)?)? {
            // A new active file: nothing in it yet, nothing cut short.
            return Ok(Tail {
                len: 0,
                torn: false,
                ..tail
            });
        }
    }
    Ok(Tail {
        prev: GENESIS.to_string(),
        next_seq: 1,
        len: 0,
        torn: false,
    })
}

/// Where the chain stands at the end of `file`; None when it is empty.
fn end_of(file: &mut File) -> std::io::Result<Option<Tail>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let (last, torn) = last_line(file, len)?;
    let next_seq = match seq_of(&last) {
        Some(seq) => seq + 1,
        // The last line is not a record (cut short, or edited): continue after the highest
        // sequence number in the file.
        None => highest_seq(file)?.map_or(1, |s| s + 1),
    };
    Ok(Some(Tail {
        prev: line_hash(&last),
        next_seq,
        len,
        torn,
    }))
}

/// The file's last line (without its newline) and whether the file lacks a final newline.
fn last_line(file: &mut File, len: u64) -> std::io::Result<(Vec<u8>, bool)> {
    const CHUNK: u64 = 8192;
    let mut end = len;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let start = end.saturating_sub(CHUNK);
        let mut chunk = vec![0; (end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        // The newline that ends the last line does not start it.
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if let Some(at) = body.iter().rposition(|&b| b == b'\n') {
            let torn = tail.last() != Some(&b'\n');
            return Ok((body[at + 1..].to_vec(), torn));
        }
        if start == 0 {
            let torn = tail.last() != Some(&b'\n');
            return Ok((body.to_vec(), torn));
        }
        end = start;
    }
}

fn seq_of(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(line).ok().map(|s| s.seq)
}

fn highest_seq(file: &mut File) -> std::io::Result<Option<u64>> {
    file.seek(SeekFrom::Start(0))?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    Ok(text.split(|&b| b == b'\n').filter_map(seq_of).max())
}

fn first_seq(path: &Path) -> std::io::Result<Option<u64>> {
    use std::io::BufRead;
    let mut first = Vec::new();
    std::io::BufReader::new(File::open(path)?).read_until(b'\n', &mut first)?;
    Ok(seq_of(first.strip_suffix(b"\n").unwrap_or(&first)))
}

/// The SHA-256 of a line's bytes, hex: what the next record's `prev` holds.
pub fn line_hash(line: &[u8]) -> String {
    hex(&Sha256::digest(line))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn now() -> String {
    let now = jiff::Timestamp::now();
    format!("{:.3}", now)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(crate) fn rotated_path(path: &Path, first_seq: u64) -> PathBuf {
    sibling(path, &format!(".{first_seq:012}"))
}

/// The default place: `audit/audit.jsonl` in Aurora's data directory.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "aurora")
        .map(|d| d.data_dir().join("audit").join("audit.jsonl"))
}

/// The log a configuration asks for, or None when it is switched off.
pub fn from_config(config: &AuditConfig) -> Option<AuditLog> {
    if !config.enabled {
        return None;
    }
    let path = config.path.clone().or_else(default_path)?;
    let log = AuditLog::new(path, config.max_file_size, current_actor());
    match config
        .syslog
        .address
        .is_some()
        .then(|| syslog::Syslog::new(&config.syslog))
    {
        Some(Ok(s)) => Some(log.with_syslog(s)),
        Some(Err(e)) => {
            // The config check refuses such an address; should it get here, the file still keeps every record.
            tracing::warn!("audit.syslog: {e}; records go to the file only");
            Some(log)
        }
        None => Some(log),
    }
}

static ACTOR: OnceLock<Actor> = OnceLock::new();

/// The user this process acts for: the signed-in user ([`sign_in_as`]), else the OS user with
/// their groups.
pub fn current_actor() -> Actor {
    ACTOR.get_or_init(Actor::os_user_with_groups).clone()
}

/// Makes `actor` (a sign-in) the user this process acts for; only before anything asked who
/// that is (false then).
pub fn sign_in_as(actor: Actor) -> bool {
    ACTOR.set(actor).is_ok()
}

/// The process's log and its settings, set once from the configuration.
struct Global {
    log: Option<AuditLog>,
    sql: AuditSql,
    refuse_reads: bool,
}

static GLOBAL: OnceLock<Global> = OnceLock::new();

/// Sets the process's audit log from the configuration (the first call wins).
pub fn init(config: &AuditConfig) {
    let _ = GLOBAL.set(Global {
        log: from_config(config),
        sql: config.sql,
        refuse_reads: !config.allow_reads_unrecorded,
    });
}

/// How queries appear in this process's records.
pub fn sql_policy() -> AuditSql {
    GLOBAL.get().map_or(AuditSql::Full, |g| g.sql)
}

/// Records an action that changed something. An error means the record is not written and the
/// caller must report the action as failed to be recorded.
pub fn record(event: Event) -> Result<(), AuditError> {
    match GLOBAL.get().and_then(|g| g.log.as_ref()) {
        Some(log) => log.append(event).map(drop),
        None => Ok(()),
    }
}

/// Records a read-only action (a query, a question). When the record cannot be written, the
/// action's result is withheld unless `audit.allow_reads_unrecorded` is set, in which case a
/// warning is logged instead.
pub fn record_read(event: Event) -> Result<(), AuditError> {
    as_read(record(event))
}

/// A read goes on when its record fails, with a warning, if `audit.allow_reads_unrecorded`.
fn as_read(result: Result<(), AuditError>) -> Result<(), AuditError> {
    match result {
        Err(e) if !GLOBAL.get().is_some_and(|g| g.refuse_reads) => {
            tracing::warn!("{e}; the read goes on unrecorded (audit.allow_reads_unrecorded)");
            Ok(())
        }
        other => other,
    }
}

/// [`record`] or [`record_read`] off the async runtime's threads (the write waits for the
/// disk); the error as text, for front ends that report errors as text.
pub async fn record_in_background(event: Event, read: bool) -> Result<(), String> {
    let written = tokio::task::spawn_blocking(move || {
        if read {
            record_read(event)
        } else {
            record(event)
        }
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.with_hint()),
        Err(e) => Err(format!("the audit record was not written: {e}")),
    }
}

/// Does `act`, a change that cannot be undone, only when the log can take its record, then
/// records how it ended (`event`'s outcome becomes an error with the reason if it failed).
pub fn change<T>(event: Event, act: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    check_writable()?;
    let result = act();
    let event = match &result {
        Ok(_) => event,
        Err(e) => event.failed(format!("{e:#}")),
    };
    record(event)?;
    result
}

/// A query's record: the tables it names as the resource (`(not parsed)` when its text does
/// not parse), its text or hash as the log is set, and its ClickHouse `query_id`, which joins
/// the record to `system.query_log`.
pub fn query_event(action: &str, sql: &str, query_id: Option<&str>) -> Event {
    let resource = match crate::warehouse::relations::tables_in(sql) {
        Some(tables) => tables.join(","),
        None => "(not parsed)".to_string(),
    };
    let event = Event::new(action, resource, Outcome::Ok).with_sql("sql", sql, sql_policy());
    match query_id {
        Some(id) => event.with("query_id", id),
        None => event,
    }
}

/// A question's record: the question, the SQL the assistant wrote (or why it wrote none),
/// whether it was accepted, and the run's `query_id` and rows when it ran.
pub fn ask_event(answer: &crate::assistant::ask::Answer) -> Event {
    let mut event = Event::new("ask", answer.tables.join(","), Outcome::Ok)
        .with("question", answer.question.as_str())
        .with("accepted", answer.sql.is_some())
        .with("attempts", answer.attempts.len() as u64);
    if let Some(sql) = &answer.sql {
        event = event.with_sql("sql", sql, sql_policy());
    }
    if let Some(result) = &answer.result {
        event = event
            .with("query_id", result.stats.query_id.as_str())
            .with("rows", result.stats.result_rows);
    }
    match &answer.failure {
        Some(failure) => event.failed(failure),
        None => event,
    }
}

/// Asks whether a read (a query, a question) may start: the log must be writable, unless
/// `audit.allow_reads_unrecorded` is set.
pub fn may_read() -> Result<(), AuditError> {
    as_read(check_writable())
}

/// Asks whether an action that cannot be undone may start: the log must be writable.
pub fn check_writable() -> Result<(), AuditError> {
    match GLOBAL.get().and_then(|g| g.log.as_ref()) {
        Some(log) => log.check_writable(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
