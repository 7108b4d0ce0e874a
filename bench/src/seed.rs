//! `--seed-rows N`: N issued certificates and N used challenges put into
//! scepd's database with `generate_series` before the run, so that the
//! figure shows whether enrollment cost grows with the work already done.
//! Rows are realistic in size (a ~900-byte DER blob, unique serial,
//! fingerprint and secret hash) so indexes grow as in production. A
//! CHECKPOINT follows so the seed's WAL is not flushed during the run.

use std::process::Command;
use std::time::Instant;

const SQL: &str = "\
BEGIN;
INSERT INTO challenges (secret_hash, profile_id, organization_id, expires_at, used_at, created_by, created_at)
SELECT sha256(convert_to('bench-seed-challenge-' || g, 'UTF8')), p.id, o.id,
       now() - interval '1 hour', now() - interval '2 hours', 'bench-seed', now() - interval '3 hours'
FROM generate_series(1, :n) g,
     (SELECT id FROM device_profiles WHERE profile_id = 'default') p,
     (SELECT id FROM organizations ORDER BY id LIMIT 1) o;
INSERT INTO certificates (serial, profile_id, organization_id, subject, common_name,
                          not_before, not_after, fingerprint_sha256, public_key_sha256,
                          issuer_sha256, der)
SELECT upper(md5('bench-seed-serial-' || g)), p.id, o.id, 'CN=seed-' || g, 'seed-' || g,
       now() - interval '1 day', now() + interval '364 days',
       sha256(convert_to('bench-seed-fp-' || g, 'UTF8')),
       sha256(convert_to('bench-seed-key-' || g, 'UTF8')),
       sha256(convert_to('bench-seed-issuer', 'UTF8')),
       decode(repeat(md5('bench-seed-der-' || g), 28), 'hex') || decode(repeat(md5('x' || g), 28), 'hex')
FROM generate_series(1, :n) g,
     (SELECT id FROM device_profiles WHERE profile_id = 'default') p,
     (SELECT id FROM organizations ORDER BY id LIMIT 1) o;
COMMIT;
VACUUM ANALYZE challenges;
VACUUM ANALYZE certificates;
CHECKPOINT;
";

/// Insert `n` certificates and `n` used challenges with `psql`.
pub fn seed(database_url: &str, n: u64) -> Result<(), String> {
    eprintln!("seeding {n} certificates and {n} used challenges");
    let started = Instant::now();
    let out = Command::new("psql")
        .arg(database_url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-v"])
        .arg(format!("n={n}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(SQL.as_bytes())?;
            }
            child.wait_with_output()
        })
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "seeding failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!("  done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
