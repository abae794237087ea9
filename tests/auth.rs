//! Sign-in through the binary against a real OpenID provider on loopback (oidc-provider from
//! npm, device grant on): `aurora login` shows a code, the test approves it as the user would,
//! and the signed-in user then drives the roles and the audit log; the access token is
//! refreshed when it runs out, an expired sign-in and a refused one are errors that say what
//! to do, a provider claiming another issuer is refused, and `aurora logout` revokes the
//! refresh token at the provider.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::oidc::Provider;

fn write_config(dir: &Path, issuer: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "audit: {{path: {}}}\n\
             auth:\n  provider: test\n  providers:\n    test:\n      issuer: {issuer}\n      client_id: aurora-cli\n      scopes: [openid, profile, groups, offline_access]\n\
             rbac:\n  roles:\n    analyst: {{actions: [query], databases: [system]}}\n  bindings:\n    - {{group: analysts, roles: [analyst]}}\n",
            dir.join("audit.jsonl").display()
        ),
    )
    .unwrap();
    path
}

fn aurora(config: &Path, data: &Path) -> Command {
    let mut cmd = common::aurora_command();
    cmd.env("AURORA_CONFIG", config).env("XDG_DATA_HOME", data);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `aurora login`, reads the code it shows, lets `decide` answer for the user, and
/// returns how the command ended.
async fn login<F, Fut>(config: &Path, data: &Path, decide: F) -> (Output, String)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut child = aurora(config, data)
        .arg("login")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start aurora login");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut shown = String::new();
    let code = loop {
        let Some(Ok(line)) = lines.next() else {
            break None;
        };
        shown.push_str(&line);
        shown.push('\n');
        if let Some(rest) = line.split("enter the code ").nth(1) {
            break Some(rest.trim().to_string());
        }
    };
    let Some(code) = code else {
        let output = child.wait_with_output().unwrap();
        panic!("no code shown: {shown}\n{}", text(&output.stderr));
    };
    decide(code).await;
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    shown.push_str(&rest.join("\n"));
    let output = child.wait_with_output().unwrap();
    (output, shown)
}

fn stored(data: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data.join("aurora/auth/test.json")).unwrap()).unwrap()
}

fn audit(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn device_sign_in_drives_roles_and_audit_refreshes_and_signs_out() {
    let provider = Provider::start(2, 600);
    let dir = common::fresh_data_dir("auth-flow");
    let data = dir.join("data");
    let config = write_config(&dir, &provider.issuer);

    // Not signed in: every command says how to.
    let before = aurora(&config, &data).args(["whoami"]).output().unwrap();
    assert!(!before.status.success());
    assert!(
        text(&before.stderr).contains("not signed in to `test`: run `aurora login`"),
        "{}",
        text(&before.stderr)
    );

    let p = &provider;
    let (out, shown) = login(&config, &data, move |code| async move {
        p.approve(&code, "alice").await;
    })
    .await;
    assert!(out.status.success(), "{shown}\n{}", text(&out.stderr));
    assert!(
        shown.contains(&format!("open {}/device", provider.issuer)),
        "{shown}"
    );
    assert!(
        shown.contains("signed in to `test` as alice (groups: analysts)"),
        "{shown}"
    );
    assert!(text(&out.stderr).contains("readable by you only"));

    // Kept for the user only.
    use std::os::unix::fs::PermissionsExt;
    let file = data.join("aurora/auth/test.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    // The signed-in user and their groups decide the roles.
    let who = aurora(&config, &data)
        .args(["whoami", "--json"])
        .output()
        .unwrap();
    assert!(who.status.success(), "{}", text(&who.stderr));
    let who: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(who["user"], "alice");
    assert_eq!(who["via"], "oidc:test");
    assert_eq!(who["groups"], serde_json::json!(["analysts"]));
    assert_eq!(who["roles"][0]["name"], "analyst");
    assert_eq!(who["sign_in"]["subject"], "alice");
    // ... and the audit log names them.
    let q = aurora(&config, &data)
        .args(["--url", &common::url(), "query", "SELECT 1 FROM system.one"])
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", text(&q.stderr));
    let outside = aurora(&config, &data)
        .args([
            "--url",
            &common::url(),
            "query",
            "SELECT 1 FROM default.nothing_here",
        ])
        .output()
        .unwrap();
    assert!(
        text(&outside.stderr).contains("outside the data of alice"),
        "{}",
        text(&outside.stderr)
    );
    let records = audit(&dir);
    let login_record = records
        .iter()
        .find(|r| r["action"] == "auth.login")
        .expect("auth.login");
    assert_eq!(login_record["actor"]["user"], "alice");
    assert_eq!(login_record["actor"]["via"], "oidc:test");
    let run = records
        .iter()
        .find(|r| r["action"] == "query.run")
        .expect("query.run");
    assert_eq!(run["actor"]["user"], "alice");
    assert_eq!(run["actor"]["groups"], serde_json::json!(["analysts"]));

    // The access token lasts 2 s: the next command refreshes it.
    let first = stored(&data);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = aurora(&config, &data)
        .args(["whoami", "--json"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    let second = stored(&data);
    assert_ne!(first["access_token"], second["access_token"]);
    assert!(second["expires_at"].as_u64() > first["expires_at"].as_u64());

    // The tokens are in the sign-in file only: not in what commands print, nor in the audit log.
    let tokens = [
        second["access_token"].as_str().unwrap().to_string(),
        second["refresh_token"].as_str().unwrap().to_string(),
    ];
    let printed = [
        text(&again.stdout),
        text(&again.stderr),
        text(&q.stderr),
        shown.clone(),
    ];
    let log = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    for token in &tokens {
        assert!(
            printed.iter().all(|p| !p.contains(token.as_str())),
            "a token was printed"
        );
        assert!(!log.contains(token.as_str()), "a token is in the audit log");
    }

    // Signing out forgets the tokens here and revokes the refresh token at the provider.
    let refresh = second["refresh_token"].as_str().unwrap().to_string();
    let out = aurora(&config, &data).arg("logout").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("signed out of `test`"));
    assert!(!file.exists());
    let reuse = common::http_client()
        .post(format!("{}/token", provider.issuer))
        .body(format!(
            "grant_type=refresh_token&client_id=aurora-cli&refresh_token={refresh}"
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status(), 400, "the revoked refresh token still works");
    assert!(audit(&dir)
        .iter()
        .any(|r| r["action"] == "auth.logout" && r["actor"]["user"] == "alice"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_a_refused_and_a_wrong_issuer_sign_in_are_errors_with_the_fix() {
    // Sign-ins (the grant behind the refresh token) last 10 s from the approval; the first
    // poll for the tokens comes 5 s after it.
    let provider = Provider::start(1, 10);
    let dir = common::fresh_data_dir("auth-errors");
    let data = dir.join("data");
    let config = write_config(&dir, &provider.issuer);
    let p = &provider;
    let (out, shown) = login(&config, &data, move |code| async move {
        p.approve(&code, "bob").await;
    })
    .await;
    assert!(out.status.success(), "{shown}\n{}", text(&out.stderr));
    assert!(shown.contains("as bob (no groups)"), "{shown}");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let expired = aurora(&config, &data).arg("whoami").output().unwrap();
    assert!(!expired.status.success());
    let err = text(&expired.stderr);
    assert!(
        err.contains("the sign-in to `test` has expired") && err.contains("aurora login"),
        "{err}"
    );

    // The user refuses the code in the browser.
    let (out, _) = login(&config, &data, move |code| async move {
        p.deny(&code).await;
    })
    .await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("the sign-in was refused at the provider (access_denied"),
        "{err}"
    );
    assert!(audit(&dir)
        .iter()
        .any(|r| r["action"] == "auth.login" && r["outcome"] == "denied"));

    // A provider whose discovery names another issuer.
    let other = provider.issuer.replace("127.0.0.1", "localhost");
    let wrong = write_config(&common::fresh_data_dir("auth-wrong"), &other);
    let out = aurora(&wrong, &data).arg("login").output().unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("says its issuer is {}", provider.issuer)),
        "{err}"
    );
    assert!(
        err.contains("hint: set auth.providers.NAME.issuer"),
        "{err}"
    );
}
