//! The RA console in a real headless Chromium (chromedriver + thirtyfour):
//! an officer logs in, finds a device's PKCSReq in the queue as Requested,
//! approves it, and the device's next CertPoll gets its certificate; a
//! second request is declined with a reason and the poll gets FAILURE;
//! the issued certificate is found in the certificate list, revoked for
//! key compromise, and the CRL (parsed by openssl) lists it.
//! The screenshots in `docs/screenshots/` come from this test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use server::wire::PkiStatus;
use thirtyfour::prelude::*;
use thirtyfour::ChromiumLikeCapabilities;

use crate::console::ADMIN_PW;
use crate::device::Device;
use crate::support::Scepd;

/// A chromedriver we started, killed on drop.
pub(crate) struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    pub(crate) fn start() -> Chromedriver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed");
        // Owned by the guard from here on, so a failed start still kills it.
        let cd = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ureq::get(&format!("{}/status", cd.url)).call().is_ok() {
                return cd;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not start");
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn browser(cd: &Chromedriver, profile_dir: &std::path::Path) -> WebDriver {
    browser_with(cd, profile_dir, &[]).await
}

/// Headless Chromium with the usual flags and `extra` ones.
pub(crate) async fn browser_with(
    cd: &Chromedriver,
    profile_dir: &std::path::Path,
    extra: &[String],
) -> WebDriver {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary("/usr/bin/chromium").unwrap();
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ] {
        caps.add_arg(arg).unwrap();
    }
    caps.add_arg(&format!("--user-data-dir={}", profile_dir.display()))
        .unwrap();
    for arg in extra {
        caps.add_arg(arg).unwrap();
    }
    WebDriver::new(cd.url.as_str(), caps).await.unwrap()
}

async fn login(d: &WebDriver, s: &Scepd) {
    login_at(d, &s.url).await
}

/// Log in as the first MRAO at the console under `base` (no trailing /).
pub(crate) async fn login_at(d: &WebDriver, base: &str) {
    d.goto(format!("{base}/")).await.unwrap();
    // Not logged in: the console sends us to the login form.
    assert!(d.current_url().await.unwrap().path().ends_with("/login"));
    d.find(By::Id("username"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    d.find(By::Id("password"))
        .await
        .unwrap()
        .send_keys(ADMIN_PW)
        .await
        .unwrap();
    d.find(By::Css("form.login button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let src = wait_for(d, "Dashboard").await;
    assert!(src.contains("Dashboard"), "{src}");
}

/// The page source once it contains `text` (a click's navigation may
/// still be in flight when `click` returns).
pub(crate) async fn wait_for(d: &WebDriver, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let src = d.source().await.unwrap();
        if src.contains(text) || Instant::now() > deadline {
            return src;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Open the queue and the detail page of the request for `cn`.
async fn open_request(d: &WebDriver, s: &Scepd, cn: &str) {
    d.goto(format!("{}/requests?status=requested", s.url))
        .await
        .unwrap();
    d.find(By::LinkText(cn))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let src = wait_for(d, &format!("CN={cn}")).await;
    assert!(src.contains(&format!("CN={cn}")), "{src}");
    assert!(src.contains("requested"), "{src}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officer_approves_and_declines_in_the_browser() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "manual", "--approval", "manual"]);
    let approved = Device::new("browser-laptop-1", 2048);
    let declined = Device::new("browser-unknown-2", 2048);
    for dev in [&approved, &declined] {
        let rep = dev.pkcs_req(&s, "manual", Some(&s.mint("manual")));
        assert_eq!(rep.status, PkiStatus::Pending);
    }

    let cd = Chromedriver::start();
    let profile = tempfile::tempdir().unwrap();
    let d = browser(&cd, profile.path()).await;
    let shots = screenshots();

    login(&d, &s).await;

    d.goto(format!("{}/requests?status=requested", s.url))
        .await
        .unwrap();
    let src = d.source().await.unwrap();
    assert!(src.contains("browser-laptop-1") && src.contains("browser-unknown-2"));
    d.screenshot(&shots.join("queue.png")).await.unwrap();

    // Approve the first.
    open_request(&d, &s, "browser-laptop-1").await;
    d.screenshot(&shots.join("request.png")).await.unwrap();
    d.find(By::Id("approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let src = wait_for(&d, "Approved: the certificate is issued").await;
    assert!(src.contains("Approved: the certificate is issued"), "{src}");
    assert!(src.contains("issued"), "{src}");
    let poll = approved.poll(&s, "manual", &approved.txid());
    assert_eq!(poll.status, PkiStatus::Success, "{poll:?}");
    assert!(poll.certs[0].public_key().unwrap().public_eq(&approved.key));

    // Decline the second, with a reason.
    open_request(&d, &s, "browser-unknown-2").await;
    d.find(By::Id("reason"))
        .await
        .unwrap()
        .send_keys("unknown device")
        .await
        .unwrap();
    d.find(By::Id("decline"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let src = wait_for(&d, "Declined: ").await;
    assert!(src.contains("Declined"), "{src}");
    assert!(src.contains("unknown device"), "{src}");
    let poll = declined.poll(&s, "manual", &declined.txid());
    assert_eq!(poll.status, PkiStatus::Failure, "{poll:?}");

    // The dashboard charts today's issuance.
    d.goto(format!("{}/", s.url)).await.unwrap();
    let src = wait_for(&d, "issued-chart").await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(src.contains(&format!("{today}: 1")), "{src}");
    d.screenshot(&shots.join("dashboard.png")).await.unwrap();

    // Find the certificate, open it, revoke it for key compromise.
    d.goto(format!("{}/certificates?q=laptop", s.url))
        .await
        .unwrap();
    d.screenshot(&shots.join("certificates.png")).await.unwrap();
    d.find(By::LinkText("browser-laptop-1"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let src = wait_for(&d, "Download PEM").await;
    assert!(src.contains("CN=browser-laptop-1"), "{src}");
    d.screenshot(&shots.join("certificate.png")).await.unwrap();
    let serial = d
        .find(By::Id("serial"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    d.find(By::Css("#reason option[value='keyCompromise']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    d.find(By::Id("revoke"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let src = wait_for(&d, "Revoked: the next CRL").await;
    assert!(src.contains("keyCompromise"), "{src}");
    let crl_link = d.find(By::PartialLinkText(".crl")).await.unwrap();
    let crl_url = crl_link.attr("href").await.unwrap().unwrap();
    let crl = crate::console_pages::fetch_crl_text(&crl_url);
    assert!(crl.contains(&serial), "{crl}");
    assert!(crl.contains("KEY COMPROMISE"), "{crl}");

    d.goto(format!("{}/challenges", s.url)).await.unwrap();
    wait_for(&d, "Outstanding").await;
    d.screenshot(&shots.join("challenges.png")).await.unwrap();

    // Log out in the browser: the console is closed again.
    d.find(By::Css("form.logout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&d, "Log in").await;
    d.goto(format!("{}/requests", s.url)).await.unwrap();
    assert!(d.current_url().await.unwrap().path().ends_with("/login"));
    d.quit().await.unwrap();
}
