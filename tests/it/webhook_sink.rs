//! A real HTTP server for the webhook tests (std::net, one thread per
//! connection): records every request and answers as the test says.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

/// How the sink answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Status and JSON body.
    Json(u16, String),
    /// Wait, then answer.
    Slow(Duration, u16, String),
    /// 302 to the given URL.
    Redirect(String),
    /// 200 with a body of this many bytes (valid JSON start, never ends).
    Huge(usize),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Whether `X-Scepd-Signature` is the HMAC-SHA256 with `secret` of
    /// `"<X-Scepd-Timestamp>.<body>"`, as a receiver checks it.
    pub fn signature_valid(&self, secret: &[u8]) -> bool {
        let (Some(ts), Some(sig)) = (
            self.header("X-Scepd-Timestamp"),
            self.header("X-Scepd-Signature"),
        ) else {
            return false;
        };
        let key = PKey::hmac(secret).unwrap();
        let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
        s.update(ts.as_bytes()).unwrap();
        s.update(b".").unwrap();
        s.update(&self.body).unwrap();
        let want = format!("v1={}", hex::encode(s.sign_to_vec().unwrap()));
        let fresh = ts
            .parse::<i64>()
            .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
        fresh && openssl::memcmp::eq(want.as_bytes(), sig.as_bytes())
    }
}

#[derive(Clone)]
pub struct Sink {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    /// Answers used one per request; the last one repeats.
    answers: Arc<Mutex<VecDeque<Answer>>>,
}

impl Sink {
    pub fn start(first: Answer) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let sink = Sink {
            url,
            received: Arc::default(),
            answers: Arc::new(Mutex::new(VecDeque::from([first]))),
        };
        let s = sink.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || s.serve(stream));
            }
        });
        sink
    }

    /// Answer every following request so.
    pub fn answer(&self, a: Answer) {
        *self.answers.lock().unwrap() = VecDeque::from([a]);
    }

    /// Answer the next requests with these, in order (the last repeats).
    pub fn answers(&self, a: Vec<Answer>) {
        *self.answers.lock().unwrap() = a.into();
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Wait until `n` requests arrived (panics after `secs`).
    pub fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.received();
            if r.len() >= n {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "{} webhook requests after {secs} s, wanted {n}: {r:?}",
                r.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn next_answer(&self) -> Answer {
        let mut q = self.answers.lock().unwrap();
        if q.len() > 1 {
            q.pop_front().unwrap()
        } else {
            q.front().cloned().unwrap()
        }
    }

    fn serve(&self, stream: TcpStream) {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut headers = vec![];
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let answer = self.next_answer();
        self.received.lock().unwrap().push(Received {
            path,
            headers,
            body,
        });
        let mut w = stream;
        let _ = match answer {
            Answer::Json(code, b) => respond(&mut w, code, &[], b.as_bytes()),
            Answer::Slow(d, code, b) => {
                std::thread::sleep(d);
                respond(&mut w, code, &[], b.as_bytes())
            }
            Answer::Redirect(to) => respond(&mut w, 302, &[("Location", &to)], b""),
            Answer::Huge(n) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n{{\"allow\": true, \"reason\": \""
                );
                let _ = w.write_all(head.as_bytes());
                let chunk = vec![b'a'; 64 * 1024];
                let mut left = n;
                while left > 0 {
                    let k = left.min(chunk.len());
                    if w.write_all(&chunk[..k]).is_err() {
                        break;
                    }
                    left -= k;
                }
                Ok(())
            }
        };
    }
}

fn respond(
    w: &mut TcpStream,
    code: u16,
    extra: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}
