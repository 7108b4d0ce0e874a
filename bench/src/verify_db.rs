//! `--verify-db` (issue 7, faults): after a scepd level, the database must
//! agree with what the clients received — every certificate a client got
//! is stored (compared by the SHA-256 of its DER), no serial number is
//! stored twice, no challenge enrolled two requests, and no auto-approved
//! request was left without its certificate (no half-written enrollment).
//! Read with `psql`, like `seed.rs`, so the bench needs no database driver.

use std::collections::HashSet;
use std::process::Command;

pub(crate) fn psql(database_url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .arg(database_url)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn number(database_url: &str, sql: &str) -> Result<i64, String> {
    let text = psql(database_url, sql)?;
    text.parse()
        .map_err(|e| format!("{sql}: {text:?} is not a number: {e}"))
}

/// The checks; `received` holds the SHA-256 of every certificate's DER a
/// client received and verified in this run. Ok: a one-line summary.
pub fn check(database_url: &str, received: &[[u8; 32]]) -> Result<String, String> {
    let stored: HashSet<String> = psql(
        database_url,
        "SELECT encode(sha256(der), 'hex') FROM certificates",
    )?
    .lines()
    .map(str::to_string)
    .collect();
    let missing = received
        .iter()
        .filter(|h| !stored.contains(&hex::encode(h)))
        .count();
    let duplicate_serials = number(
        database_url,
        "SELECT count(*) - count(DISTINCT serial) FROM certificates",
    )?;
    let reused_challenges = number(
        database_url,
        "SELECT count(*) FROM (SELECT challenge_id FROM enrollment_requests \
         WHERE challenge_id IS NOT NULL GROUP BY challenge_id HAVING count(*) > 1) d",
    )?;
    let half_written = number(
        database_url,
        "SELECT count(*) FROM enrollment_requests \
         WHERE status <> 'issued' OR certificate_id IS NULL",
    )?;
    let mut problems = vec![];
    if missing > 0 {
        problems.push(format!("{missing} received certificates are not stored"));
    }
    if duplicate_serials > 0 {
        problems.push(format!("{duplicate_serials} duplicate serial numbers"));
    }
    if reused_challenges > 0 {
        problems.push(format!("{reused_challenges} challenges used twice"));
    }
    if half_written > 0 {
        problems.push(format!("{half_written} requests without a certificate"));
    }
    if problems.is_empty() {
        Ok(format!(
            "database verified: {} received certificates all stored ({} stored), \
             no duplicate serial, no challenge used twice, no request without its certificate",
            received.len(),
            stored.len()
        ))
    } else {
        Err(problems.join("; "))
    }
}
