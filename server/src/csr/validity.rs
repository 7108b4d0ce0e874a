//! The validity a client asks for in its CSR. Windows' SCEP client (the
//! ClientCertificateInstall CSP's `ValidPeriod` and `ValidPeriodUnits`)
//! sends it as Microsoft's enrollment name-value pairs (MS-WCCE §2.2.2.7.10,
//! `szOID_ENROLLMENT_NAME_VALUE_PAIR`, 1.3.6.1.4.1.311.13.2.1):
//! `SEQUENCE OF SEQUENCE { name BMPString, value BMPString }` with
//! `ValidityPeriod` (Seconds, Minutes, Hours, Days, Weeks, Months or Years)
//! and `ValidityPeriodUnits` (an unsigned integer). A profile may honour it
//! up to its own validity (`Enroll::sign`).

use chrono::{DateTime, Duration, Months, Utc};
use der::asn1::{Any, ObjectIdentifier};

pub(super) const OID_ENROLLMENT_NAME_VALUE_PAIR: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.13.2.1");

/// MS-WCCE's `ValidityPeriod` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl PeriodUnit {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "seconds" => Self::Seconds,
            "minutes" => Self::Minutes,
            "hours" => Self::Hours,
            "days" => Self::Days,
            "weeks" => Self::Weeks,
            "months" => Self::Months,
            "years" => Self::Years,
            _ => return None,
        })
    }
}

/// A validity the request asks for: `count` `unit`s from issuance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestedValidity {
    pub count: u32,
    pub unit: PeriodUnit,
}

impl RequestedValidity {
    /// The notAfter it asks for, counted from `from`; None if it lies
    /// beyond what a date can hold.
    pub fn not_after(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let n = i64::from(self.count);
        match self.unit {
            PeriodUnit::Seconds => from.checked_add_signed(Duration::try_seconds(n)?),
            PeriodUnit::Minutes => from.checked_add_signed(Duration::try_minutes(n)?),
            PeriodUnit::Hours => from.checked_add_signed(Duration::try_hours(n)?),
            PeriodUnit::Days => from.checked_add_signed(Duration::try_days(n)?),
            PeriodUnit::Weeks => from.checked_add_signed(Duration::try_weeks(n)?),
            PeriodUnit::Months => from.checked_add_months(Months::new(self.count)),
            PeriodUnit::Years => from.checked_add_months(Months::new(self.count.checked_mul(12)?)),
        }
    }
}

/// The requested validity in the name-value pairs of one attribute value,
/// or None when it names none. Pairs that do not parse, an unknown unit or
/// a count of zero leave the request without one: the profile's validity
/// applies, as for a client that asks nothing.
pub(super) fn from_pairs(value: &Any) -> Option<RequestedValidity> {
    let pairs: Vec<Any> = value.decode_as().ok()?;
    let (mut unit, mut count) = (None, None);
    for pair in pairs {
        let fields: Vec<Any> = pair.decode_as().ok()?;
        let [name, value] = fields.as_slice() else {
            return None;
        };
        let name = super::directory_string(name).ok()?;
        let value = super::directory_string(value).ok()?;
        if name.eq_ignore_ascii_case("ValidityPeriod") {
            unit = Some(PeriodUnit::parse(&value)?);
        } else if name.eq_ignore_ascii_case("ValidityPeriodUnits") {
            count = Some(value.trim().parse::<u32>().ok().filter(|n| *n > 0)?);
        }
    }
    Some(RequestedValidity {
        count: count?,
        unit: unit?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use der::{Decode, Encode};

    fn tlv(tag: u8, body: Vec<u8>) -> Vec<u8> {
        let mut out = vec![tag];
        match body.len() {
            n @ 0..=127 => out.push(n as u8),
            n @ 128..=255 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend(body);
        out
    }

    fn bmp(s: &str) -> Vec<u8> {
        tlv(0x1e, s.encode_utf16().flat_map(u16::to_be_bytes).collect())
    }

    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, parts.concat())
    }

    fn pairs(p: &[(&str, &str)]) -> Any {
        let der = seq(&p
            .iter()
            .map(|(n, v)| seq(&[bmp(n), bmp(v)]))
            .collect::<Vec<_>>());
        Any::from_der(&der).unwrap()
    }

    #[test]
    fn windows_pairs_give_count_and_unit() {
        let v = pairs(&[("ValidityPeriod", "Days"), ("ValidityPeriodUnits", "30")]);
        assert_eq!(
            from_pairs(&v),
            Some(RequestedValidity {
                count: 30,
                unit: PeriodUnit::Days
            })
        );
        // Other pairs (MS-WCCE lists several) are ignored.
        let v = pairs(&[
            ("CertificateTemplate", "User"),
            ("validityperiodunits", "2"),
            ("VALIDITYPERIOD", "years"),
        ]);
        assert_eq!(from_pairs(&v).unwrap().unit, PeriodUnit::Years);
        assert!(v.to_der().is_ok());
    }

    #[test]
    fn incomplete_or_odd_pairs_ask_for_nothing() {
        for p in [
            vec![("ValidityPeriod", "Days")],
            vec![("ValidityPeriodUnits", "30")],
            vec![
                ("ValidityPeriod", "Fortnights"),
                ("ValidityPeriodUnits", "2"),
            ],
            vec![("ValidityPeriod", "Days"), ("ValidityPeriodUnits", "0")],
            vec![("ValidityPeriod", "Days"), ("ValidityPeriodUnits", "-3")],
        ] {
            assert_eq!(from_pairs(&pairs(&p)), None, "{p:?}");
        }
        assert_eq!(from_pairs(&Any::from_der(&[0x05, 0x00]).unwrap()), None);
    }

    #[test]
    fn not_after_counts_calendar_months_and_refuses_overflow() {
        let from = Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0).unwrap();
        let months = RequestedValidity {
            count: 1,
            unit: PeriodUnit::Months,
        };
        assert_eq!(
            months.not_after(from),
            Some(Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap())
        );
        let weeks = RequestedValidity {
            count: 3,
            unit: PeriodUnit::Weeks,
        };
        assert_eq!(weeks.not_after(from), Some(from + Duration::days(21)));
        let huge = RequestedValidity {
            count: u32::MAX,
            unit: PeriodUnit::Years,
        };
        assert_eq!(huge.not_after(from), None);
    }
}
