//! The model catalog and the default model `scripts/setup` installs: the catalog's default
//! entry and `scripts/fetch-model` agree, and the installed file is the one the catalog names;
//! then `aurora model list|pull|add|use` run as a user would, against that installed file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn default_entry() -> serde_yaml::Value {
    let text = std::fs::read_to_string(root().join("models/catalog.yaml")).unwrap();
    let catalog: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let models = catalog["models"].as_sequence().unwrap();
    let defaults: Vec<_> = models
        .iter()
        .filter(|m| m["default"].as_bool() == Some(true))
        .collect();
    assert_eq!(defaults.len(), 1, "exactly one default model");
    for m in models {
        for key in ["id", "file", "license", "context", "sources"] {
            assert!(!m[key].is_null(), "{key} missing in {m:?}");
        }
    }
    defaults[0].clone()
}

#[test]
fn fetch_model_installs_the_catalogs_default() {
    let entry = default_entry();
    let script = std::fs::read_to_string(root().join("scripts/fetch-model")).unwrap();
    let file = entry["file"].as_str().unwrap();
    let sha = entry["sha256"].as_str().unwrap();
    let size = entry["size"].as_u64().unwrap();
    assert!(
        script.contains(&format!("FILE=\"{file}\"")),
        "file name differs"
    );
    assert!(
        script.contains(&format!("SHA256=\"{sha}\"")),
        "sha256 differs"
    );
    assert!(script.contains(&format!("SIZE={size}")), "size differs");
    let parts = entry["sources"][0]["pypi"].as_sequence().unwrap();
    assert_eq!(parts.len(), 6);
    for part in parts {
        assert!(script.contains(part.as_str().unwrap()), "{part:?} missing");
    }
}

/// `make test` runs `scripts/setup` first, so the default model must be installed and intact.
#[test]
fn the_default_model_is_installed_and_verified() {
    let entry = default_entry();
    let dir = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".local/share"))
        .join("aurora/models");
    let path = dir.join(entry["file"].as_str().unwrap());
    let meta = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup", path.display()));
    assert_eq!(meta.len(), entry["size"].as_u64().unwrap());
    let mut magic = [0u8; 4];
    std::io::Read::read_exact(&mut std::fs::File::open(&path).unwrap(), &mut magic).unwrap();
    assert_eq!(&magic, b"GGUF");
    let out = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.split_whitespace().next(),
        entry["sha256"].as_str(),
        "{}",
        path.display()
    );
}

// ---------------------------------------------------------------------------------------------
// `aurora model ...` against the binary, each test in its own HOME and XDG_DATA_HOME.

/// Where `scripts/setup` installed the default model.
fn real_models_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".local/share"))
        .join("aurora/models")
}

fn real_default_model() -> PathBuf {
    let entry = default_entry();
    let path = real_models_dir().join(entry["file"].as_str().unwrap());
    assert!(
        path.is_file(),
        "{} missing; run scripts/setup",
        path.display()
    );
    path
}

const DEFAULT_ID: &str = "qwen2.5-coder-0.5b-instruct-q4";

/// A private HOME, data and config directory for one test.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let sandbox = Self {
            root: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(sandbox.models_dir()).unwrap();
        std::fs::create_dir_all(sandbox.root.path().join("home")).unwrap();
        sandbox
    }

    fn models_dir(&self) -> PathBuf {
        self.root.path().join("data/aurora/models")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The real default model, symlinked (not copied: 491 MB) into this data directory, with
    /// a copy of its stamp when `stamped`.
    fn install_default(&self, stamped: bool) -> PathBuf {
        let real = real_default_model();
        let link = self.models_dir().join(real.file_name().unwrap());
        std::os::unix::fs::symlink(&real, &link).unwrap();
        if stamped {
            let stamp = format!("{}.sha256", real.display());
            std::fs::copy(stamp, format!("{}.sha256", link.display())).unwrap();
        }
        link
    }

    /// `aurora ARGS` isolated from the developer's settings, and unable to reach any network:
    /// HTTP(S) goes to a closed port and pip to a dead index with no retries.
    fn aurora(&self, args: &[&str]) -> Output {
        self.aurora_with(args, &[])
    }

    fn aurora_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let dead = "http://127.0.0.1:9";
        let mut command = Command::new(env!("CARGO_BIN_EXE_aurora"));
        command
            .args(args)
            .env_remove("AURORA_MODEL")
            .env_remove("AURORA_CONFIG")
            .env_remove("AURORA_LOG")
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("NO_COLOR", "1")
            .env("HTTPS_PROXY", dead)
            .env("HTTP_PROXY", dead)
            .env("ALL_PROXY", dead)
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_INDEX_URL", format!("{dead}/simple"))
            .env("PIP_RETRIES", "0")
            .env("PIP_TIMEOUT", "1")
            .stdin(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    }

    fn list_json(&self, env: &[(&str, &str)]) -> serde_json::Value {
        let out = self.aurora_with(&["model", "list", "--json"], env);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn model<'a>(listing: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    listing["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {listing}"))
}

#[test]
fn list_shows_the_installed_default_as_verified_and_current() {
    let sandbox = Sandbox::new();
    let before = sandbox.aurora(&["model", "list"]);
    assert!(before.status.success(), "{}", text(&before.stderr));
    let before = text(&before.stdout);
    let row = before
        .lines()
        .find(|l| l.contains(DEFAULT_ID))
        .unwrap_or_else(|| panic!("{before}"));
    assert!(row.contains("not installed"), "{before}");

    sandbox.install_default(true);
    let out = sandbox.aurora(&["model", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let row = stdout
        .lines()
        .find(|l| l.contains(DEFAULT_ID))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(row.starts_with(&format!("* {DEFAULT_ID} ")), "{stdout}");
    assert!(
        row.contains("491.4 MB") && row.contains("installed, verified"),
        "{stdout}"
    );
    assert!(row.contains("[default]"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "* current: {DEFAULT_ID}, chosen by the catalog's default"
        )),
        "{stdout}"
    );
    // The other catalog entries are listed, not installed.
    assert!(stdout.contains("qwen2.5-coder-3b-instruct-q4"), "{stdout}");

    let listing = sandbox.list_json(&[]);
    let default = model(&listing, DEFAULT_ID);
    assert_eq!(default["installed"], true);
    assert_eq!(default["verified"], true);
    assert_eq!(default["current"], true);
    assert_eq!(default["size_bytes"], 491_400_064);
    assert_eq!(listing["current"]["chosen_by"], "default");
    assert_eq!(
        Path::new(listing["models_dir"].as_str().unwrap()),
        sandbox.models_dir()
    );
}

#[test]
fn add_registers_the_real_model_and_use_makes_it_current() {
    let sandbox = Sandbox::new();
    let file = sandbox.path("elsewhere/my-model.gguf");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(real_default_model(), &file).unwrap();

    let out = sandbox.aurora(&["model", "add", file.to_str().unwrap(), "--id", "mine"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("added `mine`"), "{stdout}");
    assert!(
        stdout.contains("qwen2") && stdout.contains("parameters"),
        "{stdout}"
    );
    let registry = std::fs::read_to_string(sandbox.models_dir().join("models.yaml")).unwrap();
    assert!(registry.contains(file.to_str().unwrap()), "{registry}");

    let listing = sandbox.list_json(&[]);
    assert_eq!(model(&listing, "mine")["origin"], "added");
    assert_eq!(listing["current"]["chosen_by"], "default");

    let out = sandbox.aurora(&["model", "use", "mine"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "current model: mine\n");
    let listing = sandbox.list_json(&[]);
    assert_eq!(listing["current"]["id"], "mine");
    assert_eq!(listing["current"]["chosen_by"], "use");
    assert_eq!(model(&listing, "mine")["current"], true);
    assert_eq!(model(&listing, DEFAULT_ID)["current"], false);

    // The config file ranks above `model use`, and AURORA_MODEL above the config file.
    let config = sandbox.path("config.yaml");
    std::fs::write(&config, format!("assistant:\n  model: {DEFAULT_ID}\n")).unwrap();
    let config_arg = ["--config", config.to_str().unwrap()];
    let out = sandbox.aurora(&[&config_arg[..], &["model", "list", "--json"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listing["current"]["chosen_by"], "config");
    assert_eq!(listing["current"]["id"], DEFAULT_ID);
    let listing = sandbox.list_json(&[("AURORA_MODEL", file.to_str().unwrap())]);
    assert_eq!(listing["current"]["chosen_by"], "env");
    // A path naming the same file as an added model marks that model.
    assert_eq!(listing["current"]["id"], "mine");

    let out = sandbox.aurora_with(&["model", "use", "mine"], &[("AURORA_MODEL", DEFAULT_ID)]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr)
            .contains("AURORA_MODEL=qwen2.5-coder-0.5b-instruct-q4 is set and takes precedence"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn add_refuses_a_corrupt_file_and_catalog_ids() {
    let sandbox = Sandbox::new();
    let junk = sandbox.path("x.gguf");
    std::fs::write(
        &junk,
        (0..1024u32)
            .map(|i| (i * 31 % 256) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let out = sandbox.aurora(&["model", "add", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: {} was not added: cannot load the model",
            junk.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!sandbox.models_dir().join("models.yaml").exists());

    let out = sandbox.aurora(&["model", "add", junk.to_str().unwrap(), "--id", DEFAULT_ID]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is a catalog model's id; choose another with --id"));

    let out = sandbox.aurora(&["model", "use", "nope"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`nope` is not a known model; known ids: qwen2.5-coder-0.5b"),
        "{stderr}"
    );
}

#[test]
fn pull_of_an_installed_model_says_so_without_network() {
    let sandbox = Sandbox::new();
    sandbox.install_default(true);
    let started = std::time::Instant::now();
    let out = sandbox.aurora(&["model", "pull"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("{DEFAULT_ID} is already installed:")),
        "{stdout}"
    );
    assert!(stdout.contains("verified against the catalog"), "{stdout}");
    // Nothing was hashed or fetched: no scratch files, and no time spent.
    let mut names: Vec<_> = std::fs::read_dir(sandbox.models_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "qwen2.5-coder-0.5b-instruct-q4.gguf",
            "qwen2.5-coder-0.5b-instruct-q4.gguf.sha256"
        ]
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    let out = sandbox.aurora(&["model", "pull", "nope"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("`nope` is not in the catalog"));
}

#[test]
fn pull_verifies_an_unstamped_installed_file_instead_of_downloading() {
    let sandbox = Sandbox::new();
    let link = sandbox.install_default(false);
    let out = sandbox.aurora(&["model", "pull", DEFAULT_ID]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("checking the sha256 of"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("is already installed"));
    let stamp = std::fs::read_to_string(format!("{}.sha256", link.display())).unwrap();
    assert_eq!(stamp, default_entry()["sha256"].as_str().unwrap());
}

#[test]
fn model_help_documents_the_order_of_choice() {
    let out = Command::new(env!("CARGO_BIN_EXE_aurora"))
        .args(["model", "use", "--help"])
        .output()
        .unwrap();
    let help = text(&out.stdout);
    let positions: Vec<usize> = [
        "1. --model",
        "2. the AURORA_MODEL",
        "3. assistant.model",
        "4. the model chosen with `aurora model use",
        "5. the catalog's default",
    ]
    .iter()
    .map(|s| {
        help.find(s)
            .unwrap_or_else(|| panic!("{s:?} missing from {help}"))
    })
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{help}");
}

/// Where `scripts/setup --for-tests` unpacks llama.cpp's vocabulary-only GGUF files.
fn vocab_file(name: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var_os("HOME").unwrap())
        .join(".cache/aurora/vocab")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: `scripts/setup --for-tests` (run by make test) unpacks it",
        path.display()
    );
    path
}

/// Code Llama's and DeepSeek Coder's GGUF files (the catalog's) carry no chat template: the
/// assistant gives each its publisher's layout, recognised from the tokenizer, and ends an
/// answer at the family's end-of-turn token, which DeepSeek Coder's files do not mark as an
/// end. Checked on the tokenizers of those families (llama.cpp's vocabulary-only files from
/// llama-cpp-python's PyPI sdist); the default Qwen file keeps its own template.
#[test]
fn code_llama_and_deepseek_coder_get_their_publishers_prompt_layout() {
    use aurora::assistant::backend::ChatMessage;
    use aurora::assistant::llama::prompt_layout;
    let messages = [
        ChatMessage::system("Answer with one ClickHouse query."),
        ChatMessage::user("How many orders?"),
    ];
    let llama = prompt_layout(
        &vocab_file("ggml-vocab-llama-spm.gguf"),
        &messages,
        "SELECT",
    )
    .expect("llama vocabulary");
    assert_eq!(llama.layout, "llama2-sys-bos (from its tokenizer)");
    assert_eq!(
        llama.prompt,
        "[INST] <<SYS>>\nAnswer with one ClickHouse query.\n<</SYS>>\n\nHow many orders? [/INST]SELECT"
    );
    assert_eq!(llama.ends, vec!["</s>".to_string()]);

    let deepseek = prompt_layout(
        &vocab_file("ggml-vocab-deepseek-coder.gguf"),
        &messages,
        "SELECT",
    )
    .expect("deepseek coder vocabulary");
    assert_eq!(deepseek.layout, "deepseek (from its tokenizer)");
    assert_eq!(
        deepseek.prompt,
        "Answer with one ClickHouse query.### Instruction:\nHow many orders?\n### Response:\nSELECT"
    );
    assert!(
        deepseek.ends.contains(&"<|EOT|>".to_string()),
        "{:?}",
        deepseek.ends
    );

    let qwen = prompt_layout(&real_default_model(), &messages, "SELECT").expect("default model");
    assert_eq!(qwen.layout, "the file's own");
    assert!(
        qwen.prompt
            .contains("<|im_start|>user\nHow many orders?<|im_end|>"),
        "{}",
        qwen.prompt
    );
    assert!(
        qwen.ends.contains(&"<|im_end|>".to_string()),
        "{:?}",
        qwen.ends
    );
}
