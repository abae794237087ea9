//! `aurora model list|pull|add|use|remove`: the front end over `assistant::catalog`. Results
//! go to stdout (`list --json` is for scripts); progress and notes go to stderr, with a
//! redrawn progress line only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::assistant::catalog::{
    self, Catalog, CatalogEntry, ChosenBy, InstallState, PullEvent, PullOptions, PullOutcome,
    RegisteredModel, Registry,
};
use crate::assistant::llama::{self, ModelFacts};
use crate::assistant::AssistantError;

use super::GlobalArgs;

const ORDER_HELP: &str = "\
Which model the assistant runs, first match wins:
  1. --model ID|PATH (on `aurora ask`)
  2. the AURORA_MODEL environment variable
  3. assistant.model in the config file
  4. the model chosen with `aurora model use ID`
  5. the catalog's default (marked `default` by `aurora model list`)
Each may be a catalog id, an id given to `aurora model add`, or the path of a .gguf file.

Models live in $XDG_DATA_HOME/aurora/models (~/.local/share/aurora/models); models.yaml there
lists the added models and the `use` choice.";

#[derive(Debug, Args)]
#[command(after_help = ORDER_HELP)]
pub struct ModelArgs {
    #[command(subcommand)]
    pub action: ModelAction,
}

#[derive(Debug, Subcommand)]
pub enum ModelAction {
    /// Show the catalog's models and the added ones: size, installed and verified or not,
    /// which is current and why
    List {
        /// One JSON object for scripts
        #[arg(long)]
        json: bool,
    },
    /// Download a catalog model and verify its size and sha256 (resumes an interrupted pull)
    Pull {
        /// A catalog id [default: the catalog's default]
        id: Option<String>,
        /// Download again even when the installed file is verified
        #[arg(long)]
        force: bool,
    },
    /// Register a local .gguf file under an id, after checking that it loads (not copied)
    Add {
        path: PathBuf,
        /// The id to use it by [default: the file name without .gguf]
        #[arg(long)]
        id: Option<String>,
    },
    /// Make ID the current model (--model, AURORA_MODEL and assistant.model still win)
    #[command(after_help = ORDER_HELP)]
    Use { id: String },
    /// Forget a model added with `add` (the file itself is left alone)
    Remove { id: String },
}

pub async fn run(global: &GlobalArgs, args: ModelArgs) -> Result<ExitCode> {
    let dir = catalog::models_dir()
        .context("this system has no home directory, so Aurora has nowhere to keep models")?;
    let catalog = catalog::catalog()?;
    match args.action {
        ModelAction::List { json } => list(global, catalog, &dir, json),
        ModelAction::Pull { id, force } => pull(catalog, &dir, id.as_deref(), force).await,
        ModelAction::Add { path, id } => add(catalog, &dir, &path, id).await,
        ModelAction::Use { id } => use_model(global, catalog, &dir, &id),
        ModelAction::Remove { id } => remove(catalog, &dir, &id),
    }
}

/// `1.2 GB`, `491.4 MB`: decimal units, as download sizes are usually given.
fn format_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "GB"), (1_000_000, "MB"), (1_000, "kB")];
    UNITS.iter().find(|(unit, _)| bytes >= *unit).map_or_else(
        || format!("{bytes} B"),
        |(unit, name)| format!("{:.1} {name}", bytes as f64 / *unit as f64),
    )
}

/// Writes a command's result to stdout. A closed pipe (`aurora model list | head`) ends the
/// output quietly instead of failing.
fn print_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => Ok(result?),
    }
}

fn known_ids(catalog: &Catalog, registry: &Registry) -> String {
    catalog
        .ids()
        .map(str::to_owned)
        .chain(registry.models.keys().cloned())
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// list

#[derive(Debug, Serialize)]
struct Listing {
    models_dir: PathBuf,
    current: Current,
    models: Vec<ListedModel>,
}

/// The model a run would use now (without --model) and what chose it.
#[derive(Debug, Serialize)]
struct Current {
    /// The id of a listed model, or None when the choice is a path not listed.
    id: Option<String>,
    /// The value as written (id or path).
    value: String,
    chosen_by: ChosenBy,
    /// The file, when it exists.
    path: Option<PathBuf>,
    /// Why the choice cannot be used, when it cannot (what `aurora ask` would report).
    problem: Option<String>,
}

#[derive(Debug, Serialize)]
struct ListedModel {
    id: String,
    /// `catalog` or `added`.
    origin: &'static str,
    default: bool,
    current: bool,
    path: PathBuf,
    size_bytes: Option<u64>,
    installed: bool,
    verified: bool,
    /// What is on disk, in words.
    status: String,
    sha256: Option<String>,
    description: Option<String>,
    license: Option<String>,
    context_tokens: Option<u32>,
}

fn describe_state(state: &InstallState, id: &str) -> String {
    match state {
        InstallState::NotInstalled => "not installed".into(),
        InstallState::Partial { downloaded_bytes } => format!(
            "partly downloaded ({}); `aurora model pull {id}` resumes",
            format_bytes(*downloaded_bytes)
        ),
        InstallState::Verified { .. } => "installed, verified".into(),
        InstallState::Recorded { .. } => {
            "installed, sha256 recorded (the catalog pins none)".into()
        }
        InstallState::Unverified { reason } => {
            format!("installed, not verified ({reason}; `aurora model pull {id}` checks it)")
        }
        InstallState::WrongSize {
            expected_bytes,
            actual_bytes,
        } => format!(
            "broken: {actual_bytes} bytes, expected {expected_bytes}; `aurora model pull {id}` \
             replaces it"
        ),
    }
}

fn catalog_row(entry: &CatalogEntry, dir: &Path) -> ListedModel {
    let state = catalog::install_state(entry, dir);
    let sha256 = match &state {
        InstallState::Verified { sha256 } | InstallState::Recorded { sha256 } => {
            Some(sha256.clone())
        }
        _ => entry.sha256.clone(),
    };
    ListedModel {
        id: entry.id.clone(),
        origin: "catalog",
        default: entry.default,
        current: false,
        path: entry.path_in(dir),
        size_bytes: entry.size_bytes,
        installed: state.is_installed(),
        verified: state.is_verified(),
        status: describe_state(&state, &entry.id),
        sha256,
        description: Some(entry.description.clone()),
        license: Some(entry.license.clone()),
        context_tokens: Some(entry.context_tokens),
    }
}

fn added_row(id: &str, model: &RegisteredModel) -> ListedModel {
    let size = std::fs::metadata(&model.path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    ListedModel {
        id: id.to_owned(),
        origin: "added",
        default: false,
        current: false,
        path: model.path.clone(),
        size_bytes: size,
        installed: size.is_some(),
        verified: false,
        status: match size {
            Some(_) => "added (loads; no catalog hash to verify)".into(),
            None => "added, but the file is missing".into(),
        },
        sha256: None,
        description: model.description.clone(),
        license: None,
        context_tokens: None,
    }
}

fn list(global: &GlobalArgs, catalog: &Catalog, dir: &Path, json: bool) -> Result<ExitCode> {
    let config = super::session::load_config(global)?;
    let registry = Registry::load(dir)?;
    let env = std::env::var(catalog::ENV_MODEL).ok();
    let (value, chosen_by) = catalog::choose(
        None,
        env.as_deref(),
        config.assistant.model.as_deref(),
        registry.current.as_deref(),
        catalog,
    );
    let located = catalog::locate(value, catalog, &registry, dir);
    let mut models: Vec<ListedModel> = catalog
        .models()
        .iter()
        .map(|entry| catalog_row(entry, dir))
        .chain(registry.models.iter().map(|(id, m)| added_row(id, m)))
        .collect();
    // The current one is the row the value names, or the row of the file a path points to.
    let same_file = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let current_index = models.iter().position(|m| m.id == value).or_else(|| {
        let path = &located.as_ref().ok()?.path;
        models.iter().position(|m| same_file(&m.path, path))
    });
    if let Some(i) = current_index {
        models[i].current = true;
    }
    let listing = Listing {
        models_dir: dir.to_path_buf(),
        current: Current {
            id: current_index.map(|i| models[i].id.clone()),
            value: value.to_owned(),
            chosen_by,
            path: located.as_ref().ok().map(|m| m.path.clone()),
            problem: located.err().map(|e| e.to_string()),
        },
        models,
    };
    if json {
        print_out(&format!("{}\n", serde_json::to_string_pretty(&listing)?))?;
    } else {
        print_out(&render_listing(&listing))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn render_listing(listing: &Listing) -> String {
    let rows: Vec<[String; 4]> = listing
        .models
        .iter()
        .map(|m| {
            let mut notes = Vec::new();
            if m.default {
                notes.push("default".to_owned());
            }
            if m.origin == "added" {
                notes.push(format!("added: {}", m.path.display()));
            }
            let mut description = m.description.clone().unwrap_or_default();
            if !notes.is_empty() {
                description = format!("{description} [{}]", notes.join("; "));
            }
            [
                format!("{} {}", if m.current { "*" } else { " " }, m.id),
                m.size_bytes.map_or_else(|| "?".into(), format_bytes),
                m.status.clone(),
                description.trim().to_owned(),
            ]
        })
        .collect();
    let header = [
        "  ID".to_owned(),
        "SIZE".into(),
        "STATUS".into(),
        "DESCRIPTION".into(),
    ];
    let widths: Vec<usize> = (0..3)
        .map(|c| {
            rows.iter()
                .chain([&header])
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in [&header].into_iter().chain(&rows) {
        let line = format!(
            "{:w0$}  {:>w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let current = &listing.current;
    let name = current.id.as_deref().unwrap_or(&current.value);
    out.push_str(&format!(
        "\n* current: {name}, chosen by {}",
        current.chosen_by
    ));
    if let (Some(path), None) = (&current.path, &current.id) {
        out.push_str(&format!(" ({})", path.display()));
    }
    if let Some(problem) = &current.problem {
        out.push_str(&format!("\n  but it cannot be used: {problem}"));
    }
    out.push_str(&format!(
        "\nmodels directory: {}\n",
        listing.models_dir.display()
    ));
    out
}

// ---------------------------------------------------------------------------------------------
// pull

/// The redrawn `done / total (pct)  rate  ETA` line on stderr; silent unless stderr is a
/// terminal (logs get the start and end messages only).
struct ProgressLine {
    enabled: bool,
    started: Instant,
    // Bytes already on disk when this transfer began (a resumed .part), left out of the rate.
    first_bytes: Option<u64>,
    last_drawn: Option<Instant>,
}

impl ProgressLine {
    const REDRAW_EVERY: Duration = Duration::from_millis(200);

    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            started: Instant::now(),
            first_bytes: None,
            last_drawn: None,
        }
    }

    fn update(&mut self, done_bytes: u64, total_bytes: Option<u64>) {
        if !self.enabled {
            return;
        }
        let first = *self.first_bytes.get_or_insert_with(|| {
            self.started = Instant::now();
            done_bytes
        });
        let finished = total_bytes == Some(done_bytes);
        if !finished
            && self
                .last_drawn
                .is_some_and(|t| t.elapsed() < Self::REDRAW_EVERY)
        {
            return;
        }
        self.last_drawn = Some(Instant::now());
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            done_bytes.saturating_sub(first) as f64 / elapsed
        } else {
            0.0
        };
        let mut line = format!("  {}", format_bytes(done_bytes));
        if let Some(total) = total_bytes.filter(|t| *t > 0) {
            line.push_str(&format!(
                " / {} ({:.0}%)",
                format_bytes(total),
                done_bytes as f64 * 100.0 / total as f64
            ));
            if rate > 0.0 && !finished {
                let left =
                    Duration::from_secs_f64((total.saturating_sub(done_bytes)) as f64 / rate);
                let left = Duration::from_secs(left.as_secs());
                line.push_str(&format!(
                    "  {}/s, {} left",
                    format_bytes(rate as u64),
                    humantime::format_duration(left)
                ));
            }
        } else if rate > 0.0 {
            line.push_str(&format!("  {}/s", format_bytes(rate as u64)));
        }
        // `\r` and erase-to-end-of-line: the line is redrawn in place.
        eprint!("\r{line}\x1b[K");
    }

    /// Ends a drawn line, so the next message starts on its own.
    fn finish(&mut self) {
        if self.enabled && self.last_drawn.is_some() {
            eprintln!();
        }
        self.first_bytes = None;
        self.last_drawn = None;
    }
}

async fn pull(catalog: &Catalog, dir: &Path, id: Option<&str>, force: bool) -> Result<ExitCode> {
    let entry = match id {
        None => catalog.default_entry(),
        Some(id) => match catalog.get(id) {
            Some(entry) => entry,
            None => {
                let registry = Registry::load(dir).unwrap_or_default();
                if let Some(added) = registry.models.get(id) {
                    bail!(
                        "`{id}` was added from {}; there is nothing to download",
                        added.path.display()
                    );
                }
                bail!(
                    "`{id}` is not in the catalog; its models are: {}",
                    catalog.ids().collect::<Vec<_>>().join(", ")
                );
            }
        },
    };
    let terminal = std::io::stderr().is_terminal();
    let options = PullOptions {
        force,
        show_pip_output: terminal,
        pip_args: Vec::new(),
    };
    let mut progress = ProgressLine::new(terminal);
    // The final error lists every failure; a failure is worth a line of its own only when
    // another source is tried next.
    let mut more_sources = false;
    let size = entry
        .size_bytes
        .map_or_else(|| "size not pinned".into(), format_bytes);
    let outcome = catalog::pull(entry, dir, &options, |event| match event {
        PullEvent::CheckingExisting { path } => {
            eprintln!("checking the sha256 of {}", path.display());
        }
        PullEvent::ExistingRejected { path, reason } => {
            eprintln!(
                "{} does not match the catalog ({reason}); downloading it again",
                path.display()
            );
        }
        PullEvent::Trying {
            source,
            number,
            count,
        } => {
            more_sources = number < count;
            eprintln!(
                "downloading {} ({size}) from {source} [source {number} of {count}]",
                entry.id
            );
        }
        PullEvent::Resuming { from_bytes } => {
            eprintln!("  resuming after {}", format_bytes(from_bytes));
        }
        PullEvent::Progress {
            done_bytes,
            total_bytes,
        } => progress.update(done_bytes, total_bytes),
        PullEvent::Verifying => {
            progress.finish();
            eprintln!("  verifying the sha256");
        }
        PullEvent::SourceFailed { error, .. } => {
            progress.finish();
            if more_sources {
                eprintln!("  failed: {error}; trying the next source");
            }
        }
    })
    .await;
    progress.finish();
    match outcome? {
        PullOutcome::AlreadyInstalled {
            path,
            sha256,
            pinned,
        } => {
            let how = if pinned {
                "verified against the catalog"
            } else {
                "recorded at download; the catalog pins none"
            };
            print_out(&format!(
                "{} is already installed: {}\nsha256 {sha256} ({how}); nothing to do (--force \
                 downloads it again)\n",
                entry.id,
                path.display()
            ))?;
        }
        PullOutcome::Installed {
            path,
            sha256,
            pinned,
            from,
        } => {
            let check = if pinned {
                "verified against the catalog".to_owned()
            } else {
                format!(
                    "NOT verified: the catalog pins no hash for this model; recorded in {}",
                    catalog::stamp_path(&path).display()
                )
            };
            print_out(&format!(
                "installed {} from {from}: {}\nsha256 {sha256} ({check})\n",
                entry.id,
                path.display()
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// add, use, remove

fn describe_facts(facts: &ModelFacts) -> String {
    let mut parts = Vec::new();
    if let Some(name) = &facts.name {
        parts.push(name.clone());
    }
    if let Some(architecture) = &facts.architecture {
        parts.push(architecture.clone());
    }
    let parameters = facts.parameters as f64;
    parts.push(if parameters >= 1e9 {
        format!("{:.1}B parameters", parameters / 1e9)
    } else {
        format!("{:.0}M parameters", parameters / 1e6)
    });
    parts.push(format!("trained context {} tokens", facts.context_tokens));
    parts.join(", ")
}

async fn add(catalog: &Catalog, dir: &Path, path: &Path, id: Option<String>) -> Result<ExitCode> {
    let path = std::path::absolute(path)
        .with_context(|| format!("cannot make {} absolute", path.display()))?;
    let meta = std::fs::metadata(&path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a file; give the path of a .gguf model",
            path.display()
        );
    }
    let id = match id {
        Some(id) => id,
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    catalog::check_model_id(&id).map_err(|why| anyhow!("{why}; choose another with --id"))?;
    if catalog.get(&id).is_some() {
        bail!("`{id}` is a catalog model's id; choose another with --id");
    }
    let mut registry = Registry::load(dir)?;
    if let Some(existing) = registry.models.get(&id) {
        if existing.path != path {
            bail!(
                "`{id}` is already added for {}; choose another --id, or `aurora model remove \
                 {id}` first",
                existing.path.display()
            );
        }
    }
    eprintln!("loading {} to check that it runs...", path.display());
    let to_inspect = path.clone();
    let facts = tokio::task::spawn_blocking(move || llama::inspect(&to_inspect))
        .await
        .context("the model check stopped unexpectedly")?
        .map_err(|e| {
            let hint = match &e {
                AssistantError::ModelLoad { .. } => Some(
                    "Aurora runs GGUF files (llama.cpp's format, often in repositories named \
                     `...-GGUF`); check that the download finished"
                        .to_owned(),
                ),
                other => other.hint(),
            };
            let hint = hint.map(|h| format!("\nhint: {h}")).unwrap_or_default();
            anyhow!("{} was not added: {e}{hint}", path.display())
        })?;
    let description = describe_facts(&facts);
    registry.models.insert(
        id.clone(),
        RegisteredModel {
            path: path.clone(),
            description: Some(description.clone()),
        },
    );
    registry.save(dir)?;
    print_out(&format!(
        "added `{id}`: {}\n{description}\nmake it the current model with `aurora model use \
         {id}`, or pass --model {id}\n",
        path.display()
    ))?;
    if facts.chat_layout == "plain" {
        eprintln!(
            "warning: the file has no chat template and its tokenizer is not of a family Aurora \
             knows, so the assistant falls back to a generic prompt format; instruction-tuned \
             models work best"
        );
    } else if !facts.has_chat_template {
        eprintln!(
            "note: the file has no chat template; the assistant's prompt layout: {}",
            facts.chat_layout
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Notes on settings that rank above `model use`, so the user is not surprised.
fn note_overrides(global: &GlobalArgs) {
    if let Some(value) = std::env::var(catalog::ENV_MODEL)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        eprintln!(
            "note: {}={value} is set and takes precedence while it is",
            catalog::ENV_MODEL
        );
    }
    match crate::config::load(global.config.as_deref()) {
        Ok(loaded) => {
            if let Some(model) = loaded
                .config
                .assistant
                .model
                .filter(|m| !m.trim().is_empty())
            {
                let file = loaded
                    .source
                    .map_or_else(|| "the config file".into(), |p| p.display().to_string());
                eprintln!("note: assistant.model is `{model}` in {file}, which takes precedence");
            }
        }
        Err(e) => {
            eprintln!("note: the config file could not be read to check assistant.model: {e}")
        }
    }
}

fn use_model(global: &GlobalArgs, catalog: &Catalog, dir: &Path, id: &str) -> Result<ExitCode> {
    let mut registry = Registry::load(dir)?;
    let missing_file = if let Some(entry) = catalog.get(id) {
        let state = catalog::install_state(entry, dir);
        (!state.is_installed())
            .then(|| format!("it is not installed yet: run `aurora model pull {id}`"))
    } else if let Some(added) = registry.models.get(id) {
        (!added.path.is_file()).then(|| format!("its file {} is missing", added.path.display()))
    } else if catalog::looks_like_path(id) {
        bail!(
            "`model use` takes an id; register the file first with `aurora model add {id}`, or \
             pass it as --model / {}",
            catalog::ENV_MODEL
        );
    } else {
        bail!(
            "`{id}` is not a known model; known ids: {}",
            known_ids(catalog, &registry)
        );
    };
    registry.current = Some(id.to_owned());
    registry.save(dir)?;
    print_out(&format!("current model: {id}\n"))?;
    if let Some(problem) = missing_file {
        eprintln!("warning: {problem}");
    }
    note_overrides(global);
    Ok(ExitCode::SUCCESS)
}

fn remove(catalog: &Catalog, dir: &Path, id: &str) -> Result<ExitCode> {
    if let Some(entry) = catalog.get(id) {
        bail!(
            "`{id}` is a catalog model, not an added one; to uninstall it, delete {}",
            entry.path_in(dir).display()
        );
    }
    let mut registry = Registry::load(dir)?;
    let Some(removed) = registry.models.remove(id) else {
        bail!(
            "no model `{id}` was added; added ones: {}",
            match registry
                .models
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
            {
                ids if ids.is_empty() => "none".into(),
                ids => ids,
            }
        );
    };
    let was_current = registry.current.as_deref() == Some(id);
    if was_current {
        registry.current = None;
    }
    registry.save(dir)?;
    let mut report = format!(
        "removed `{id}` ({} is left in place)\n",
        removed.path.display()
    );
    if was_current {
        report.push_str(&format!(
            "it was the current model; now {} applies unless something else chooses\n",
            ChosenBy::Default
        ));
    }
    print_out(&report)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_decimal_units() {
        assert_eq!(format_bytes(999), "999 B");
        assert_eq!(format_bytes(491_400_064), "491.4 MB");
        assert_eq!(format_bytes(1_120_000_000), "1.1 GB");
    }

    #[test]
    fn the_listing_marks_the_current_model_and_says_why() {
        let catalog = catalog::catalog().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut models: Vec<ListedModel> = catalog
            .models()
            .iter()
            .map(|e| catalog_row(e, dir.path()))
            .collect();
        models[1].current = true;
        let listing = Listing {
            models_dir: dir.path().to_path_buf(),
            current: Current {
                id: Some(models[1].id.clone()),
                value: models[1].id.clone(),
                chosen_by: ChosenBy::Env,
                path: None,
                problem: Some("no model file found for `x`".into()),
            },
            models,
        };
        let text = render_listing(&listing);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("  ID "), "{text}");
        assert!(
            lines[1].starts_with("  qwen2.5-coder-0.5b-instruct-q4 "),
            "{text}"
        );
        assert!(
            lines[1].contains("491.4 MB") && lines[1].contains("not installed"),
            "{text}"
        );
        assert!(lines[1].ends_with("[default]"), "{text}");
        assert!(
            lines[2].starts_with("* qwen2.5-coder-1.5b-instruct-q4 "),
            "{text}"
        );
        assert!(
            text.contains(
                "* current: qwen2.5-coder-1.5b-instruct-q4, chosen by AURORA_MODEL\n  but it cannot \
                 be used: no model file found for `x`\n"
            ),
            "{text}"
        );
    }
}
