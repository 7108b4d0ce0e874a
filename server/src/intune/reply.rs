//! How a reply from Microsoft's services is read (`client`): only a 2xx
//! with a JSON body of at most [`MAX_BODY`] bytes, before the caller's
//! deadline; redirects are refused, and errors name the host and status,
//! never a body beyond an OAuth error code.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{IntuneError, MAX_BODY};

pub(super) fn remaining(deadline: Instant, url: &str) -> Result<Duration, IntuneError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < Duration::from_millis(10) {
        return Err(IntuneError::Timeout(host_of(url)));
    }
    Ok(left)
}

/// The host of a URL, for messages (never its path or query).
pub(super) fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

/// A 2xx reply's JSON body, bounded; anything else is an error that names
/// the host and the status, never the body beyond an OAuth error code.
pub(super) fn read_json(
    url: &str,
    deadline: Instant,
    res: Result<ureq::Response, ureq::Error>,
) -> Result<Value, IntuneError> {
    let host = host_of(url);
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(status, r)) => {
            let detail = read_body(&host, r)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| {
                    let code = v.get("error").and_then(Value::as_str).map(str::to_string);
                    code.or_else(|| v.get("code").and_then(Value::as_str).map(str::to_string))
                })
                .map(|c| format!(" ({})", c.chars().take(100).collect::<String>()))
                .unwrap_or_default();
            return Err(IntuneError::Status {
                url: host,
                status,
                detail,
            });
        }
        Err(ureq::Error::Transport(t)) => {
            if Instant::now() + Duration::from_millis(50) >= deadline || is_timeout(&t) {
                return Err(IntuneError::Timeout(host));
            }
            return Err(IntuneError::Transport {
                url: host,
                message: t.kind().to_string(),
            });
        }
    };
    if (300..400).contains(&resp.status()) {
        return Err(IntuneError::Redirect(host));
    }
    if !(200..300).contains(&resp.status()) {
        return Err(IntuneError::Status {
            url: host,
            status: resp.status(),
            detail: String::new(),
        });
    }
    let body = read_body(&host, resp).map_err(|e| match e {
        IntuneError::Transport { .. } if Instant::now() >= deadline => {
            IntuneError::Timeout(host.clone())
        }
        e => e,
    })?;
    serde_json::from_slice(&body).map_err(|e| IntuneError::Malformed {
        url: host,
        message: e.to_string(),
    })
}

fn is_timeout(t: &ureq::Transport) -> bool {
    use std::error::Error;
    let mut src = t.source();
    while let Some(e) = src {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            );
        }
        src = e.source();
    }
    false
}

fn read_body(host: &str, resp: ureq::Response) -> Result<Vec<u8>, IntuneError> {
    let mut body = Vec::new();
    resp.into_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| IntuneError::Transport {
            url: host.to_string(),
            message: e.kind().to_string(),
        })?;
    if body.len() as u64 > MAX_BODY {
        return Err(IntuneError::TooLarge(host.to_string()));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_names_only_the_host() {
        assert_eq!(host_of("https://a.example:8443/x/y?z=1"), "a.example:8443");
        assert_eq!(host_of("a.example/x"), "a.example");
    }
}
