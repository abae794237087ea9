//! The model catalog and the default model `scripts/setup` installs: the catalog's default
//! entry and `scripts/fetch-model` agree, and the installed file is the one the catalog names.

use std::path::{Path, PathBuf};

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
