//! What the connected server can do, derived once from `SELECT version()`. Code asks these
//! flags instead of comparing versions in scattered places; the integration tests probe the
//! real server to check each flag against what it actually does.

use std::fmt;

/// A server version such as `18.16.1` or `24.3.1.2672`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ServerVersion {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.').map(|p| {
            p.chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
                .parse::<u32>()
        });
        let major = parts.next()?.ok()?;
        let minor = parts.next().and_then(|p| p.ok()).unwrap_or(0);
        let patch = parts.next().and_then(|p| p.ok()).unwrap_or(0);
        Some(Self {
            major,
            minor,
            patch,
        })
    }

    const fn at_least(self, major: u32, minor: u32) -> bool {
        self.major > major || (self.major == major && self.minor >= minor)
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Features that differ between the ClickHouse versions Aurora supports (18.16 to 26.x).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub version: ServerVersion,
    /// The full version string, e.g. `18.16.1`.
    pub version_text: String,
    /// `RowBinaryWithNamesAndTypes` output, which the `clickhouse` crate uses to validate rows.
    pub row_binary_with_names_and_types: bool,
    /// Compressed (`compress=1`) responses work; broken in 18.16's build.
    pub compressed_responses: bool,
    /// `EXPLAIN` exists; otherwise a dry run is `DESCRIBE (query)`.
    pub explain: bool,
    /// `LowCardinality` columns need `allow_experimental_low_cardinality_type=1` at CREATE.
    pub low_cardinality_needs_flag: bool,
    pub window_functions: bool,
    /// More than one JOIN in one SELECT (`a JOIN b ... JOIN c`); older servers refuse it
    /// ("Support for more than one JOIN in query is not implemented").
    pub multiple_joins: bool,
    pub datetime64: bool,
    pub to_start_of_interval: bool,
    pub with_fill: bool,
    pub query_parameters: bool,
    pub insert_deduplication_token: bool,
    pub int128: bool,
    /// The `X-ClickHouse-Summary` response header with rows/bytes read.
    pub summary_header: bool,
    /// Users, roles, grants and row policies managed with SQL (`CREATE ROLE`, `GRANT`).
    pub sql_access_control: bool,
}

impl Capabilities {
    pub fn from_version(text: &str) -> Self {
        let version = ServerVersion::parse(text).unwrap_or(ServerVersion {
            major: 0,
            minor: 0,
            patch: 0,
        });
        let v = |major, minor| version.at_least(major, minor);
        Self {
            version,
            version_text: text.trim().to_string(),
            row_binary_with_names_and_types: v(20, 1),
            compressed_responses: v(19, 1),
            explain: v(20, 6),
            low_cardinality_needs_flag: !v(19, 9),
            window_functions: v(21, 9),
            // Emulated by rewriting to subqueries since 19.1 behind a setting, on by default
            // from 19.3.
            multiple_joins: v(19, 3),
            datetime64: v(20, 1),
            to_start_of_interval: v(19, 1),
            with_fill: v(19, 14),
            query_parameters: v(19, 11),
            insert_deduplication_token: v(22, 2),
            int128: v(20, 8),
            summary_header: v(19, 9),
            sql_access_control: v(20, 4),
        }
    }

    /// Facts about the SQL dialect, as plain sentences (for prompts and `aurora server status`).
    pub fn dialect_notes(&self) -> Vec<&'static str> {
        let mut notes = Vec::new();
        if !self.to_start_of_interval {
            notes.push("no toStartOfInterval: use toStartOfMinute/FiveMinute/Hour/Day");
        }
        if !self.window_functions {
            notes.push("no window functions (OVER ...)");
        }
        if !self.multiple_joins {
            notes.push(
                "only one JOIN per SELECT: join a third table to a subquery that joins the first two",
            );
        }
        if !self.with_fill {
            notes.push("no ORDER BY ... WITH FILL");
        }
        if !self.datetime64 {
            notes.push("no DateTime64");
        }
        if !self.explain {
            notes.push("no EXPLAIN (Aurora checks queries with DESCRIBE (query))");
        }
        if !self.query_parameters {
            notes.push("no query parameters ({name:Type})");
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            ServerVersion::parse("18.16.1"),
            Some(ServerVersion {
                major: 18,
                minor: 16,
                patch: 1
            })
        );
        assert_eq!(
            ServerVersion::parse("24.3.1.2672").map(|v| v.to_string()),
            Some("24.3.1".to_string())
        );
        assert_eq!(ServerVersion::parse("garbage"), None);
    }

    #[test]
    fn old_server_lacks_modern_features() {
        let caps = Capabilities::from_version("18.16.1");
        assert!(!caps.row_binary_with_names_and_types);
        assert!(!caps.compressed_responses);
        assert!(!caps.explain);
        assert!(caps.low_cardinality_needs_flag);
        assert!(!caps.to_start_of_interval);
        assert!(!caps.multiple_joins);
        assert!(caps
            .dialect_notes()
            .iter()
            .any(|n| n.contains("toStartOfInterval")));
    }

    #[test]
    fn new_server_has_them() {
        let caps = Capabilities::from_version("24.8.4.13");
        assert!(caps.row_binary_with_names_and_types);
        assert!(caps.explain && caps.window_functions && caps.insert_deduplication_token);
        assert!(!caps.low_cardinality_needs_flag);
        assert!(caps.dialect_notes().is_empty());
    }
}
