//! Certificates made by `openssl` (installed by `scripts/setup`) for the tests' TLS servers,
//! as a company's internal servers would have: a private CA, a server certificate for
//! 127.0.0.1 and localhost signed by it, and a client certificate signed by it.

use std::path::Path;
use std::process::Command;

/// Runs `openssl ARGS` in `dir`; panics with the arguments if it fails.
pub fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes into `dir`: `ca.pem`/`ca.key`, `cert.pem`/`key.pem` (the server's, for 127.0.0.1
/// and localhost) and `client.pem`/`client.key` (common name `client_cn`).
pub fn make(dir: &Path, client_cn: &str) {
    let days: &[&str] = &["-days", "2"];
    openssl(
        &[
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes"][..],
            &["-subj", "/CN=Aurora Test CA"],
            days,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
        dir,
    );
    for (name, key, subject, extensions) in [
        (
            "cert.pem",
            "key.pem",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        ),
        (
            "client.pem",
            "client.key",
            &format!("/CN={client_cn}")[..],
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        ),
    ] {
        let ext = format!("{name}.ext");
        std::fs::write(dir.join(&ext), extensions).unwrap();
        openssl(
            &["req", "-newkey", "rsa:2048", "-nodes", "-subj", subject]
                .into_iter()
                .chain(["-keyout", key, "-out", "request.csr"])
                .collect::<Vec<_>>(),
            dir,
        );
        openssl(
            &[
                &["x509", "-req", "-in", "request.csr", "-CA", "ca.pem"][..],
                &["-CAkey", "ca.key", "-CAcreateserial"],
                days,
                &["-extfile", &ext, "-out", name],
            ]
            .concat(),
            dir,
        );
    }
}
