//! A real syslog server on loopback for the audit tests: rsyslog (Debian's `rsyslog`, installed
//! by `scripts/setup --for-tests`), listening on UDP and TCP and writing each message's text, one
//! per line, to a file. Stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Rsyslog {
    child: Child,
    pub udp: u16,
    pub tcp: u16,
    /// Where the messages' text goes, one line each.
    pub out: PathBuf,
}

impl Rsyslog {
    pub fn start() -> Self {
        let dir = super::fresh_data_dir("rsyslog");
        let (udp, tcp) = (super::free_udp_port(), super::free_port());
        let out = dir.join("messages.log");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{d}\")\n\
                 module(load=\"imudp\")\nmodule(load=\"imtcp\")\n\
                 input(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\")\n\
                 template(name=\"text\" type=\"string\" string=\"%msg%\\n\")\n\
                 if $app-name == \"aurora\" then action(type=\"omfile\" file=\"{out}\" template=\"text\")\n",
                d = dir.display(),
                out = out.display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd (installed by scripts/setup --for-tests)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", tcp)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not listen on {tcp}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Rsyslog {
            child,
            udp,
            tcp,
            out,
        }
    }

    /// The messages received so far, waiting until there are at least `want`.
    pub fn messages(&self, want: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(String::from).collect();
            if lines.len() >= want || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
