//! `aurora config check [PATH]` prints every problem in a config file at once, and
//! `aurora config path` / `defaults` show where the file lives and what it can hold.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use crate::config;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate a config file and print every problem with file:line:column (exit 1 if any)
    Check {
        /// The file [default: --config, AURORA_CONFIG, or ~/.config/aurora/config.yaml]
        path: Option<std::path::PathBuf>,
    },
    /// Print the path of the config file Aurora reads
    Path,
    /// Print the built-in defaults: a commented reference of every setting
    Defaults,
}

pub fn run(global: &GlobalArgs, args: ConfigArgs) -> Result<ExitCode> {
    match args.action {
        ConfigAction::Check { path } => {
            let Some(path) = path
                .or_else(|| global.config.clone())
                .or_else(config::default_path)
            else {
                bail!("no config file given and no default location is known; pass a PATH");
            };
            if !path.exists() {
                bail!(
                    "{} does not exist; Aurora runs on its defaults without one (`aurora config defaults` shows them)",
                    path.display()
                );
            }
            let diagnostics = config::check_file(&path);
            if diagnostics.is_empty() {
                println!("{}: ok", path.display());
                return Ok(ExitCode::SUCCESS);
            }
            let text = std::fs::read_to_string(&path).ok();
            eprint!("{}", config::render_all(&diagnostics, text.as_deref()));
            eprintln!("{}", config::summary(&diagnostics));
            Ok(ExitCode::FAILURE)
        }
        ConfigAction::Path => {
            match global.config.clone().or_else(config::default_path) {
                Some(p) => println!("{}", p.display()),
                None => bail!("no default config location on this system"),
            }
            Ok(ExitCode::SUCCESS)
        }
        ConfigAction::Defaults => {
            print!("{}", config::DEFAULTS_YAML);
            Ok(ExitCode::SUCCESS)
        }
    }
}
