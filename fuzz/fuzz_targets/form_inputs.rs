//! The form fields officers and operators type numbers and durations into
//! (console forms, the CLI, `server::input`): a challenge lifetime, a
//! count, a profile's numeric settings, a place (`org` or `org:dept`).
//! Whatever the bytes, each parser answers a value or an error; none may
//! panic (chrono's unchecked constructors would, beyond their range), and
//! an accepted value lies within the bounds the parser promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::input::{self, MAX_DURATION_DAYS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = input::parse_duration(text) {
        assert!(d > chrono::Duration::zero(), "{text:?} gave {d}");
        assert!(d.num_days() <= MAX_DURATION_DAYS, "{text:?} gave {d}");
        // What the caller does with it next must not overflow either.
        assert!(chrono::Utc::now().checked_add_signed(d).is_some());
    }
    if let Ok(d) = server::challenge::parse_ttl(text) {
        assert!(d > chrono::Duration::zero());
    }
    if let Ok(n) = input::parse_whole(text, 1, 10_000) {
        assert!((1..=10_000).contains(&n), "{text:?} gave {n}");
    }
    let _ = input::parse_i32(text);
    if let Some(g) = server::admin::rules::parse_grant(text) {
        let back = server::admin::rules::grant_value(g);
        assert_eq!(server::admin::rules::parse_grant(&back), Some(g));
    }
});
