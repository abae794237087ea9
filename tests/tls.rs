//! HTTPS to a real ClickHouse: the private server with an `https_port` and a self-signed
//! certificate made by `openssl`. Checks that an untrusted certificate is refused with a clear
//! message, and that `tls.ca_file` and `tls.insecure_skip_verify` make both HTTP clients (the
//! query runner and the `clickhouse` crate used for schema) connect.

mod common;

use std::time::Duration;

use aurora::warehouse::local_server::LocalServerOptions;
use aurora::warehouse::settings::TlsSettings;
use aurora::warehouse::{ConnectionSettings, QueryOptions, Warehouse, WarehouseError};

/// Starts a private server that also listens for HTTPS; returns its https URL.
fn https_server() -> (String, std::path::PathBuf) {
    let dir = common::fresh_data_dir("tls");
    common::certs::make(&dir, "client");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data_dir = dir.join("data");
    std::fs::create_dir_all(data_dir.join("etc/config.d")).unwrap();
    // ClickHouse merges etc/config.d/*.xml over the config Aurora writes.
    std::fs::write(
        data_dir.join("etc/config.d/https.xml"),
        format!(
            "<yandex>\n  <https_port>{port}</https_port>\n  <openSSL><server>\n    \
             <certificateFile>{d}/cert.pem</certificateFile>\n    \
             <privateKeyFile>{d}/key.pem</privateKeyFile>\n    \
             <verificationMode>none</verificationMode>\n    \
             <loadDefaultCAFile>false</loadDefaultCAFile>\n    \
             <disableProtocols>sslv2,sslv3</disableProtocols>\n  </server></openSSL>\n</yandex>\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let mut opts = LocalServerOptions::new(data_dir);
    opts.startup_timeout = Duration::from_secs(60);
    common::start_bound_server(opts);
    (format!("https://127.0.0.1:{port}"), dir)
}

async fn connect(url: &str, tls: TlsSettings) -> Result<Warehouse, WarehouseError> {
    let mut settings = ConnectionSettings::new(url);
    settings.tls = tls;
    // The HTTPS listener may come up a moment after the HTTP one answered.
    let mut last = None;
    for _ in 0..50 {
        match Warehouse::connect(settings.clone()).await {
            Err(WarehouseError::Connect { reason, .. }) if reason == "connection refused" => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                last = Some(reason);
            }
            other => return other,
        }
    }
    panic!("the HTTPS port never opened: {last:?}");
}

#[tokio::test]
async fn https_with_untrusted_private_ca_and_insecure_modes() {
    let (url, dir) = https_server();

    let refused = connect(&url, TlsSettings::default()).await.unwrap_err();
    let text = refused.to_string();
    assert!(
        matches!(refused, WarehouseError::Connect { .. }),
        "{refused:?}"
    );
    assert!(
        text.contains("TLS") && text.contains("tls.ca_file"),
        "{text}"
    );

    for tls in [
        TlsSettings {
            ca_file: Some(dir.join("ca.pem")),
            ..TlsSettings::default()
        },
        TlsSettings {
            insecure_skip_verify: true,
            ..TlsSettings::default()
        },
    ] {
        let w = connect(&url, tls.clone())
            .await
            .unwrap_or_else(|e| panic!("{tls:?}: {e}"));
        let r = w
            .query("SELECT 42 AS answer", &QueryOptions::default())
            .await
            .unwrap();
        assert_eq!(r.rows[0][0].to_string(), "42");
        // The clickhouse crate's client goes through the same TLS settings.
        let schema = w
            .schema(true)
            .await
            .unwrap_or_else(|e| panic!("{tls:?}: {e}"));
        assert!(schema.databases.iter().any(|d| d == "default"));
    }
}
