//! A submitted form as the officer typed it, with one message per refused
//! field: a refused form is rendered again from this, so nothing typed is
//! lost and each error sits next to its field. Secrets (passwords, access
//! codes) are never put back into a `FormState`.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use crate::error::WebError;

#[derive(Debug, Default, Clone)]
pub struct FormState {
    values: HashMap<String, String>,
    errors: Vec<(String, String)>,
}

impl FormState {
    /// An empty form (first display).
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep a submitted value for re-display.
    pub fn keep(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.values.insert(name.to_string(), value.into());
        self
    }

    /// The value to show in field `name` ("" when none).
    pub fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    /// Whether a checkbox or option `name` holds `value`.
    pub fn has(&self, name: &str, value: &str) -> bool {
        self.values
            .get(name)
            .is_some_and(|v| v.split(',').any(|x| x.trim() == value))
    }

    /// Refuse field `name` with `message` (the first message per field wins).
    pub fn refuse(&mut self, name: &str, message: impl Into<String>) {
        if self.error(name).is_none() {
            self.errors.push((name.to_string(), message.into()));
        }
    }

    /// The message for field `name`, if it was refused.
    pub fn error(&self, name: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.as_str())
    }

    /// Refuse every field the service refused.
    pub fn refuse_fields(&mut self, errors: &[server::admin::FieldError]) {
        for e in errors {
            self.refuse(e.field, e.message.clone());
        }
    }

    pub fn is_refused(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Every (field, message), in the order refused: the summary at the top.
    pub fn errors(&self) -> &[(String, String)] {
        &self.errors
    }
}

/// A refused form, shown again: 422, and never cached (it may follow a
/// page that showed a secret).
pub fn refused(page: &impl Template) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::build(StatusCode::UNPROCESSABLE_ENTITY)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(page.render()?))
}

/// All values of `name` in a submitted form, in order (checkboxes and
/// multiple selects repeat their name).
pub fn all<'a>(pairs: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    pairs
        .iter()
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The first value of `name` ("" when absent).
pub fn one<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_values_and_first_error_per_field() {
        let mut f = FormState::new();
        f.keep("name", "Acme").keep("eku", "clientAuth, serverAuth");
        f.refuse("name", "already taken");
        f.refuse("name", "second message");
        assert_eq!(f.value("name"), "Acme");
        assert_eq!(f.value("missing"), "");
        assert!(f.has("eku", "serverAuth"));
        assert!(!f.has("eku", "codeSigning"));
        assert_eq!(f.error("name"), Some("already taken"));
        assert_eq!(f.error("eku"), None);
        assert!(f.is_refused());
        assert_eq!(f.errors().len(), 1);
    }
}
