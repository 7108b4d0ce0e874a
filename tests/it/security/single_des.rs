//! Single DES cannot expose a reusable secret. A 56-bit envelope (RFC 8894
//! §3.2.2 leaves the content cipher to the client) can be broken offline:
//! a one-time challenge is spent by then, an organization's access code is
//! not. So an access code over single DES is refused with badAlg before it
//! is compared (no argon2, nothing spent), and a profile's `min_cipher`
//! (des < des3 < aes) refuses weaker envelopes for every message type, with
//! GetCACaps (§3.5.2) listing only what it accepts. micromdm's scepclient
//! sends nothing but single DES, so the default accepts it for challenges.

use server::wire::client::ClientContent;
use server::wire::{ContentCipher, FailInfo, MessageType, PkiStatus};

use crate::console::{audit_count, csrf_in, Client, ADMIN_PW};
use crate::device::Device;
use crate::support::{last_refusal, Scepd};

const CODE: &str = "acme-shared-code-des";
const CODE_OVER_DES: &str = "access codes are not accepted over single DES, which can be \
                             broken offline; the client must use DES3 or AES";

fn access_code(s: &Scepd, profile: &str, code: &str) {
    s.cli_ok(&[
        "access-code",
        "create",
        "--org",
        "Default",
        "--profile",
        profile,
        "--label",
        "shared",
        "--code",
        code,
    ]);
}

/// A PKCSReq for a fresh device with `secret` as its challengePassword,
/// enveloped with `cipher`.
fn enroll(s: &Scepd, profile: &str, cn: &str, secret: &str, cipher: ContentCipher) -> Outcome {
    let dev = Device::new(cn, 2048);
    let csr = dev.csr(Some(secret));
    let msg = dev.pkcs_req_message(s, &csr, cipher);
    let rep = dev.send(s, profile, &msg);
    Outcome {
        status: rep.status,
        fail_info: rep.fail_info,
        cipher: rep.cipher,
        dev,
    }
}

struct Outcome {
    status: PkiStatus,
    fail_info: Option<FailInfo>,
    cipher: Option<ContentCipher>,
    dev: Device,
}

fn caps(s: &Scepd, profile: &str) -> Vec<String> {
    ureq::get(&format!("{}?operation=GetCACaps", s.scep_url(profile)))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn unused_challenges(s: &Scepd) -> i64 {
    s.count("challenges WHERE used_at IS NULL")
}

fn profile(s: &Scepd, id: &str) -> server::store::profiles::Profile {
    server::store::profiles::by_profile_id(&mut s.pg(), id)
        .unwrap()
        .unwrap()
}

#[test]
fn an_access_code_over_single_des_is_refused_bad_alg_before_it_is_compared() {
    let s = Scepd::start();
    // Without any access code for the profile, a secret that is no
    // challenge is a wrong challenge, over single DES as over AES.
    let wrong = enroll(
        &s,
        "default",
        "typo",
        "not-a-challenge",
        ContentCipher::DesCbc,
    );
    assert_eq!(wrong.fail_info, Some(FailInfo::BadRequest));
    access_code(&s, "default", CODE);
    let rejected = audit_count(&s, "challenge.rejected");

    let r = enroll(&s, "default", "des-code", CODE, ContentCipher::DesCbc);
    assert_eq!(r.status, PkiStatus::Failure);
    assert_eq!(r.fail_info, Some(FailInfo::BadAlg));
    assert_eq!(last_refusal(&s), CODE_OVER_DES);
    // Not compared, so not used: no access_code.used entry, no request.
    assert_eq!(audit_count(&s, "access_code.used"), 0);
    assert_eq!(s.count("enrollment_requests"), 0);
    assert_eq!(s.count("certificates"), 0);
    // A wrong secret is answered alike (nothing is learnt about the code)
    // and, like any secret that is no usable challenge, counted.
    let wrong = enroll(
        &s,
        "default",
        "des-guess",
        "not-the-code",
        ContentCipher::DesCbc,
    );
    assert_eq!(wrong.fail_info, Some(FailInfo::BadAlg));
    assert_eq!(last_refusal(&s), CODE_OVER_DES);
    assert_eq!(audit_count(&s, "challenge.rejected"), rejected + 2);

    // The code itself is intact: over AES, or DES3, it enrolls.
    for (cn, cipher) in [
        ("aes-code", ContentCipher::Aes256Cbc),
        ("des3-code", ContentCipher::Des3Cbc),
    ] {
        let ok = enroll(&s, "default", cn, CODE, cipher);
        assert_eq!(ok.status, PkiStatus::Success, "{cipher:?}\n{}", s.log());
    }
    assert_eq!(audit_count(&s, "access_code.used"), 2);
}

#[test]
fn a_one_time_challenge_over_single_des_still_enrolls_on_the_default_profile() {
    let s = Scepd::start();
    assert_eq!(profile(&s, "default").min_cipher, "des");
    let r = enroll(
        &s,
        "default",
        "scepclient-like",
        &s.mint("default"),
        ContentCipher::DesCbc,
    );
    assert_eq!(r.status, PkiStatus::Success, "{}", s.log());
    assert_eq!(r.cipher, Some(ContentCipher::DesCbc), "answered in kind");
    assert_eq!(unused_challenges(&s), 0);
}

#[test]
fn min_cipher_des3_refuses_single_des_for_every_message_and_spends_nothing() {
    let s = Scepd::start();
    let before = caps(&s, "default");
    // A device enrolled while single DES was still accepted.
    let old = enroll(
        &s,
        "default",
        "polls",
        &s.mint("default"),
        ContentCipher::DesCbc,
    );
    assert_eq!(old.status, PkiStatus::Success);

    s.cli_ok(&["profile", "set", "default", "--min-cipher", "des3"]);
    assert_eq!(profile(&s, "default").min_cipher, "des3");
    assert_eq!(caps(&s, "default"), before, "DES3 and AES still listed");

    let challenge = s.mint("default");
    let r = enroll(&s, "default", "des-dev", &challenge, ContentCipher::DesCbc);
    assert_eq!(r.status, PkiStatus::Failure);
    assert_eq!(r.fail_info, Some(FailInfo::BadAlg));
    let reason = last_refusal(&s);
    assert!(
        reason.contains("enveloped with single DES, weaker than this profile's minimum (DES3)")
            && reason.contains("must use DES3 or AES"),
        "{reason}"
    );
    assert_eq!(unused_challenges(&s), 1, "the challenge is not spent");
    assert_eq!(s.count("enrollment_requests"), 1);

    // A CertPoll over single DES meets the same minimum.
    let dev = &old.dev;
    let issuer = s.ca_cert().subject_name().to_der().unwrap();
    let subject = dev.signer.subject_name().to_der().unwrap();
    let poll = dev.request(
        &s,
        MessageType::CertPoll,
        &dev.txid(),
        ClientContent::IssuerAndSubject {
            issuer_der: &issuer,
            subject_der: &subject,
        },
        ContentCipher::DesCbc,
    );
    let rep = dev.send(&s, "default", &poll);
    assert_eq!(rep.fail_info, Some(FailInfo::BadAlg));

    // The same challenge over DES3 enrolls.
    let ok = enroll(
        &s,
        "default",
        "des3-dev",
        &challenge,
        ContentCipher::Des3Cbc,
    );
    assert_eq!(ok.status, PkiStatus::Success, "{}", s.log());
    assert_eq!(unused_challenges(&s), 0);
}

#[test]
fn min_cipher_aes_refuses_des3_and_get_ca_caps_no_longer_lists_it() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "modern", "--min-cipher", "aes"]);
    let listed = caps(&s, "modern");
    assert!(listed.iter().any(|c| c == "AES"), "{listed:?}");
    assert!(!listed.iter().any(|c| c == "DES3"), "{listed:?}");
    assert!(caps(&s, "default").iter().any(|c| c == "DES3"));

    let challenge = s.mint("modern");
    for (cn, cipher) in [
        ("des3-dev", ContentCipher::Des3Cbc),
        ("des-dev", ContentCipher::DesCbc),
    ] {
        let r = enroll(&s, "modern", cn, &challenge, cipher);
        assert_eq!(r.fail_info, Some(FailInfo::BadAlg), "{cipher:?}");
        let reason = last_refusal(&s);
        assert!(
            reason.contains("weaker than this profile's minimum (AES)")
                && reason.ends_with("the client must use AES"),
            "{reason}"
        );
    }
    assert_eq!(unused_challenges(&s), 1, "the challenge is not spent");
    let ok = enroll(
        &s,
        "modern",
        "aes-dev",
        &challenge,
        ContentCipher::Aes128Cbc,
    );
    assert_eq!(ok.status, PkiStatus::Success, "{}", s.log());
}

#[test]
fn the_console_offers_sets_and_refuses_min_cipher() {
    let s = Scepd::start();
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let page = m.get("/profiles/default/edit");
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<select id=\"min_cipher\" name=\"min_cipher\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("<option value=\"des\" selected>"));
    assert!(page
        .body
        .contains("Single DES can be broken offline: DES3 or AES recommended; micromdm's scepclient needs single DES"));
    let token = csrf_in(&page.body);
    let org = server::store::orgs::org_by_name(&mut s.pg(), "Default")
        .unwrap()
        .unwrap()
        .id
        .to_string();
    let form = |min: &str| -> Vec<(&'static str, String)> {
        [
            ("csrf", token.as_str()),
            ("profile_id", "default"),
            ("name", "Default"),
            ("cert_type", "device"),
            ("validity_days", "365"),
            ("key_usage", "digitalSignature"),
            ("key_usage", "keyEncipherment"),
            ("extended_key_usage", "clientAuth"),
            ("subject_template", "CN={{CommonName}}"),
            ("san_types", "dns"),
            ("san_pattern", ""),
            ("min_rsa_bits", "2048"),
            ("min_cipher", min),
            ("hash_alg", "sha256"),
            ("approval_mode", "auto"),
            ("renewal_window_days", "30"),
            ("max_active_per_device", "0"),
            ("allow_post", "on"),
            ("enabled", "on"),
            ("places", org.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
    };
    let post = |m: &mut Client, f: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        m.post("/profiles/default/edit", &pairs)
    };
    let before = profile(&s, "default");
    let updated = audit_count(&s, "profile.updated");

    let bad = post(&mut m, form("rc2"));
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body
            .contains("minimum envelope cipher must be des or des3 or aes"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains(
        "name=\"min_cipher\" aria-invalid=\"true\" aria-describedby=\"min_cipher-error\""
    ));
    assert_eq!(profile(&s, "default").revision, before.revision);

    let r = post(&mut m, form("aes"));
    assert_eq!(r.status, 303, "{}", r.body);
    let after = profile(&s, "default");
    assert_eq!(after.min_cipher, "aes");
    assert!(after.revision > before.revision);
    let listing = m.get("/profiles").body;
    assert!(listing.contains("envelopes AES only"), "{listing}");
    assert!(!caps(&s, "default").iter().any(|c| c == "DES3"));
    let edit = m.get("/profiles/default/edit").body;
    assert!(edit.contains("<option value=\"aes\" selected>"), "{edit}");
    assert_eq!(audit_count(&s, "profile.updated"), updated + 1);
}

#[test]
fn the_cli_sets_min_cipher_and_the_api_lists_it() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "vpn", "--min-cipher", "des3"]);
    assert_eq!(profile(&s, "vpn").min_cipher, "des3");
    let updated = audit_count(&s, "profile.updated");
    s.cli_ok(&["profile", "set", "vpn", "--min-cipher", "aes"]);
    assert_eq!(profile(&s, "vpn").min_cipher, "aes");
    assert_eq!(audit_count(&s, "profile.updated"), updated + 1);
    for args in [
        vec!["profile", "set", "vpn", "--min-cipher", "rc4"],
        vec!["profile", "create", "other", "--min-cipher", "DES56"],
    ] {
        let out = s.cli(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("invalid value") && err.contains("des, des3, aes"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(profile(&s, "vpn").min_cipher, "aes");
    assert!(server::store::profiles::by_profile_id(&mut s.pg(), "other")
        .unwrap()
        .is_none());

    let key = s
        .cli_ok(&["api-key", "create", "--name", "mdm", "--org", "Default"])
        .trim()
        .to_string();
    let listed = |id: &str| crate::api::listed_profile(&s, &key, id)["min_cipher"].clone();
    assert_eq!(listed("default"), "des");
    assert_eq!(listed("vpn"), "aes");
}
