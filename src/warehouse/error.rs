//! Typed errors of the ClickHouse layer. Server exceptions are decoded from the text the
//! server sends (two spellings: 18.x `Code: 62, e.displayText() = DB::Exception: ...` and
//! 20.x+ `Code: 62. DB::Exception: ... (SYNTAX_ERROR) (version ...)`) into code, name,
//! message and position, and every error can say in plain words what to try next.

use std::fmt;
use std::time::Duration;

use super::local_server::LocalServerError;

/// An exception reported by the ClickHouse server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub code: u32,
    /// The symbolic name when the server sends one (20.x+), e.g. `SYNTAX_ERROR`.
    pub name: Option<String>,
    /// The message without the `DB::Exception:` wrapping and version trailer.
    pub message: String,
    /// 0-based byte offset into the query for syntax errors, when the server gives one.
    pub position: Option<usize>,
    pub http_status: u16,
}

impl ServerError {
    /// Parses the body of a failed HTTP response. Returns `None` if it is not a ClickHouse
    /// exception (e.g. a proxy's HTML page).
    pub fn parse(body: &str, http_status: u16) -> Option<Self> {
        let start = body.find("Code: ")?;
        let rest = &body[start + "Code: ".len()..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let code: u32 = digits.parse().ok()?;
        let after_code = &rest[digits.len()..];
        let mut message = match after_code.find("DB::Exception: ") {
            Some(i) => after_code[i + "DB::Exception: ".len()..].trim().to_string(),
            None => after_code
                .trim_start_matches(['.', ',', ' '])
                .trim()
                .to_string(),
        };
        // 18.x appends `, e.what() = DB::Exception`; newer servers `(NAME) (version x)`.
        if let Some(i) = message.find(", e.what() = ") {
            message.truncate(i);
        }
        let mut name = None;
        if let Some(i) = message.rfind(" (version ") {
            message.truncate(i);
        }
        if message.ends_with(')') {
            if let Some(open) = message.rfind(" (") {
                let candidate = &message[open + 2..message.len() - 1];
                if !candidate.is_empty()
                    && candidate
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    name = Some(candidate.to_string());
                    message.truncate(open);
                }
            }
        }
        let message = message.trim_end_matches('.').trim().to_string();
        let position = message.find("failed at position ").and_then(|i| {
            let tail = &message[i + "failed at position ".len()..];
            let digits: String = tail.chars().take_while(|c| c.is_ascii_digit()).collect();
            // The server counts from 1; callers index from 0.
            digits.parse::<usize>().ok().map(|p| p.saturating_sub(1))
        });
        Some(Self {
            code,
            name,
            message,
            position,
            http_status,
        })
    }

    /// What the user can do about this error, for the codes people actually hit.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self.code {
            62 => "check the SQL near the marked position",
            47 => "check the column name; `aurora schema TABLE` lists the columns",
            46 => "this server does not know that function; check its spelling and the server version",
            60 => "check the table name; `aurora schema` lists the tables",
            81 => "check the database name (`clickhouse.database` or AURORA_CLICKHOUSE_DATABASE)",
            192 | 193 | 516 => "check the user and password (`clickhouse.user`/`password_file`, --password-file, or AURORA_CLICKHOUSE_USER/PASSWORD_FILE)",
            164 => "Aurora runs queries read-only by default; pass --write to allow changes",
            159 => "the query hit max_execution_time; narrow it or raise --timeout",
            158 | 396 => "the result hit max_result_rows; add a LIMIT or raise --max-rows",
            215 => "every selected column must be in GROUP BY or inside an aggregate function",
            241 => "the query ran out of memory; aggregate more or read fewer rows",
            394 => "the query was cancelled",
            _ => return None,
        })
    }

    pub fn is_auth_failure(&self) -> bool {
        matches!(self.code, 192 | 193 | 516) || self.http_status == 401
    }
}

/// How many alternatives of a syntax error's "Expected one of" list are worth reading.
const EXPECTED_SHOWN: usize = 6;

impl ServerError {
    /// The message with a syntax error's list of expected tokens cut to its first entries:
    /// the full list (often 40 items) buries the point.
    pub fn short_message(&self) -> String {
        let marker = ". Expected one of: ";
        let Some(i) = self.message.find(marker) else {
            return self.message.clone();
        };
        let items: Vec<&str> = self.message[i + marker.len()..].split(", ").collect();
        let mut out = format!(
            "{}{}{}",
            &self.message[..i],
            marker,
            items[..items.len().min(EXPECTED_SHOWN)].join(", ")
        );
        if items.len() > EXPECTED_SHOWN {
            out.push_str(&format!(" (and {} more)", items.len() - EXPECTED_SHOWN));
        }
        out
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClickHouse error {}", self.code)?;
        if let Some(name) = &self.name {
            write!(f, " ({name})")?;
        }
        write!(f, ": {}", self.short_message())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("cannot connect to ClickHouse at {url}: {reason}; {hint}")]
    Connect {
        url: String,
        reason: String,
        hint: String,
    },
    #[error("ClickHouse at {url} did not answer within {timeout:?}; check the server's load or raise the timeout")]
    Timeout { url: String, timeout: Duration },
    #[error("{0}")]
    Server(ServerError),
    #[error("the query was cancelled (query_id {query_id})")]
    Cancelled { query_id: String },
    #[error("unexpected answer from ClickHouse at {url}: {detail}")]
    Protocol { url: String, detail: String },
    #[error("cannot decode a value from ClickHouse: {0}")]
    Decode(String),
    #[error("invalid connection settings: {0}")]
    Settings(String),
    #[error(transparent)]
    LocalServer(#[from] LocalServerError),
}

impl WarehouseError {
    /// A line of advice to print under the error, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            WarehouseError::Server(e) => e.hint().map(str::to_string),
            _ => None,
        }
    }

    /// The server's error, if this error came from the server.
    pub fn server(&self) -> Option<&ServerError> {
        match self {
            WarehouseError::Server(e) => Some(e),
            _ => None,
        }
    }
}

pub type Result<T, E = WarehouseError> = std::result::Result<T, E>;

/// Describes a transport failure in one sentence: what was tried, what happened, what to do.
pub(crate) fn connect_error(url: &str, err: &reqwest::Error) -> WarehouseError {
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        chain.push_str(&e.to_string());
        chain.push(' ');
        source = e.source();
    }
    let lower = chain.to_lowercase();
    let (reason, hint) = if lower.contains("connection refused") {
        (
            "connection refused".to_string(),
            "is the server running and is the port right? Leave `clickhouse.url` unset to let Aurora start its own server".to_string(),
        )
    } else if lower.contains("dns")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        (
            "the host name does not resolve".to_string(),
            "check the host in the URL".to_string(),
        )
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
        (
            format!("TLS failed ({})", chain.trim()),
            "check `clickhouse.tls.ca_file`, or that the port speaks HTTPS".to_string(),
        )
    } else {
        (
            chain.trim().to_string(),
            "check the URL and that a ClickHouse HTTP port is listening there".to_string(),
        )
    };
    WarehouseError::Connect {
        url: url.to_string(),
        reason,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_18_16_syntax_error() {
        let body = "Code: 62, e.displayText() = DB::Exception: Syntax error: failed at position 1: SELEC 1. Expected one of: SELECT, e.what() = DB::Exception\n";
        let e = ServerError::parse(body, 400).unwrap();
        assert_eq!(e.code, 62);
        assert_eq!(e.name, None);
        assert_eq!(e.position, Some(0));
        assert_eq!(
            e.message,
            "Syntax error: failed at position 1: SELEC 1. Expected one of: SELECT"
        );
    }

    #[test]
    fn parses_modern_error_with_name_and_version() {
        let body = "Code: 60. DB::Exception: Table default.nope does not exist. (UNKNOWN_TABLE) (version 24.3.1.1 (official build))\n";
        let e = ServerError::parse(body, 404).unwrap();
        assert_eq!(e.code, 60);
        assert_eq!(e.name.as_deref(), Some("UNKNOWN_TABLE"));
        assert_eq!(e.message, "Table default.nope does not exist");
        assert_eq!(e.position, None);
        assert!(e.hint().is_some());
        assert_eq!(
            e.to_string(),
            "ClickHouse error 60 (UNKNOWN_TABLE): Table default.nope does not exist"
        );
    }

    #[test]
    fn modern_syntax_error_position() {
        let body = "Code: 62. DB::Exception: Syntax error: failed at position 8 ('FORM') (line 1, col 8): FORM t. Expected one of: ... (SYNTAX_ERROR) (version 23.8.2.7 (official build))";
        let e = ServerError::parse(body, 400).unwrap();
        assert_eq!(e.position, Some(7));
        assert_eq!(e.name.as_deref(), Some("SYNTAX_ERROR"));
    }

    #[test]
    fn long_expected_lists_are_cut_for_display() {
        let list: Vec<String> = (1..=10).map(|i| format!("T{i}")).collect();
        let body = format!(
            "Code: 62, e.displayText() = DB::Exception: Syntax error: failed at position 1: X. Expected one of: {}, e.what() = DB::Exception",
            list.join(", ")
        );
        let e = ServerError::parse(&body, 400).unwrap();
        assert!(e.message.ends_with("T10"), "full text kept: {}", e.message);
        assert_eq!(
            e.to_string(),
            "ClickHouse error 62: Syntax error: failed at position 1: X. Expected one of: T1, T2, T3, T4, T5, T6 (and 4 more)"
        );
    }

    #[test]
    fn non_clickhouse_body_is_not_parsed() {
        assert_eq!(
            ServerError::parse("<html>502 Bad Gateway</html>", 502),
            None
        );
    }
}
