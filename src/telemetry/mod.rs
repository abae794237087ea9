//! Logging setup shared by every command: `tracing` events go to stderr, filtered by
//! `AURORA_LOG` (e.g. `AURORA_LOG=aurora=debug`) or by `-v` flags, so stdout stays clean for
//! machine-readable output.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `verbosity` counts `-v` flags: 0 warnings, 1 info, 2+ debug.
pub fn init(verbosity: u8) {
    let default = match verbosity {
        0 => "aurora=warn",
        1 => "aurora=info",
        _ => "aurora=debug",
    };
    let filter = EnvFilter::try_from_env("AURORA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // A second init (tests calling into the CLI twice) is harmless; ignore it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
