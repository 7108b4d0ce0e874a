//! Turning outbox payloads into mails: subject, plain text and HTML, from
//! the askama templates in `templates/mail/`, each with a link to the
//! console page concerned.

use askama::Template;
use serde_json::Value;

use super::NotifyError;
use crate::store::outbox::KIND_PENDING;

/// A mail ready for the transport.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Template)]
#[template(path = "mail/notice.txt")]
struct NoticeText<'a> {
    intro: &'a str,
    fields: &'a [(String, String)],
    link: &'a str,
    public_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/notice.html")]
struct NoticeHtml<'a> {
    subject: &'a str,
    intro: &'a str,
    fields: &'a [(String, String)],
    link: &'a str,
    public_url: &'a str,
}

pub struct DigestItem {
    pub subject: String,
    pub profile: String,
    pub received: String,
    pub link: String,
}

#[derive(Template)]
#[template(path = "mail/digest.txt")]
struct DigestText<'a> {
    items: &'a [DigestItem],
    queue_link: &'a str,
    public_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/digest.html")]
struct DigestHtml<'a> {
    subject: &'a str,
    items: &'a [DigestItem],
    queue_link: &'a str,
    public_url: &'a str,
}

fn s<'a>(p: &'a Value, k: &str) -> &'a str {
    p.get(k).and_then(Value::as_str).unwrap_or("")
}

/// The console page of the request behind an event, or the dashboard.
fn link(public_url: &str, p: &Value) -> String {
    match p.get("request_id").and_then(Value::as_i64) {
        Some(id) => format!("{public_url}/requests/{id}"),
        None => format!("{public_url}/"),
    }
}

/// The digest of pending requests for one officer.
pub fn digest(public_url: &str, payloads: &[&Value]) -> Result<Rendered, NotifyError> {
    let items: Vec<DigestItem> = payloads
        .iter()
        .map(|p| DigestItem {
            subject: s(p, "subject").to_string(),
            profile: s(p, "profile").to_string(),
            received: s(p, "received").to_string(),
            link: link(public_url, p),
        })
        .collect();
    let subject = match items.as_slice() {
        [one] => format!("Enrollment request awaits approval: {}", one.subject),
        many => format!("{} enrollment requests await approval", many.len()),
    };
    let queue_link = format!("{public_url}/requests");
    Ok(Rendered {
        text: DigestText {
            items: &items,
            queue_link: &queue_link,
            public_url,
        }
        .render()?,
        html: DigestHtml {
            subject: &subject,
            items: &items,
            queue_link: &queue_link,
            public_url,
        }
        .render()?,
        subject,
    })
}

/// A single-event mail (issued, declined, revoked, expiring, test).
pub fn notice(public_url: &str, kind: &str, p: &Value) -> Result<Rendered, NotifyError> {
    let field = |label: &str, key: &str| (label.to_string(), s(p, key).to_string());
    let (subject, intro, fields) = match kind {
        "issued" => (
            format!("Certificate issued: {}", s(p, "subject")),
            "A certificate was issued.".to_string(),
            vec![
                field("Subject", "subject"),
                field("Serial", "serial"),
                field("Profile", "profile"),
                field("Valid until", "not_after"),
            ],
        ),
        "declined" => (
            format!("Enrollment request declined: {}", s(p, "subject")),
            format!("An enrollment request was declined: {}", s(p, "reason")),
            vec![
                field("Subject", "subject"),
                field("Profile", "profile"),
                field("Reason", "reason"),
            ],
        ),
        "revoked" => (
            format!("Certificate revoked: {}", s(p, "subject")),
            format!("A certificate was revoked ({}).", s(p, "reason")),
            vec![
                field("Subject", "subject"),
                field("Serial", "serial"),
                field("Reason", "reason"),
            ],
        ),
        "expiring" => {
            let days = p.get("days").and_then(Value::as_i64).unwrap_or(0);
            (
                format!(
                    "Certificate expires within {days} day{}: {}",
                    if days == 1 { "" } else { "s" },
                    s(p, "subject")
                ),
                format!("A certificate expires within {days} days and has not been renewed."),
                vec![
                    field("Subject", "subject"),
                    field("Serial", "serial"),
                    field("Expires", "not_after"),
                ],
            )
        }
        "test" => (
            "scepd test mail".to_string(),
            "This is a test mail: scepd can deliver notifications.".to_string(),
            Vec::new(),
        ),
        other => return Err(NotifyError::UnknownKind(other.to_string())),
    };
    let link = link(public_url, p);
    Ok(Rendered {
        text: NoticeText {
            intro: &intro,
            fields: &fields,
            link: &link,
            public_url,
        }
        .render()?,
        html: NoticeHtml {
            subject: &subject,
            intro: &intro,
            fields: &fields,
            link: &link,
            public_url,
        }
        .render()?,
        subject,
    })
}

/// Render claimed rows of one kind and recipient into one mail.
pub fn render(public_url: &str, kind: &str, payloads: &[&Value]) -> Result<Rendered, NotifyError> {
    match (kind, payloads) {
        (KIND_PENDING, _) => digest(public_url, payloads),
        (_, [one]) => notice(public_url, kind, one),
        _ => Err(NotifyError::UnknownKind(format!(
            "{kind} ×{}",
            payloads.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let p = serde_json::json!({"subject": "CN=<b>&", "request_id": 7, "reason": "x"});
        let r = notice("https://ra.example", "declined", &p).unwrap();
        assert!(
            r.html.contains("CN=&#60;b&#62;&#38;") || r.html.contains("CN=&lt;b&gt;&amp;"),
            "{}",
            r.html
        );
        assert!(r.text.contains("CN=<b>&"), "{}", r.text);
        assert!(r.text.contains("https://ra.example/requests/7"));
    }

    #[test]
    fn digest_lists_every_request() {
        let a = serde_json::json!({"subject": "CN=a", "request_id": 1});
        let b = serde_json::json!({"subject": "CN=b", "request_id": 2});
        let r = digest("http://x", &[&a, &b]).unwrap();
        assert_eq!(r.subject, "2 enrollment requests await approval");
        assert!(r.text.contains("http://x/requests/1") && r.text.contains("http://x/requests/2"));
    }
}
