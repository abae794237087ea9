//! Audit records also sent to a syslog server: RFC 5424 messages whose text is the record's
//! JSON line, exactly as in the file (so a copy kept by the syslog server verifies with
//! `aurora audit verify` too), over UDP, TCP (octet counting, RFC 6587) or a Unix socket.
//!
//! The file decides: a record is sent after it is on disk, and a syslog server that is down
//! does not stop an action. Send failures are logged (at most once a minute) and counted.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::config::{AuditSyslog, SyslogProtocol};

use super::Outcome;

const TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug)]
enum Target {
    Udp(SocketAddr),
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug)]
pub struct Syslog {
    target: Target,
    facility: u8,
    hostname: String,
    tcp: Mutex<Option<TcpStream>>,
    last_warning: AtomicU64,
    /// Records that could not be sent (for tests and status).
    pub failures: AtomicU64,
}

/// Why an address is not one syslog can be sent to (its form only: the name is looked up when
/// the log opens, so a name server that is down does not make the config invalid).
pub fn check_address(config: &AuditSyslog) -> Result<(), String> {
    let Some(address) = config.address.as_deref() else {
        return Ok(());
    };
    match config.protocol {
        SyslogProtocol::Unix if address.starts_with('/') => Ok(()),
        SyslogProtocol::Unix => Err(format!("`{address}` is not a socket path")),
        _ => match address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
            _ => Err(format!("`{address}` is not HOST:PORT")),
        },
    }
}

fn resolve(config: &AuditSyslog) -> Result<Target, String> {
    let address = config.address.as_deref().unwrap_or_default();
    let network = |address: &str| -> Result<SocketAddr, String> {
        address
            .to_socket_addrs()
            .map_err(|e| format!("`{address}` is not HOST:PORT ({e})"))?
            .next()
            .ok_or_else(|| format!("`{address}` names no address"))
    };
    Ok(match config.protocol {
        SyslogProtocol::Udp => Target::Udp(network(address)?),
        SyslogProtocol::Tcp => Target::Tcp(network(address)?),
        SyslogProtocol::Unix => Target::Unix(PathBuf::from(address)),
    })
}

impl Syslog {
    pub fn new(config: &AuditSyslog) -> Result<Self, String> {
        Ok(Syslog {
            target: resolve(config)?,
            facility: config.facility.code(),
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "-".into()),
            tcp: Mutex::new(None),
            last_warning: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// The RFC 5424 message for `line`: notice for a record that went well, warning for an
    /// error or a denial.
    fn message(&self, line: &str, outcome: Outcome) -> String {
        let severity = match outcome {
            Outcome::Ok => 5,
            Outcome::Error | Outcome::Denied => 4,
        };
        let time = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
        format!(
            "<{}>1 {time} {} aurora {} audit - {line}",
            u16::from(self.facility) * 8 + severity,
            self.hostname,
            std::process::id()
        )
    }

    /// Sends the record `line` (without its newline).
    pub fn send(&self, line: &str, outcome: Outcome) {
        let message = self.message(line, outcome);
        if let Err(e) = self.deliver(&message) {
            self.failures.fetch_add(1, Ordering::Relaxed);
            let now = jiff::Timestamp::now().as_second() as u64;
            let last = self.last_warning.load(Ordering::Relaxed);
            if now >= last + 60
                && self
                    .last_warning
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    "an audit record was not sent to syslog ({:?}): {e}; the file keeps it",
                    self.target
                );
            }
        }
    }

    fn deliver(&self, message: &str) -> std::io::Result<()> {
        match &self.target {
            Target::Udp(addr) => {
                let socket = UdpSocket::bind(if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                })?;
                socket.send_to(message.as_bytes(), addr).map(drop)
            }
            Target::Unix(path) => UnixDatagram::unbound()?
                .send_to(message.as_bytes(), path)
                .map(drop),
            Target::Tcp(addr) => {
                let framed = format!("{} {message}", message.len());
                let mut held = self.tcp.lock().unwrap_or_else(|e| e.into_inner());
                // A connection the server closed is found on the first write: connect again once.
                for _ in 0..2 {
                    if held.is_none() {
                        let stream = TcpStream::connect_timeout(addr, TIMEOUT)?;
                        stream.set_write_timeout(Some(TIMEOUT))?;
                        *held = Some(stream);
                    }
                    if let Some(stream) = held.as_mut() {
                        match stream.write_all(framed.as_bytes()) {
                            Ok(()) => return Ok(()),
                            Err(_) => *held = None,
                        }
                    }
                }
                Err(std::io::Error::other("the connection was closed"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SyslogFacility;

    #[test]
    fn messages_carry_the_priority_and_the_record_unchanged() {
        let s = Syslog::new(&AuditSyslog {
            address: Some("127.0.0.1:514".into()),
            protocol: SyslogProtocol::Udp,
            facility: SyslogFacility::Authpriv,
        })
        .unwrap();
        let line = r#"{"seq":1,"action":"query.run"}"#;
        let ok = s.message(line, Outcome::Ok);
        assert!(ok.starts_with("<85>1 "), "{ok}");
        assert!(ok.ends_with(&format!(" aurora {} audit - {line}", std::process::id())));
        assert!(s.message(line, Outcome::Denied).starts_with("<84>1 "));
        let bad = AuditSyslog {
            address: Some("no port".into()),
            protocol: SyslogProtocol::Tcp,
            facility: SyslogFacility::User,
        };
        assert!(check_address(&bad).is_err());
    }
}
