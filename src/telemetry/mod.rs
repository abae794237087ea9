//! Logging setup shared by every command: `tracing` events go to stderr, filtered by
//! `AURORA_LOG` (e.g. `AURORA_LOG=aurora=debug`) or by `-v` flags, so stdout stays clean for
//! machine-readable output.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Where log lines go: stderr, or a file while the full-screen workspace owns the terminal
/// (a line on stderr would land in the middle of the screen).
static LOG_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

#[derive(Clone, Copy)]
struct LogSink;

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match LOG_FILE.lock().ok().as_deref_mut().and_then(Option::as_mut) {
            Some(file) => file.write(buf),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match LOG_FILE.lock().ok().as_deref_mut().and_then(Option::as_mut) {
            Some(file) => file.flush(),
            None => std::io::stderr().flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// Sends log lines to `path` (appending) until `log_to_stderr`.
pub fn log_to_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if let Ok(mut sink) = LOG_FILE.lock() {
        *sink = Some(file);
    }
    Ok(())
}

pub fn log_to_stderr() {
    if let Ok(mut sink) = LOG_FILE.lock() {
        *sink = None;
    }
}

/// Where the workspace writes its log: `<data dir>/aurora.log`.
pub fn log_file_path() -> Option<std::path::PathBuf> {
    directories::ProjectDirs::from("", "", "aurora").map(|d| d.data_dir().join("aurora.log"))
}

static PROCESS_START: OnceLock<Instant> = OnceLock::new();

/// Called first thing in `main`, so start-up times count from there.
pub fn mark_process_start() {
    let _ = PROCESS_START.set(Instant::now());
}

pub fn since_process_start() -> Duration {
    PROCESS_START.get_or_init(Instant::now).elapsed()
}

/// The process's peak resident memory (`VmHWM`), on Linux.
pub fn peak_rss_kib() -> Option<u64> {
    proc_status_kib("VmHWM:")
}

/// The process's resident memory now (`VmRSS`), on Linux.
pub fn rss_kib() -> Option<u64> {
    proc_status_kib("VmRSS:")
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Installs the global subscriber. `verbosity` counts `-v` flags: 0 warnings, 1 info, 2+ debug.
pub fn init(verbosity: u8) {
    let default = match verbosity {
        0 => "aurora=warn",
        1 => "aurora=info",
        _ => "aurora=debug",
    };
    let filter = EnvFilter::try_from_env("AURORA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // A second init (tests calling into the CLI twice) is harmless; ignore it.
    // Colours only for a person at a terminal: a service manager's journal or a container
    // log would keep the escape codes as text.
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(LogSink)
        .with_target(false)
        .try_init();
}
