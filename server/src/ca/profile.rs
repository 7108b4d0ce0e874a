//! Key usage and extended key usage vocabulary for issuance profiles
//! (RFC 5280 §4.2.1.3 and §4.2.1.12), with the names used in configuration.

use std::fmt;
use std::str::FromStr;

use super::CaError;

/// keyUsage bits an end-entity certificate may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
}

impl KeyUsage {
    /// The RFC 5280 ASN.1 name, also used in configuration.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyUsage::DigitalSignature => "digitalSignature",
            KeyUsage::NonRepudiation => "nonRepudiation",
            KeyUsage::KeyEncipherment => "keyEncipherment",
            KeyUsage::DataEncipherment => "dataEncipherment",
            KeyUsage::KeyAgreement => "keyAgreement",
        }
    }
}

impl FromStr for KeyUsage {
    type Err = CaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // contentCommitment is the X.509 (2008) name for nonRepudiation.
        match s.trim() {
            "digitalSignature" => Ok(KeyUsage::DigitalSignature),
            "nonRepudiation" | "contentCommitment" => Ok(KeyUsage::NonRepudiation),
            "keyEncipherment" => Ok(KeyUsage::KeyEncipherment),
            "dataEncipherment" => Ok(KeyUsage::DataEncipherment),
            "keyAgreement" => Ok(KeyUsage::KeyAgreement),
            other => Err(CaError::UnknownKeyUsage(other.to_string())),
        }
    }
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// extendedKeyUsage purposes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Eku {
    ClientAuth,
    ServerAuth,
    EmailProtection,
    CodeSigning,
    /// id-kp-ipsecIKE, RFC 4945 §5.1.3.12.
    IpsecIke,
    /// Any other purpose, as a dotted OID.
    Other(String),
}

impl Eku {
    /// Configuration name; for `Other` the dotted OID itself.
    pub fn as_str(&self) -> &str {
        match self {
            Eku::ClientAuth => "clientAuth",
            Eku::ServerAuth => "serverAuth",
            Eku::EmailProtection => "emailProtection",
            Eku::CodeSigning => "codeSigning",
            Eku::IpsecIke => "ipsecIKE",
            Eku::Other(oid) => oid,
        }
    }

    /// The purpose's dotted OID.
    pub fn oid(&self) -> &str {
        match self {
            Eku::ServerAuth => "1.3.6.1.5.5.7.3.1",
            Eku::ClientAuth => "1.3.6.1.5.5.7.3.2",
            Eku::CodeSigning => "1.3.6.1.5.5.7.3.3",
            Eku::EmailProtection => "1.3.6.1.5.5.7.3.4",
            Eku::IpsecIke => "1.3.6.1.5.5.7.3.17",
            Eku::Other(oid) => oid,
        }
    }
}

impl FromStr for Eku {
    type Err = CaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Ok(match s {
            "clientAuth" => Eku::ClientAuth,
            "serverAuth" => Eku::ServerAuth,
            "emailProtection" => Eku::EmailProtection,
            "codeSigning" => Eku::CodeSigning,
            "ipsecIKE" | "ipsecIke" => Eku::IpsecIke,
            other => {
                // Validate now so bad configuration fails at load, not at issuance.
                der::asn1::ObjectIdentifier::new(other)
                    .map_err(|_| CaError::InvalidEku(other.to_string()))?;
                Eku::Other(other.to_string())
            }
        })
    }
}

impl fmt::Display for Eku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_usage_names_round_trip() {
        for ku in [
            KeyUsage::DigitalSignature,
            KeyUsage::NonRepudiation,
            KeyUsage::KeyEncipherment,
            KeyUsage::DataEncipherment,
            KeyUsage::KeyAgreement,
        ] {
            assert_eq!(ku.as_str().parse::<KeyUsage>().unwrap(), ku);
        }
        assert!("keyCertSign".parse::<KeyUsage>().is_err());
    }

    #[test]
    fn eku_names_and_oids_parse() {
        assert_eq!("clientAuth".parse::<Eku>().unwrap(), Eku::ClientAuth);
        assert_eq!(
            "ipsecIKE".parse::<Eku>().unwrap().oid(),
            "1.3.6.1.5.5.7.3.17"
        );
        let other: Eku = "1.3.6.1.4.1.311.20.2.2".parse().unwrap();
        assert_eq!(other, Eku::Other("1.3.6.1.4.1.311.20.2.2".into()));
        assert_eq!(other.to_string(), "1.3.6.1.4.1.311.20.2.2");
    }

    #[test]
    fn eku_rejects_garbage() {
        assert!("serverAuth,critical".parse::<Eku>().is_err());
        assert!("frobnicate".parse::<Eku>().is_err());
    }
}
