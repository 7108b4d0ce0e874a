//! Minimal ASN.1 TLV reader/writer for the few SCEP structures OpenSSL does
//! not type for us: IssuerAndSubject / IssuerAndSerialNumber (RFC 8894
//! §3.3.3, §3.3.4) and the algorithm identifiers of an EnvelopedData
//! (RFC 5652 §6.1). Reads BER (indefinite lengths included), writes DER.

use super::WireError;

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;

// Object identifiers (content octets) the wire module shares.
pub(crate) const OID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
pub(crate) const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
pub(crate) const OID_ENVELOPED_DATA: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
pub(crate) const OID_RSA_ENCRYPTION: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// One decoded element. `content` excludes the header (and the end-of-contents
/// octets of an indefinite length); `raw` is the whole element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    pub fn constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }

    /// The child elements of a constructed element.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, WireError> {
        if !self.constructed() {
            return Err(malformed("primitive element has no children"));
        }
        read_all(self.content)
    }

    /// Fails unless the tag is `tag`.
    pub fn expect(self, tag: u8, what: &str) -> Result<Self, WireError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(malformed(&format!(
                "{what}: expected tag {tag:#04x}, found {:#04x}",
                self.tag
            )))
        }
    }
}

fn malformed(msg: &str) -> WireError {
    WireError::Malformed(msg.to_string())
}

// Nesting bound so hostile input cannot recurse without limit.
const MAX_DEPTH: usize = 64;

/// Reads one element from the front of `input`, returning it and the rest.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), WireError> {
    read_tlv_depth(input, 0)
}

fn read_tlv_depth(input: &[u8], depth: usize) -> Result<(Tlv<'_>, &[u8]), WireError> {
    if depth > MAX_DEPTH {
        return Err(malformed("ASN.1 nested too deeply"));
    }
    let (&tag, rest) = input
        .split_first()
        .ok_or_else(|| malformed("truncated ASN.1 tag"))?;
    if tag & 0x1f == 0x1f {
        return Err(malformed("multi-byte ASN.1 tags are not used by SCEP"));
    }
    let (&first, mut rest) = rest
        .split_first()
        .ok_or_else(|| malformed("truncated ASN.1 length"))?;
    let header_len;
    let (content, total) = if first == 0x80 {
        // Indefinite length: children until the end-of-contents octets.
        if tag & 0x20 == 0 {
            return Err(malformed("indefinite length on a primitive element"));
        }
        header_len = 2;
        let start = rest;
        loop {
            if rest.len() >= 2 && rest[0] == 0 && rest[1] == 0 {
                let used = start.len() - rest.len();
                break (&start[..used], header_len + used + 2);
            }
            let (_, after) = read_tlv_depth(rest, depth + 1)?;
            rest = after;
        }
    } else {
        let len = if first & 0x80 == 0 {
            header_len = 2;
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(malformed("bad ASN.1 length"));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            rest = &rest[n..];
            header_len = 2 + n;
            len
        };
        if rest.len() < len {
            return Err(malformed("ASN.1 element longer than its input"));
        }
        (&rest[..len], header_len + len)
    };
    Ok((
        Tlv {
            tag,
            content,
            raw: &input[..total],
        },
        &input[total..],
    ))
}

/// Whether `t` and everything inside it use DER lengths: definite, in the
/// fewest octets. (What OpenSSL re-encodes before it checks a signature
/// over it; primitive contents are not looked at.)
pub(crate) fn der_lengths(t: &Tlv<'_>) -> bool {
    let len = t.content.len();
    let header = match len {
        0..=0x7f => 2,
        0x80..=0xff => 3,
        0x100..=0xffff => 4,
        0x1_0000..=0xff_ffff => 5,
        _ => 6,
    };
    t.raw.len() == header + len
        && (!t.constructed() || t.children().is_ok_and(|kids| kids.iter().all(der_lengths)))
}

/// Whether every primitive value inside `t` is in the one form OpenSSL
/// keeps as it is: it refuses a BOOLEAN, NULL, INTEGER, OBJECT IDENTIFIER
/// or BIT STRING that breaks its rules, and writes a BOOLEAN or a BIT
/// STRING's unused bits back in DER (so a certificate's bytes, and its
/// fingerprint, would change).
pub(crate) fn canonical_values(t: &Tlv<'_>) -> bool {
    if t.constructed() {
        return t
            .children()
            .is_ok_and(|kids| kids.iter().all(canonical_values));
    }
    let v = t.content;
    match t.tag {
        0x01 => matches!(v, [0x00] | [0xff]),
        0x02 | 0x0a => match v {
            [] => false,
            [0x00, next, ..] => next & 0x80 != 0,
            [0xff, next, ..] => next & 0x80 == 0,
            _ => true,
        },
        0x03 => match v {
            [] => false,
            [0] => true,
            [unused, .., last] => *unused <= 7 && last & ((1u8 << unused) - 1) == 0,
            [_] => false,
        },
        0x05 => v.is_empty(),
        0x06 => {
            v.last().is_some_and(|b| b & 0x80 == 0)
                && v.first() != Some(&0x80)
                && v.windows(2).all(|w| w[0] & 0x80 != 0 || w[1] != 0x80)
        }
        0x1c => v.len().is_multiple_of(4),
        0x1e => v.len().is_multiple_of(2),
        _ => true,
    }
}

/// Reads every element of `input` (which must be entirely consumed).
pub(crate) fn read_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, WireError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (t, rest) = read_tlv(input)?;
        out.push(t);
        input = rest;
    }
    Ok(out)
}

/// Reads exactly one element spanning all of `input`.
pub(crate) fn read_single(input: &[u8]) -> Result<Tlv<'_>, WireError> {
    let (t, rest) = read_tlv(input)?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes after ASN.1 element"));
    }
    Ok(t)
}

/// DER-encodes one element.
pub(crate) fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// AlgorithmIdentifier with NULL parameters (RSA and SHA OIDs; RFC 4055
/// §2.1 and RFC 8017 §9.2 take the NULL).
pub(crate) fn algorithm(oid: &[u8]) -> Vec<u8> {
    encode(
        TAG_SEQUENCE,
        &[&encode(TAG_OID, oid)[..], &[0x05, 0x00]].concat(),
    )
}

/// DER INTEGER from big-endian unsigned bytes (adds a 0x00 when the top bit
/// is set, drops redundant leading zeros).
pub(crate) fn encode_unsigned_integer(be: &[u8]) -> Vec<u8> {
    let trimmed = match be.iter().position(|b| *b != 0) {
        Some(i) => &be[i..],
        None => &[0u8][..],
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    encode(TAG_INTEGER, &content)
}

/// Big-endian unsigned bytes of a non-negative INTEGER's content.
pub(crate) fn unsigned_integer(content: &[u8]) -> Result<Vec<u8>, WireError> {
    match content.first() {
        None => Err(malformed("empty INTEGER")),
        Some(b) if b & 0x80 != 0 => Err(malformed("negative serial number")),
        Some(_) => {
            let start = content
                .iter()
                .position(|b| *b != 0)
                .unwrap_or(content.len() - 1);
            Ok(content[start..].to_vec())
        }
    }
}

/// Dotted form of an OID's content octets, for error messages.
pub(crate) fn oid_to_string(content: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for b in content {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_values_are_what_openssl_keeps_as_is() {
        let ok = |b: &[u8]| canonical_values(&read_single(b).unwrap());
        assert!(ok(&[0x30, 0x05, 0x01, 0x01, 0xff, 0x05, 0x00]));
        assert!(!ok(&[0x01, 0x01, 0x01]), "BOOLEAN true is 0xff in DER");
        assert!(!ok(&[0x01, 0x02, 0x00, 0x00]));
        assert!(!ok(&[0x05, 0x01, 0x00]));
        assert!(ok(&[0x02, 0x02, 0x00, 0x80]));
        assert!(!ok(&[0x02, 0x02, 0x00, 0x7f]), "padded INTEGER");
        assert!(!ok(&[0x02, 0x00]));
        assert!(ok(&[0x03, 0x02, 0x04, 0xf0]));
        assert!(!ok(&[0x03, 0x02, 0x04, 0xf1]), "unused bits set");
        assert!(!ok(&[0x03, 0x02, 0x08, 0x00]));
        assert!(!ok(&[0x03, 0x01, 0x01]));
        assert!(ok(&[0x06, 0x03, 0x55, 0x04, 0x03]));
        assert!(!ok(&[0x06, 0x02, 0x55, 0x84]), "unterminated arc");
        assert!(!ok(&[0x06, 0x03, 0x55, 0x80, 0x03]), "padded arc");
        assert!(!ok(&[0x1e, 0x03, 0x00, 0x41, 0x00]));
        // Inside a structure too.
        assert!(!ok(&[0x30, 0x03, 0x01, 0x01, 0x01]));
    }

    #[test]
    fn der_lengths_are_definite_and_minimal_all_the_way_down() {
        let ok = |b: &[u8]| der_lengths(&read_single(b).unwrap());
        assert!(ok(&[0x30, 0x03, 0x02, 0x01, 0x00]));
        // Long form where the short one fits, outside and inside.
        assert!(!ok(&[0x30, 0x81, 0x03, 0x02, 0x01, 0x00]));
        assert!(!ok(&[0x30, 0x04, 0x02, 0x81, 0x01, 0x00]));
        // Indefinite.
        assert!(!ok(&[0x30, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00]));
        let long = encode(TAG_OCTET_STRING, &[0u8; 300]);
        assert!(ok(&encode(TAG_SEQUENCE, &long)));
    }

    #[test]
    fn reads_definite_and_indefinite_lengths_alike() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa];
        let ber = [0x30, 0x80, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa, 0x00, 0x00];
        for input in [&der[..], &ber[..]] {
            let t = read_single(input).unwrap();
            assert_eq!(t.tag, TAG_SEQUENCE);
            assert_eq!(t.raw.len(), input.len());
            let kids = t.children().unwrap();
            assert_eq!(kids.len(), 2);
            assert_eq!(kids[0].content, &[5]);
            assert_eq!(kids[1].content, &[0xaa]);
        }
    }

    #[test]
    fn rejects_truncation_and_trailing_bytes() {
        assert!(read_single(&[0x30, 0x05, 0x02, 0x01]).is_err());
        assert!(read_single(&[0x02, 0x01, 0x01, 0x00]).is_err());
        assert!(read_single(&[0x30, 0x80, 0x02, 0x01, 0x01]).is_err());
        assert!(read_single(&[0x04, 0x80, 0x00, 0x00]).is_err());
    }

    #[test]
    fn long_lengths_encode_and_decode() {
        let content = vec![7u8; 300];
        let der = encode(TAG_OCTET_STRING, &content);
        assert_eq!(&der[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(read_single(&der).unwrap().content, &content[..]);
    }

    #[test]
    fn integers_are_minimal_and_unsigned() {
        assert_eq!(
            encode_unsigned_integer(&[0x00, 0x00, 0x80]),
            vec![0x02, 0x02, 0x00, 0x80]
        );
        assert_eq!(encode_unsigned_integer(&[]), vec![0x02, 0x01, 0x00]);
        assert_eq!(unsigned_integer(&[0x00, 0x80]).unwrap(), vec![0x80]);
        assert_eq!(unsigned_integer(&[0x00]).unwrap(), vec![0x00]);
        assert!(unsigned_integer(&[0x80]).is_err());
    }

    #[test]
    fn oid_strings_decode_arcs() {
        let aes = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02];
        assert_eq!(oid_to_string(&aes), "2.16.840.1.101.3.4.1.2");
        assert_eq!(
            oid_to_string(&[0x2b, 0x0e, 0x03, 0x02, 0x07]),
            "1.3.14.3.2.7"
        );
    }
}
