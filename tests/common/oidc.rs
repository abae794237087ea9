//! A real OpenID provider on loopback for the sign-in tests: panva's `oidc-provider` (npm,
//! installed by `scripts/setup --for-tests` into `~/.cache/aurora/oidc-provider`), run by
//! Node.js from `tests/fixtures/oidc/provider.mjs`. The test plays the user's browser through
//! the script's test-only approve and deny endpoints. Stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Provider {
    child: Child,
    pub issuer: String,
}

fn install_dir() -> PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    PathBuf::from(home).join(".cache/aurora/oidc-provider")
}

impl Provider {
    /// Starts one whose access tokens last `access_ttl` seconds and whose sign-ins (refresh
    /// tokens) last `refresh_ttl`.
    pub fn start(access_ttl: u64, refresh_ttl: u64) -> Self {
        let dir = install_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "{} has no oidc-provider: run `scripts/setup --for-tests`",
            dir.display()
        );
        // Beside its node_modules, where Node resolves its imports.
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let script = dir.join(format!("provider-{}-{n}.mjs", std::process::id()));
        std::fs::write(&script, include_str!("../fixtures/oidc/provider.mjs"))
            .expect("write the provider");
        let mut child = Command::new("node")
            .arg(&script)
            .env("PORT", "0")
            .env("ACCESS_TTL", access_ttl.to_string())
            .env("REFRESH_TTL", refresh_ttl.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node (installed by scripts/setup --for-tests)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let issuer = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(issuer) = line.strip_prefix("listening ") {
                        break issuer.trim().to_string();
                    }
                }
                _ => panic!("the OpenID provider did not start"),
            }
        };
        let _ = std::fs::remove_file(&script);
        Provider { child, issuer }
    }

    /// Approves `user_code` as `account`, as the user would in the browser.
    pub async fn approve(&self, user_code: &str, account: &str) {
        self.act("approve", user_code, Some(account)).await;
    }

    /// Refuses `user_code`, as the user would in the browser.
    pub async fn deny(&self, user_code: &str) {
        self.act("deny", user_code, None).await;
    }

    async fn act(&self, what: &str, user_code: &str, account: Option<&str>) {
        let body = serde_json::json!({"user_code": user_code, "account": account});
        let r = super::http_client()
            .post(format!("{}/test/{what}", self.issuer))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("the provider answers");
        assert_eq!(r.status(), 204, "{what} {user_code}");
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
