//! The request line as the access log shows it. A GET PKIOperation
//! carries the whole signed request in its `message` parameter (RFC 8894
//! §4.1), and with it the CSR and its challengePassword, which may be an
//! MDM's secret of several kilobytes: the log names the parameter and its
//! size, never its value.

use actix_web::dev::ServiceRequest;

/// Query parameters whose values stay out of the log.
const SECRET_PARAMS: &[&str] = &["message"];

/// `query` with the values of [`SECRET_PARAMS`] replaced by their length.
pub fn redacted_query(query: &str) -> String {
    query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)) => {
                format!("{k}=<{} chars>", v.len())
            }
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `METHOD path[?query] VERSION`, as the `%r` of actix's logger but with
/// the query redacted.
pub fn request_line(req: &ServiceRequest) -> String {
    let query = req.query_string();
    let sep = if query.is_empty() { "" } else { "?" };
    format!(
        "{} {}{sep}{} {:?}",
        req.method(),
        req.path(),
        redacted_query(query),
        req.version()
    )
}

#[cfg(test)]
mod tests {
    use super::redacted_query;

    #[test]
    fn message_values_are_replaced_by_their_length() {
        assert_eq!(
            redacted_query("operation=PKIOperation&message=MIIB%2Babc"),
            "operation=PKIOperation&message=<10 chars>"
        );
        assert_eq!(redacted_query("Message=xyz"), "Message=<3 chars>");
        assert_eq!(redacted_query("operation=GetCACaps"), "operation=GetCACaps");
        assert_eq!(redacted_query(""), "");
    }
}
