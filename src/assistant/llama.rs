//! The local backend: a GGUF model run in-process by llama.cpp (`llama-cpp-2`) on one
//! background thread that owns the model and a single context. Jobs arrive over a channel;
//! text goes back token by token. The thread starts loading the model as soon as the backend
//! is created, so a caller never blocks on the load: a job sent early simply waits its turn.
//!
//! Between jobs the context keeps the tokens it has evaluated. A new prompt that starts with
//! the same tokens (the system prompt and schema are the same for every question) reuses
//! them and only evaluates the rest, which is where most of a small model's latency goes.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Instant;

use futures_util::future::BoxFuture;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::vocab::LlamaVocab;
use llama_cpp_2::DecodeError;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::columns::NameGuard;

use super::backend::{cut_at_stop, ChatMessage, GenerateRequest, Generation, ModelBackend};
use super::error::AssistantError;

/// Most tokens one request may use: prompt plus answer. Aurora's prompts are small (a linked
/// schema excerpt and a few examples).
const CONTEXT_TOKENS: u32 = 4096;
/// KV cache cells: room for one prompt and answer plus the remembered prompts. About 12 KB
/// per cell for the default 0.5B model.
const CACHE_TOKENS: u32 = 8192;
/// Prompts remembered besides the current one (sequences 1..=N). Their shared prefixes
/// share cells, so eight prompts of a few hundred tokens fit the cache; when it is full the
/// least recently used ones are forgotten first.
const PROMPT_SLOTS: i32 = 8;
/// Prompt tokens evaluated per `decode` call.
const BATCH_TOKENS: usize = 512;
/// The same for a prompt-only request (a warm-up): smaller, so that cancelling it for a
/// question takes effect within a second rather than after up to 512 tokens.
const WARM_BATCH_TOKENS: usize = 64;

/// llama.cpp's process-wide state: initialised once, logs routed to `tracing` (debug level)
/// instead of stderr, where they would tear a terminal UI apart.
fn llama_backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether the process is leaving (see [`quiesce`]). Loading and generation stop at their
/// next check; nothing new starts.
static LEAVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// How many threads are inside llama.cpp right now, and a signal when that changes.
static IN_LLAMA: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// Held while a thread works inside llama.cpp. The C++ exit handlers destroy llama.cpp's
/// static tables (the tokenizer's, the tensor names), so a process must not exit while a
/// model thread is loading or decoding: [`quiesce`] waits for every guard to be dropped.
struct InLlama;

impl InLlama {
    /// `None` once the process is leaving: the caller must not touch llama.cpp again.
    fn enter() -> Option<Self> {
        let mut inside = IN_LLAMA.0.lock().unwrap_or_else(|p| p.into_inner());
        if LEAVING.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        *inside += 1;
        Some(Self)
    }
}

impl Drop for InLlama {
    fn drop(&mut self) {
        let mut inside = IN_LLAMA.0.lock().unwrap_or_else(|p| p.into_inner());
        *inside = inside.saturating_sub(1);
        IN_LLAMA.1.notify_all();
    }
}

fn leaving() -> bool {
    LEAVING.load(std::sync::atomic::Ordering::SeqCst)
}

/// Called once before the process exits: stops the model threads at their next check (a
/// load is aborted, a generation ends between tokens) and waits up to `wait` until none is
/// inside llama.cpp. Returns false when one still is, in which case the caller must leave
/// without running the C++ exit handlers.
pub fn quiesce(wait: std::time::Duration) -> bool {
    let inside = IN_LLAMA.0.lock().unwrap_or_else(|p| p.into_inner());
    LEAVING.store(true, std::sync::atomic::Ordering::SeqCst);
    let (inside, _) = IN_LLAMA
        .1
        .wait_timeout_while(inside, wait, |n| *n > 0)
        .unwrap_or_else(|p| p.into_inner());
    *inside == 0
}

/// A thread that must not touch llama.cpp any more (the process is leaving) waits here for
/// the exit instead of dropping its model, which would run llama.cpp's code.
fn wait_for_exit() -> ! {
    loop {
        std::thread::park();
    }
}

/// CPU threads for the model when the config says 0: all cores but one, so the ingestion
/// engine and the UI keep a core, and at least one.
pub fn default_threads() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cores.saturating_sub(1).max(1)).unwrap_or(1)
}

/// What a GGUF file says about itself, read by loading it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelFacts {
    pub name: Option<String>,
    pub architecture: Option<String>,
    pub parameters: u64,
    pub size_bytes: u64,
    pub context_tokens: u32,
    pub has_chat_template: bool,
    /// The chat layout the assistant uses with it (see [`ChatFormat`]).
    pub chat_layout: String,
}

fn load_model(path: &Path) -> Result<LlamaModel, AssistantError> {
    load_model_with(path, LlamaModelParams::default())
}

fn load_model_with(path: &Path, params: LlamaModelParams) -> Result<LlamaModel, AssistantError> {
    let load_error = |reason: String| AssistantError::ModelLoad {
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(AssistantError::ModelMissing {
            model: path.display().to_string(),
            looked_in: vec![path.to_path_buf()],
        });
    }
    let backend = llama_backend().map_err(load_error)?;
    // Aborted between tensors when the process is leaving.
    let params = params.with_progress_callback(|_| !leaving());
    LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
        load_error(format!(
            "{e} (llama.cpp could not read it as a GGUF model; the file may be truncated)"
        ))
    })
}

/// Loads the file to check that llama.cpp can run it (what `aurora model add` does).
pub fn inspect(path: &Path) -> Result<ModelFacts, AssistantError> {
    let model = load_model(path)?;
    let meta = |key: &str| model.meta_val_str(key).ok().filter(|s| !s.is_empty());
    Ok(ModelFacts {
        name: meta("general.name"),
        architecture: meta("general.architecture"),
        parameters: model.n_params(),
        size_bytes: model.size(),
        context_tokens: model.n_ctx_train(),
        has_chat_template: model.chat_template(None).is_ok(),
        chat_layout: ChatFormat::of(&model).layout,
    })
}

/// Built-in llama.cpp chat layouts for model families whose GGUF files often carry no
/// template (older conversions), recognised by their tokenizer: (`tokenizer.ggml.model`,
/// `tokenizer.ggml.pre`, a special token only that family has) → layout.
/// - DeepSeek Coder: its BPE tokenizer with `<|EOT|>`; the publisher's instruct layout
///   (system text, `### Instruction:`, `### Response:`), llama.cpp's `deepseek`.
/// - Llama 2 and Code Llama: Llama's SentencePiece tokenizer; `[INST] <<SYS>>…<</SYS>> …
///   [/INST]`, each earlier turn closed by `</s>` and the next opened by `<s>`: llama.cpp's
///   `llama2-sys-bos`.
struct Family {
    /// `tokenizer.ggml.model`, `tokenizer.ggml.pre`, and a special token of the vocabulary;
    /// `None` matches anything.
    tokenizer: Option<&'static str>,
    pre: Option<&'static str>,
    token: Option<&'static str>,
    /// llama.cpp's name of the layout.
    layout: &'static str,
}

/// The families, tried in order.
const FAMILY_LAYOUTS: &[Family] = &[
    Family {
        tokenizer: None,
        pre: Some("deepseek-coder"),
        token: None,
        layout: "deepseek",
    },
    // Older DeepSeek Coder conversions name no pre-tokenizer.
    Family {
        tokenizer: Some("gpt2"),
        pre: None,
        token: Some("<|EOT|>"),
        layout: "deepseek",
    },
    Family {
        tokenizer: Some("llama"),
        pre: None,
        token: None,
        layout: "llama2-sys-bos",
    },
];

/// Texts of end-of-turn tokens some families do not mark as end of generation in their
/// files (DeepSeek Coder's instruct models end a reply with `<|EOT|>`).
const END_OF_TURN: &[&str] = &[
    "<|EOT|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|end|>",
    "<end_of_turn>",
];

/// How the assistant prompts a model file: its own chat template, else the built-in layout
/// of its family (from the tokenizer), else a plain ChatML-like layout; and the tokens that
/// end an answer besides the file's end-of-generation ones.
struct ChatFormat {
    template: Option<LlamaChatTemplate>,
    /// `the file's own`, `<name> (from its tokenizer)` or `plain`, for reports.
    layout: String,
    ends: Vec<LlamaToken>,
}

impl ChatFormat {
    fn of(model: &LlamaModel) -> Self {
        let vocab = model.vocab();
        // A text that is one special token of this vocabulary, and not already an end.
        let special = |text: &str| {
            let tokens = vocab.tokenize(text.as_bytes(), false, true);
            match tokens.as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        };
        let ends = END_OF_TURN
            .iter()
            .filter_map(|text| special(text))
            .filter(|t| !vocab.is_eog(*t))
            .collect();
        if let Ok(template) = model.chat_template(None) {
            return ChatFormat {
                template: Some(template),
                layout: "the file's own".into(),
                ends,
            };
        }
        let meta = |key: &str| model.meta_val_str(key).ok().filter(|s| !s.is_empty());
        let (kind, pre) = (meta("tokenizer.ggml.model"), meta("tokenizer.ggml.pre"));
        let family = FAMILY_LAYOUTS.iter().find(|f| {
            f.tokenizer.is_none_or(|k| kind.as_deref() == Some(k))
                && f.pre.is_none_or(|p| pre.as_deref() == Some(p))
                && f.token.is_none_or(|t| special(t).is_some())
        });
        match family.and_then(|f| Some((f.layout, LlamaChatTemplate::new(f.layout).ok()?))) {
            Some((name, template)) => ChatFormat {
                template: Some(template),
                layout: format!("{name} (from its tokenizer)"),
                ends,
            },
            None => ChatFormat {
                template: None,
                layout: "plain".into(),
                ends,
            },
        }
    }

    /// The prompt text for `messages`, ending with `answer_prefix`.
    fn prompt(&self, model: &LlamaModel, messages: &[ChatMessage], answer_prefix: &str) -> String {
        let templated = self.template.as_ref().and_then(|template| {
            let chat: Vec<LlamaChatMessage> = messages
                .iter()
                .map(|m| LlamaChatMessage::new(m.role.as_str().into(), m.content.clone()))
                .collect::<Result<_, _>>()
                .ok()?;
            model.apply_chat_template(template, &chat, true).ok()
        });
        let mut text = templated.unwrap_or_else(|| plain_prompt(messages));
        text.push_str(answer_prefix);
        text
    }
}

/// How a model file would be prompted, read from its tokenizer alone (a vocabulary-only
/// GGUF will do): the layout, the prompt for `messages`, and the texts of the tokens that end
/// an answer (the file's end-of-generation tokens among `END_OF_TURN` and its EOS, and those
/// added for its family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptLayout {
    pub layout: String,
    pub prompt: String,
    pub ends: Vec<String>,
}

pub fn prompt_layout(
    path: &Path,
    messages: &[ChatMessage],
    answer_prefix: &str,
) -> Result<PromptLayout, AssistantError> {
    let model = load_model_with(path, LlamaModelParams::default().with_vocab_only(true))?;
    let format = ChatFormat::of(&model);
    let vocab = model.vocab();
    let piece = |t: LlamaToken| {
        let mut bytes = Vec::new();
        vocab.token_to_piece_into(t, &mut bytes, true, None);
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let mut ends: Vec<String> = END_OF_TURN
        .iter()
        .filter_map(
            |text| match vocab.tokenize(text.as_bytes(), false, true).as_slice() {
                [one] if vocab.is_eog(*one) => Some(piece(*one)),
                _ => None,
            },
        )
        .chain(std::iter::once(piece(vocab.eos())))
        .chain(format.ends.iter().map(|t| piece(*t)))
        .collect();
    ends.sort();
    ends.dedup();
    Ok(PromptLayout {
        layout: format.layout.clone(),
        prompt: format.prompt(&model, messages, answer_prefix),
        ends,
    })
}

/// Where the model's `gbnf` grammar (rooted at `root`) refuses each of `texts`, read as the
/// model's tokens: the index of the first refused token, or `None` when the grammar takes the
/// whole text. The model is loaded once for all of them. For checking a generated grammar
/// against queries it must allow or refuse.
pub fn grammar_refusals(
    path: &Path,
    gbnf: &str,
    texts: &[&str],
) -> Result<Vec<Option<usize>>, AssistantError> {
    let model = load_model(path)?;
    let mut out = Vec::new();
    for text in texts {
        let mut grammar =
            LlamaSampler::grammar(&model, gbnf, "root").map_err(|e| AssistantError::ModelLoad {
                path: path.to_path_buf(),
                reason: format!("the grammar was refused: {e}"),
            })?;
        let tokens = model.vocab().tokenize(text.as_bytes(), false, false);
        let refused = tokens.into_iter().position(|token| {
            let allowed = grammar_allows(&mut grammar, token, 0.0);
            if allowed {
                grammar.accept(token);
            }
            !allowed
        });
        out.push(refused);
    }
    Ok(out)
}

/// Whether `grammar` allows `token` next (checked alone, not against the whole vocabulary).
fn grammar_allows(grammar: &mut LlamaSampler, token: LlamaToken, logit: f32) -> bool {
    let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, logit, 0.0)], false);
    grammar.apply(&mut one);
    one.data.first().is_some_and(|d| d.logit().is_finite())
}

struct Job {
    request: GenerateRequest,
    tokens: Option<UnboundedSender<String>>,
    cancel: CancellationToken,
    reply: oneshot::Sender<Result<Generation, AssistantError>>,
}

/// A GGUF model served by a background thread. Cheap to share; dropping the last handle
/// stops the thread after its current job.
pub struct LocalModel {
    id: String,
    jobs: mpsc::Sender<Job>,
}

impl LocalModel {
    /// Starts the model thread, which loads `path` right away. Errors (missing file, not a
    /// model) are reported by the first `generate`.
    pub fn spawn(id: String, path: PathBuf, threads: u32) -> Self {
        Self::spawn_with_prompt_cache(id, path, threads, None)
    }

    /// Like [`spawn`](Self::spawn), and keeps the last evaluated prompt in a file in
    /// `cache_dir`, so that the next process (each `aurora ask` is one) starts with it instead
    /// of evaluating the system prompt and schema again. The file is tied to the model file
    /// (name, size and modification time) and rewritten when the prompt changes.
    pub fn spawn_with_prompt_cache(
        id: String,
        path: PathBuf,
        threads: u32,
        cache_dir: Option<PathBuf>,
    ) -> Self {
        let (jobs, receiver) = mpsc::channel::<Job>();
        let cache = cache_dir.and_then(|dir| prompt_cache_file(&dir, &path));
        let spawned = std::thread::Builder::new()
            .name("aurora-model".into())
            .spawn(move || serve(&path, threads, cache.as_deref(), &receiver));
        if let Err(e) = spawned {
            tracing::error!("cannot start the model thread: {e}");
        }
        Self { id, jobs }
    }
}

impl ModelBackend for LocalModel {
    fn model_id(&self) -> String {
        self.id.clone()
    }

    fn keeps_prompts(&self) -> bool {
        true
    }

    fn generate<'a>(
        &'a self,
        request: GenerateRequest,
        tokens: Option<UnboundedSender<String>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Generation, AssistantError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let timeout = request.timeout;
            // The job's own token: a timeout stops this job without cancelling the caller's
            // token, which may be meant for more than this one answer.
            let job_cancel = cancel.child_token();
            let job = Job {
                request,
                tokens,
                cancel: job_cancel.clone(),
                reply,
            };
            if self.jobs.send(job).is_err() {
                return Err(AssistantError::ModelLoad {
                    path: PathBuf::from(&self.id),
                    reason: "the model thread has stopped".into(),
                });
            }
            // The thread checks the token between tokens; firing it on timeout makes the
            // thread drop the job promptly instead of finishing an answer nobody reads.
            let guard = job_cancel.drop_guard();
            let result = tokio::select! {
                answer = answer => answer.unwrap_or(Err(AssistantError::Cancelled)),
                () = tokio::time::sleep(timeout) => Err(AssistantError::Timeout(timeout)),
            };
            if result.is_ok() {
                guard.disarm();
            }
            result
        })
    }
}

/// The model thread: load once, then answer jobs until every handle is dropped.
/// `<cache_dir>/<model file stem>-<size>-<mtime>.prompt`: a model file replaced by another
/// gets another cache file.
fn prompt_cache_file(cache_dir: &Path, model: &Path) -> Option<PathBuf> {
    let meta = std::fs::metadata(model).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let stem = model.file_stem()?.to_string_lossy();
    Some(cache_dir.join(format!("{stem}-{}-{mtime}.prompt", meta.len())))
}

/// The next job, waited for outside llama.cpp (`busy` is released meanwhile and taken
/// again); `None` once every handle is dropped. A process that is leaving never gets past
/// this point again.
fn next_job(jobs: &mpsc::Receiver<Job>, busy: &mut Option<InLlama>) -> Option<Job> {
    *busy = None;
    let job = jobs.recv().ok();
    *busy = Some(InLlama::enter().unwrap_or_else(|| wait_for_exit()));
    job
}

fn serve(path: &Path, threads: u32, cache: Option<&Path>, jobs: &mpsc::Receiver<Job>) {
    // Declared first, dropped last: the model and the context are freed inside it too.
    let mut busy = InLlama::enter();
    if busy.is_none() {
        return;
    }
    let model = match load_model(path) {
        Ok(model) => model,
        Err(e) => {
            while let Some(job) = next_job(jobs, &mut busy) {
                let _ = job.reply.send(Err(clone_load_error(&e)));
            }
            return;
        }
    };
    let threads = i32::try_from(threads.max(1)).unwrap_or(1);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(CACHE_TOKENS))
        .with_n_seq_max(PROMPT_SLOTS as u32 + 1)
        // One cache for all sequences: a remembered prompt copied into sequence 0 shares
        // its cells instead of being copied.
        .with_kv_unified(true)
        .with_n_batch(BATCH_TOKENS as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let backend = match llama_backend() {
        Ok(b) => b,
        Err(reason) => {
            while let Some(job) = next_job(jobs, &mut busy) {
                let _ = job.reply.send(Err(AssistantError::ModelLoad {
                    path: path.to_path_buf(),
                    reason: reason.clone(),
                }));
            }
            return;
        }
    };
    let mut context = match model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            while let Some(job) = next_job(jobs, &mut busy) {
                let _ = job.reply.send(Err(AssistantError::ModelLoad {
                    path: path.to_path_buf(),
                    reason: format!("cannot create a context: {e}"),
                }));
            }
            return;
        }
    };
    let format = ChatFormat::of(&model);
    tracing::debug!("chat layout of {}: {}", path.display(), format.layout);
    let mut session = Session {
        model: &model,
        format,
        evaluated: Vec::new(),
        slots: (1..=PROMPT_SLOTS)
            .map(|seq| Slot {
                seq,
                tokens: Vec::new(),
                used: 0,
            })
            .collect(),
        clock: 0,
        path,
    };
    if let Some(file) = cache.filter(|f| f.is_file()) {
        match context.state_seq_load_file(file, 0, CONTEXT_TOKENS as usize) {
            Ok((tokens, _)) => session.evaluated = tokens,
            Err(e) => {
                tracing::debug!("prompt cache {} not usable: {e}", file.display());
                context.clear_kv_cache();
            }
        }
    }
    let mut saved = session.evaluated.clone();
    while let Some(job) = next_job(jobs, &mut busy) {
        if job.cancel.is_cancelled() {
            let _ = job.reply.send(Err(AssistantError::Cancelled));
            continue;
        }
        let result = session.run(&mut context, &job);
        // Saved before replying, so a process that exits right after its answer has it.
        if let Some(file) = cache.filter(|_| result.is_ok() && session.evaluated != saved) {
            save_prompt_cache(&context, file, &session.evaluated);
            saved = session.evaluated.clone();
        }
        let _ = job.reply.send(result);
    }
}

/// Writes sequence 0 (the last prompt) to `file`, atomically. A failure only costs speed.
fn save_prompt_cache(context: &LlamaContext<'_>, file: &Path, tokens: &[LlamaToken]) {
    let tmp = file.with_extension("prompt.tmp");
    let saved = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            context
                .state_seq_save_file(&tmp, 0, tokens)
                .map_err(|e| e.to_string())
        })
        .and_then(|_| std::fs::rename(&tmp, file).map_err(|e| e.to_string()));
    if let Err(e) = saved {
        tracing::debug!("cannot save the prompt cache {}: {e}", file.display());
    }
}

/// The load error again, for each job that asks after the load failed.
fn clone_load_error(e: &AssistantError) -> AssistantError {
    match e {
        AssistantError::ModelMissing { model, looked_in } => AssistantError::ModelMissing {
            model: model.clone(),
            looked_in: looked_in.clone(),
        },
        AssistantError::ModelLoad { path, reason } => AssistantError::ModelLoad {
            path: path.clone(),
            reason: reason.clone(),
        },
        other => AssistantError::ModelLoad {
            path: PathBuf::new(),
            reason: other.to_string(),
        },
    }
}

struct Session<'m> {
    model: &'m LlamaModel,
    /// The chat layout and the extra end tokens.
    format: ChatFormat,
    /// The tokens the context's sequence 0 (the one generating) holds, in order.
    evaluated: Vec<LlamaToken>,
    /// Earlier prompts kept in other sequences of the same cache, so that questions about
    /// different tables can alternate without evaluating each table set's prefix again.
    slots: Vec<Slot>,
    clock: u64,
    path: &'m Path,
}

/// A remembered prompt: the tokens sequence `seq` holds.
struct Slot {
    seq: i32,
    tokens: Vec<LlamaToken>,
    used: u64,
}

/// Why a prompt could not be evaluated.
enum Evaluation {
    /// No room left in the KV cache.
    Full,
    Failed(AssistantError),
}

impl From<AssistantError> for Evaluation {
    fn from(e: AssistantError) -> Self {
        Evaluation::Failed(e)
    }
}

impl Session<'_> {
    fn fail(&self, reason: impl std::fmt::Display) -> AssistantError {
        AssistantError::ModelLoad {
            path: self.path.to_path_buf(),
            reason: reason.to_string(),
        }
    }

    /// The prompt text: the file's own chat template when it has one, else a plain format.
    fn prompt_text(&self, messages: &[ChatMessage], answer_prefix: &str) -> String {
        self.format.prompt(self.model, messages, answer_prefix)
    }

    fn run(
        &mut self,
        context: &mut LlamaContext<'_>,
        job: &Job,
    ) -> Result<Generation, AssistantError> {
        let request = &job.request;
        let started = Instant::now();
        let deadline = started + request.timeout;
        let prompt = self.prompt_text(&request.messages, &request.answer_prefix);
        tracing::debug!("prompt:\n{prompt}");
        let prompt_tokens = self.model.vocab().tokenize(prompt.as_bytes(), true, true);
        if prompt_tokens.len() + request.max_tokens as usize > CONTEXT_TOKENS as usize {
            return Err(self.fail(format!(
                "the prompt has {} tokens; with {} for the answer that exceeds the context of {}",
                prompt_tokens.len(),
                request.max_tokens,
                CONTEXT_TOKENS
            )));
        }
        let mut evaluated = self.evaluate_prompt(context, &prompt_tokens, job, deadline);
        // The cache is full of remembered prompts: forget the least recently used ones, one at
        // a time, and at last everything, once.
        while matches!(evaluated, Err(Evaluation::Full)) {
            if !self.forget_oldest(context) {
                self.forget_all(context);
                evaluated = self.evaluate_prompt(context, &prompt_tokens, job, deadline);
                break;
            }
            evaluated = self.evaluate_prompt(context, &prompt_tokens, job, deadline);
        }
        let (reused, logits_index) = evaluated.map_err(|e| match e {
            Evaluation::Failed(e) => e,
            Evaluation::Full => self.fail("the prompt does not fit the model's context"),
        })?;
        self.remember_prompt(context, &prompt_tokens)?;
        let prompt_time = started.elapsed();

        let mut grammar = match &request.grammar {
            Some(gbnf) => Some(
                LlamaSampler::grammar(self.model, gbnf, "root")
                    .map_err(|e| self.fail(format!("the SQL grammar was refused: {e}")))?,
            ),
            None => None,
        };
        let vocab = self.model.vocab();
        let mut bytes = Vec::new();
        let mut sent = 0usize;
        let mut generation = Generation {
            prompt_tokens: prompt_tokens.len() as u32,
            cached_prompt_tokens: reused as u32,
            prompt_time,
            ..Generation::default()
        };
        let mut logits_index = logits_index;
        let mut batch = LlamaBatch::new(1, 1);
        let mut sampler = Sampler {
            temperature: request.temperature,
            state: request.seed,
        };
        let answer_started = Instant::now();
        while generation.generated_tokens < request.max_tokens {
            if job.cancel.is_cancelled() || leaving() {
                return Err(AssistantError::Cancelled);
            }
            if Instant::now() > deadline {
                return Err(AssistantError::Timeout(request.timeout));
            }
            // The names check reads the query so far: the prefix and what was written.
            let names = request.names.as_deref().map(|guard| Names {
                guard,
                so_far: format!(
                    "{}{}",
                    request.answer_prefix,
                    String::from_utf8_lossy(&bytes)
                ),
                vocab: &vocab,
            });
            let ends = Ends {
                tokens: &self.format.ends,
                eos: vocab.eos(),
            };
            let (token, resampled) = pick_token(
                context,
                logits_index,
                grammar.as_mut(),
                names.as_ref(),
                &ends,
                &mut sampler,
            );
            generation.grammar_resamples += u32::from(resampled);
            if vocab.is_eog(token) || self.format.ends.contains(&token) {
                break;
            }
            if let Some(g) = grammar.as_mut() {
                g.accept(token);
            }
            generation.generated_tokens += 1;
            vocab.token_to_piece_into(token, &mut bytes, false, None);
            // Stream only whole characters; a token may end inside a UTF-8 sequence.
            let complete = match std::str::from_utf8(&bytes) {
                Ok(text) => text.len(),
                Err(e) => e.valid_up_to(),
            };
            let mut text = String::from_utf8_lossy(&bytes[..complete]).into_owned();
            let stopped = cut_at_stop(&mut text, &request.stop);
            if let Some(tokens) = &job.tokens {
                if text.len() > sent {
                    let _ = tokens.send(text[sent..].to_string());
                }
            }
            sent = text.len();
            if stopped {
                generation.text = text;
                generation.generation_time = answer_started.elapsed();
                // The stop text was evaluated but is not part of the answer; the cache keeps
                // only the prompt so the next question's prefix match stays exact.
                self.forget_answer(context, prompt_tokens.len())?;
                return Ok(generation);
            }
            batch.clear();
            batch
                .add(token, self.evaluated.len() as i32, &[0], true)
                .map_err(|e| self.fail(e))?;
            context.decode(&mut batch).map_err(|e| self.fail(e))?;
            self.evaluated.push(token);
            logits_index = 0;
        }
        generation.text = String::from_utf8_lossy(&bytes).into_owned();
        cut_at_stop(&mut generation.text, &request.stop);
        generation.generation_time = answer_started.elapsed();
        self.forget_answer(context, prompt_tokens.len())?;
        Ok(generation)
    }

    /// Evaluates what `prompt` does not share with sequence 0 or a remembered prompt.
    /// Returns the tokens reused and the batch index of the last prompt token's logits.
    fn evaluate_prompt(
        &mut self,
        context: &mut LlamaContext<'_>,
        prompt: &[LlamaToken],
        job: &Job,
        deadline: Instant,
    ) -> Result<(usize, i32), Evaluation> {
        // At least the last prompt token is evaluated again: its logits are what the first
        // answer token is sampled from.
        let limit = prompt.len() - 1;
        let mut reused = common_prefix(&self.evaluated, prompt).min(limit);
        let best_slot = self
            .slots
            .iter()
            .map(|s| (common_prefix(&s.tokens, prompt).min(limit), s.seq))
            .max();
        if let Some((shared, seq)) = best_slot.filter(|(shared, _)| *shared > reused) {
            context
                .clear_kv_cache_seq(Some(0), None, None)
                .map_err(|e| self.fail(e))?;
            context
                .kv_cache_seq_cp(seq, 0, Some(0), Some(shared as u32))
                .map_err(|e| self.fail(e))?;
            self.evaluated = prompt[..shared].to_vec();
            reused = shared;
        } else {
            context
                .clear_kv_cache_seq(Some(0), Some(reused as u32), None)
                .map_err(|e| self.fail(e))?;
            self.evaluated.truncate(reused);
        }
        let chunk_tokens = if job.request.max_tokens == 0 {
            WARM_BATCH_TOKENS
        } else {
            BATCH_TOKENS
        };
        let mut batch = LlamaBatch::new(chunk_tokens, 1);
        let mut last_index = 0;
        for chunk in prompt[reused..].chunks(chunk_tokens) {
            if job.cancel.is_cancelled() || leaving() {
                return Err(AssistantError::Cancelled.into());
            }
            if Instant::now() > deadline {
                return Err(AssistantError::Timeout(job.request.timeout).into());
            }
            batch.clear();
            let last = chunk.len() - 1;
            for (i, token) in chunk.iter().enumerate() {
                let pos = (self.evaluated.len() + i) as i32;
                batch
                    .add(*token, pos, &[0], i == last)
                    .map_err(|e| self.fail(e))?;
            }
            match context.decode(&mut batch) {
                Ok(()) => {}
                Err(DecodeError::NoKvCacheSlot) => return Err(Evaluation::Full),
                Err(e) => return Err(self.fail(e).into()),
            }
            self.evaluated.extend_from_slice(chunk);
            last_index = last as i32;
        }
        Ok((reused, last_index))
    }

    /// Keeps a copy of sequence 0's prompt in a slot: the one whose prompt this one holds
    /// most of (same tables and examples, another question), else the least recently used.
    fn remember_prompt(
        &mut self,
        context: &mut LlamaContext<'_>,
        prompt: &[LlamaToken],
    ) -> Result<(), AssistantError> {
        self.clock += 1;
        let clock = self.clock;
        // A slot is replaced by a prompt that holds most of it (the same tables and examples,
        // another question); two prompts that share only the rules (two databases' schemas)
        // keep a slot each.
        let similar = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (common_prefix(&s.tokens, prompt), i))
            .filter(|(shared, i)| *shared * 2 > self.slots[*i].tokens.len() && *shared > 0)
            .max();
        let index = match similar {
            Some((_, i)) => i,
            None => self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.used)
                .map_or(0, |(i, _)| i),
        };
        let Some(slot) = self.slots.get_mut(index) else {
            return Ok(());
        };
        slot.used = clock;
        if slot.tokens == prompt {
            return Ok(());
        }
        let seq = slot.seq;
        slot.tokens = prompt.to_vec();
        let copied = context
            .clear_kv_cache_seq(Some(seq as u32), None, None)
            .and_then(|_| context.kv_cache_seq_cp(0, seq, Some(0), Some(prompt.len() as u32)));
        if let Err(e) = copied {
            return Err(self.fail(e));
        }
        Ok(())
    }

    /// Forgets the least recently used remembered prompt; `false` when none is left.
    fn forget_oldest(&mut self, context: &mut LlamaContext<'_>) -> bool {
        let Some(slot) = self
            .slots
            .iter_mut()
            .filter(|s| !s.tokens.is_empty())
            .min_by_key(|s| s.used)
        else {
            return false;
        };
        slot.tokens.clear();
        let seq = slot.seq as u32;
        context.clear_kv_cache_seq(Some(seq), None, None).is_ok()
    }

    fn forget_all(&mut self, context: &mut LlamaContext<'_>) {
        context.clear_kv_cache();
        self.evaluated.clear();
        for slot in &mut self.slots {
            slot.tokens.clear();
            slot.used = 0;
        }
    }

    fn forget_answer(
        &mut self,
        context: &mut LlamaContext<'_>,
        prompt_len: usize,
    ) -> Result<(), AssistantError> {
        context
            .clear_kv_cache_seq(Some(0), Some(prompt_len as u32), None)
            .map_err(|e| self.fail(e))?;
        self.evaluated.truncate(prompt_len);
        Ok(())
    }
}

/// Chooses among the most likely tokens: greedily at temperature 0, else by sampling the 40
/// best with the given temperature (a seeded splitmix64, so runs repeat).
struct Sampler {
    temperature: f32,
    state: u64,
}

impl Sampler {
    const TOP_K: usize = 40;

    fn next_unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Picks from `(token, logit)` candidates.
    fn choose(&mut self, mut candidates: Vec<(usize, f32)>) -> Option<usize> {
        if self.temperature <= 0.0 || candidates.len() < 2 {
            return candidates
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|c| c.0);
        }
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
        candidates.truncate(Self::TOP_K);
        let top = candidates[0].1;
        let weights: Vec<f64> = candidates
            .iter()
            .map(|c| f64::from((c.1 - top) / self.temperature).exp())
            .collect();
        let mut pick = self.next_unit() * weights.iter().sum::<f64>();
        for (c, w) in candidates.iter().zip(&weights) {
            if pick < *w {
                return Some(c.0);
            }
            pick -= w;
        }
        candidates.last().map(|c| c.0)
    }
}

/// Column-constrained decoding's check (`columns::NameGuard`) with the answer so far.
struct Names<'a> {
    guard: &'a NameGuard,
    so_far: String,
    vocab: &'a LlamaVocab<'a>,
}

impl Names<'_> {
    /// Whether the query so far followed by `token` names only what it may.
    fn allow(&self, token: LlamaToken) -> bool {
        if self.vocab.is_eog(token) {
            return self.guard.allows(&self.so_far, true);
        }
        let mut bytes = Vec::new();
        self.vocab
            .token_to_piece_into(token, &mut bytes, false, None);
        let text = format!("{}{}", self.so_far, String::from_utf8_lossy(&bytes));
        self.guard.allows(&text, false)
    }
}

/// End-of-turn tokens the file does not mark as end of generation, and its EOS, which
/// stands for them when the grammar is asked whether the answer may end here.
struct Ends<'a> {
    tokens: &'a [LlamaToken],
    eos: LlamaToken,
}

/// Candidates the names check looks at, best first, before it gives up on this token (and
/// lets the grammar's choice stand: the validator still checks the query).
const NAMES_CANDIDATES: usize = 64;

/// The next token. With a grammar, the token chosen without it is checked first, and the
/// whole vocabulary is filtered only when that token is refused: the full check costs a pass
/// over ~150k tokens, the single check almost nothing, and the model usually writes what the
/// grammar allows anyway. The names check, when there is one, then goes down the allowed
/// tokens from the most likely. Returns whether it had to choose again.
fn pick_token(
    context: &LlamaContext<'_>,
    index: i32,
    grammar: Option<&mut LlamaSampler>,
    names: Option<&Names<'_>>,
    ends: &Ends<'_>,
    sampler: &mut Sampler,
) -> (LlamaToken, bool) {
    let logits = context.get_logits_ith(index);
    let first = if sampler.temperature > 0.0 {
        let mut best: Vec<(usize, f32)> = logits.iter().copied().enumerate().collect();
        let nth = Sampler::TOP_K.min(best.len() - 1);
        best.select_nth_unstable_by(nth, |a, b| b.1.total_cmp(&a.1));
        best.truncate(Sampler::TOP_K);
        sampler.choose(best).unwrap_or_else(|| argmax(logits))
    } else {
        argmax(logits)
    };
    let named = |token: usize| names.is_none_or(|n| n.allow(LlamaToken(token as i32)));
    let mut grammar = grammar;
    let token = LlamaToken(first as i32);
    let probe = if ends.tokens.contains(&token) {
        ends.eos
    } else {
        token
    };
    let grammatical = grammar
        .as_deref_mut()
        .is_none_or(|g| grammar_allows(g, probe, logits[first]));
    if grammatical && named(first) {
        return (LlamaToken(first as i32), false);
    }
    let mut allowed: Vec<(usize, f32)> = match grammar {
        Some(grammar) => {
            let mut all = LlamaTokenDataArray::from_iter(
                logits
                    .iter()
                    .enumerate()
                    .map(|(id, &logit)| LlamaTokenData::new(LlamaToken(id as i32), logit, 0.0)),
                false,
            );
            grammar.apply(&mut all);
            all.data
                .iter()
                .filter(|d| d.logit().is_finite())
                .map(|d| (d.id().0 as usize, d.logit()))
                .collect()
        }
        None => logits.iter().copied().enumerate().collect(),
    };
    if names.is_some() {
        allowed.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        let grammatical = allowed.first().map(|c| c.0);
        allowed = allowed
            .into_iter()
            .take(NAMES_CANDIDATES)
            .filter(|c| named(c.0))
            .collect();
        if allowed.is_empty() {
            // Nothing likely names what it may: a dead end the validator will report.
            let chosen = grammatical.unwrap_or(first);
            return (LlamaToken(chosen as i32), true);
        }
    }
    let chosen = sampler.choose(allowed).unwrap_or(first);
    (LlamaToken(chosen as i32), true)
}

fn argmax(logits: &[f32]) -> usize {
    logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// For a GGUF file without a chat template: a ChatML-like layout most instruction-tuned
/// models understand.
fn plain_prompt(messages: &[ChatMessage]) -> String {
    let mut text = String::new();
    for m in messages {
        text.push_str(&format!("### {}\n{}\n\n", m.role.as_str(), m.content));
    }
    text.push_str("### assistant\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_threads_leave_a_core() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        assert_eq!(default_threads(), cores.saturating_sub(1).max(1));
    }

    #[test]
    fn plain_prompt_ends_where_the_answer_starts() {
        let text = plain_prompt(&[ChatMessage::system("rules"), ChatMessage::user("q")]);
        assert_eq!(text, "### system\nrules\n\n### user\nq\n\n### assistant\n");
    }

    #[test]
    fn prefix_of_token_lists() {
        let t = |v: &[i32]| v.iter().map(|&i| LlamaToken(i)).collect::<Vec<_>>();
        assert_eq!(common_prefix(&t(&[1, 2, 3]), &t(&[1, 2, 4])), 2);
        assert_eq!(common_prefix(&t(&[]), &t(&[1])), 0);
    }
}
