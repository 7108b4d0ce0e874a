//! The pool of distinct RSA-2048 device keys. Generating thousands of keys
//! takes minutes on two cores, so they are made in parallel before any
//! clock starts and cached on disk (`target/scepd-bench/keys.bin`, records
//! of a 4-byte big-endian length and a PKCS#1 DER private key) for the
//! next run.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;

pub type Key = PKey<Private>;

/// At least `n` distinct RSA-2048 keys: the cached ones, topped up.
pub fn pool(cache: &Path, n: usize) -> Result<Vec<Key>, String> {
    let mut keys = load(cache)?;
    if keys.len() >= n {
        keys.truncate(n);
        return Ok(keys);
    }
    let missing = n - keys.len();
    eprintln!(
        "generating {missing} RSA-2048 keys ({} cached in {})",
        keys.len(),
        cache.display()
    );
    let started = std::time::Instant::now();
    while keys.len() < n {
        // Saved in chunks so an interrupted generation is not lost.
        let fresh = generate((n - keys.len()).min(64))?;
        append(cache, &fresh)?;
        keys.extend(fresh);
        eprintln!(
            "  {} keys, {:.0}s",
            keys.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(keys)
}

fn generate(n: usize) -> Result<Vec<Key>, String> {
    let threads = std::thread::available_parallelism()
        .map(|t| t.get())
        .unwrap_or(2);
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(n));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| -> Result<(), String> {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let rsa = Rsa::generate(2048).map_err(|e| e.to_string())?;
                    let key = PKey::from_rsa(rsa).map_err(|e| e.to_string())?;
                    out.lock().map_err(|e| e.to_string())?.push(key);
                }
                Ok(())
            });
        }
    });
    let keys = out.into_inner().map_err(|e| e.to_string())?;
    if keys.len() != n {
        return Err(format!("generated {} of {n} keys", keys.len()));
    }
    Ok(keys)
}

fn load(cache: &Path) -> Result<Vec<Key>, String> {
    let mut buf = vec![];
    match std::fs::File::open(cache) {
        Ok(mut f) => f.read_to_end(&mut buf).map_err(|e| e.to_string())?,
        Err(_) => return Ok(vec![]),
    };
    let mut keys = vec![];
    let mut rest = &buf[..];
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() < 4 + len {
            break; // a torn last record: drop it
        }
        let rsa = Rsa::private_key_from_der(&rest[4..4 + len]).map_err(|e| e.to_string())?;
        keys.push(PKey::from_rsa(rsa).map_err(|e| e.to_string())?);
        rest = &rest[4 + len..];
    }
    Ok(keys)
}

fn append(cache: &Path, keys: &[Key]) -> Result<(), String> {
    if let Some(dir) = cache.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cache)
        .map_err(|e| format!("{}: {e}", cache.display()))?;
    for k in keys {
        let der = k
            .rsa()
            .and_then(|r| r.private_key_to_der())
            .map_err(|e| e.to_string())?;
        f.write_all(&(der.len() as u32).to_be_bytes())
            .and_then(|()| f.write_all(&der))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
