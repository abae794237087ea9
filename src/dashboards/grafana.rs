//! Dashboards as Grafana reads them: dashboard JSON for the official ClickHouse plugin
//! (`grafana-clickhouse-datasource`), shaped as Grafana's own "export for sharing externally"
//! (`__inputs` asking for the datasource on import, `__requires`, explicit `schemaVersion`),
//! and a provisioning folder (dashboard provider, datasource, dashboards) for Grafana's
//! file-based setup. Queries keep the plugin's macros, which both Aurora and the plugin expand.

use std::path::Path;

use serde_json::{json, Map, Value as Json};

use super::model::{Dashboard, Panel, PanelKind, VariableKind};

/// The official ClickHouse plugin's id.
pub const PLUGIN_ID: &str = "grafana-clickhouse-datasource";
/// The oldest plugin release whose target fields (`editorType`, `queryType`, `rawSql`) these
/// dashboards use.
pub const PLUGIN_VERSION: &str = "4.0.0";
/// Grafana 11.6's dashboard schema version.
pub const SCHEMA_VERSION: u32 = 41;
/// The `__inputs` name the datasource is asked for by.
pub const DATASOURCE_INPUT: &str = "DS_CLICKHOUSE";

/// Grafana's `format` numbers for the plugin's targets.
const FORMAT_TIME_SERIES: u8 = 0;
const FORMAT_TABLE: u8 = 1;
const FORMAT_LOGS: u8 = 2;

/// The Grafana panel type of an Aurora panel type.
pub fn panel_type(kind: PanelKind) -> &'static str {
    match kind {
        PanelKind::Timeseries => "timeseries",
        PanelKind::Bar => "barchart",
        PanelKind::Sparkline | PanelKind::Stat => "stat",
        PanelKind::Gauge => "gauge",
        PanelKind::Table => "table",
        PanelKind::Text => "text",
        PanelKind::Logs => "logs",
    }
}

/// Theme roles and Grafana's colour names both work in Aurora files; Grafana gets its own.
fn grafana_color(color: &str) -> &str {
    match color {
        "ok" | "success" => "green",
        "warning" => "orange",
        "danger" | "error" => "red",
        "info" => "blue",
        "muted" => "gray",
        other => other,
    }
}

/// A stable uid from the title: Grafana keeps one dashboard per uid, so exporting again
/// updates the same dashboard instead of adding another.
pub fn uid(title: &str) -> String {
    let slug: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug: Vec<&str> = slug.split('-').filter(|s| !s.is_empty()).collect();
    let mut uid = format!("aurora-{}", slug.join("-"));
    // Grafana's limit.
    uid.truncate(40);
    uid.trim_end_matches('-').to_owned()
}

fn datasource() -> Json {
    json!({"type": PLUGIN_ID, "uid": format!("${{{DATASOURCE_INPUT}}}")})
}

/// The dashboard as Grafana's export for sharing: importing it asks for a ClickHouse
/// datasource.
pub fn export(dashboard: &Dashboard) -> Json {
    let mut panel_types: Vec<&str> = dashboard
        .panels
        .iter()
        .map(|p| panel_type(p.kind))
        .collect();
    panel_types.sort_unstable();
    panel_types.dedup();
    let mut requires = vec![
        json!({"type": "grafana", "id": "grafana", "name": "Grafana", "version": "11.6.0"}),
        json!({"type": "datasource", "id": PLUGIN_ID, "name": "ClickHouse", "version": PLUGIN_VERSION}),
    ];
    requires.extend(
        panel_types
            .iter()
            .map(|t| json!({"type": "panel", "id": t, "name": t, "version": ""})),
    );
    let mut out = dashboard_body(dashboard);
    if let Json::Object(map) = &mut out {
        let mut shared = Map::new();
        shared.insert(
            "__inputs".into(),
            json!([{
                "name": DATASOURCE_INPUT,
                "label": "ClickHouse",
                "description": "The ClickHouse server the panels query",
                "type": "datasource",
                "pluginId": PLUGIN_ID,
                "pluginName": "ClickHouse"
            }]),
        );
        shared.insert("__elements".into(), json!({}));
        shared.insert("__requires".into(), Json::Array(requires));
        shared.extend(std::mem::take(map));
        *map = shared;
    }
    out
}

/// The dashboard object itself, without the sharing wrappers (what provisioning reads, with
/// the datasource uid filled in by the caller).
pub fn dashboard_body(dashboard: &Dashboard) -> Json {
    let panels: Vec<Json> = dashboard
        .panels
        .iter()
        .enumerate()
        .map(|(i, p)| panel(p, i as u32 + 1))
        .collect();
    json!({
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": true,
            "hide": true,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard"
        }]},
        "description": dashboard.description,
        "editable": true,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 0,
        "links": [],
        "panels": panels,
        "refresh": dashboard
            .refresh
            .map(super::timerange::grafana_duration)
            .unwrap_or_default(),
        "schemaVersion": SCHEMA_VERSION,
        "tags": dashboard.tags,
        "templating": {"list": dashboard.variables.iter().map(variable).collect::<Vec<_>>()},
        "time": {"from": dashboard.time.from, "to": dashboard.time.to},
        "timepicker": {},
        // Aurora's macros and times are UTC.
        "timezone": "utc",
        "title": dashboard.title,
        "uid": uid(&dashboard.title),
        "version": 1
    })
}

fn panel(p: &Panel, id: u32) -> Json {
    let mut defaults = Map::new();
    if let Some(unit) = &p.unit {
        defaults.insert("unit".into(), json!(unit));
    }
    if let Some(d) = p.decimals {
        defaults.insert("decimals".into(), json!(d));
    }
    if let Some(min) = p.min {
        defaults.insert("min".into(), json!(min));
    }
    if let Some(max) = p.max {
        defaults.insert("max".into(), json!(max));
    }
    if !p.thresholds.is_empty() {
        // Grafana reads the first step as the base colour whatever its value and writes
        // `null` there, but its published schema wants a number: any number below the
        // first threshold sorts first.
        let base = p.thresholds[0].value - 1.0;
        let mut steps = vec![json!({"color": "green", "value": base})];
        steps.extend(
            p.thresholds
                .iter()
                .map(|t| json!({"color": grafana_color(&t.color), "value": t.value})),
        );
        defaults.insert(
            "thresholds".into(),
            json!({"mode": "absolute", "steps": steps}),
        );
    }
    let mut out = json!({
        "id": id,
        "type": panel_type(p.kind),
        "title": p.title,
        "description": p.description,
        "gridPos": {"x": p.grid.x, "y": p.grid.y, "w": p.grid.w, "h": p.grid.h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options(p),
    });
    if let (Json::Object(map), Some(query)) = (&mut out, &p.query) {
        let (format, query_type) = match p.kind {
            PanelKind::Timeseries | PanelKind::Sparkline => (FORMAT_TIME_SERIES, "timeseries"),
            PanelKind::Logs => (FORMAT_LOGS, "logs"),
            _ => (FORMAT_TABLE, "table"),
        };
        map.insert("datasource".into(), datasource());
        map.insert(
            "targets".into(),
            json!([{
                "refId": "A",
                "datasource": datasource(),
                "editorType": "sql",
                "format": format,
                "queryType": query_type,
                "pluginVersion": PLUGIN_VERSION,
                "rawSql": query
            }]),
        );
        if let Some(refresh) = p.refresh {
            // Grafana has no per-panel refresh; its `interval` (the least time between the
            // panel's queries) is the nearest field.
            map.insert(
                "interval".into(),
                json!(super::timerange::grafana_duration(refresh)),
            );
        }
    }
    out
}

fn options(p: &Panel) -> Json {
    match p.kind {
        PanelKind::Text => {
            json!({"mode": "markdown", "content": p.text.clone().unwrap_or_default()})
        }
        PanelKind::Sparkline => {
            json!({"graphMode": "area", "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false}})
        }
        PanelKind::Stat => {
            json!({"graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false}})
        }
        PanelKind::Gauge => {
            json!({"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false}})
        }
        PanelKind::Logs => {
            json!({"showTime": true, "wrapLogMessage": true, "sortOrder": "Descending"})
        }
        PanelKind::Bar => json!({"orientation": "horizontal", "showValue": "auto"}),
        PanelKind::Timeseries | PanelKind::Table => json!({}),
    }
}

fn variable(v: &super::model::Variable) -> Json {
    let current = |text: &str, value: &str| json!({"text": text, "value": value});
    let chosen = v
        .default
        .clone()
        .or_else(|| v.include_all.then(|| "All".to_owned()))
        .or_else(|| v.values.first().cloned())
        .unwrap_or_default();
    let current_value = if v.include_all && chosen == "All" {
        current("All", "$__all")
    } else {
        current(&chosen, &chosen)
    };
    let options: Vec<Json> = v
        .values
        .iter()
        .map(|value| json!({"selected": *value == chosen, "text": value, "value": value}))
        .collect();
    let mut out = json!({
        "name": v.name,
        "label": v.label.clone().unwrap_or_else(|| v.name.clone()),
        "hide": 0,
        "skipUrlSync": false,
        "current": current_value,
        "options": options,
        "includeAll": v.include_all,
        "multi": false,
    });
    let Json::Object(map) = &mut out else {
        return out;
    };
    match v.kind {
        VariableKind::Query => {
            map.insert("type".into(), json!("query"));
            map.insert("datasource".into(), datasource());
            map.insert("query".into(), json!(v.query.clone().unwrap_or_default()));
            // Refresh the choices when the time range changes, as the query may filter on it.
            map.insert("refresh".into(), json!(2));
            map.insert("sort".into(), json!(0));
            map.insert("regex".into(), json!(""));
        }
        VariableKind::Custom => {
            map.insert("type".into(), json!("custom"));
            map.insert("query".into(), json!(v.values.join(",")));
        }
        VariableKind::Textbox => {
            map.insert("type".into(), json!("textbox"));
            map.insert("query".into(), json!(v.default.clone().unwrap_or_default()));
        }
        VariableKind::Interval => {
            map.insert("type".into(), json!("interval"));
            map.insert("query".into(), json!(v.values.join(",")));
            map.insert("auto".into(), json!(false));
            map.insert("auto_count".into(), json!(30));
            map.insert("auto_min".into(), json!("10s"));
            map.insert("refresh".into(), json!(2));
        }
    }
    out
}

/// Writes a Grafana provisioning folder into `dir`: `provisioning/dashboards/aurora.yaml`
/// (a file provider), `provisioning/datasources/clickhouse.yaml` (the plugin's datasource for
/// `url`, with the password from an environment variable), and the dashboards under
/// `dashboards/`. Returns the files written.
pub fn write_provisioning(
    dir: &Path,
    dashboards: &[(String, &Dashboard)],
    clickhouse_url: &str,
    user: &str,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    let provider_dir = dir.join("provisioning/dashboards");
    let datasource_dir = dir.join("provisioning/datasources");
    let dashboards_dir = dir.join("dashboards");
    for d in [&provider_dir, &datasource_dir, &dashboards_dir] {
        std::fs::create_dir_all(d)?;
    }
    let mut written = Vec::new();
    let provider = provider_dir.join("aurora.yaml");
    std::fs::write(
        &provider,
        "# Written by `aurora dashboard export --grafana-provisioning`.\n\
             apiVersion: 1\n\
             providers:\n\
             \x20 - name: aurora\n\
             \x20   folder: Aurora\n\
             \x20   type: file\n\
             \x20   disableDeletion: false\n\
             \x20   allowUiUpdates: true\n\
             \x20   options:\n\
             \x20     # Mount the `dashboards/` folder written beside `provisioning/` here.\n\
             \x20     path: /var/lib/grafana/dashboards/aurora\n",
    )?;
    written.push(provider);
    let (host, port, secure) = split_url(clickhouse_url);
    let datasource = datasource_dir.join("clickhouse.yaml");
    std::fs::write(
        &datasource,
        format!(
            "# Written by `aurora dashboard export --grafana-provisioning`.\n\
             apiVersion: 1\n\
             datasources:\n\
             \x20 - name: ClickHouse\n\
             \x20   type: {PLUGIN_ID}\n\
             \x20   uid: aurora-clickhouse\n\
             \x20   jsonData:\n\
             \x20     host: {host}\n\
             \x20     port: {port}\n\
             \x20     protocol: http\n\
             \x20     secure: {secure}\n\
             \x20     username: {user}\n\
             \x20   secureJsonData:\n\
             \x20     # Grafana reads it from its environment; never written here.\n\
             \x20     password: $CLICKHOUSE_PASSWORD\n"
        ),
    )?;
    written.push(datasource);
    for (name, d) in dashboards {
        let mut body = dashboard_body(d);
        set_datasource_uid(&mut body, "aurora-clickhouse");
        let path = dashboards_dir.join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(&body).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        written.push(path);
    }
    Ok(written)
}

/// Points every datasource reference of the plugin at `uid` (provisioned dashboards have no
/// `__inputs` to ask for one).
fn set_datasource_uid(value: &mut Json, uid: &str) {
    match value {
        Json::Object(map) => {
            if map.get("type").and_then(Json::as_str) == Some(PLUGIN_ID) && map.contains_key("uid")
            {
                map.insert("uid".into(), json!(uid));
            }
            for v in map.values_mut() {
                set_datasource_uid(v, uid);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|v| set_datasource_uid(v, uid)),
        _ => {}
    }
}

/// Host, HTTP port and whether TLS is used, from a ClickHouse HTTP URL.
fn split_url(url: &str) -> (String, u16, bool) {
    match url::Url::parse(url) {
        Ok(u) => {
            let secure = u.scheme() == "https";
            (
                u.host_str().unwrap_or("localhost").to_owned(),
                u.port().unwrap_or(if secure { 8443 } else { 8123 }),
                secure,
            )
        }
        Err(_) => ("localhost".into(), 8123, false),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_stable_slugs() {
        assert_eq!(
            uid("Web events — demo.events"),
            "aurora-web-events-demo-events"
        );
        assert!(uid(&"x".repeat(100)).len() <= 40);
    }

    #[test]
    fn panels_and_variables_take_grafana_shapes() {
        let d: Dashboard = super::super::check::check_str(
            "d.yaml",
            "\
title: T
refresh: 30s
variables:
  - {name: level, type: custom, values: [info, error], default: error}
panels:
  - title: Errors
    type: stat
    grid: {x: 0, y: 0, w: 6, h: 4}
    unit: percent
    thresholds: [{value: 5, color: danger}]
    query: SELECT 1
  - title: Trend
    type: sparkline
    grid: {x: 6, y: 0, w: 6, h: 4}
    query: SELECT $__timeInterval(ts) AS t, count() FROM e WHERE $__timeFilter(ts) GROUP BY t
",
        )
        .unwrap();
        let json = export(&d);
        assert_eq!(json["__inputs"][0]["pluginId"], PLUGIN_ID);
        assert_eq!(json["schemaVersion"], SCHEMA_VERSION);
        assert_eq!(json["refresh"], "30s");
        let p = &json["panels"][0];
        assert_eq!(p["type"], "stat");
        assert_eq!(p["targets"][0]["format"], 1);
        assert_eq!(p["targets"][0]["datasource"]["uid"], "${DS_CLICKHOUSE}");
        assert_eq!(
            p["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["color"],
            "red"
        );
        assert_eq!(json["panels"][1]["options"]["graphMode"], "area");
        assert_eq!(json["panels"][1]["targets"][0]["format"], 0);
        let v = &json["templating"]["list"][0];
        assert_eq!(v["query"], "info,error");
        assert_eq!(v["current"]["value"], "error");
    }
}
