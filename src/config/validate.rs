//! Walks a config file's marked YAML tree against the JSON schema derived from `model`,
//! collecting every problem with its position instead of stopping at the first as serde would.
//! It also builds the `serde_yaml::Value` that gets merged over the defaults, typed by the
//! schema rather than by YAML's guesses: `session.timeout.ms: 45000` becomes the string a
//! string field wants, while `"100"` where a number belongs is reported.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::Node;
use serde_json::{Map as JsonMap, Value as Json};
use serde_yaml::Value as Yaml;

use super::diagnostic::Diagnostic;
use super::model::{FORMAT_DURATION, FORMAT_HTTP_URL};
use super::yaml::{scalar_pos, DisplayPath, Pos, Seg, SourceFile};

/// The typed value of `tree` and every problem found in it. `defaults` (the same document
/// from the embedded defaults) only feeds examples into hints.
pub(crate) fn validate(
    src: &SourceFile,
    tree: &Node,
    schema: &Json,
    defaults: Option<&Yaml>,
) -> (Yaml, Vec<Diagnostic>) {
    // With defaults merged in afterwards, nothing in the user's file is required.
    let check_required = defaults.is_none();
    let mut v = Validator {
        root: schema,
        src,
        diags: Vec::new(),
        check_required,
    };
    let value = v.check(tree, None, schema, &mut Vec::new(), defaults);
    (value, v.diags)
}

struct Validator<'a> {
    root: &'a Json,
    src: &'a SourceFile<'a>,
    diags: Vec<Diagnostic>,
    /// Report keys the schema marks `required` that the file leaves out.
    check_required: bool,
}

// How YAML 1.2's core schema reads a scalar. Quoted and block scalars are always strings.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str,
}

fn classify(s: &MarkedScalarNode) -> Scalar {
    if !s.may_coerce() {
        return Scalar::Str;
    }
    let t = s.as_str();
    match t {
        "" | "~" | "null" | "Null" | "NULL" => Scalar::Null,
        "true" | "True" | "TRUE" => Scalar::Bool(true),
        "false" | "False" | "FALSE" => Scalar::Bool(false),
        _ => parse_int(t)
            .map(Scalar::Int)
            .or_else(|| parse_float(t).map(Scalar::Float))
            .unwrap_or(Scalar::Str),
    }
}

fn parse_int(t: &str) -> Option<i128> {
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (radix, digits) = if let Some(hex) = body.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = body.strip_prefix("0o") {
        (8, oct)
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Too many digits still reads as a number, just one that fails every range check.
    let magnitude = i128::from_str_radix(digits, radix).unwrap_or(i128::MAX);
    Some(if negative { -magnitude } else { magnitude })
}

fn parse_float(t: &str) -> Option<f64> {
    match t.trim_start_matches(['-', '+']) {
        ".inf" | ".Inf" | ".INF" => {
            return Some(if t.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        ".nan" | ".NaN" | ".NAN" if t.starts_with('.') => return Some(f64::NAN),
        _ => {}
    }
    let plausible = t.chars().any(|c| c.is_ascii_digit())
        && t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c));
    plausible.then(|| t.parse().ok()).flatten()
}

fn int_value(i: i128) -> Yaml {
    if let Ok(n) = i64::try_from(i) {
        Yaml::Number(n.into())
    } else if let Ok(n) = u64::try_from(i) {
        Yaml::Number(n.into())
    } else {
        Yaml::Number((i as f64).into())
    }
}

/// A scalar as YAML itself would read it, for places the schema leaves open (inline pipelines).
fn generic(node: &Node) -> Yaml {
    match node {
        Node::Mapping(map) => Yaml::Mapping(
            map.iter()
                .map(|(k, v)| (generic_scalar(k), generic(v)))
                .collect(),
        ),
        Node::Sequence(seq) => Yaml::Sequence(seq.iter().map(generic).collect()),
        Node::Scalar(s) => generic_scalar(s),
    }
}

fn generic_scalar(s: &MarkedScalarNode) -> Yaml {
    match classify(s) {
        Scalar::Null => Yaml::Null,
        Scalar::Bool(b) => Yaml::Bool(b),
        Scalar::Int(i) => int_value(i),
        Scalar::Float(f) => Yaml::Number(f.into()),
        Scalar::Str => Yaml::String(s.as_str().to_owned()),
    }
}

fn types_of(schema: &JsonMap<String, Json>) -> Vec<&str> {
    match schema.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    }
}

fn allows(types: &[&str], wanted: &str) -> bool {
    types.is_empty()
        || types.contains(&wanted)
        || (wanted == "integer" && types.contains(&"number"))
}

fn is_plain_empty(s: &MarkedScalarNode) -> bool {
    s.may_coerce() && s.as_str().is_empty()
}

fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        format!(
            "{}...",
            text.chars().take(MAX_CHARS - 3).collect::<String>()
        )
    }
}

fn found_phrase(node: &Node) -> String {
    match node {
        Node::Mapping(_) => "a mapping".into(),
        Node::Sequence(_) => "a list".into(),
        Node::Scalar(s) if is_plain_empty(s) => "an empty value".into(),
        Node::Scalar(s) if !s.may_coerce() => {
            format!("the string `\"{}\"`", shorten(s.as_str()))
        }
        Node::Scalar(s) => format!("`{}`", shorten(s.as_str())),
    }
}

fn expected_phrase(schema: &JsonMap<String, Json>) -> String {
    if let Some(values) = schema.get("enum").and_then(Json::as_array) {
        return format!(
            "one of {}",
            backticked(values.iter().filter_map(Json::as_str))
        );
    }
    if let Some(value) = schema.get("const").and_then(Json::as_str) {
        return format!("`{value}`");
    }
    if schema.get("format").and_then(Json::as_str) == Some(FORMAT_DURATION) {
        return "a duration".into();
    }
    let types = types_of(schema);
    if types.is_empty() {
        return "a value".into();
    }
    let phrases: Vec<&str> = types
        .iter()
        .map(|t| match *t {
            "object" => "a mapping",
            "array" => "a list",
            "integer" => "a whole number",
            "number" => "a number",
            "boolean" => "`true` or `false`",
            "null" => "`null`",
            _ => "a string",
        })
        .collect();
    phrases.join(" or ")
}

fn backticked<'s>(names: impl Iterator<Item = &'s str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The closest of `candidates` to a misspelt `name`, if any is close enough to be the intent.
pub(crate) fn did_you_mean<'c>(
    name: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    const MIN_SIMILARITY: f64 = 0.8;
    let name = name.to_lowercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&name, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= MIN_SIMILARITY)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

// An inline YAML rendering of a default, for hints like "e.g. `query_timeout: 30s`".
fn inline_yaml(value: &Yaml) -> Option<String> {
    match value {
        Yaml::Mapping(_) | Yaml::Tagged(_) => None,
        Yaml::Sequence(items) => {
            let items: Option<Vec<String>> = items.iter().map(inline_yaml).collect();
            Some(format!("[{}]", items?.join(", ")))
        }
        Yaml::String(s) if s.is_empty() => Some("\"\"".into()),
        scalar => serde_yaml::to_string(scalar)
            .ok()
            .map(|s| s.trim_end().to_owned()),
    }
}

fn format_bounds(format: Option<&str>) -> (Option<i128>, Option<i128>) {
    match format {
        Some("uint8") => (Some(0), Some(u8::MAX.into())),
        Some("uint16") => (Some(0), Some(u16::MAX.into())),
        Some("uint32") => (Some(0), Some(u32::MAX.into())),
        Some("uint64" | "uint") => (Some(0), Some(u64::MAX.into())),
        Some("int8") => (Some(i8::MIN.into()), Some(i8::MAX.into())),
        Some("int16") => (Some(i16::MIN.into()), Some(i16::MAX.into())),
        Some("int32") => (Some(i32::MIN.into()), Some(i32::MAX.into())),
        Some("int64" | "int") => (Some(i64::MIN.into()), Some(i64::MAX.into())),
        _ => (None, None),
    }
}

fn json_int(value: Option<&Json>) -> Option<i128> {
    let n = value?.as_number()?;
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
        .or_else(|| n.as_f64().map(|f| f as i128))
}

impl<'a> Validator<'a> {
    fn resolve(&self, mut schema: &'a Json) -> &'a Json {
        const MAX_HOPS: usize = 16;
        for _ in 0..MAX_HOPS {
            let Some(reference) = schema.get("$ref").and_then(Json::as_str) else {
                break;
            };
            let target = reference
                .strip_prefix("#/$defs/")
                .and_then(|name| self.root.get("$defs")?.get(name))
                .or_else(|| {
                    let name = reference.strip_prefix("#/definitions/")?;
                    self.root.get("definitions")?.get(name)
                });
            match target {
                Some(t) => schema = t,
                None => break,
            }
        }
        schema
    }

    // Where to point for a value: an empty value has no text of its own, so point at its key.
    fn value_pos(&self, node: &Node, key: Option<&MarkedScalarNode>) -> (Pos, usize) {
        match (node, key) {
            (Node::Scalar(s), Some(k)) if is_plain_empty(s) => {
                let pos = scalar_pos(k);
                (pos, self.src.token_width(pos))
            }
            _ => {
                let pos = self.src.node_pos(node);
                (pos, self.src.token_width(pos))
            }
        }
    }

    fn report(
        &mut self,
        node: &Node,
        key: Option<&MarkedScalarNode>,
        message: String,
        hint: Option<String>,
    ) {
        let (pos, width) = self.value_pos(node, key);
        let d = self.src.diagnostic_with_width(pos, width, message, hint);
        self.diags.push(d);
    }

    fn check(
        &mut self,
        node: &Node,
        key: Option<&MarkedScalarNode>,
        schema: &'a Json,
        path: &mut Vec<Seg>,
        default: Option<&Yaml>,
    ) -> Yaml {
        let schema = self.resolve(schema);
        let obj = match schema {
            Json::Object(obj) => obj,
            Json::Bool(false) => {
                let message = format!("`{}` is not allowed here", DisplayPath(path));
                self.report(node, key, message, None);
                return Yaml::Null;
            }
            _ => return generic(node),
        };
        let branches = obj
            .get("anyOf")
            .or_else(|| obj.get("oneOf"))
            .and_then(Json::as_array);
        if let Some(branches) = branches {
            return self.check_branches(node, key, obj, branches, path, default);
        }
        let types = types_of(obj);
        match node {
            Node::Mapping(map) if allows(&types, "object") => {
                self.check_mapping(map, obj, path, default)
            }
            Node::Sequence(seq) if allows(&types, "array") => {
                self.check_sequence(node, key, seq, obj, path)
            }
            Node::Scalar(s) => self.check_scalar(node, s, key, obj, path, default),
            _ => {
                self.type_mismatch(node, key, obj, path, default);
                Yaml::Null
            }
        }
    }

    fn check_mapping(
        &mut self,
        map: &MarkedMappingNode,
        schema: &'a JsonMap<String, Json>,
        path: &mut Vec<Seg>,
        default: Option<&Yaml>,
    ) -> Yaml {
        let properties = schema.get("properties").and_then(Json::as_object);
        let additional = schema.get("additionalProperties");
        if self.check_required {
            let required = schema.get("required").and_then(Json::as_array);
            let misspelt: Vec<&str> = map
                .keys()
                .map(|k| k.as_str())
                .filter(|k| properties.is_none_or(|p| !p.contains_key(*k)))
                .collect();
            for name in required.into_iter().flatten().filter_map(Json::as_str) {
                // `tabel:` is reported as unknown with "did you mean `table`?"; saying that
                // `table` is missing too would only repeat it.
                let explained = misspelt
                    .iter()
                    .any(|k| did_you_mean(k, std::iter::once(name)).is_some());
                if map.get_node(name).is_none() && !explained {
                    let at = self.src.node_pos(&Node::Mapping(map.clone()));
                    let here = if path.is_empty() {
                        "at the top level".to_string()
                    } else {
                        format!("in `{}`", DisplayPath(path))
                    };
                    let d = self.src.diagnostic_with_width(
                        at,
                        self.src.token_width(at),
                        format!("missing `{name}` {here}"),
                        Some(format!("add `{name}:`")),
                    );
                    self.diags.push(d);
                }
            }
        }
        let mut out = serde_yaml::Mapping::new();
        for (k, v) in map.iter() {
            let name = k.as_str();
            let value = match properties.and_then(|p| p.get(name)).or(additional) {
                Some(Json::Bool(false)) => {
                    self.unknown_key(k, properties, path);
                    Yaml::Null
                }
                Some(child) => {
                    path.push(Seg::Key(name.to_owned()));
                    let child_default = default.and_then(|d| d.get(name));
                    let value = self.check(v, Some(k), child, path, child_default);
                    path.pop();
                    value
                }
                None => generic(v),
            };
            out.insert(Yaml::String(name.to_owned()), value);
        }
        Yaml::Mapping(out)
    }

    fn check_sequence(
        &mut self,
        node: &Node,
        key: Option<&MarkedScalarNode>,
        seq: &MarkedSequenceNode,
        schema: &'a JsonMap<String, Json>,
        path: &mut Vec<Seg>,
    ) -> Yaml {
        let count = |k: &str| json_int(schema.get(k)).map(|n| n.max(0) as usize);
        if let Some(min) = count("minItems").filter(|&min| seq.len() < min) {
            let message = format!(
                "`{}` needs at least {min} item{}, found {}",
                DisplayPath(path),
                if min == 1 { "" } else { "s" },
                seq.len()
            );
            self.report(node, key, message, None);
        }
        if let Some(max) = count("maxItems").filter(|&max| seq.len() > max) {
            let message = format!(
                "`{}` takes at most {max} items, found {}",
                DisplayPath(path),
                seq.len()
            );
            self.report(node, key, message, None);
        }
        let items = schema.get("items");
        let mut out = Vec::with_capacity(seq.len());
        for (i, item) in seq.iter().enumerate() {
            path.push(Seg::Index(i));
            out.push(match items {
                Some(s) => self.check(item, None, s, path, None),
                None => generic(item),
            });
            path.pop();
        }
        Yaml::Sequence(out)
    }

    fn check_scalar(
        &mut self,
        node: &Node,
        s: &MarkedScalarNode,
        key: Option<&MarkedScalarNode>,
        schema: &'a JsonMap<String, Json>,
        path: &[Seg],
        default: Option<&Yaml>,
    ) -> Yaml {
        let types = &types_of(schema)[..];
        let text = s.as_str();
        let typed = |t: &str| !types.is_empty() && types.contains(&t);
        let value = match classify(s) {
            Scalar::Null if allows(types, "null") => Yaml::Null,
            // A section whose keys are all commented out: keep every default.
            Scalar::Null if typed("object") => Yaml::Mapping(serde_yaml::Mapping::new()),
            Scalar::Bool(b) if allows(types, "boolean") => Yaml::Bool(b),
            Scalar::Int(i) if allows(types, "integer") => {
                if !self.check_range(node, key, schema, path, i) {
                    return Yaml::Null;
                }
                int_value(i)
            }
            Scalar::Float(f) if allows(types, "number") => Yaml::Number(f.into()),
            // Plain `8123` or `false` is still text where text is wanted: librdkafka property
            // values, keys in a keymap, passwords made of digits.
            Scalar::Str | Scalar::Bool(_) | Scalar::Int(_) | Scalar::Float(_)
                if allows(types, "string") =>
            {
                Yaml::String(text.to_owned())
            }
            _ => {
                self.type_mismatch(node, key, schema, path, default);
                return Yaml::Null;
            }
        };
        if let Yaml::String(text) = &value {
            if !self.check_string(node, key, schema, path, text) {
                return Yaml::Null;
            }
        }
        value
    }

    fn check_range(
        &mut self,
        node: &Node,
        key: Option<&MarkedScalarNode>,
        schema: &JsonMap<String, Json>,
        path: &[Seg],
        value: i128,
    ) -> bool {
        let (format_min, format_max) = format_bounds(schema.get("format").and_then(Json::as_str));
        let min = [json_int(schema.get("minimum")), format_min]
            .into_iter()
            .flatten()
            .max();
        let max = [json_int(schema.get("maximum")), format_max]
            .into_iter()
            .flatten()
            .min();
        if min.is_some_and(|m| value < m) || max.is_some_and(|m| value > m) {
            // Bounds that only restate the integer type's limits are noise unless broken.
            let explicit = |k: &str| schema.get(k).is_some();
            let min = min.filter(|&lo| explicit("minimum") || value < lo);
            let max = max.filter(|&hi| explicit("maximum") || value > hi);
            let hint = match (min, max) {
                (Some(lo), Some(hi)) => format!("use a value from {lo} to {hi}"),
                (Some(lo), None) => format!("use a value of at least {lo}"),
                (None, Some(hi)) => format!("use a value of at most {hi}"),
                (None, None) => String::new(),
            };
            let text = match node {
                Node::Scalar(s) => s.as_str(),
                _ => "",
            };
            let message = format!(
                "`{}` is out of range for `{}`",
                shorten(text),
                DisplayPath(path)
            );
            self.report(node, key, message, Some(hint));
            return false;
        }
        true
    }

    fn check_string(
        &mut self,
        node: &Node,
        key: Option<&MarkedScalarNode>,
        schema: &JsonMap<String, Json>,
        path: &[Seg],
        text: &str,
    ) -> bool {
        let allowed: Vec<&str> = match (schema.get("enum"), schema.get("const")) {
            (Some(Json::Array(values)), _) => values.iter().filter_map(Json::as_str).collect(),
            (_, Some(Json::String(value))) => vec![value.as_str()],
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.contains(&text) {
            let list = backticked(allowed.iter().copied());
            let hint = match did_you_mean(text, allowed.iter().copied()) {
                Some(close) => format!("did you mean `{close}`? The choices are {list}"),
                None => format!("choose one of {list}"),
            };
            let message = format!(
                "unknown value `{}` for `{}`",
                shorten(text),
                DisplayPath(path)
            );
            self.report(node, key, message, Some(hint));
            return false;
        }
        let min_chars = json_int(schema.get("minLength")).unwrap_or(0);
        if (text.chars().count() as i128) < min_chars {
            let message = if min_chars == 1 {
                format!("`{}` must not be empty", DisplayPath(path))
            } else {
                format!(
                    "`{}` must be at least {min_chars} characters long, found `{}`",
                    DisplayPath(path),
                    shorten(text)
                )
            };
            self.report(node, key, message, None);
            return false;
        }
        let problem = match schema.get("format").and_then(Json::as_str) {
            Some(FORMAT_DURATION) => duration_problem(text).map(|p| ("duration", p)),
            Some(FORMAT_HTTP_URL) => url_problem(text).map(|p| ("URL", p)),
            _ => None,
        };
        match problem {
            Some((what, (detail, hint))) => {
                let mut message = format!(
                    "invalid {what} `{}` for `{}`",
                    shorten(text),
                    DisplayPath(path)
                );
                if text.trim().is_empty() {
                    message = format!("empty {what} for `{}`", DisplayPath(path));
                } else if let Some(detail) = detail {
                    message = format!("{message}: {detail}");
                }
                self.report(node, key, message, Some(hint));
                false
            }
            None => true,
        }
    }

    fn check_branches(
        &mut self,
        node: &Node,
        key: Option<&MarkedScalarNode>,
        schema: &'a JsonMap<String, Json>,
        branches: &'a [Json],
        path: &mut Vec<Seg>,
        default: Option<&Yaml>,
    ) -> Yaml {
        if let Some(handled) = self.check_tagged(node, key, branches, path, default) {
            return handled;
        }
        let mut failures = Vec::new();
        for branch in branches {
            let outer = std::mem::take(&mut self.diags);
            let value = self.check(node, key, branch, path, default);
            let found = std::mem::replace(&mut self.diags, outer);
            if found.is_empty() {
                return value;
            }
            failures.push((branch, found));
        }
        // A branch of the right shape that failed inside (say, an empty string where a path
        // string belongs) explains itself best; otherwise name all the alternatives.
        let fitting: Vec<Vec<Diagnostic>> = failures
            .into_iter()
            .filter(|(branch, _)| self.shape_fits(branch, node))
            .map(|(_, diags)| diags)
            .collect();
        if let [diags] = fitting.as_slice() {
            self.diags.extend(diags.iter().cloned());
            return Yaml::Null;
        }
        let expected: Vec<String> = branches
            .iter()
            .filter_map(|b| self.resolve(b).as_object())
            .map(expected_phrase)
            .collect();
        let message = format!(
            "expected {} for `{}`, found {}",
            expected.join(" or "),
            DisplayPath(path),
            found_phrase(node)
        );
        // The description is the type's doc comment: reflow it into a one-line hint.
        let hint = schema.get("description").and_then(Json::as_str).map(|d| {
            let text = d.split_whitespace().collect::<Vec<_>>().join(" ");
            let text = text.trim_end_matches('.');
            let mut chars = text.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_lowercase().chain(chars).collect()
            })
        });
        self.report(node, key, message, hint);
        Yaml::Null
    }

    fn shape_fits(&self, branch: &'a Json, node: &Node) -> bool {
        let Some(obj) = self.resolve(branch).as_object() else {
            return true;
        };
        let types = types_of(obj);
        match node {
            Node::Mapping(_) => allows(&types, "object"),
            Node::Sequence(_) => allows(&types, "array"),
            Node::Scalar(_) => {
                types.is_empty() || types.iter().any(|t| !matches!(*t, "object" | "array"))
            }
        }
    }

    /// An externally tagged enum (`source: {kafka: {...}}`): every branch is a mapping with
    /// exactly one required key. Checks the one key the user wrote against the variant names
    /// and then the variant's body, instead of reporting every branch's failure.
    fn check_tagged(
        &mut self,
        node: &Node,
        key: Option<&MarkedScalarNode>,
        branches: &'a [Json],
        path: &mut Vec<Seg>,
        default: Option<&Yaml>,
    ) -> Option<Yaml> {
        let mut variants: Vec<(&'a str, &'a Json)> = Vec::new();
        for branch in branches {
            let obj = self.resolve(branch).as_object()?;
            let required = obj.get("required")?.as_array()?;
            let [tag] = required.as_slice() else {
                return None;
            };
            let tag = tag.as_str()?;
            let body = obj.get("properties")?.get(tag)?;
            variants.push((tag, body));
        }
        let Node::Mapping(map) = node else {
            return None;
        };
        let names = || variants.iter().map(|(t, _)| *t);
        let list = backticked(names());
        let mut entries = map.iter();
        let (Some((tag, body)), None) = (entries.next(), entries.next()) else {
            let message = format!(
                "`{}` takes exactly one of {list}, found {} keys",
                DisplayPath(path),
                map.len()
            );
            self.report(node, key, message, None);
            return Some(Yaml::Null);
        };
        let Some((_, schema)) = variants.iter().find(|(t, _)| *t == tag.as_str()) else {
            let hint = match did_you_mean(tag.as_str(), names()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("use one of {list}"),
            };
            let message = format!(
                "unknown {} `{}` in `{}`",
                path.last().map_or("kind".to_string(), |s| match s {
                    Seg::Key(k) => k.clone(),
                    Seg::Index(_) => "kind".to_string(),
                }),
                shorten(tag.as_str()),
                DisplayPath(path)
            );
            let d = self.src.diagnostic_with_width(
                scalar_pos(tag),
                self.src.token_width(scalar_pos(tag)),
                message,
                Some(hint),
            );
            self.diags.push(d);
            return Some(Yaml::Null);
        };
        path.push(Seg::Key(tag.as_str().to_owned()));
        let value = self.check(body, Some(tag), schema, path, default);
        path.pop();
        let mut out = serde_yaml::Mapping::new();
        out.insert(Yaml::String(tag.as_str().to_owned()), value);
        Some(Yaml::Mapping(out))
    }

    fn unknown_key(
        &mut self,
        key: &MarkedScalarNode,
        properties: Option<&'a JsonMap<String, Json>>,
        path: &[Seg],
    ) {
        let name = key.as_str();
        let known = || {
            properties
                .into_iter()
                .flat_map(|p| p.keys().map(String::as_str))
        };
        let message = if path.is_empty() {
            format!("unknown top-level key `{}`", shorten(name))
        } else {
            format!(
                "unknown field `{}` in `{}`",
                shorten(name),
                DisplayPath(path)
            )
        };
        let hint = if let Some(close) = did_you_mean(name, known()) {
            format!("did you mean `{close}`?")
        } else if let Some(home) = self.home_of(name, path) {
            format!("`{name}` belongs in `{home}`; move it there")
        } else {
            let mut names: Vec<&str> = known().collect();
            names.sort_unstable();
            let place = if path.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in `{}`", DisplayPath(path))
            };
            format!("valid keys {place} are {}", backticked(names.into_iter()))
        };
        let pos = scalar_pos(key);
        let d = self
            .src
            .diagnostic_with_width(pos, self.src.token_width(pos), message, Some(hint));
        self.diags.push(d);
    }

    /// Another section that does have a key called `name` (e.g. `url` put under `kafka`).
    fn home_of(&self, name: &str, not_here: &[Seg]) -> Option<String> {
        fn search<'a>(
            v: &Validator<'a>,
            schema: &'a Json,
            name: &str,
            path: &mut Vec<Seg>,
            not_here: &[Seg],
        ) -> Option<String> {
            const MAX_DEPTH: usize = 6;
            if path.len() > MAX_DEPTH {
                return None;
            }
            let properties = v.resolve(schema).get("properties")?.as_object()?;
            if properties.contains_key(name) && path != not_here && !path.is_empty() {
                return Some(DisplayPath(path).to_string());
            }
            for (key, child) in properties {
                path.push(Seg::Key(key.clone()));
                let found = search(v, child, name, path, not_here);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        search(self, self.root, name, &mut Vec::new(), not_here)
    }

    fn type_mismatch(
        &mut self,
        node: &Node,
        key: Option<&MarkedScalarNode>,
        schema: &JsonMap<String, Json>,
        path: &[Seg],
        default: Option<&Yaml>,
    ) {
        let message = format!(
            "expected {} for `{}`, found {}",
            expected_phrase(schema),
            DisplayPath(path),
            found_phrase(node)
        );
        let hint = mismatch_hint(node, schema, path, default);
        self.report(node, key, message, hint);
    }
}

fn mismatch_hint(
    node: &Node,
    schema: &JsonMap<String, Json>,
    path: &[Seg],
    default: Option<&Yaml>,
) -> Option<String> {
    let last = match path.last() {
        Some(Seg::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    let example = |value: &Yaml| -> Option<String> {
        let shown = inline_yaml(value)?;
        Some(match last {
            Some(k) => format!("`{k}: {shown}`"),
            None => format!("`{shown}`"),
        })
    };
    let default_example = default.and_then(example);
    let types = types_of(schema);
    let wanted = types.iter().copied().find(|t| *t != "null").unwrap_or("");
    let key_colon = last.map_or(String::new(), |k| format!("`{k}:`"));
    let scalar = match node {
        Node::Scalar(s) => Some(s),
        _ => None,
    };
    let text = scalar.map_or("", |s| s.as_str());
    let empty = scalar.is_some_and(is_plain_empty);
    let quoted = scalar.is_some_and(|s| !s.may_coerce());
    let keep_default = || match &default_example {
        Some(ex) => format!("delete the line to keep the default ({ex})"),
        None => "delete the line to keep the default".into(),
    };
    let with_example = |advice: &str| match &default_example {
        Some(ex) => format!("{advice}, e.g. {ex}"),
        None => advice.to_owned(),
    };
    let hint = match (wanted, node) {
        ("object", Node::Sequence(_)) => {
            format!("write `key: value` lines indented under {key_colon}, without the `- `")
        }
        ("object", _) => format!("write `key: value` lines indented under {key_colon}"),
        ("array", Node::Mapping(_)) => {
            format!("write one `- item` per line under {key_colon}, or `[a, b]` on one line")
        }
        ("array", _) if empty => {
            format!("write `[]` for an empty list, or {}", keep_default())
        }
        ("array", _) => match last {
            Some(k) => format!("a list is needed even for one item: `{k}: [{text}]`"),
            None => "write a list: `[a, b]`".into(),
        },
        ("integer" | "number", _) if quoted && parse_int(text).is_some() => match last {
            Some(k) => format!("remove the quotes: `{k}: {text}`"),
            None => "remove the quotes".into(),
        },
        ("integer" | "number", _) if empty => format!("give a number, or {}", keep_default()),
        ("integer", _) => with_example("use a whole number"),
        ("number", _) => with_example("use a number"),
        ("boolean", _) => {
            let intended = match text.to_lowercase().as_str() {
                "yes" | "y" | "on" => Some("true"),
                "no" | "n" | "off" => Some("false"),
                "true" | "false" if quoted => Some(if text.eq_ignore_ascii_case("true") {
                    "true"
                } else {
                    "false"
                }),
                _ => None,
            };
            match (intended, last) {
                (Some(b), Some(k)) if quoted => format!("remove the quotes: `{k}: {b}`"),
                (Some(b), Some(k)) => {
                    format!("YAML 1.2 reads `{text}` as text; write `{k}: {b}`")
                }
                (_, Some(k)) => format!("write `{k}: true` or `{k}: false`"),
                _ => "write `true` or `false`".into(),
            }
        }
        ("string", _) if empty || text == "null" || text == "~" => match last {
            Some(k) => format!(
                "write `{k}: \"\"` for an empty string, or {}",
                keep_default()
            ),
            None => "write `\"\"` for an empty string".into(),
        },
        ("string", Node::Mapping(_) | Node::Sequence(_)) => {
            with_example("write a single value on the same line as the key")
        }
        _ => return default_example.map(|ex| format!("for example {ex}")),
    };
    Some(hint)
}

/// Why a duration is invalid (if it is) and how to write it, or None if humantime accepts it.
fn duration_problem(text: &str) -> Option<(Option<String>, String)> {
    let err = humantime::parse_duration(text).err()?;
    let general = "write a number followed by a unit, e.g. `500ms`, `30s`, `2m` or `1h 30m`";
    Some(match err {
        _ if parse_int(text.trim()).is_some() => (
            Some("the unit is missing".into()),
            format!("add a unit, e.g. `{}s` for seconds", text.trim()),
        ),
        humantime::DurationError::UnknownUnit { unit, .. } if !unit.is_empty() => (
            Some(format!("unknown unit `{unit}`")),
            format!("units are ms, s, m, h and d (or spelled out); {general}"),
        ),
        _ => (None, general.to_string()),
    })
}

/// Why a ClickHouse URL is invalid (if it is) and how to write it, or None if it is fine.
fn url_problem(text: &str) -> Option<(Option<String>, String)> {
    let general = "write it as `http://HOST:8123` or `https://HOST:8443`";
    if text.trim().is_empty() {
        return Some((
            None,
            "use `url: null` (or delete the line) to run Aurora's private local server, or \
             write `http://HOST:8123`"
                .into(),
        ));
    }
    let lower = text.to_ascii_lowercase();
    if !text.contains("://") && (lower.starts_with("http:") || lower.starts_with("https:")) {
        return Some((None, general.into()));
    }
    if !text.contains("://") {
        let has_port = text
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        let suggestion = if has_port {
            format!("did you mean `http://{text}`?")
        } else {
            format!("did you mean `http://{text}:8123`?")
        };
        return Some((
            Some("the http:// or https:// scheme is missing".into()),
            suggestion,
        ));
    }
    match url::Url::parse(text) {
        Err(e) => Some((Some(e.to_string()), general.into())),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some((
            Some(format!("unsupported scheme `{}`", u.scheme())),
            format!("Aurora talks to ClickHouse's HTTP interface; {general}"),
        )),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => {
            Some((Some("the host is missing".into()), general.into()))
        }
        Ok(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_read_like_yaml_core() {
        let plain = |t: &str| classify(&MarkedScalarNode::from(t));
        assert_eq!(plain(""), Scalar::Null);
        assert_eq!(plain("~"), Scalar::Null);
        assert_eq!(plain("True"), Scalar::Bool(true));
        assert_eq!(plain("yes"), Scalar::Str);
        assert_eq!(plain("-12"), Scalar::Int(-12));
        assert_eq!(plain("0x1F"), Scalar::Int(31));
        assert_eq!(plain("1.5"), Scalar::Float(1.5));
        assert_eq!(plain("1e3"), Scalar::Float(1000.0));
        assert_eq!(plain("localhost:9092"), Scalar::Str);
        assert_eq!(
            plain("99999999999999999999999999999999999999999"),
            Scalar::Int(i128::MAX)
        );
        let mut quoted = MarkedScalarNode::from("100");
        quoted.set_coerce(false);
        assert_eq!(classify(&quoted), Scalar::Str);
    }

    #[test]
    fn suggestions_need_real_similarity() {
        let keys = ["brokers", "client_id", "properties"];
        assert_eq!(did_you_mean("broker", keys.into_iter()), Some("brokers"));
        assert_eq!(
            did_you_mean("clientid", keys.into_iter()),
            Some("client_id")
        );
        assert_eq!(did_you_mean("topic", keys.into_iter()), None);
        assert_eq!(
            did_you_mean("Dark", ["dark", "light"].into_iter()),
            Some("dark")
        );
    }

    #[test]
    fn durations_and_urls() {
        assert!(duration_problem("1m 30s").is_none());
        assert!(duration_problem("30").unwrap().1.contains("`30s`"));
        assert_eq!(
            duration_problem("30 secondz").unwrap().0.as_deref(),
            Some("unknown unit `secondz`")
        );
        assert!(url_problem("https://ch.example.com:8443").is_none());
        assert_eq!(
            url_problem("localhost:8123").unwrap().1,
            "did you mean `http://localhost:8123`?"
        );
        assert_eq!(
            url_problem("db").unwrap().1,
            "did you mean `http://db:8123`?"
        );
        assert_eq!(
            url_problem("ftp://x").unwrap().0.as_deref(),
            Some("unsupported scheme `ftp`")
        );
        assert!(url_problem("http://").is_some());
    }
}
