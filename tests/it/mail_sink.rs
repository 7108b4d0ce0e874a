//! The SMTP server of the mail tests: Debian's python3-aiosmtpd
//! (`tests/it/smtp_sink.py`), one process per test, writing every accepted
//! mail to a directory the tests read; and the waits they share.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::free_port;

const SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/smtp_sink.py");

/// One aiosmtpd process writing each accepted mail to `dir`.
pub struct Smtp {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

/// A received mail: envelope recipients, subject and the raw message with
/// quoted-printable soft line breaks removed.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub subject: String,
    pub data: String,
}

impl Smtp {
    /// A port for a server not started yet (SMTP "down").
    pub fn unstarted() -> Smtp {
        Smtp {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn start() -> Smtp {
        let mut s = Smtp::unstarted();
        s.up();
        s
    }

    pub fn up(&mut self) {
        // Debian's interpreter: python3-aiosmtpd is installed for it, not
        // for a python3 earlier on PATH (pyenv).
        let mut child = Command::new("/usr/bin/python3")
            .arg(SINK)
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with aiosmtpd (Debian python3-aiosmtpd)");
        // Wait for "ready": the controller listens once it prints.
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "smtp sink did not start");
        self.child = Some(child);
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SCEPD_SMTP_HOST", "127.0.0.1".into()),
            ("SCEPD_SMTP_PORT", self.port.to_string()),
            ("SCEPD_SMTP_TLS", "none".into()),
            ("SCEPD_MAIL_FROM", "scepd@ra.test".into()),
            ("SCEPD_NOTIFY_POLL_SECONDS", "1".into()),
            ("SCEPD_NOTIFY_RETRY_BASE_SECONDS", "1".into()),
            ("SCEPD_NOTIFY_EXPIRY_SCAN_SECONDS", "1".into()),
        ]
    }

    pub fn mails(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files.iter().map(|p| parse(p)).collect()
    }

    /// Wait until at least `n` mails arrived, then a little longer so that
    /// extra (duplicate) mails would show up too.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        poll_until(timeout, Duration::from_millis(200), || {
            (self.mails().len() >= n).then_some(())
        })
        .unwrap_or_else(|| panic!("expected {n} mails, got {:#?}", self.mails()));
        settle();
        self.mails()
    }

    pub fn to(&self, rcpt: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == rcpt))
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn parse(p: &Path) -> Mail {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    let data = v["data"].as_str().unwrap().replace("=\r\n", "");
    // Unfold headers (RFC 5322 §2.2.3) to read the subject.
    let headers = data.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ");
    let subject = headers
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_string();
    Mail {
        to: v["to"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect(),
        subject,
        data,
    }
}

/// Call `probe` every `every` until it gives a value or `timeout` passes.
pub fn poll_until<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// How long a check that something did NOT happen waits: several cycles
/// of the sender and the expiry scan the tests configure, so a mail that
/// should not go out would have gone out by then.
pub const SETTLE: Duration = Duration::from_secs(4);

pub fn settle() {
    std::thread::sleep(SETTLE);
}
