//! The machine's RSA-2048 speed, measured in the run itself. An enrollment
//! costs three RSA-2048 private-key operations (decrypting the envelope's
//! key, signing the certificate, signing the CertRep), so with every core
//! doing nothing else a server could answer at most
//! `cores × private operations per second per core / 3` enrollments a
//! second. That floor moves with the host (15-20 % between these 2-core
//! machines, and within a session), so each run reports its enrollments/s
//! also as a share of the floor it measured: the figure that compares
//! across machines.

use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::sign::Signer;

use crate::keys::Key;

/// RSA private-key operations per enrollment (RFC 8894 PKCSReq → CertRep).
const OPS_PER_ENROLLMENT: f64 = 3.0;

/// One measurement of the machine's RSA speed.
#[derive(Clone, Copy, Debug)]
pub struct RsaSpeed {
    /// SHA-256 RSA-2048 PKCS#1 v1.5 signatures per second on one thread.
    pub per_core: f64,
    /// Cores available to the run.
    pub cores: usize,
}

impl RsaSpeed {
    /// Signs with `key` on this thread for about `for_at_least`.
    pub fn measure(key: &Key, for_at_least: Duration) -> Result<RsaSpeed, String> {
        let msg = [0x5a_u8; 64];
        let started = Instant::now();
        let mut n = 0u32;
        while n == 0 || started.elapsed() < for_at_least {
            let mut s = Signer::new(MessageDigest::sha256(), key).map_err(|e| e.to_string())?;
            s.sign_oneshot_to_vec(&msg).map_err(|e| e.to_string())?;
            n += 1;
        }
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        Ok(RsaSpeed {
            per_core: f64::from(n) / started.elapsed().as_secs_f64(),
            cores,
        })
    }

    /// Enrollments/s if the cores did nothing but the three RSA operations.
    pub fn floor(self) -> f64 {
        self.ops_per_second() / OPS_PER_ENROLLMENT
    }

    /// RSA-2048 private-key operations per second on every core: the floor
    /// of anything costing one (an OCSP answer).
    pub fn ops_per_second(self) -> f64 {
        self.cores as f64 * self.per_core
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_is_three_private_operations_per_enrollment_on_every_core() {
        let s = RsaSpeed {
            per_core: 3_150.0,
            cores: 2,
        };
        assert!((s.floor() - 2_100.0).abs() < 1e-9);
    }

    #[test]
    fn measures_a_positive_rate_with_a_real_key() {
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let s = RsaSpeed::measure(&key, Duration::from_millis(50)).unwrap();
        assert!(s.per_core > 0.0 && s.per_core.is_finite());
        assert!(s.cores >= 1);
    }
}
