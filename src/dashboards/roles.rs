//! Column roles: what a column is for (a time axis, a category to group by, a quantity to add
//! up, an identifier, a status…), judged from its type, the words of its name and its measured
//! profile, with a score and the reasons, as Metabase's X-rays judge semantic types. Templates
//! ask for roles, never for names, so they fit tables no one wrote them for; the same judgement
//! keeps clock times (`hhmm` integers), coordinates and identifiers out of sums.
//!
//! Name words are general vocabulary (`status`, `latency`, `price`), never one data set's.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::warehouse::profile::ColumnProfile;
use crate::warehouse::schema::ColumnInfo;
use crate::warehouse::types::DataType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A date or date-time: the time axis.
    Time,
    /// A dimension with few distinct values, to group by.
    Category,
    /// A number worth adding up or averaging.
    Measure,
    /// A measure of money: price, amount, revenue.
    Money,
    /// A measure of elapsed time: latency, duration.
    Duration,
    /// Identifies a row or a thing: `id`, `order_id`, a UUID.
    Identifier,
    /// Identifies a person: user, customer, visitor.
    User,
    /// A status, level or outcome: `status`, `level`, an HTTP status code.
    Status,
    /// Free text: a log message, an error, a description.
    Message,
    /// A thing that reports or serves: a device, sensor, host, service.
    Entity,
    /// A URL, path, page or endpoint.
    Path,
}

impl Role {
    pub const ALL: [Role; 11] = [
        Role::Time,
        Role::Category,
        Role::Measure,
        Role::Money,
        Role::Duration,
        Role::Identifier,
        Role::User,
        Role::Status,
        Role::Message,
        Role::Entity,
        Role::Path,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Time => "time",
            Role::Category => "category",
            Role::Measure => "measure",
            Role::Money => "money",
            Role::Duration => "duration",
            Role::Identifier => "identifier",
            Role::User => "user",
            Role::Status => "status",
            Role::Message => "message",
            Role::Entity => "entity",
            Role::Path => "path",
        }
    }
}

/// How well a column fits a role, 1–100, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    pub score: u8,
    pub reasons: Vec<String>,
}

impl Fit {
    fn new(score: u8, reason: impl Into<String>) -> Self {
        Self {
            score,
            reasons: vec![reason.into()],
        }
    }

    fn plus(mut self, points: u8, reason: impl Into<String>) -> Self {
        self.score = self.score.saturating_add(points).min(100);
        self.reasons.push(reason.into());
        self
    }
}

const TIME_WORDS: [&str; 9] = [
    "time",
    "timestamp",
    "ts",
    "date",
    "at",
    "created",
    "datetime",
    "when",
    "day",
];
const CALENDAR_PARTS: [&str; 9] = [
    "year", "month", "day", "hour", "minute", "second", "week", "quarter", "weekday",
];
const COORDINATES: [&str; 5] = ["lat", "lon", "lng", "latitude", "longitude"];
const CODE_WORDS: [&str; 9] = [
    "port",
    "version",
    "offset",
    "partition",
    "zip",
    "postcode",
    "phone",
    "code",
    "number",
];
const ID_WORDS: [&str; 6] = ["id", "uuid", "guid", "key", "hash", "uid"];
const MONEY_WORDS: [&str; 17] = [
    "price", "amount", "revenue", "total", "cost", "value", "sales", "spend", "paid", "payment",
    "income", "fee", "tax", "discount", "profit", "usd", "eur",
];
const DURATION_WORDS: [&str; 6] = ["latency", "duration", "elapsed", "took", "rtt", "ttfb"];
const DURATION_UNITS: [&str; 9] = [
    "ms", "us", "ns", "sec", "secs", "seconds", "millis", "micros", "nanos",
];
const USER_WORDS: [&str; 10] = [
    "user", "customer", "visitor", "client", "account", "member", "buyer", "player", "person",
    "uid",
];
const STATUS_WORDS: [&str; 7] = [
    "status", "level", "severity", "state", "result", "outcome", "priority",
];
const MESSAGE_WORDS: [&str; 13] = [
    "message",
    "msg",
    "text",
    "body",
    "error",
    "description",
    "log",
    "line",
    "content",
    "exception",
    "stack",
    "summary",
    "detail",
];
const ENTITY_WORDS: [&str; 15] = [
    "device",
    "sensor",
    "host",
    "hostname",
    "server",
    "instance",
    "service",
    "node",
    "machine",
    "pod",
    "container",
    "station",
    "meter",
    "app",
    "application",
];
const PATH_WORDS: [&str; 9] = [
    "url", "uri", "path", "page", "endpoint", "route", "referrer", "referer", "pathname",
];

/// The words of a name: `event_time` → event, time; `userId` → user, id; `HTTPStatus` →
/// http, status. Lowercase.
pub fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if boundary && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn has_word(words: &[String], list: &[&str]) -> Option<String> {
    words.iter().find(|w| list.contains(&w.as_str())).cloned()
}

/// [`has_word`], also taking words that end with an entry of four letters or more:
/// warehouse names glue words together (`totalprice`, `shipdate`, `orderstatus`). Only for
/// lists whose entries do not end other common words.
fn has_glued_word(words: &[String], list: &[&str]) -> Option<String> {
    has_word(words, list).or_else(|| {
        words
            .iter()
            .find(|w| list.iter().any(|item| item.len() >= 4 && w.ends_with(item)))
            .cloned()
    })
}

/// A column and what is known of it, judged once for every role.
pub struct Judged<'c> {
    pub column: &'c ColumnInfo,
    pub ty: DataType,
    pub words: Vec<String>,
    pub profile: Option<&'c ColumnProfile>,
    /// Rows the profile's sample held, for telling few values from many.
    pub sampled_rows: u64,
}

impl<'c> Judged<'c> {
    pub fn new(
        column: &'c ColumnInfo,
        profile: Option<&'c ColumnProfile>,
        sampled_rows: u64,
    ) -> Option<Self> {
        Some(Self {
            ty: column.data_type()?,
            words: words(&column.name),
            column,
            profile,
            sampled_rows,
        })
    }

    fn distinct(&self) -> Option<u64> {
        self.profile
            .filter(|_| self.sampled_rows > 0)
            .map(|p| p.distinct)
    }

    /// `id`, `user_id`, `userId`, and glued keys such as `custkey`.
    fn is_identifier_named(&self) -> Option<String> {
        let last = self.words.last()?;
        (ID_WORDS.contains(&last.as_str()) || (last.len() > 3 && last.ends_with("key")))
            .then(|| last.clone())
    }

    /// An integer named like a time whose values stay within a clock's `0..=2400`: a time of
    /// day written as `hhmm`, not a quantity and not a timestamp.
    fn is_clock_time(&self) -> bool {
        self.ty.unwrap_wrappers().is_integer()
            && has_word(&self.words, &["time", "hhmm", "clock"]).is_some()
            && self
                .profile
                .and_then(|p| p.max)
                .is_none_or(|max| max <= 2400.0)
    }

    fn is_calendar_part(&self) -> bool {
        self.words.len() == 1 && CALENDAR_PARTS.contains(&self.words[0].as_str())
            || self
                .words
                .last()
                .is_some_and(|w| CALENDAR_PARTS.contains(&w.as_str()) && self.ty.is_integer())
    }

    fn is_stringish(&self) -> bool {
        let inner = self.ty.unwrap_wrappers();
        matches!(
            inner,
            DataType::String | DataType::FixedString(_) | DataType::Enum8(_) | DataType::Enum16(_)
        )
    }

    fn is_enumerated(&self) -> bool {
        let inner = self.ty.unwrap_wrappers();
        matches!(inner, DataType::Enum8(_) | DataType::Enum16(_))
            || matches!(strip_nullable(&self.ty), DataType::LowCardinality(_))
    }

    /// Whether the column's type can play `role` at all, whatever its name says: what a
    /// user's explicit choice must meet.
    pub fn can_play(&self, role: Role) -> bool {
        let inner = self.ty.unwrap_wrappers();
        let composite = matches!(
            inner,
            DataType::Array(_)
                | DataType::Map(..)
                | DataType::Tuple(_)
                | DataType::AggregateFunction(_)
        );
        match role {
            Role::Time => inner.is_temporal(),
            Role::Measure | Role::Money | Role::Duration => inner.is_numeric(),
            Role::Message | Role::Path => self.is_stringish(),
            Role::Category | Role::Status | Role::Identifier | Role::User | Role::Entity => {
                !composite
            }
        }
    }

    /// How well the column fits `role`; `None` when it does not.
    pub fn fit(&self, role: Role) -> Option<Fit> {
        match role {
            Role::Time => self.time(),
            Role::Category => self.category(),
            Role::Measure => self.measure(),
            Role::Money => self.money(),
            Role::Duration => self.duration(),
            Role::Identifier => self.identifier(),
            Role::User => self.user(),
            Role::Status => self.status(),
            Role::Message => self.message(),
            Role::Entity => self.entity(),
            Role::Path => self.path(),
        }
    }

    fn time(&self) -> Option<Fit> {
        let inner = self.ty.unwrap_wrappers();
        let mut fit = match inner {
            DataType::DateTime(_) | DataType::DateTime64 { .. } => Fit::new(60, "a date-time"),
            DataType::Date | DataType::Date32 => Fit::new(40, "a date"),
            _ => return None,
        };
        if self.column.in_sorting_key || self.column.in_partition_key {
            fit = fit.plus(20, "in the table's key");
        }
        if let Some(w) = has_glued_word(&self.words, &TIME_WORDS) {
            fit = fit.plus(10, format!("named `{w}`"));
        }
        if let Some(p) = self.profile {
            if p.newest.is_none() {
                fit.score = fit.score.saturating_sub(30);
                fit.reasons.push("holds no time yet".into());
            }
        }
        Some(fit)
    }

    fn category(&self) -> Option<Fit> {
        if self.is_identifier_named().is_some()
            || has_word(&self.words, &MESSAGE_WORDS).is_some() && !self.is_enumerated()
        {
            return None;
        }
        let inner = self.ty.unwrap_wrappers();
        let distinct = self.distinct();
        if distinct.is_some_and(|d| d < 2) {
            return None;
        }
        let mut fit = if self.is_enumerated()
            && (self.is_stringish() || matches!(inner, DataType::Enum8(_) | DataType::Enum16(_)))
        {
            Fit::new(60, "an enum or low-cardinality string")
        } else if matches!(inner, DataType::Bool) {
            Fit::new(40, "a yes/no value")
        } else if self.is_stringish() {
            match distinct {
                Some(d) if d <= 30 => Fit::new(60, format!("a string with {d} distinct values")),
                Some(d) if d <= 300 => Fit::new(45, format!("a string with {d} distinct values")),
                Some(d) if d <= 3000 => Fit::new(20, format!("a string with {d} distinct values")),
                Some(_) => return None,
                None => Fit::new(20, "a string (not measured)"),
            }
        } else {
            return None;
        };
        if has_glued_word(&self.words, &STATUS_WORDS).is_some() {
            // A status is a category too, but templates ask for it by its own role.
            fit.score = fit.score.saturating_sub(10);
        }
        if let (Some(d), rows) = (distinct, self.sampled_rows) {
            if rows > 0 && d * 2 > rows && d > 30 {
                // Nearly one value per row: a label, not a group.
                return None;
            }
        }
        Some(fit)
    }

    /// Why a numeric column is not a quantity, if it is not one.
    fn not_a_quantity(&self) -> Option<String> {
        if let Some(w) = self.is_identifier_named() {
            return Some(format!("named `{w}`: identifies"));
        }
        if self.column.in_primary_key && self.ty.is_integer() {
            return Some("a key column".into());
        }
        if self.is_clock_time() {
            return Some("a clock time (hhmm)".into());
        }
        if self.is_calendar_part() {
            return Some("a calendar part".into());
        }
        if let Some(w) = has_word(&self.words, &COORDINATES) {
            return Some(format!("a coordinate (`{w}`)"));
        }
        if let Some(w) = has_word(&self.words, &CODE_WORDS) {
            return Some(format!("a code (`{w}`)"));
        }
        if has_glued_word(&self.words, &STATUS_WORDS).is_some() {
            return Some("a status".into());
        }
        None
    }

    fn measure(&self) -> Option<Fit> {
        let inner = self.ty.unwrap_wrappers();
        if !inner.is_numeric()
            || matches!(inner, DataType::Bool)
            || matches!(strip_nullable(&self.ty), DataType::LowCardinality(_))
            || self.not_a_quantity().is_some()
        {
            return None;
        }
        let mut fit = if inner.is_integer() {
            Fit::new(35, "an integer")
        } else {
            Fit::new(50, "a decimal number")
        };
        if self.distinct().is_some_and(|d| d <= 1) {
            return None;
        }
        if has_glued_word(&self.words, &MONEY_WORDS).is_some()
            || has_word(&self.words, &DURATION_WORDS).is_some()
        {
            fit = fit.plus(10, "named like a quantity");
        }
        Some(fit)
    }

    fn money(&self) -> Option<Fit> {
        let base = self.measure()?;
        let w = has_glued_word(&self.words, &MONEY_WORDS)?;
        let mut fit = Fit::new(60, format!("named `{w}`"));
        fit.reasons
            .extend(base.reasons.into_iter().filter(|r| !r.starts_with("named")));
        if matches!(self.ty.unwrap_wrappers(), DataType::Other(_)) || !self.ty.is_integer() {
            fit = fit.plus(15, "not an integer");
        }
        Some(fit)
    }

    fn duration(&self) -> Option<Fit> {
        let inner = self.ty.unwrap_wrappers();
        if !inner.is_numeric() || self.is_clock_time() || self.is_identifier_named().is_some() {
            return None;
        }
        if let Some(w) = has_word(&self.words, &DURATION_WORDS) {
            return Some(Fit::new(80, format!("named `{w}`")));
        }
        let last = self.words.last()?;
        if DURATION_UNITS.contains(&last.as_str()) {
            return Some(Fit::new(60, format!("ends in the unit `{last}`")));
        }
        // `response_time`, `request_time` as floats: seconds, as web servers log them.
        if last == "time" && inner.is_float() {
            return Some(Fit::new(50, "a decimal number named `time`"));
        }
        None
    }

    fn identifier(&self) -> Option<Fit> {
        let inner = self.ty.unwrap_wrappers();
        if matches!(inner, DataType::Uuid) {
            return Some(Fit::new(80, "a UUID"));
        }
        if !(inner.is_integer() || self.is_stringish()) || self.is_enumerated() {
            return None;
        }
        if let Some(w) = self.is_identifier_named() {
            return Some(Fit::new(70, format!("named `{w}`")));
        }
        let (Some(d), rows) = (self.distinct(), self.sampled_rows) else {
            return None;
        };
        let short = self
            .profile
            .and_then(|p| p.avg_length)
            .is_none_or(|l| l <= 64.0);
        (self.is_stringish()
            && rows >= 20
            && d * 2 > rows
            && short
            && has_word(&self.words, &MESSAGE_WORDS).is_none())
        .then(|| Fit::new(35, format!("{d} distinct values in {rows} rows")))
    }

    fn user(&self) -> Option<Fit> {
        let inner = self.ty.unwrap_wrappers();
        if !(inner.is_integer() || self.is_stringish() || matches!(inner, DataType::Uuid)) {
            return None;
        }
        let w = has_word(&self.words, &USER_WORDS)?;
        let mut fit = Fit::new(60, format!("named `{w}`"));
        if self.is_identifier_named().is_some() || matches!(inner, DataType::Uuid) {
            fit = fit.plus(20, "an identifier");
        }
        Some(fit)
    }

    fn status(&self) -> Option<Fit> {
        let inner = self.ty.unwrap_wrappers();
        let w = has_glued_word(&self.words, &STATUS_WORDS);
        // HTTP status codes: integers within 100..=599.
        if inner.is_integer() {
            let in_http_range = self
                .profile
                .and_then(|p| Some((p.min?, p.max?)))
                .is_some_and(|(min, max)| min >= 100.0 && max <= 599.0);
            let named = w.is_some() || has_word(&self.words, &["code", "http"]).is_some();
            return (named && in_http_range)
                .then(|| Fit::new(80, "status codes within 100–599"))
                .or_else(|| {
                    (named && self.profile.is_none()).then(|| Fit::new(40, "an integer status"))
                });
        }
        let w = w?;
        if !(self.is_stringish() || matches!(inner, DataType::Bool)) {
            return None;
        }
        let few = self.is_enumerated() || self.distinct().is_some_and(|d| d <= 50);
        let mut fit = Fit::new(60, format!("named `{w}`"));
        if few {
            fit = fit.plus(20, "few distinct values");
        } else if self.distinct().is_some() {
            return None;
        }
        Some(fit)
    }

    fn message(&self) -> Option<Fit> {
        if !self.is_stringish() || self.is_enumerated() {
            return None;
        }
        let long = self.profile.and_then(|p| p.avg_length).map(|l| l >= 20.0);
        match (has_word(&self.words, &MESSAGE_WORDS), long) {
            (Some(w), Some(false)) => Some(Fit::new(40, format!("named `{w}`, short texts"))),
            (Some(w), _) => Some(Fit::new(75, format!("named `{w}`"))),
            (None, Some(true)) => self
                .profile
                .and_then(|p| p.avg_length)
                .filter(|l| *l >= 40.0)
                .map(|l| Fit::new(30, format!("texts of {l:.0} bytes on average"))),
            (None, _) => None,
        }
    }

    fn entity(&self) -> Option<Fit> {
        let inner = self.ty.unwrap_wrappers();
        if !(inner.is_integer()
            || self.is_stringish()
            || matches!(inner, DataType::Uuid | DataType::Ipv4 | DataType::Ipv6))
        {
            return None;
        }
        let w = has_word(&self.words, &ENTITY_WORDS)?;
        if self.distinct().is_some_and(|d| d < 2) {
            return None;
        }
        Some(Fit::new(70, format!("named `{w}`")))
    }

    fn path(&self) -> Option<Fit> {
        if !self.is_stringish() {
            return None;
        }
        let w = has_word(&self.words, &PATH_WORDS)?;
        Some(Fit::new(70, format!("named `{w}`")))
    }
}

fn strip_nullable(ty: &DataType) -> &DataType {
    match ty {
        DataType::Nullable(inner) => strip_nullable(inner),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn column(name: &str, ty: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            type_name: ty.into(),
            ..ColumnInfo::default()
        }
    }

    fn fit(c: &ColumnInfo, p: Option<&ColumnProfile>, role: Role) -> Option<u8> {
        Judged::new(c, p, 1000).unwrap().fit(role).map(|f| f.score)
    }

    #[test]
    fn words_split_snake_camel_and_acronyms() {
        assert_eq!(words("event_time"), ["event", "time"]);
        assert_eq!(words("userId"), ["user", "id"]);
        assert_eq!(words("HTTPStatus"), ["http", "status"]);
        assert_eq!(words("c_custkey"), ["c", "custkey"]);
        assert_eq!(words("latency_ms"), ["latency", "ms"]);
    }

    #[test]
    fn clock_times_coordinates_and_ids_are_never_measures() {
        let hhmm = ColumnProfile {
            distinct: 900,
            min: Some(1.0),
            max: Some(2359.0),
            ..ColumnProfile::default()
        };
        let dep = column("dep_time", "Int32");
        assert_eq!(fit(&dep, Some(&hhmm), Role::Measure), None);
        assert_eq!(fit(&dep, Some(&hhmm), Role::Duration), None);
        assert_eq!(fit(&column("lat", "Float64"), None, Role::Measure), None);
        assert_eq!(
            fit(&column("customer_id", "UInt64"), None, Role::Measure),
            None
        );
        assert_eq!(
            fit(&column("n_regionkey", "Int32"), None, Role::Measure),
            None
        );
        assert!(fit(&column("o_totalprice", "Decimal(12, 2)"), None, Role::Money).is_some());
        assert!(fit(&column("l_shipdate", "Date"), None, Role::Time).unwrap() > 40);
        assert_eq!(fit(&column("year", "UInt16"), None, Role::Measure), None);
        assert!(fit(&column("distance", "Float32"), None, Role::Measure).is_some());
        // An integer named like a time but far beyond a clock: a count of seconds.
        let big = ColumnProfile {
            max: Some(86_000.0),
            distinct: 50,
            ..ColumnProfile::default()
        };
        assert!(fit(&column("air_time", "Int32"), Some(&big), Role::Measure).is_some());
    }

    #[test]
    fn categories_need_few_values_and_statuses_their_names() {
        let few = ColumnProfile {
            distinct: 7,
            avg_length: Some(6.0),
            ..ColumnProfile::default()
        };
        let many = ColumnProfile {
            distinct: 990,
            avg_length: Some(12.0),
            ..ColumnProfile::default()
        };
        let country = column("country", "String");
        assert_eq!(fit(&country, Some(&few), Role::Category), Some(60));
        assert_eq!(fit(&country, Some(&many), Role::Category), None);
        assert!(fit(
            &column("kind", "LowCardinality(String)"),
            None,
            Role::Category
        )
        .is_some());
        let level = column("level", "LowCardinality(String)");
        assert!(fit(&level, None, Role::Status).unwrap() >= 60);
        let codes = ColumnProfile {
            distinct: 6,
            min: Some(200.0),
            max: Some(503.0),
            ..ColumnProfile::default()
        };
        assert_eq!(
            fit(&column("status", "UInt16"), Some(&codes), Role::Status),
            Some(80)
        );
        assert_eq!(
            fit(&column("status", "UInt16"), Some(&codes), Role::Measure),
            None
        );
        assert_eq!(fit(&country, Some(&few), Role::Status), None);
    }

    #[test]
    fn times_prefer_date_times_in_the_key() {
        let mut ts = column("ts", "DateTime");
        let plain = fit(&ts, None, Role::Time).unwrap();
        ts.in_sorting_key = true;
        assert!(fit(&ts, None, Role::Time).unwrap() > plain);
        assert!(fit(&column("d", "Date"), None, Role::Time).unwrap() < plain);
        assert_eq!(fit(&column("ts", "UInt32"), None, Role::Time), None);
    }

    #[test]
    fn people_money_durations_messages_entities_paths() {
        assert!(fit(&column("user_id", "UInt64"), None, Role::User).unwrap() >= 80);
        assert!(fit(&column("price", "Decimal(10, 2)"), None, Role::Money).is_some());
        assert!(fit(&column("latency_ms", "Float64"), None, Role::Duration).is_some());
        assert!(fit(&column("duration", "UInt32"), None, Role::Duration).is_some());
        assert!(fit(&column("message", "String"), None, Role::Message).is_some());
        assert!(fit(
            &column("host", "LowCardinality(String)"),
            None,
            Role::Entity
        )
        .is_some());
        assert!(fit(&column("url", "String"), None, Role::Path).is_some());
        assert_eq!(fit(&column("url", "UInt8"), None, Role::Path), None);
    }
}
