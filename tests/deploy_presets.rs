//! The deployment presets in `presets/deploy/` pass the checks of the tools that read them
//! (`scripts/check-deploy-presets`: hadolint, docker-compose's and `docker stack`'s config
//! checks, Helm's SDK lint and render with the values schema, the Kubernetes and Prometheus
//! Operator schemas, promtool, systemd-analyze, and Aurora's own config check of every Aurora
//! config they hold). Nothing is built or run in Docker, Kubernetes or systemd here: this
//! machine has no engine, no cluster and no running systemd.

use std::path::Path;
use std::process::Command;

#[test]
fn every_deployment_preset_passes_its_tools_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary =
        std::env::var("AURORA_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_aurora").to_string());
    let o = Command::new(root.join("scripts/check-deploy-presets"))
        .current_dir(root)
        .env("AURORA_BIN", binary)
        .output()
        .expect("run scripts/check-deploy-presets");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{out}");
    assert!(out.contains("check-deploy-presets: all"), "{out}");
    assert!(!out.contains("\nFAIL"), "{out}");
}
