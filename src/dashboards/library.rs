//! Where dashboards and templates come from: the templates built into the binary
//! (`presets/dashboards/`), the user's own templates (`templates/` beside the config file) and
//! the user's dashboards (`dashboards/` beside it), each read and checked. A broken user file
//! is reported and left out; it never hides the others.

use std::path::{Path, PathBuf};

use crate::config::Diagnostic;

use super::check::check_str;
use super::model::Dashboard;

/// The built-in templates, by name (their file name without `.yaml`).
pub const BUILTIN: [(&str, &str); 13] = [
    (
        "web-events",
        include_str!("../../presets/dashboards/web-events.yaml"),
    ),
    (
        "orders-revenue",
        include_str!("../../presets/dashboards/orders-revenue.yaml"),
    ),
    (
        "app-logs",
        include_str!("../../presets/dashboards/app-logs.yaml"),
    ),
    (
        "request-metrics",
        include_str!("../../presets/dashboards/request-metrics.yaml"),
    ),
    (
        "sensor-readings",
        include_str!("../../presets/dashboards/sensor-readings.yaml"),
    ),
    (
        "time-series",
        include_str!("../../presets/dashboards/time-series.yaml"),
    ),
    (
        "category-breakdown",
        include_str!("../../presets/dashboards/category-breakdown.yaml"),
    ),
    (
        "user-activity",
        include_str!("../../presets/dashboards/user-activity.yaml"),
    ),
    (
        "table-overview",
        include_str!("../../presets/dashboards/table-overview.yaml"),
    ),
    (
        "server-health",
        include_str!("../../presets/dashboards/server-health.yaml"),
    ),
    (
        "query-performance",
        include_str!("../../presets/dashboards/query-performance.yaml"),
    ),
    (
        "aurora-pipelines",
        include_str!("../../presets/dashboards/aurora-pipelines.yaml"),
    ),
    (
        "table-storage",
        include_str!("../../presets/dashboards/table-storage.yaml"),
    ),
];

/// Where an entry was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Builtin,
    File(PathBuf),
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Builtin => "built in".into(),
            Origin::File(p) => p.display().to_string(),
        }
    }
}

/// A dashboard or template, read and checked.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub origin: Origin,
    pub dashboard: Dashboard,
}

/// The directories beside the config file (`~/.config/aurora/` unless `--config` says
/// otherwise).
#[derive(Debug, Clone)]
pub struct Dirs {
    pub dashboards: PathBuf,
    pub templates: PathBuf,
}

impl Dirs {
    /// Beside `config_path` (the file given or the default place, read or not).
    pub fn beside(config_path: Option<&Path>) -> Self {
        let base = config_path
            .map(Path::to_path_buf)
            .or_else(crate::config::default_path)
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            dashboards: base.join("dashboards"),
            templates: base.join("templates"),
        }
    }
}

/// The built-in templates; a defect in one is a build defect, caught by a unit test.
pub fn builtin_templates() -> Vec<Entry> {
    // Read once: the workspace asks for them on every table it fits.
    static PARSED: std::sync::OnceLock<Vec<Entry>> = std::sync::OnceLock::new();
    PARSED
        .get_or_init(|| {
            BUILTIN
                .iter()
                .filter_map(|(name, text)| {
                    let path = format!("presets/dashboards/{name}.yaml");
                    let dashboard = check_str(&path, text).ok()?;
                    Some(Entry {
                        name: (*name).to_owned(),
                        origin: Origin::Builtin,
                        dashboard,
                    })
                })
                .collect()
        })
        .clone()
}

/// Every template: the built-in ones, then the user's (a user template with a built-in
/// one's name replaces it). Problems in the user's files come back beside them.
pub fn templates(dirs: &Dirs) -> (Vec<Entry>, Vec<Diagnostic>) {
    let mut all = builtin_templates();
    let (mine, problems) = read_dir(&dirs.templates);
    for entry in mine.into_iter().filter(|e| e.dashboard.template.is_some()) {
        all.retain(|e| e.name != entry.name);
        all.push(entry);
    }
    (all, problems)
}

/// The user's dashboards, by file name.
pub fn dashboards(dirs: &Dirs) -> (Vec<Entry>, Vec<Diagnostic>) {
    read_dir(&dirs.dashboards)
}

/// The `.yaml`/`.yml` files of `dir`, read and checked, sorted by name; a missing directory
/// is simply empty.
fn read_dir(dir: &Path) -> (Vec<Entry>, Vec<Diagnostic>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return (Vec::new(), Vec::new());
    };
    let mut paths: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match read_file(&path) {
            Ok(entry) => entries.push(entry),
            Err(mut d) => problems.append(&mut d),
        }
    }
    (entries, problems)
}

/// One dashboard or template file, read and checked.
pub fn read_file(path: &Path) -> Result<Entry, Vec<Diagnostic>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::error(
            name.clone(),
            0,
            0,
            format!("cannot read the file: {e}"),
        )]
    })?;
    let dashboard = check_str(&name, &text)?;
    Ok(Entry {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or(name),
        origin: Origin::File(path.to_path_buf()),
        dashboard,
    })
}

/// Finds `name` among `entries`: an exact name, else the one whose name or title contains it
/// when only one does.
pub fn find<'e>(entries: &'e [Entry], name: &str) -> Result<&'e Entry, String> {
    if let Some(e) = entries.iter().find(|e| e.name == name) {
        return Ok(e);
    }
    let lower = name.to_lowercase();
    let partial: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.name.contains(&lower) || e.dashboard.title.to_lowercase().contains(&lower))
        .collect();
    match partial[..] {
        [one] => Ok(one),
        [] => {
            let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            Err(
                match crate::config::did_you_mean(name, names.iter().copied()) {
                    Some(s) => format!("no dashboard or template `{name}`; did you mean `{s}`?"),
                    None if names.is_empty() => format!("no dashboard or template `{name}` yet"),
                    None => format!(
                        "no dashboard or template `{name}`; `aurora dashboard list` lists them: {}",
                        names.join(", ")
                    ),
                },
            )
        }
        _ => Err(format!(
            "`{name}` could be any of: {}",
            partial
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_template_reads_and_every_preset_file_is_built_in() {
        for (name, text) in BUILTIN {
            if let Err(d) = check_str(name, text) {
                panic!("{name}:\n{}", crate::config::render_all(&d, Some(text)));
            }
        }
        assert_eq!(builtin_templates().len(), BUILTIN.len());
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/dashboards");
        for file in std::fs::read_dir(dir).unwrap() {
            let path = file.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                BUILTIN.iter().any(|(n, _)| *n == stem),
                "{} is not listed in BUILTIN",
                path.display()
            );
        }
        assert!(BUILTIN.len() >= 12);
    }
}
