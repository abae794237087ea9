//! Which templates fit a table, best first, and writing a deployed dashboard beside the
//! user's others: what `aurora dashboard suggest|deploy` and the Schema view's one-key deploy
//! share.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::warehouse::profile::{self, TableProfile};
use crate::warehouse::schema::TableInfo;
use crate::warehouse::{Warehouse, WarehouseError};

use super::bind::{self, Fit};
use super::library::Entry;
use super::model::Dashboard;
use super::timerange;

/// Every template of `templates` that fits `table`, best first; templates for the server
/// itself are not matched to tables.
pub fn rank(templates: &[Entry], table: &TableInfo, profile: &TableProfile) -> Vec<Fit> {
    let mut fits: Vec<Fit> = templates
        .iter()
        .filter(|e| {
            e.dashboard
                .template
                .as_ref()
                .is_some_and(|t| t.table.is_none())
        })
        .filter_map(|e| bind::fit(&e.name, &e.dashboard, table, profile, &BTreeMap::new()).ok())
        .filter(|f| f.fits)
        .collect();
    // Stable: equal scores keep the library's order.
    fits.sort_by_key(|f| std::cmp::Reverse(f.score));
    fits
}

/// Profiles `table` and ranks the templates that fit it.
pub async fn for_table(
    warehouse: &Warehouse,
    templates: &[Entry],
    table: &TableInfo,
) -> Result<(TableProfile, Vec<Fit>), WarehouseError> {
    let profile = profile::profile(warehouse, table).await?;
    let fits = rank(templates, table, &profile);
    Ok((profile, fits))
}

/// The best-fitting template deployed on `table`, with its name (`TEMPLATE-DB-TABLE`).
pub async fn deploy_best(
    warehouse: &Warehouse,
    templates: &[Entry],
    table: &TableInfo,
) -> Result<(String, Dashboard), String> {
    let (profile, fits) = for_table(warehouse, templates, table)
        .await
        .map_err(|e| e.to_string())?;
    let best = fits
        .first()
        .ok_or_else(|| format!("no template fits {}", table.qualified_name()))?;
    let entry = templates
        .iter()
        .find(|e| e.name == best.template)
        .ok_or_else(|| format!("no template `{}`", best.template))?;
    let d = bind::deploy(&entry.dashboard, best, table, &profile, timerange::now());
    Ok((file_name(&entry.name, Some(&table.qualified_name())), d))
}

/// A file name made of the template's and table's names.
pub fn file_name(template: &str, table: Option<&str>) -> String {
    let raw = match table {
        Some(t) => format!("{template}-{t}"),
        None => template.to_owned(),
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The text of a deployed dashboard file: a header saying where it came from, then YAML.
pub fn file_text(d: &Dashboard, command: &str) -> Result<String, serde_yaml::Error> {
    Ok(format!(
        "# Deployed by `{command}`. Edit freely: Aurora never overwrites\n\
         # this file without --force.\n{}",
        serde_yaml::to_string(d)?
    ))
}

/// Writes `text` as `dir/NAME.yaml`, or `NAME-2.yaml`, `NAME-3.yaml`… when a different file
/// already has the name (the user's edits are never overwritten). A file with the same text
/// is reused. Returns the name and path used.
pub fn write_unique(dir: &Path, name: &str, text: &str) -> std::io::Result<(String, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    for n in 1..1000 {
        let candidate = if n == 1 {
            name.to_owned()
        } else {
            format!("{name}-{n}")
        };
        let path = dir.join(format!("{candidate}.yaml"));
        match std::fs::read_to_string(&path) {
            Ok(existing) if existing == text => return Ok((candidate, path)),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::write(&path, text)?;
                return Ok((candidate, path));
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "{}: too many dashboards named {name}",
        dir.display()
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_different_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(write_unique(dir.path(), "d", "a").unwrap().0, "d");
        assert_eq!(
            write_unique(dir.path(), "d", "a").unwrap().0,
            "d",
            "same text: reused"
        );
        assert_eq!(write_unique(dir.path(), "d", "b").unwrap().0, "d-2");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("d.yaml")).unwrap(),
            "a"
        );
        assert_eq!(
            file_name("web-events", Some("demo.Events")),
            "web-events-demo-events"
        );
    }
}
