//! The HTTP backend: any OpenAI-compatible chat endpoint (llama-server, Ollama, vLLM, OpenAI).
//! A request becomes one `POST {base_url}/chat/completions` with `stream: true`; the
//! server-sent events come back as content pieces, which are cleaned up (an opening Markdown
//! fence and the answer prefix removed, stop strings applied) and passed on to the caller's
//! token channel as they arrive. Servers that ignore `stream` and answer with one JSON
//! document work too. `temperature` comes from the request (0 for first attempts); `seed`
//! is sent only with a temperature above 0, where it makes sampling repeatable.
//!
//! Chat endpoints cannot be made to continue a given answer prefix, so the prefix is asked for
//! in words and stripped when the model obeyed; see [`OpenAiBackend`] for what
//! `Generation::text` holds.
//!
//! A GBNF grammar (`GenerateRequest::grammar`) goes in the non-standard `grammar` field that
//! llama.cpp's servers (`llama-server`, `llama_cpp.server`) read, when the endpoint takes it:
//! [`GrammarField`] says whether to send it, or to find out with one tiny request per process
//! (`auto`) whose grammar allows only one reply. The grammar describes the answer after its
//! forced prefix, so the server gets a root that writes the prefix first. Servers that refuse
//! the field (OpenAI) or ignore it get none; the validator checks every answer either way.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value as Json;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::backend::{cut_at_stop, ChatMessage, GenerateRequest, Generation, ModelBackend, Role};
use super::error::AssistantError;
use crate::warehouse::settings::TlsSettings;

/// OpenAI's API refuses more stop strings than this.
const MAX_SERVER_STOPS: usize = 4;
/// How much of an error body ends up in the message.
const ERROR_BODY_CHARS: usize = 300;
/// An error body is read only up to this size; the start is all the message shows.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest the grammar probe may take before the endpoint counts as taking no grammar.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// What the probe's grammar forces the reply to be; a model left to itself says other things.
const PROBE_REPLY: &str = "4711";

pub use crate::config::GrammarField;

/// A model behind an OpenAI-compatible `chat/completions` endpoint.
///
/// `Generation::text` follows the local backend's contract where it can: when the answer
/// starts with `answer_prefix` (compared ignoring ASCII case and the prefix's trailing
/// whitespace, after skipping leading whitespace and an opening ```` ```sql ```` line), the
/// text is what comes *after* the prefix, so `answer_prefix + text` is the answer. When the
/// model started differently (`WITH ...`), the text is the whole answer, also after the
/// skipped fence, and does not include the prefix; [`strip_answer_prefix`] tells the two
/// cases apart. Stop strings cut the text in both cases, and a skipped opening fence makes
/// its closing ```` ``` ```` a stop string too. The pieces sent to `tokens` add up to exactly
/// `Generation::text`.
pub struct OpenAiBackend {
    /// `{base_url}/chat/completions`, the URL errors name.
    endpoint: String,
    model: String,
    /// `host[:port]` of the endpoint, the model's name when none is configured.
    host: String,
    api_key: Option<String>,
    http: reqwest::Client,
    grammar_field: GrammarField,
    /// Whether the endpoint applies a grammar, once `auto` has asked it.
    takes_grammar: tokio::sync::OnceCell<bool>,
}

impl std::fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("OpenAiBackend")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl OpenAiBackend {
    /// `base_url` ends with the API version (`http://127.0.0.1:8080/v1`,
    /// `https://api.openai.com/v1`); a full `.../chat/completions` URL is accepted too. An
    /// empty `model` is left out of requests, for servers that serve a single model.
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
    ) -> Result<Self, AssistantError> {
        let base = base_url.trim().trim_end_matches('/');
        let base = base.strip_suffix("/chat/completions").unwrap_or(base);
        let endpoint = format!("{base}/chat/completions");
        let unusable = |reason: String| AssistantError::EndpointUnreachable {
            url: base_url.trim().to_string(),
            reason,
        };
        let parsed = url::Url::parse(&endpoint).map_err(|e| {
            unusable(format!(
                "not a URL ({e}); expected e.g. http://127.0.0.1:8080/v1"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(unusable(format!(
                "the scheme `{}` is not http or https",
                parsed.scheme()
            )));
        }
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => return Err(unusable("the URL names no host".into())),
        };
        // The same rustls setup (ring, platform roots read on first handshake) as the
        // warehouse client, so plain http never loads the CA bundle.
        let tls = crate::warehouse::tls::client_config(&TlsSettings::default())
            .map_err(|e| unusable(e.to_string()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| unusable(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            endpoint,
            model: model.trim().to_string(),
            host,
            api_key: api_key.filter(|k| !k.trim().is_empty()),
            http,
            grammar_field: GrammarField::Off,
            takes_grammar: tokio::sync::OnceCell::new(),
        })
    }

    /// Whether requests carry the grammar (`off` unless set: see [`GrammarField`]).
    pub fn with_grammar(mut self, field: GrammarField) -> Self {
        self.grammar_field = field;
        self
    }

    /// Whether this endpoint's requests carry a grammar; `auto` asks the endpoint once.
    pub async fn takes_grammar(&self) -> bool {
        match self.grammar_field {
            GrammarField::Off => false,
            GrammarField::Gbnf => true,
            GrammarField::Auto => *self.takes_grammar.get_or_init(|| self.probe()).await,
        }
    }

    /// One short request whose grammar allows only [`PROBE_REPLY`]: a server that applies
    /// the `grammar` field answers exactly that; one that refuses the field answers with an
    /// error, one that ignores it with what the model likes.
    async fn probe(&self) -> bool {
        let mut body = serde_json::json!({
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 8,
            "temperature": 0,
            "stream": false,
            "grammar": format!("root ::= \"{PROBE_REPLY}\""),
        });
        if !self.model.is_empty() {
            body["model"] = self.model.clone().into();
        }
        let reply = async {
            let post = self.post(&body).ok()?.timeout(PROBE_TIMEOUT);
            let response = post.send().await.ok()?.error_for_status().ok()?;
            let document: Json = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
            document["choices"][0]["message"]["content"]
                .as_str()
                .map(str::to_string)
        }
        .await;
        let takes = reply.as_deref().map(str::trim) == Some(PROBE_REPLY);
        tracing::info!(
            "{} {} a grammar (probe answered {reply:?})",
            self.endpoint,
            if takes { "applies" } else { "does not apply" }
        );
        takes
    }

    /// A POST of `body` to the endpoint, with the key when there is one.
    fn post(&self, body: &Json) -> Result<reqwest::RequestBuilder, AssistantError> {
        let body = serde_json::to_vec(body).map_err(|e| self.protocol(e))?;
        let mut post = self
            .http
            .post(&self.endpoint)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(
                ACCEPT,
                HeaderValue::from_static("text/event-stream, application/json"),
            )
            .body(body);
        if let Some(key) = &self.api_key {
            let value = HeaderValue::from_str(&format!("Bearer {}", key.trim())).map_err(|_| {
                AssistantError::EndpointUnreachable {
                    url: self.endpoint.clone(),
                    reason: "the API key holds characters an HTTP header cannot carry".into(),
                }
            })?;
            post = post.header(AUTHORIZATION, value);
        }
        Ok(post)
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The JSON body for `request`; `grammar` says whether it carries the request's grammar.
    fn body(&self, request: &GenerateRequest, grammar: bool) -> Json {
        let mut body = serde_json::Map::new();
        if !self.model.is_empty() {
            body.insert("model".into(), self.model.clone().into());
        }
        let messages = with_prefix_instruction(&request.messages, &request.answer_prefix);
        body.insert(
            "messages".into(),
            messages
                .iter()
                .map(|m| serde_json::json!({"role": m.role.as_str(), "content": m.content}))
                .collect(),
        );
        body.insert("stream".into(), true.into());
        body.insert("max_tokens".into(), request.max_tokens.into());
        let stops = server_stops(&request.stop);
        if !stops.is_empty() {
            body.insert("stop".into(), stops.into());
        }
        // f32 → f64 would send 0.2 as 0.20000000298023224.
        let temperature = (f64::from(request.temperature) * 1000.0).round() / 1000.0;
        if temperature > 0.0 {
            body.insert("temperature".into(), temperature.into());
            body.insert("seed".into(), request.seed.into());
        } else {
            body.insert("temperature".into(), 0.into());
        }
        if let Some(g) = request.grammar.as_deref().filter(|_| grammar) {
            body.insert(
                "grammar".into(),
                with_prefix_rule(g, &request.answer_prefix).into(),
            );
        }
        Json::Object(body)
    }

    async fn run(
        &self,
        request: &GenerateRequest,
        tokens: Option<&UnboundedSender<String>>,
    ) -> Result<Generation, AssistantError> {
        let started = Instant::now();
        let grammar = request.grammar.is_some() && self.takes_grammar().await;
        let post = self.post(&self.body(request, grammar))?;
        let mut response = post.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            let body = read_start(&mut response, MAX_ERROR_BODY_BYTES).await;
            return Err(AssistantError::EndpointStatus {
                url: self.endpoint.clone(),
                status: status.as_u16(),
                body: error_message(&body),
            });
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut answer = AnswerText::new(&request.answer_prefix, &request.stop);
        let mut stats = StreamStats::default();
        let mut emit = |piece: &str, answer: &mut AnswerText, stats: &mut StreamStats| {
            if piece.is_empty() {
                return;
            }
            stats.pieces += 1;
            stats.first_piece.get_or_insert_with(Instant::now);
            answer.push(piece);
            if let Some(tokens) = tokens {
                let ready = answer.take_ready();
                if !ready.is_empty() {
                    let _ = tokens.send(ready);
                }
            }
        };
        let first = response.chunk().await.map_err(|e| self.broken(&e))?;
        let first = first.unwrap_or_default();
        // Some servers ignore `stream: true` and send one JSON document; an unlabelled body
        // is sniffed.
        let is_json = if content_type.contains("event-stream") {
            false
        } else if content_type.contains("json") {
            true
        } else {
            first
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|&b| b == b'{')
        };
        if is_json {
            let mut bytes = first.to_vec();
            while let Some(chunk) = response.chunk().await.map_err(|e| self.broken(&e))? {
                bytes.extend_from_slice(&chunk);
            }
            let content = self.read_document(&bytes, &mut stats)?;
            emit(&content, &mut answer, &mut stats);
        } else {
            self.read_events(&mut response, first, &mut answer, &mut stats, &mut emit)
                .await?;
        }
        answer.finish();
        if let Some(tokens) = tokens {
            let rest = answer.take_ready();
            if !rest.is_empty() {
                let _ = tokens.send(rest);
            }
        }
        let finished = Instant::now();
        let first_piece = stats.first_piece.unwrap_or(finished);
        Ok(Generation {
            text: answer.text(),
            prompt_tokens: stats.prompt_tokens.unwrap_or(0),
            cached_prompt_tokens: stats.cached_tokens.unwrap_or(0),
            generated_tokens: stats.completion_tokens.unwrap_or(stats.pieces),
            prompt_time: first_piece.saturating_duration_since(started),
            generation_time: finished.saturating_duration_since(first_piece),
            grammar_resamples: 0,
        })
    }

    /// The content of a non-streamed answer.
    fn read_document(
        &self,
        bytes: &[u8],
        stats: &mut StreamStats,
    ) -> Result<String, AssistantError> {
        let document: Json = serde_json::from_slice(bytes).map_err(|e| {
            self.protocol(format!(
                "the answer is not JSON ({e}): {}",
                excerpt(&String::from_utf8_lossy(bytes))
            ))
        })?;
        if let Some(message) = embedded_error(&document) {
            return Err(self.protocol(format!("the server reported: {message}")));
        }
        stats.read_usage(&document);
        document
            .pointer("/choices/0/message/content")
            .and_then(Json::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                self.protocol(format!(
                    "no choices[0].message.content in the answer: {}",
                    excerpt(&document.to_string())
                ))
            })
    }

    /// Reads server-sent events until `[DONE]`, the end of the body or a stop string;
    /// `first` is the chunk already taken from the body.
    async fn read_events(
        &self,
        response: &mut reqwest::Response,
        first: bytes::Bytes,
        answer: &mut AnswerText,
        stats: &mut StreamStats,
        emit: &mut impl FnMut(&str, &mut AnswerText, &mut StreamStats),
    ) -> Result<(), AssistantError> {
        let mut events = EventDecoder::default();
        let mut finish_reason = false;
        let mut chunk = Some(first);
        while let Some(bytes) = chunk {
            for data in events.push(&bytes) {
                if answer.stopped() {
                    break;
                }
                if self.handle_event(&data, answer, stats, emit, &mut finish_reason)? {
                    return Ok(());
                }
            }
            if answer.stopped() {
                // The server did not honour the stop string; returning drops the response,
                // which closes the connection and ends the generation there too.
                return Ok(());
            }
            chunk = response.chunk().await.map_err(|e| self.broken(&e))?;
        }
        for data in events.finish() {
            if self.handle_event(&data, answer, stats, emit, &mut finish_reason)? {
                return Ok(());
            }
        }
        if finish_reason || answer.stopped() {
            return Ok(());
        }
        Err(self.protocol(
            "the event stream ended before `data: [DONE]` or a finish_reason; the server may \
             have stopped mid-answer",
        ))
    }

    /// Handles one event's data; true when the stream is over.
    fn handle_event(
        &self,
        data: &str,
        answer: &mut AnswerText,
        stats: &mut StreamStats,
        emit: &mut impl FnMut(&str, &mut AnswerText, &mut StreamStats),
        finish_reason: &mut bool,
    ) -> Result<bool, AssistantError> {
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let event: Json = match serde_json::from_str(data) {
            Ok(event) => event,
            // Servers that leave out the blank line between events run several `data:`
            // lines into one event; each line is then an event of its own.
            Err(_) if data.contains('\n') => {
                for line in data.lines() {
                    if self.handle_event(line, answer, stats, emit, finish_reason)? {
                        return Ok(true);
                    }
                }
                return Ok(false);
            }
            Err(e) => {
                return Err(self.protocol(format!("an event is not JSON ({e}): {}", excerpt(data))))
            }
        };
        if let Some(message) = embedded_error(&event) {
            return Err(self.protocol(format!("the server reported mid-answer: {message}")));
        }
        stats.read_usage(&event);
        let choice = event.pointer("/choices/0");
        if let Some(content) = choice
            .and_then(|c| c.pointer("/delta/content"))
            .and_then(Json::as_str)
        {
            emit(content, answer, stats);
        }
        if choice
            .and_then(|c| c.get("finish_reason"))
            .is_some_and(|r| !r.is_null())
        {
            *finish_reason = true;
        }
        Ok(false)
    }

    fn unreachable(&self, err: &reqwest::Error) -> AssistantError {
        let chain = error_chain(err);
        let lower = chain.to_lowercase();
        let reason = if lower.contains("connection refused") {
            "connection refused".to_string()
        } else if lower.contains("dns")
            || lower.contains("failed to lookup")
            || lower.contains("name or service not known")
        {
            format!("the host name does not resolve ({chain})")
        } else if err.is_timeout() {
            format!("no connection within {}s", CONNECT_TIMEOUT.as_secs())
        } else {
            chain
        };
        AssistantError::EndpointUnreachable {
            url: self.endpoint.clone(),
            reason,
        }
    }

    fn broken(&self, err: &reqwest::Error) -> AssistantError {
        self.protocol(format!("the answer broke off: {}", error_chain(err)))
    }

    fn protocol(&self, detail: impl std::fmt::Display) -> AssistantError {
        AssistantError::EndpointProtocol {
            url: self.endpoint.clone(),
            detail: detail.to_string(),
        }
    }
}

impl ModelBackend for OpenAiBackend {
    fn model_id(&self) -> String {
        if self.model.is_empty() {
            format!("openai:{}", self.host)
        } else {
            format!("openai:{}", self.model)
        }
    }

    fn generate<'a>(
        &'a self,
        request: GenerateRequest,
        tokens: Option<UnboundedSender<String>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Generation, AssistantError>> {
        Box::pin(async move {
            let timeout = request.timeout;
            // Losing either race drops the request future and with it the connection, which
            // is how a server learns to stop generating.
            tokio::select! {
                biased;
                () = cancel.cancelled() => Err(AssistantError::Cancelled),
                result = tokio::time::timeout(timeout, self.run(&request, tokens.as_ref())) => {
                    result.unwrap_or(Err(AssistantError::Timeout(timeout)))
                }
            }
        })
    }
}

/// A grammar for what follows `prefix`, as one for the whole answer: its `root` renamed
/// and a new root that writes the prefix first.
fn with_prefix_rule(grammar: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        return grammar.to_string();
    }
    let renamed: Vec<String> = grammar
        .lines()
        .map(|line| match line.strip_prefix("root ::=") {
            Some(rest) => format!("aurora-answer ::={rest}"),
            None => line.to_string(),
        })
        .collect();
    let quoted = prefix.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "root ::= \"{quoted}\" aurora-answer\n{}",
        renamed.join("\n")
    )
}

/// The messages with "Start your answer with `prefix`." appended to the last user message
/// (or as a user message of its own when there is none).
fn with_prefix_instruction(messages: &[ChatMessage], prefix: &str) -> Vec<ChatMessage> {
    let mut messages = messages.to_vec();
    let prefix = prefix.trim();
    if prefix.is_empty() {
        return messages;
    }
    let instruction = format!("Start your answer with `{prefix}`.");
    match messages.iter_mut().rev().find(|m| m.role == Role::User) {
        Some(last) => {
            last.content.push_str("\n\n");
            last.content.push_str(&instruction);
        }
        None => messages.push(ChatMessage::user(instruction)),
    }
    messages
}

/// The stop strings the server is told about: at most four, none holding a backtick. Chat
/// models like to open an answer with a Markdown fence, which a server-side "```" stop would
/// turn into an empty answer; all stop strings are applied here after the fence is skipped.
fn server_stops(stop: &[String]) -> Vec<String> {
    let mut stops: Vec<String> = Vec::new();
    for s in stop {
        if !s.is_empty() && !s.contains('`') && !stops.contains(s) {
            stops.push(s.clone());
        }
    }
    stops.truncate(MAX_SERVER_STOPS);
    stops
}

/// If `text` starts with `prefix` (ignoring ASCII case and the prefix's trailing
/// whitespace), the rest, without leading whitespace when the prefix ends with some.
/// `None` when it does not, or when `prefix` is blank.
pub fn strip_answer_prefix<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let wanted = prefix.trim_end();
    if wanted.is_empty() {
        return None;
    }
    let head = text.as_bytes().get(..wanted.len())?;
    if !head.eq_ignore_ascii_case(wanted.as_bytes()) {
        return None;
    }
    let rest = text.get(wanted.len()..)?;
    if prefix.len() > wanted.len() {
        Some(rest.trim_start())
    } else {
        Some(rest)
    }
}

/// The model's text as it streams in, and the part of it that is the answer.
struct AnswerText {
    prefix: String,
    stop: Vec<String>,
    raw: String,
    /// Bytes of the answer already handed out by `take_ready`.
    sent: usize,
    finished: bool,
}

/// The answer as far as it is known.
struct Partial {
    text: String,
    /// A stop string was found; nothing after it counts.
    stopped: bool,
    /// An opening fence was skipped, so a closing one ends the answer.
    fenced: bool,
}

impl AnswerText {
    fn new(prefix: &str, stop: &[String]) -> Self {
        Self {
            prefix: prefix.to_string(),
            stop: stop.iter().filter(|s| !s.is_empty()).cloned().collect(),
            raw: String::new(),
            sent: 0,
            finished: false,
        }
    }

    fn push(&mut self, piece: &str) {
        if !self.stopped() {
            self.raw.push_str(piece);
        }
    }

    /// No more text will come: what was still open is decided with what there is.
    fn finish(&mut self) {
        self.finished = true;
    }

    fn stopped(&self) -> bool {
        self.partial().is_some_and(|p| p.stopped)
    }

    /// Where the answer starts in `raw` and whether a fence was skipped, or `None` while
    /// the text so far could still turn out either way. Once known, more text does not
    /// change it, which is what makes streaming the answer piece by piece safe.
    fn start(&self) -> Option<(usize, bool)> {
        let lead = self.raw.len() - self.raw.trim_start().len();
        let after_lead = &self.raw[lead..];
        let (at, fenced) = if after_lead.starts_with("```") {
            match after_lead.find('\n') {
                Some(newline) => {
                    let rest = &after_lead[newline + 1..];
                    let at = lead + newline + 1 + (rest.len() - rest.trim_start().len());
                    if at == self.raw.len() && !self.finished {
                        return None;
                    }
                    (at, true)
                }
                None if self.finished => (self.raw.len(), true),
                None => return None,
            }
        } else if "```".starts_with(after_lead) && !self.finished {
            // Nothing yet, or what may become a fence.
            return None;
        } else {
            (lead, false)
        };
        let body = &self.raw[at..];
        let wanted = self.prefix.trim_end();
        if !self.finished && body.len() < wanted.len() {
            let head = wanted.as_bytes().get(..body.len()).unwrap_or_default();
            if head.eq_ignore_ascii_case(body.as_bytes()) {
                return None;
            }
        }
        Some((at, fenced))
    }

    fn partial(&self) -> Option<Partial> {
        let (at, fenced) = self.start()?;
        let body = &self.raw[at..];
        let mut text = strip_answer_prefix(body, &self.prefix)
            .unwrap_or(body)
            .to_string();
        let stopped = cut_at_stop(&mut text, &self.stop)
            | (fenced && cut_at_stop(&mut text, &["```".to_string()]));
        Some(Partial {
            text,
            stopped,
            fenced,
        })
    }

    /// The answer text that is final and not yet handed out. A tail that could be the start
    /// of a stop string is held back until the next piece shows whether it is one.
    fn take_ready(&mut self) -> String {
        let Some(partial) = self.partial() else {
            return String::new();
        };
        let text = &partial.text;
        let mut ready = text.len();
        if !partial.stopped && !self.finished {
            let stops: Vec<&str> = self
                .stop
                .iter()
                .map(String::as_str)
                .chain(partial.fenced.then_some("```"))
                .collect();
            let longest = stops.iter().map(|s| s.len()).max().unwrap_or(0);
            for keep in (1..longest.min(text.len() + 1)).rev() {
                let from = text.len() - keep;
                let Some(tail) = text.get(from..) else {
                    continue;
                };
                if stops.iter().any(|s| s.len() > keep && s.starts_with(tail)) {
                    ready = from;
                    break;
                }
            }
        }
        if ready <= self.sent {
            return String::new();
        }
        let piece = text.get(self.sent..ready).unwrap_or_default().to_string();
        self.sent = ready;
        piece
    }

    fn text(&self) -> String {
        self.partial().map(|p| p.text).unwrap_or_default()
    }
}

/// Counts and timings gathered while reading an answer.
#[derive(Debug, Default)]
struct StreamStats {
    pieces: u32,
    first_piece: Option<Instant>,
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    cached_tokens: Option<u32>,
}

impl StreamStats {
    /// `usage` (OpenAI, vLLM, Ollama) and llama-server's `timings.cache_n`.
    fn read_usage(&mut self, document: &Json) {
        let number = |pointer: &str| {
            document
                .pointer(pointer)
                .and_then(Json::as_u64)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        if let Some(n) = number("/usage/prompt_tokens") {
            self.prompt_tokens = Some(n);
        }
        if let Some(n) = number("/usage/completion_tokens") {
            self.completion_tokens = Some(n);
        }
        if let Some(n) = number("/usage/prompt_tokens_details/cached_tokens")
            .or_else(|| number("/timings/cache_n"))
        {
            self.cached_tokens = Some(n);
        }
    }
}

/// Splits a `text/event-stream` body into the data of its events, whatever the chunk
/// boundaries (mid-line, mid-character).
#[derive(Debug, Default)]
struct EventDecoder {
    line: Vec<u8>,
    data: Option<String>,
}

impl EventDecoder {
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &byte in chunk {
            if byte == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, &mut events);
            } else {
                self.line.push(byte);
            }
        }
        events
    }

    /// The body ended: a last line or event without its terminating newline still counts.
    fn finish(&mut self) -> Vec<String> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut events);
        }
        events.extend(self.data.take());
        events
    }

    fn line_done(&mut self, line: &[u8], events: &mut Vec<String>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            events.extend(self.data.take());
            return;
        }
        let line = String::from_utf8_lossy(line);
        // Comments (`: keep-alive`), `event:`, `id:` and `retry:` lines carry nothing here.
        if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
    }
}

/// The message of an error document in any of the shapes servers use:
/// `{"error": {"message": ..}}` (OpenAI, vLLM, llama-server), `{"error": ".."}` (Ollama),
/// `{"message": ..}` or `{"detail": ..}`.
fn embedded_error(document: &Json) -> Option<String> {
    let error = document.get("error")?;
    if error.is_null() {
        return None;
    }
    Some(
        error
            .get("message")
            .and_then(Json::as_str)
            .or_else(|| error.as_str())
            .map_or_else(|| error.to_string(), str::to_string),
    )
}

/// What an error body says, in at most a few hundred characters.
fn error_message(body: &str) -> String {
    let message = serde_json::from_str::<Json>(body).ok().and_then(|doc| {
        embedded_error(&doc).or_else(|| {
            ["message", "detail"]
                .iter()
                .find_map(|key| doc.get(*key).and_then(Json::as_str).map(str::to_string))
        })
    });
    match message {
        Some(message) => excerpt(&message),
        None if body.trim().is_empty() => "(empty body)".into(),
        None => excerpt(body),
    }
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(ERROR_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Reads up to `limit` bytes of the body; a broken body yields what arrived.
async fn read_start(response: &mut reqwest::Response, limit: usize) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn error_chain(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;

    /// What the test server received.
    #[derive(Debug)]
    struct Received {
        request_line: String,
        headers: Vec<(String, String)>,
        body: Json,
    }

    impl Received {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// One thing the server does after reading the request.
    enum Step {
        Write(Vec<u8>),
        Sleep(Duration),
    }

    fn write(text: impl AsRef<[u8]>) -> Step {
        Step::Write(text.as_ref().to_vec())
    }

    /// A one-connection HTTP/1.1 server on a free loopback port: it reads one request,
    /// reports it, then plays `steps` and closes the connection.
    async fn serve(steps: Vec<Step>) -> (String, oneshot::Receiver<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let (report, received) = oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let request = read_request(&mut socket).await;
            let _ = report.send(request);
            for step in steps {
                match step {
                    Step::Write(bytes) => {
                        if socket.write_all(&bytes).await.is_err() {
                            return;
                        }
                        let _ = socket.flush().await;
                    }
                    Step::Sleep(d) => tokio::time::sleep(d).await,
                }
            }
            let _ = socket.shutdown().await;
        });
        (base, received)
    }

    async fn read_request(socket: &mut TcpStream) -> Received {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        let header_end = loop {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed before sending a request");
            bytes.extend_from_slice(&buf[..n]);
            if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8(bytes[..header_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap().to_string();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        while bytes.len() < header_end + length {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0);
            bytes.extend_from_slice(&buf[..n]);
        }
        let body = serde_json::from_slice(&bytes[header_end..header_end + length]).unwrap();
        Received {
            request_line,
            headers,
            body,
        }
    }

    const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                            Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

    /// One HTTP chunk of a chunked body.
    fn chunk(bytes: &[u8]) -> Step {
        let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
        framed.extend_from_slice(bytes);
        framed.extend_from_slice(b"\r\n");
        Step::Write(framed)
    }

    fn delta(content: &str) -> String {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
        )
    }

    /// `body` sent as HTTP chunks cut at each of `cuts` (byte offsets), a little apart so
    /// they arrive as separate reads.
    fn chunks_cut_at(body: &[u8], cuts: &[usize]) -> Vec<Step> {
        let mut steps = vec![write(SSE_HEAD)];
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
            steps.push(chunk(&body[from..cut]));
            steps.push(Step::Sleep(Duration::from_millis(5)));
            from = cut;
        }
        steps.push(write("0\r\n\r\n"));
        steps
    }

    fn request(prefix: &str, stop: &[&str], timeout: Duration) -> GenerateRequest {
        GenerateRequest {
            messages: vec![
                ChatMessage::system("You write ClickHouse SQL."),
                ChatMessage::user("How many events?"),
            ],
            answer_prefix: prefix.into(),
            max_tokens: 64,
            stop: stop.iter().map(|s| s.to_string()).collect(),
            grammar: Some("root ::= \"SELECT\"".into()),
            names: None,
            timeout,
            temperature: 0.0,
            seed: 7,
        }
    }

    async fn collect(mut rx: tokio::sync::mpsc::UnboundedReceiver<String>) -> Vec<String> {
        let mut pieces = Vec::new();
        while let Some(p) = rx.recv().await {
            pieces.push(p);
        }
        pieces
    }

    #[tokio::test]
    async fn streams_events_split_at_awkward_boundaries() {
        let mut body = String::new();
        body.push_str(": keep-alive\n\n");
        body.push_str(&delta("SEL"));
        body.push_str(&delta("ECT count()"));
        body.push_str(&delta(" FROM démo.événements"));
        body.push_str(&delta("\nWHERE x = 'é'"));
        body.push_str(&format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 42, "completion_tokens": 9,
                                         "prompt_tokens_details": {"cached_tokens": 30}}})
        ));
        body.push_str("data: [DONE]\n\n");
        let body = body.replace("\n\n", "\r\n\r\n");
        let bytes = body.as_bytes();
        // Cuts inside "data:", inside the JSON, inside the CRLF and inside the two-byte
        // characters.
        let e_acute = body.find('é').unwrap();
        let cuts = [
            3,
            17,
            20,
            40,
            e_acute + 1,
            body.find("\r\n").unwrap() + 1,
            200,
            201,
            260,
        ];
        let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < bytes.len()).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let (base, received) = serve(chunks_cut_at(bytes, &cuts)).await;
        let backend = OpenAiBackend::new(&base, "qwen-coder", Some("sk-test".into())).unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let generation = backend
            .generate(
                request("SELECT", &[";", "```"], Duration::from_secs(10)),
                Some(tx),
                CancellationToken::new(),
            )
            .await
            .unwrap();
        assert_eq!(
            generation.text,
            " count() FROM démo.événements\nWHERE x = 'é'"
        );
        assert_eq!(collect(rx).await.concat(), generation.text);
        assert_eq!(generation.prompt_tokens, 42);
        assert_eq!(generation.generated_tokens, 9);
        assert_eq!(generation.cached_prompt_tokens, 30);
        assert_eq!(generation.grammar_resamples, 0);

        let received = received.await.unwrap();
        assert_eq!(received.request_line, "POST /v1/chat/completions HTTP/1.1");
        assert_eq!(received.header("authorization"), Some("Bearer sk-test"));
        assert_eq!(received.header("content-type"), Some("application/json"));
        let body = &received.body;
        assert_eq!(body["model"], "qwen-coder");
        assert_eq!(body["stream"], true);
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["temperature"], 0);
        assert!(body.get("seed").is_none());
        // The fence stop is applied locally only.
        assert_eq!(body["stop"], serde_json::json!([";"]));
        assert!(body.get("grammar").is_none());
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0]["role"], "system");
        assert_eq!(messages[0]["content"], "You write ClickHouse SQL.");
        assert_eq!(messages[1]["role"], "user");
        assert_eq!(
            messages[1]["content"],
            "How many events?\n\nStart your answer with `SELECT`."
        );
    }

    #[tokio::test]
    async fn a_stop_string_the_server_ignores_ends_the_answer_at_once() {
        // The server keeps the connection open after the stop string: the backend must
        // not wait for it.
        let mut steps = vec![write(SSE_HEAD)];
        for piece in ["```sql\nSELECT", " 1", ";", " SELECT 2"] {
            steps.push(chunk(delta(piece).as_bytes()));
        }
        steps.push(Step::Sleep(Duration::from_secs(30)));
        let (base, received) = serve(steps).await;
        let backend = OpenAiBackend::new(&base, "", None).unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let started = Instant::now();
        let generation = backend
            .generate(
                request("SELECT ", &[";"], Duration::from_secs(20)),
                Some(tx),
                CancellationToken::new(),
            )
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(generation.text, "1");
        assert_eq!(collect(rx).await.concat(), "1");
        // No usage in the stream: pieces are counted.
        assert_eq!(generation.generated_tokens, 3);
        assert_eq!(generation.prompt_tokens, 0);
        let received = received.await.unwrap();
        assert!(received.header("authorization").is_none());
        assert!(received.body.get("model").is_none());
    }

    #[tokio::test]
    async fn refused_key_reports_the_status_and_the_servers_message() {
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-wrong.","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        let (base, _received) = serve(vec![write(format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))])
        .await;
        let backend = OpenAiBackend::new(&base, "gpt-4o-mini", Some("sk-wrong".into())).unwrap();
        let err = backend
            .generate(
                request("SELECT", &[], Duration::from_secs(10)),
                None,
                CancellationToken::new(),
            )
            .await
            .unwrap_err();
        match &err {
            AssistantError::EndpointStatus { url, status, body } => {
                assert_eq!(url, &format!("{base}/chat/completions"));
                assert_eq!(*status, 401);
                assert_eq!(body, "Incorrect API key provided: sk-wrong.");
            }
            other => panic!("expected EndpointStatus, got {other:?}"),
        }
        assert!(err.hint().unwrap().contains("API key"));
    }

    #[tokio::test]
    async fn a_server_that_ignores_stream_true_answers_with_one_document() {
        let body = serde_json::json!({
            "id": "x", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "select count() FROM t"}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        })
        .to_string();
        let (base, _received) = serve(vec![write(format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))])
        .await;
        let backend = OpenAiBackend::new(&base, "m", None).unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let generation = backend
            .generate(
                request("SELECT", &[";"], Duration::from_secs(10)),
                Some(tx),
                CancellationToken::new(),
            )
            .await
            .unwrap();
        assert_eq!(generation.text, " count() FROM t");
        assert_eq!(collect(rx).await, vec![" count() FROM t".to_string()]);
        assert_eq!(
            (generation.prompt_tokens, generation.generated_tokens),
            (12, 5)
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let (base, _received) = serve(vec![Step::Sleep(Duration::from_secs(30))]).await;
        let backend = OpenAiBackend::new(&base, "m", None).unwrap();
        let started = Instant::now();
        let err = backend
            .generate(
                request("SELECT", &[], Duration::from_millis(300)),
                None,
                CancellationToken::new(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, AssistantError::Timeout(t) if t == Duration::from_millis(300)),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn cancelling_a_slow_stream_returns_promptly() {
        let mut steps = vec![write(SSE_HEAD), chunk(delta("SELECT 1").as_bytes())];
        for _ in 0..100 {
            steps.push(Step::Sleep(Duration::from_millis(200)));
            steps.push(chunk(delta(" + 1").as_bytes()));
        }
        let (base, _received) = serve(steps).await;
        let backend = OpenAiBackend::new(&base, "m", None).unwrap();
        let cancel = CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let job = {
            let cancel = cancel.clone();
            let request = request("", &[], Duration::from_secs(60));
            tokio::spawn(async move { backend.generate(request, Some(tx), cancel).await })
        };
        // The first piece arrives before the cancel, so the stream was really under way.
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, "SELECT 1");
        let fired = Instant::now();
        cancel.cancel();
        let result = tokio::time::timeout(Duration::from_secs(2), job)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(result, Err(AssistantError::Cancelled)),
            "{result:?}"
        );
        assert!(fired.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn an_unreachable_port_names_the_url() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let base = format!("http://{addr}/v1");
        let backend = OpenAiBackend::new(&base, "m", None).unwrap();
        let err = backend
            .generate(
                request("SELECT", &[], Duration::from_secs(10)),
                None,
                CancellationToken::new(),
            )
            .await
            .unwrap_err();
        match &err {
            AssistantError::EndpointUnreachable { url, reason } => {
                assert_eq!(url, &format!("{base}/chat/completions"));
                assert_eq!(reason, "connection refused");
            }
            other => panic!("expected EndpointUnreachable, got {other:?}"),
        }
        assert!(err.to_string().contains(&base), "{err}");
    }

    #[tokio::test]
    async fn a_malformed_stream_is_a_protocol_error() {
        let mut steps = vec![write(SSE_HEAD), chunk(delta("SELECT").as_bytes())];
        steps.push(chunk(b"data: {\"choices\": [oops\n\n"));
        steps.push(write("0\r\n\r\n"));
        let (base, _received) = serve(steps).await;
        let backend = OpenAiBackend::new(&base, "m", None).unwrap();
        let err = backend
            .generate(
                request("SELECT", &[], Duration::from_secs(10)),
                None,
                CancellationToken::new(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AssistantError::EndpointProtocol { detail, .. } if detail.contains("not JSON")),
            "{err:?}"
        );

        // A stream that just stops, without [DONE] or a finish_reason.
        let steps = vec![
            write(SSE_HEAD),
            chunk(delta("SELECT 1").as_bytes()),
            write("0\r\n\r\n"),
        ];
        let (base, _received) = serve(steps).await;
        let backend = OpenAiBackend::new(&base, "m", None).unwrap();
        let err = backend
            .generate(
                request("SELECT", &[], Duration::from_secs(10)),
                None,
                CancellationToken::new(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AssistantError::EndpointProtocol { detail, .. } if detail.contains("[DONE]")),
            "{err:?}"
        );
    }

    #[test]
    fn sampling_settings_reach_the_body() {
        let backend = OpenAiBackend::new("http://127.0.0.1:1/v1", "m", None).unwrap();
        let mut req = request("", &[], Duration::from_secs(1));
        req.temperature = 0.2;
        req.seed = 42;
        let body = backend.body(&req, false);
        assert_eq!(body["temperature"].as_f64(), Some(0.2));
        assert_eq!(body["seed"], 42);
        // No prefix: no instruction, and no stop field when there are no stops.
        assert_eq!(body["messages"][1]["content"], "How many events?");
        assert!(body.get("stop").is_none());
    }

    #[test]
    fn the_grammar_goes_to_the_server_with_a_root_that_writes_the_prefix() {
        let backend = OpenAiBackend::new("http://127.0.0.1:1/v1", "m", None).unwrap();
        let mut req = request("SELECT ", &[], Duration::from_secs(1));
        req.grammar = Some("root ::= item*\nitem ::= [a-z]".into());
        assert!(backend.body(&req, false).get("grammar").is_none());
        assert_eq!(
            backend.body(&req, true)["grammar"],
            "root ::= \"SELECT \" aurora-answer\naurora-answer ::= item*\nitem ::= [a-z]"
        );
        req.answer_prefix = "say \"hi\" ".into();
        let grammar = backend.body(&req, true)["grammar"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            grammar.starts_with("root ::= \"say \\\"hi\\\" \" aurora-answer\n"),
            "{grammar}"
        );
    }

    fn json_reply(status: &str, body: &str) -> Vec<Step> {
        vec![write(format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))]
    }

    /// `auto` asks once: the forced reply means the server applies grammars, an error or any
    /// other reply that it does not; `gbnf` and `off` ask nothing.
    #[tokio::test]
    async fn auto_finds_out_once_whether_the_endpoint_applies_a_grammar() {
        let reply = |content: &str| {
            serde_json::json!({"choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": content}}]})
            .to_string()
        };
        let (base, received) = serve(json_reply("200 OK", &reply(PROBE_REPLY))).await;
        let backend = OpenAiBackend::new(&base, "m", None)
            .unwrap()
            .with_grammar(GrammarField::Auto);
        assert!(backend.takes_grammar().await);
        let probe = received.await.unwrap();
        assert_eq!(probe.body["grammar"], format!("root ::= \"{PROBE_REPLY}\""));
        assert_eq!(probe.body["stream"], false);
        // The answer is kept: no second request (the mock serves only one).
        assert!(backend.takes_grammar().await);

        let (base, _) = serve(json_reply("200 OK", &reply("Hello! How can I help?"))).await;
        let ignoring = OpenAiBackend::new(&base, "m", None)
            .unwrap()
            .with_grammar(GrammarField::Auto);
        assert!(!ignoring.takes_grammar().await);

        let refusal = r#"{"error":{"message":"Unrecognized request argument supplied: grammar"}}"#;
        let (base, _) = serve(json_reply("400 Bad Request", refusal)).await;
        let refusing = OpenAiBackend::new(&base, "m", None)
            .unwrap()
            .with_grammar(GrammarField::Auto);
        assert!(!refusing.takes_grammar().await);

        let nowhere = "http://127.0.0.1:1/v1";
        let forced = OpenAiBackend::new(nowhere, "m", None)
            .unwrap()
            .with_grammar(GrammarField::Gbnf);
        assert!(forced.takes_grammar().await);
        assert!(
            !OpenAiBackend::new(nowhere, "m", None)
                .unwrap()
                .takes_grammar()
                .await
        );
    }

    #[test]
    fn bad_base_urls_are_refused_up_front() {
        assert!(matches!(
            OpenAiBackend::new("localhost:8080/v1", "m", None),
            Err(AssistantError::EndpointUnreachable { .. })
        ));
        assert!(matches!(
            OpenAiBackend::new("ftp://host/v1", "m", None),
            Err(AssistantError::EndpointUnreachable { .. })
        ));
        let backend =
            OpenAiBackend::new(" https://api.openai.com/v1/ ", "gpt-4o-mini", None).unwrap();
        assert_eq!(
            backend.endpoint(),
            "https://api.openai.com/v1/chat/completions"
        );
        let backend = OpenAiBackend::new(
            "http://127.0.0.1:8080/v1/chat/completions",
            "",
            Some(" ".into()),
        )
        .unwrap();
        assert_eq!(
            backend.endpoint(),
            "http://127.0.0.1:8080/v1/chat/completions"
        );
        assert!(backend.api_key.is_none());
    }

    #[test]
    fn model_id_names_the_model_or_the_host() {
        let named = OpenAiBackend::new("https://api.openai.com/v1", "gpt-4o-mini", None).unwrap();
        assert_eq!(named.model_id(), "openai:gpt-4o-mini");
        let unnamed = OpenAiBackend::new("http://127.0.0.1:8080/v1", "", None).unwrap();
        assert_eq!(unnamed.model_id(), "openai:127.0.0.1:8080");
        let debug = format!(
            "{:?}",
            OpenAiBackend::new("http://h/v1", "m", Some("sk-secret".into())).unwrap()
        );
        assert!(!debug.contains("sk-secret"), "{debug}");
    }

    /// Feeds `pieces` through the answer assembly; returns the final text and what was
    /// streamed.
    fn assemble(prefix: &str, stop: &[&str], pieces: &[&str]) -> (String, String) {
        let stop: Vec<String> = stop.iter().map(|s| s.to_string()).collect();
        let mut answer = AnswerText::new(prefix, &stop);
        let mut streamed = String::new();
        for piece in pieces {
            answer.push(piece);
            streamed.push_str(&answer.take_ready());
        }
        answer.finish();
        streamed.push_str(&answer.take_ready());
        (answer.text(), streamed)
    }

    #[test]
    fn the_answer_prefix_is_stripped_only_when_the_model_began_with_it() {
        // Began with it: the text after it.
        assert_eq!(assemble("SELECT", &[], &["SELECT 1"]).0, " 1");
        // Case and split pieces do not matter.
        assert_eq!(assemble("SELECT", &[], &["se", "lect", " 1"]).0, " 1");
        // A prefix ending in whitespace: whatever whitespace the model wrote goes.
        assert_eq!(assemble("SELECT ", &[], &["SELECT\n  1"]).0, "1");
        // Began otherwise: the whole text.
        assert_eq!(
            assemble("SELECT", &[], &["WITH x AS (SELECT 1) SELECT * FROM x"]).0,
            "WITH x AS (SELECT 1) SELECT * FROM x"
        );
        // Too short to tell when the stream ends: the whole text.
        assert_eq!(assemble("SELECT", &[], &["SEL"]).0, "SEL");
        // No prefix: the whole text, leading whitespace dropped.
        assert_eq!(assemble("", &[], &["\n SELECT 1"]).0, "SELECT 1");
        // An opening fence and leading whitespace are skipped; the closing fence ends it.
        assert_eq!(
            assemble(
                "SELECT",
                &[],
                &["  ```sql\nSELECT 1\n```\nThis query counts."]
            )
            .0,
            " 1\n"
        );
        assert_eq!(
            assemble("SELECT", &[], &["``", "`\n", "select 1", "``", "`"]).0,
            " 1"
        );
        // The helper the caller can use to tell the cases apart.
        assert_eq!(strip_answer_prefix("select 1", "SELECT"), Some(" 1"));
        assert_eq!(strip_answer_prefix("WITH 1", "SELECT"), None);
        assert_eq!(strip_answer_prefix("SELECT 1", ""), None);
        assert_eq!(strip_answer_prefix("SÉLECT", "SELECT"), None);
    }

    #[test]
    fn streamed_pieces_add_up_to_the_text_and_hold_back_possible_stops() {
        let stop = ["\n\n", ";"];
        let (text, streamed) = assemble(
            "SELECT",
            &stop,
            &["SEL", "ECT a", "\n", "FROM t", "\n", "\n", "junk"],
        );
        assert_eq!(text, " a\nFROM t");
        assert_eq!(streamed, text);
        // A held-back tail that turns out not to be a stop string is released.
        let stop: Vec<String> = vec!["\n\n".into()];
        let mut answer = AnswerText::new("", &stop);
        answer.push("SELECT 1\n");
        assert_eq!(answer.take_ready(), "SELECT 1");
        answer.push("FROM t");
        assert_eq!(answer.take_ready(), "\nFROM t");
        // Nothing is streamed while the prefix question is open.
        let mut answer = AnswerText::new("SELECT", &[]);
        answer.push("SELE");
        assert_eq!(answer.take_ready(), "");
        answer.push("CT x");
        assert_eq!(answer.take_ready(), " x");
    }

    #[test]
    fn only_four_fence_free_stops_go_to_the_server() {
        let stop: Vec<String> = ["```", ";", "\n\n", ";", "", "--", "#", "/*"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(server_stops(&stop), vec![";", "\n\n", "--", "#"]);
    }

    #[test]
    fn the_prefix_instruction_goes_to_the_last_user_message() {
        let messages = vec![
            ChatMessage::user("q1"),
            ChatMessage::assistant("SELECT 1"),
            ChatMessage::user("q2"),
            ChatMessage::assistant("partial"),
        ];
        let out = with_prefix_instruction(&messages, "SELECT");
        assert_eq!(out[2].content, "q2\n\nStart your answer with `SELECT`.");
        assert_eq!(out[0].content, "q1");
        assert_eq!(with_prefix_instruction(&messages, " "), messages);
        let out = with_prefix_instruction(&[ChatMessage::system("s")], "SELECT");
        assert_eq!(
            out[1],
            ChatMessage::user("Start your answer with `SELECT`.")
        );
    }

    #[test]
    fn error_bodies_in_every_known_shape() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad key"}}"#),
            "bad key"
        );
        assert_eq!(
            error_message(r#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(error_message(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(
            error_message("  <html>502 Bad Gateway</html>\n"),
            "<html>502 Bad Gateway</html>"
        );
        assert_eq!(error_message(""), "(empty body)");
        let long = "x".repeat(1000);
        assert_eq!(error_message(&long).chars().count(), ERROR_BODY_CHARS + 1);
    }

    #[test]
    fn event_decoder_handles_every_line_ending_and_split() {
        let stream =
            b"data: {\"a\":1}\r\n\r\n: comment\nevent: message\ndata: x\ndata: y\n\ndata:[DONE]";
        for split in 0..stream.len() {
            let mut decoder = EventDecoder::default();
            let mut events = decoder.push(&stream[..split]);
            events.extend(decoder.push(&stream[split..]));
            events.extend(decoder.finish());
            assert_eq!(
                events,
                vec!["{\"a\":1}", "x\ny", "[DONE]"],
                "split at {split}"
            );
        }
    }
}
