//! `aurora audit verify|head|tail|search`: reading and checking the audit log.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::audit::{self, Record};

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    action: AuditAction,
    /// The log [default: `audit.path` in the config, else audit/audit.jsonl in Aurora's data
    /// directory]
    #[arg(long, global = true, value_name = "FILE")]
    path: Option<PathBuf>,
    /// One JSON object per line (records as stored; for verify, one report)
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Check the chain: every record links to the one before it (exit status 1 if not)
    Verify {
        /// A head printed earlier by `aurora audit head` (kept elsewhere): it must still be in
        /// the chain, which finds records cut from the end
        #[arg(long, value_name = "SHA256")]
        head: Option<String>,
    },
    /// Print the chain's head: the hash the next record will link to. Keep it elsewhere to
    /// check later that nothing was cut from the end
    Head,
    /// The newest records
    Tail {
        /// How many
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Keep printing records as they are written
        #[arg(short, long)]
        follow: bool,
    },
    /// Records that match every filter given
    Search(SearchArgs),
}

#[derive(Debug, Args)]
struct SearchArgs {
    /// The user who acted
    #[arg(long)]
    actor: Option<String>,
    /// The action, or its area: `query.run`, `pipeline` (every pipeline action), `ask`
    #[arg(long)]
    action: Option<String>,
    /// ok, error or denied
    #[arg(long)]
    outcome: Option<String>,
    /// Records this recent (`1h`, `30m`) or since this time (RFC 3339)
    #[arg(long)]
    since: Option<String>,
    /// Text anywhere in the resource or details (case-insensitive)
    #[arg(long)]
    text: Option<String>,
    /// At most this many (the newest)
    #[arg(short = 'n', long)]
    limit: Option<usize>,
}

pub async fn run(global: &GlobalArgs, args: AuditArgs) -> Result<ExitCode> {
    let path = match args.path {
        Some(p) => p,
        None => {
            let config = super::session::load_config(global)?;
            config
                .audit
                .path
                .clone()
                .or_else(audit::default_path)
                .context("no data directory for the audit log; pass --path")?
        }
    };
    match args.action {
        AuditAction::Verify { head } => verify(&path, head.as_deref(), args.json),
        AuditAction::Head => {
            let report = audit::verify(&path, None).with_context(|| read_error(&path))?;
            match report.head {
                Some(head) => println!("{head}"),
                None => println!("{}", audit::GENESIS),
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Tail { lines, follow } => {
            let records = audit::read_all(&path).with_context(|| read_error(&path))?;
            let start = records.len().saturating_sub(lines);
            for r in &records[start..] {
                print_record(r, args.json);
            }
            if follow {
                follow_log(&path, records.last().map_or(0, |r| r.seq), args.json).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Search(filter) => {
            let since = filter.since.as_deref().map(parse_since).transpose()?;
            let records = audit::read_all(&path).with_context(|| read_error(&path))?;
            let found: Vec<&Record> = records
                .iter()
                .filter(|r| matches(r, &filter, since))
                .collect();
            let start = filter.limit.map_or(0, |n| found.len().saturating_sub(n));
            for r in &found[start..] {
                print_record(r, args.json);
            }
            if found.is_empty() && !args.json {
                eprintln!("no records match");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_error(path: &Path) -> String {
    format!("cannot read the audit log {}", path.display())
}

fn verify(path: &Path, head: Option<&str>, json: bool) -> Result<ExitCode> {
    let report = audit::verify(path, head).with_context(|| read_error(path))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for p in &report.problems {
            println!("{}:{}: {}", p.file.display(), p.line, p.message);
        }
        if report.expected_head_found == Some(false) {
            println!(
                "the head {} is not in the chain: records were cut from the end, or the log was \
                 rewritten since it was noted",
                head.unwrap_or_default()
            );
        }
        let files = report.files.len();
        let summary = format!(
            "{} record(s) in {files} file(s); head {}",
            report.records,
            report.head.as_deref().unwrap_or(audit::GENESIS)
        );
        if report.intact() {
            println!("chain intact: {summary}");
        } else {
            println!(
                "chain BROKEN ({} problem(s)): {summary}",
                report.problems.len()
            );
        }
    }
    Ok(if report.intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn parse_since(text: &str) -> Result<jiff::Timestamp> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    match humantime::parse_duration(text) {
        Ok(d) => {
            let span = jiff::SignedDuration::try_from(d)?;
            Ok(jiff::Timestamp::now().checked_sub(span)?)
        }
        Err(_) => bail!(
            "--since {text:?} is neither a duration (`1h`, `30m`) nor a time (`2026-12-07T20:00:00Z`)"
        ),
    }
}

fn matches(r: &Record, f: &SearchArgs, since: Option<jiff::Timestamp>) -> bool {
    if f.actor.as_ref().is_some_and(|a| *a != r.actor.user) {
        return false;
    }
    if let Some(a) = &f.action {
        let area = r.action.split('.').next().unwrap_or_default();
        if *a != r.action && a != area {
            return false;
        }
    }
    if f.outcome.as_ref().is_some_and(|o| o != r.outcome.name()) {
        return false;
    }
    if let Some(since) = since {
        match r.time.parse::<jiff::Timestamp>() {
            Ok(t) if t >= since => {}
            _ => return false,
        }
    }
    if let Some(text) = &f.text {
        let text = text.to_lowercase();
        let haystack = format!(
            "{} {}",
            r.resource,
            serde_json::Value::Object(r.detail.clone())
        );
        if !haystack.to_lowercase().contains(&text) {
            return false;
        }
    }
    true
}

fn print_record(r: &Record, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(r) {
            println!("{line}");
        }
        return;
    }
    let detail: Vec<String> = r
        .detail
        .iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
                other => other.to_string(),
            };
            let v = if v.chars().count() > 80 {
                format!("{}...", v.chars().take(77).collect::<String>())
            } else {
                v
            };
            format!("{k}={v}")
        })
        .collect();
    let resource = if r.resource.is_empty() {
        "-"
    } else {
        &r.resource
    };
    let line = format!(
        "{:>6}  {}  {}  {}  {resource}  {}  {}",
        r.seq,
        r.time,
        r.actor.user,
        r.action,
        r.outcome.name(),
        detail.join(" ")
    );
    println!("{}", line.trim_end());
}

/// Prints records after `last_seq` as they arrive, following the active file across rotation.
async fn follow_log(path: &Path, mut last_seq: u64, json: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let identity = |m: &std::fs::Metadata| (m.dev(), m.ino());
    let start = std::fs::metadata(path).ok();
    let mut offset = start.as_ref().map_or(0, |m| m.len());
    let mut current = start.as_ref().map(identity);
    let mut pending = Vec::new();
    loop {
        tokio::select! {
            _ = super::interrupted() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let Ok(mut file) = std::fs::File::open(path) else {
            continue;
        };
        let meta = file.metadata()?;
        let len = meta.len();
        if current != Some(identity(&meta)) || len < offset {
            current = Some(identity(&meta));
            // Rotated: the records not yet printed are at the end of the file set aside,
            // and read_all finds them by sequence number.
            for r in audit::read_all(path)? {
                if r.seq > last_seq {
                    print_record(&r, json);
                    last_seq = r.seq;
                }
            }
            offset = len;
            pending.clear();
            continue;
        }
        file.seek(SeekFrom::Start(offset))?;
        let read = file.read_to_end(&mut pending)?;
        offset += read as u64;
        while let Some(at) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            if let Ok(r) = serde_json::from_slice::<Record>(&line[..at]) {
                if r.seq > last_seq {
                    print_record(&r, json);
                    last_seq = r.seq;
                }
            }
        }
    }
}
