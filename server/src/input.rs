//! Numbers and durations as officers and operators type them (console
//! forms, the CLI): parsed with checked arithmetic, so any input, however
//! absurd, is a clear error and never a panic (chrono's `Duration::days`
//! panics beyond its range) or a wrapped value. The console, the CLI and
//! the `form_inputs` fuzz target all go through here.

use chrono::Duration;

/// The longest lifetime a typed duration may have. A challenge lives at
/// most 30 days (`challenge::mint`); this bound only keeps arithmetic on a
/// parsed value (`now + ttl`) far from chrono's limits.
pub const MAX_DURATION_DAYS: i64 = 100 * 365;

/// Why a typed value was refused, in words for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{0:?} is not a whole number")]
    NotANumber(String),
    #[error("{0:?} is not a duration (a number with s, m, h or d, e.g. 24h)")]
    NotADuration(String),
    #[error("{value:?} is out of range ({min}–{max})")]
    OutOfRange { value: String, min: i64, max: i64 },
}

/// Inputs longer than this are refused before any parsing: no valid
/// number or duration needs more.
const MAX_LEN: usize = 40;

/// A duration such as `90s`, `60m`, `60min`, `2h`, `1d`, or a bare number
/// of minutes; positive and at most [`MAX_DURATION_DAYS`].
pub fn parse_duration(text: &str) -> Result<Duration, InputError> {
    let s = text.trim();
    let bad = || InputError::NotADuration(shorten(s));
    if s.is_empty() || s.len() > MAX_LEN {
        return Err(bad());
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(bad());
    }
    let seconds_per: i64 = match unit {
        "s" => 1,
        "" | "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let max = MAX_DURATION_DAYS * 86_400 / seconds_per;
    let out_of_range = || InputError::OutOfRange {
        value: shorten(s),
        min: 1,
        max,
    };
    // Digits only, so the one failure left is overflow: out of range.
    let n: i64 = num.parse().map_err(|_| out_of_range())?;
    if !(1..=max).contains(&n) {
        return Err(out_of_range());
    }
    n.checked_mul(seconds_per)
        .and_then(Duration::try_seconds)
        .ok_or_else(out_of_range)
}

/// A whole number within `min..=max` (surrounding blanks ignored).
pub fn parse_whole(text: &str, min: i64, max: i64) -> Result<i64, InputError> {
    let s = text.trim();
    if s.len() > MAX_LEN {
        return Err(InputError::NotANumber(shorten(s)));
    }
    let n: i64 = match s.parse() {
        Ok(n) => n,
        // Only digits with an optional sign, yet unparsable: too large.
        Err(_) if is_integer_text(s) => {
            return Err(InputError::OutOfRange {
                value: shorten(s),
                min,
                max,
            })
        }
        Err(_) => return Err(InputError::NotANumber(shorten(s))),
    };
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(InputError::OutOfRange {
            value: shorten(s),
            min,
            max,
        })
    }
}

/// A whole number that fits an `i32` column (profile settings); the
/// service then checks the setting's own range.
pub fn parse_i32(text: &str) -> Result<i32, InputError> {
    parse_whole(text, i64::from(i32::MIN), i64::from(i32::MAX))
        .and_then(|n| i32::try_from(n).map_err(|_| InputError::NotANumber(shorten(text))))
}

fn is_integer_text(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// What an error message quotes of the input: enough to recognise it.
fn shorten(s: &str) -> String {
    s.chars().take(MAX_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::seconds(90)));
        assert_eq!(parse_duration("60m"), Ok(Duration::minutes(60)));
        assert_eq!(parse_duration("5min"), Ok(Duration::minutes(5)));
        assert_eq!(parse_duration(" 2h "), Ok(Duration::hours(2)));
        assert_eq!(parse_duration("45"), Ok(Duration::minutes(45)));
        assert_eq!(parse_duration("30d"), Ok(Duration::days(30)));
    }

    #[test]
    fn nasty_durations_are_errors_not_panics() {
        let long = "9".repeat(10_000);
        let nasty = [
            "",
            " ",
            "d",
            "0",
            "0d",
            "-1d",
            "+1d",
            "1.5h",
            "1e9s",
            "1 d",
            "1dd",
            "5y",
            "١٢h",
            "9\u{0}",
            "999999999999999d",
            "9223372036854775807s",
            "9223372036854775808s",
            "99999999999999999999999999d",
            "36501d",
            long.as_str(),
        ];
        for s in nasty {
            assert!(parse_duration(s).is_err(), "{s:?}");
        }
        assert!(matches!(
            parse_duration("999999999999999d"),
            Err(InputError::OutOfRange { .. })
        ));
        assert!(parse_duration(&format!("{MAX_DURATION_DAYS}d")).is_ok());
        assert!(parse_duration(&format!("{}s", MAX_DURATION_DAYS * 86_400)).is_ok());
    }

    #[test]
    fn whole_numbers_are_checked_against_their_range() {
        assert_eq!(parse_whole(" 12 ", 1, 100), Ok(12));
        assert_eq!(parse_i32("-7"), Ok(-7));
        for s in ["", "x", "1.0", "0x10", "1_000", "12 3", "٣"] {
            assert!(
                matches!(parse_whole(s, 0, 10), Err(InputError::NotANumber(_))),
                "{s:?}"
            );
        }
        for s in [
            "11",
            "-1",
            "99999999999999999999999",
            "-99999999999999999999",
        ] {
            assert!(
                matches!(parse_whole(s, 0, 10), Err(InputError::OutOfRange { .. })),
                "{s:?}"
            );
        }
        assert!(parse_i32("2147483648").is_err());
        assert!(parse_i32(&"1".repeat(5_000)).is_err());
    }
}
