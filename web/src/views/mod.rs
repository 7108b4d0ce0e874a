//! One view struct per template.

use askama::Template;

/// Facts every page shows.
#[derive(Debug, Clone)]
pub struct SiteInfo {
    pub public_url: String,
    pub ca_fingerprint: String,
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexView {
    pub site: SiteInfo,
}
