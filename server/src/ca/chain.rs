//! An imported CA that is an intermediate: the certificates above it, our
//! CA's issuer first, each checked to have issued the one before it
//! (RFC 5280 §6.1: issuer name, signature, and a CA certificate). Clients
//! that were given only the root need them to build a path to our CA
//! (RFC 8894 §3.5.1 GetCACert, and a CertRep when a profile asks).

use openssl::x509::{X509Ref, X509};

use super::{import_ca, CaError, CaIdentity};

/// Every PEM certificate in `pem`, in order.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<X509>, CaError> {
    X509::stack_from_pem(pem).map_err(|e| CaError::BadCertificate(e.to_string()))
}

/// Imports a CA given as a chain: the CA certificate followed by its
/// issuers (nearest first). Returns the CA and the issuers; refuses a chain
/// in which a certificate did not issue the one before it.
pub fn import_ca_chain(
    chain_pem: &[u8],
    key_pem: &[u8],
    key_passphrase: Option<&[u8]>,
) -> Result<(CaIdentity, Vec<X509>), CaError> {
    let mut certs = certs_from_pem(chain_pem)?.into_iter();
    let Some(first) = certs.next() else {
        return Err(CaError::BadCertificate("no PEM certificate found".into()));
    };
    let ca = import_ca(&first.to_pem()?, key_pem, key_passphrase)?;
    let issuers: Vec<X509> = certs.collect();
    check_chain(ca.cert(), &issuers)?;
    Ok((ca, issuers))
}

/// Checks that `issuers[0]` issued `ca` and each further certificate the
/// one before it: the names match, the issuer's key verifies the
/// signature, and the issuer is a CA (basicConstraints CA:TRUE).
pub fn check_chain(ca: &X509Ref, issuers: &[X509]) -> Result<(), CaError> {
    let mut child = ca;
    for (i, issuer) in issuers.iter().enumerate() {
        // Position in the chain file, which starts with our CA.
        let (n, m) = (i + 1, i + 2);
        let broken = |why: String| {
            CaError::BrokenChain(format!(
                "certificate {m} ({}) did not issue certificate {n} ({}): {why}",
                describe(issuer),
                describe(child)
            ))
        };
        if issuer.subject_name().to_der()? != child.issuer_name().to_der()? {
            return Err(broken(format!(
                "certificate {n} names its issuer {}",
                name_text(child.issuer_name())
            )));
        }
        let key = issuer.public_key()?;
        if !child.verify(&key).unwrap_or(false) {
            return Err(broken("its key does not verify the signature".into()));
        }
        if !is_ca(issuer) {
            return Err(broken("it is not a CA certificate".into()));
        }
        child = issuer;
    }
    Ok(())
}

/// Concatenated PEM of `certs` (the chain file's content).
pub fn certs_to_pem(certs: &[X509]) -> Result<Vec<u8>, CaError> {
    let mut out = Vec::new();
    for c in certs {
        out.extend(c.to_pem()?);
    }
    Ok(out)
}

fn is_ca(cert: &X509Ref) -> bool {
    use der::Decode;
    use x509_cert::ext::pkix::BasicConstraints;
    let Ok(der) = cert.to_der() else {
        return false;
    };
    let Ok(parsed) = x509_cert::Certificate::from_der(&der) else {
        return false;
    };
    matches!(
        parsed.tbs_certificate().get_extension::<BasicConstraints>(),
        Ok(Some((_, BasicConstraints { ca: true, .. })))
    )
}

fn describe(cert: &X509Ref) -> String {
    name_text(cert.subject_name())
}

fn name_text(name: &openssl::x509::X509NameRef) -> String {
    let s = name
        .entries()
        .map(|e| {
            let k = e.object().nid().short_name().unwrap_or("?");
            let v = e.data().to_string().unwrap_or_default();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join(",");
    if s.is_empty() {
        "empty name".into()
    } else {
        s
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
