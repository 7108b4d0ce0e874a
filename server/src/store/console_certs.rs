//! Certificates as the RA console sees them: a scoped, filtered, keyset
//! paginated list (newest first, by `certificates_listing` and the per-scope
//! indexes of migration `000006`), one certificate through the scope, and
//! the dashboard's issuance and expiry figures. An officer never reads a
//! certificate outside its scope: out of scope is `NotFound`.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Date, Json, Text, Timestamptz};

use super::certificates::{Certificate, Revocation};
use super::queue::{like_pattern, Cursor, Scope};
use super::schema::{certificates, revocations};
use super::StoreError;

/// A list row: everything but the DER (which a page of 50 need not carry).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = certificates)]
pub struct CertRow {
    pub id: i64,
    pub serial: String,
    pub request_id: Option<i64>,
    pub profile_id: i64,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub subject: String,
    pub common_name: Option<String>,
    pub sans: Vec<String>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub status: String,
    pub fingerprint_sha256: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

impl CertRow {
    /// valid / expired / revoked, as the console shows it: the stored status
    /// only knows valid and revoked; expiry is a matter of the clock.
    pub fn state(&self, now: DateTime<Utc>) -> CertState {
        if self.status == "revoked" {
            CertState::Revoked
        } else if self.not_after <= now {
            CertState::Expired
        } else {
            CertState::Valid
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertState {
    Valid,
    Expired,
    Revoked,
}

impl CertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<CertState> {
        [Self::Valid, Self::Expired, Self::Revoked]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// Certificate list filters from the console.
#[derive(Debug, Clone, Default)]
pub struct CertFilter {
    /// Substring of CN, subject, a SAN or the serial (hex, colons allowed),
    /// or a whole SHA-256 fingerprint.
    pub text: Option<String>,
    pub state: Option<CertState>,
    /// Database id of the profile.
    pub profile_id: Option<i64>,
    pub organization_id: Option<i64>,
    /// Valid certificates expiring within this many days.
    pub expiring_days: Option<i64>,
}

#[derive(Debug)]
pub struct CertPage {
    pub rows: Vec<CertRow>,
    pub next: Option<Cursor>,
}

type Boxed<'a> = certificates::BoxedQuery<'a, Pg>;

fn in_scope<'a>(q: Boxed<'a>, scope: &Scope) -> Boxed<'a> {
    match scope {
        Scope::All => q,
        Scope::Limited {
            organizations,
            departments,
        } => q.filter(
            certificates::organization_id
                .eq_any(organizations.clone())
                .or(certificates::department_id
                    .assume_not_null()
                    .eq_any(departments.clone())
                    .and(certificates::department_id.is_not_null())),
        ),
    }
}

/// Hex digits of `text` without separators, uppercase (serials are stored
/// so), or `None` when it is not hex.
fn hex_of(text: &str) -> Option<String> {
    let clean: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .collect::<String>()
        .to_uppercase();
    (!clean.is_empty() && clean.chars().all(|c| c.is_ascii_hexdigit())).then_some(clean)
}

fn filtered<'a>(scope: &Scope, f: &CertFilter, now: DateTime<Utc>) -> Boxed<'a> {
    let mut q = in_scope(certificates::table.into_boxed(), scope);
    if let Some(t) = text_of(f) {
        let p = like_pattern(t);
        let hex = hex_of(t);
        // Names match as substrings (trigram indexes); a SAN, a serial and
        // a fingerprint match exactly (their own indexes), so no arm of
        // the OR forces a scan of every certificate.
        let serial = hex.clone().unwrap_or_default();
        let fingerprint = hex
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() == 32)
            .unwrap_or_default();
        let sans: Vec<String> = ["DNS", "email", "URI", "IP", "UPN"]
            .iter()
            .map(|k| format!("{k}:{t}"))
            .collect();
        q = q.filter(
            sql::<Bool>("(certificates.common_name ILIKE ")
                .bind::<Text, _>(p.clone())
                .sql(" OR certificates.subject ILIKE ")
                .bind::<Text, _>(p)
                .sql(" OR certificates.sans && ")
                .bind::<diesel::sql_types::Array<Text>, _>(sans)
                .sql(" OR certificates.serial = ")
                .bind::<Text, _>(serial)
                .sql(" OR certificates.fingerprint_sha256 = ")
                .bind::<Bytea, _>(fingerprint)
                .sql(")"),
        );
    }
    match f.state {
        Some(CertState::Valid) => {
            q = q
                .filter(certificates::status.eq("valid"))
                .filter(certificates::not_after.gt(now))
        }
        Some(CertState::Expired) => {
            q = q
                .filter(certificates::status.eq("valid"))
                .filter(certificates::not_after.le(now))
        }
        Some(CertState::Revoked) => q = q.filter(certificates::status.eq("revoked")),
        None => {}
    }
    if let Some(p) = f.profile_id {
        q = q.filter(certificates::profile_id.eq(p));
    }
    if let Some(o) = f.organization_id {
        q = q.filter(certificates::organization_id.eq(o));
    }
    if let Some(d) = f.expiring_days {
        q = q
            .filter(certificates::status.eq("valid"))
            .filter(certificates::not_after.gt(now))
            .filter(certificates::not_after.le(now + Duration::days(d)));
    }
    q
}

/// How a text search picks its way (see [`list`]); tests shrink these to
/// take every way on a few rows.
#[derive(Debug, Clone, Copy)]
pub struct SearchLimits {
    /// Newest certificates looked through first.
    pub probe: i64,
    /// Matches few enough to be found through the search indexes; more
    /// are paged along the date index.
    pub narrow: usize,
}

impl Default for SearchLimits {
    fn default() -> Self {
        Self {
            probe: 5_000,
            narrow: 5_000,
        }
    }
}

/// Rows strictly older than the cursor. The bare `created_at <=` is
/// redundant but lets an index scan start at the cursor (PostgreSQL
/// cannot use the OR as an index condition).
fn after_cursor<'a>(q: Boxed<'a>, after: Option<Cursor>) -> Boxed<'a> {
    match after {
        Some(c) => q.filter(certificates::created_at.le(c.created_at)).filter(
            certificates::created_at
                .lt(c.created_at)
                .or(certificates::created_at
                    .eq(c.created_at)
                    .and(certificates::id.lt(c.id))),
        ),
        None => q,
    }
}

/// Rows strictly newer than `(at, id)`, bounded for an index scan likewise.
fn newer_than<'a>(q: Boxed<'a>, (at, id): (DateTime<Utc>, i64)) -> Boxed<'a> {
    q.filter(certificates::created_at.ge(at)).filter(
        certificates::created_at
            .gt(at)
            .or(certificates::created_at.eq(at).and(certificates::id.gt(id))),
    )
}

/// The page `q` (already filtered and after the cursor) yields, newest
/// first.
fn page_of(conn: &mut PgConnection, q: Boxed<'_>, limit: i64) -> Result<CertPage, StoreError> {
    let mut rows: Vec<CertRow> = q
        .order((certificates::created_at.desc(), certificates::id.desc()))
        .limit(limit + 1)
        .select(CertRow::as_select())
        .load(conn)?;
    let next = Cursor::cut(&mut rows, limit, |r| (r.created_at, r.id));
    Ok(CertPage { rows, next })
}

/// Which scans the planner may use for the statements that follow, until
/// the end of the transaction.
fn scans(conn: &mut PgConnection, bitmap: bool, seq: bool) -> Result<(), StoreError> {
    let on = |b: bool| if b { "on" } else { "off" };
    conn.batch_execute(&format!(
        "SET LOCAL enable_bitmapscan = {}; SET LOCAL enable_seqscan = {}",
        on(bitmap),
        on(seq)
    ))?;
    Ok(())
}

/// Search text, trimmed, if any.
fn text_of(f: &CertFilter) -> Option<&str> {
    f.text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// Whether the trigram indexes can narrow a substring search for `text`:
/// pg_trgm takes trigrams from runs of letters and digits, so without a
/// run of three it would scan the whole index.
fn has_trigram(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|w| w.chars().count() >= 3)
}

/// `EXPLAIN (FORMAT JSON)` of a query, for PostgreSQL's estimate of how
/// many rows it returns.
struct Explain<Q>(Q);

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("EXPLAIN (FORMAT JSON) ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> Query for Explain<Q> {
    type SqlType = Json;
}

impl<Q> RunQueryDsl<PgConnection> for Explain<Q> {}

/// How many certificates PostgreSQL expects to have `text` in a name. The
/// search's other arms are left out: exact matches are few, and the
/// planner's default guess for the SAN overlap alone is thousands.
fn expected_name_matches(conn: &mut PgConnection, text: &str) -> Result<f64, StoreError> {
    let p = like_pattern(text);
    let q = certificates::table
        .filter(
            certificates::common_name
                .assume_not_null()
                .ilike(p.clone())
                .or(certificates::subject.ilike(p)),
        )
        .select(certificates::id);
    let plan: serde_json::Value = Explain(q).get_result(conn)?;
    Ok(plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(f64::MAX))
}

/// Step 1 of a search: the `probe` newest certificates after the cursor,
/// walked along the date index without the trigram indexes. `None` when
/// they hold no full page and older ones remain.
fn probe(
    conn: &mut PgConnection,
    matching: impl Fn() -> Boxed<'static>,
    after: Option<Cursor>,
    limit: i64,
    limits: SearchLimits,
) -> Result<Option<CertPage>, StoreError> {
    scans(conn, false, true)?;
    // The oldest end of the probe, on the index alone and before any
    // filter: `probe` index entries at most.
    let edge: Option<(DateTime<Utc>, i64)> = after_cursor(certificates::table.into_boxed(), after)
        .order((certificates::created_at.desc(), certificates::id.desc()))
        .offset(limits.probe)
        .limit(1)
        .select((certificates::created_at, certificates::id))
        .first(conn)
        .optional()?;
    let q = match edge {
        Some(e) => newer_than(matching(), e),
        None => matching(),
    };
    let page = page_of(conn, q, limit)?;
    // Without an edge the probe held every remaining certificate.
    Ok((page.next.is_some() || edge.is_none()).then_some(page))
}

/// Step 2: up to `narrow + 1` matches through the search indexes (no
/// sequential scan, unless the text has no trigram to search by); when
/// that is all of them, the newest of them by id. `None` when there are
/// more.
fn by_search_indexes(
    conn: &mut PgConnection,
    matching: impl Fn() -> Boxed<'static>,
    trigrams: bool,
    limit: i64,
    limits: SearchLimits,
) -> Result<Option<CertPage>, StoreError> {
    scans(conn, true, !trigrams)?;
    let mut found: Vec<(DateTime<Utc>, i64)> = matching()
        .select((certificates::created_at, certificates::id))
        .limit(i64::try_from(limits.narrow).unwrap_or(i64::MAX - 1) + 1)
        .load(conn)?;
    if found.len() > limits.narrow {
        return Ok(None);
    }
    found.sort_unstable_by(|a, b| b.cmp(a));
    found.truncate(usize::try_from(limit + 1).unwrap_or(0));
    let ids: Vec<i64> = found.into_iter().map(|(_, id)| id).collect();
    let q = certificates::table
        .into_boxed()
        .filter(certificates::id.eq_any(ids));
    page_of(conn, q, limit).map(Some)
}

/// A page of certificates in scope matching `f`, newest first, after
/// `after`. Without search text it is a range of the date (or per-scope)
/// index. With it, the cost must not hang on how well the planner guesses
/// the number of matches (issue 4: `dev-4` took 3 to 900 ms, a LIMITed
/// sequential scan starting where the previous synchronised scan had
/// stopped), so in one read-only snapshot each step gets the scans it
/// needs. The estimate only orders the steps:
///
/// * many matches expected: the newest certificates first (a common
///   substring fills its page there, `probe`), then the search indexes
///   (`by_search_indexes`), then the date index;
/// * few expected: the search indexes, then the date index.
///
/// The last step, the date index with the text as a filter (neither
/// bitmap nor sequential scans), is reached only with more than `narrow`
/// matches, so a page of them is near.
pub fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    f: &CertFilter,
    after: Option<Cursor>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<CertPage, StoreError> {
    list_with(conn, scope, f, after, limit, now, SearchLimits::default())
}

/// [`list`] with other search limits.
pub fn list_with(
    conn: &mut PgConnection,
    scope: &Scope,
    f: &CertFilter,
    after: Option<Cursor>,
    limit: i64,
    now: DateTime<Utc>,
    limits: SearchLimits,
) -> Result<CertPage, StoreError> {
    let matching = || after_cursor(filtered(scope, f, now), after);
    let Some(text) = text_of(f) else {
        return page_of(conn, matching(), limit);
    };
    let trigrams = has_trigram(text);
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(|conn| {
            let many = expected_name_matches(conn, text)? > limits.narrow as f64;
            if many {
                if let Some(page) = probe(conn, matching, after, limit, limits)? {
                    return Ok(page);
                }
            }
            if let Some(page) = by_search_indexes(conn, matching, trigrams, limit, limits)? {
                return Ok(page);
            }
            scans(conn, false, false)?;
            page_of(conn, matching(), limit)
        })
}

/// One certificate (with its DER), or `NotFound` when it does not exist or
/// is outside the scope.
pub fn certificate(
    conn: &mut PgConnection,
    scope: &Scope,
    id: i64,
) -> Result<Certificate, StoreError> {
    Ok(in_scope(certificates::table.into_boxed(), scope)
        .filter(certificates::id.eq(id))
        .select(Certificate::as_select())
        .first(conn)?)
}

/// The certificate's revocation, if revoked.
pub fn revocation(conn: &mut PgConnection, id: i64) -> Result<Option<Revocation>, StoreError> {
    Ok(revocations::table
        .find(id)
        .select(Revocation::as_select())
        .first(conn)
        .optional()?)
}

/// Ids of the certificates that replaced `id` (renewals).
pub fn replaced_by(conn: &mut PgConnection, id: i64) -> Result<Vec<i64>, StoreError> {
    Ok(certificates::table
        .filter(certificates::replaces_id.eq(id))
        .order(certificates::id)
        .select(certificates::id)
        .load(conn)?)
}

#[derive(QueryableByName)]
struct DayCount {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Certificates issued per UTC day since `since`, in scope; days without
/// any are absent. Raw SQL because diesel cannot group a boxed query; the
/// scope arrives as bound arrays, never as text.
pub fn issued_per_day(
    conn: &mut PgConnection,
    scope: &Scope,
    since: DateTime<Utc>,
) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
    let (all, orgs, depts) = match scope {
        Scope::All => (true, vec![], vec![]),
        Scope::Limited {
            organizations,
            departments,
        } => (false, organizations.clone(), departments.clone()),
    };
    let rows: Vec<DayCount> = diesel::sql_query(
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n \
         FROM certificates WHERE created_at >= $1 \
         AND ($2 OR organization_id = ANY($3) OR department_id = ANY($4)) \
         GROUP BY 1 ORDER BY 1",
    )
    .bind::<Timestamptz, _>(since)
    .bind::<Bool, _>(all)
    .bind::<Array<BigInt>, _>(orgs)
    .bind::<Array<BigInt>, _>(depts)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.day, r.n)).collect())
}

/// Valid certificates in scope expiring within each of `days` from `now`.
pub fn expiring_counts(
    conn: &mut PgConnection,
    scope: &Scope,
    now: DateTime<Utc>,
    days: &[i64],
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut out = Vec::with_capacity(days.len());
    for &d in days {
        let f = CertFilter {
            expiring_days: Some(d),
            ..CertFilter::default()
        };
        let n: i64 = filtered(scope, &f, now).count().get_result(conn)?;
        out.push((d, n));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_words_have_no_trigram_to_search_by() {
        assert!(has_trigram("dev-4"));
        assert!(has_trigram("laptop"));
        assert!(!has_trigram("zz"));
        assert!(!has_trigram("a-b.c"));
    }

    #[test]
    fn only_hex_text_is_compared_with_serials() {
        assert_eq!(hex_of("0a:bC"), Some("0ABC".into()));
        assert_eq!(hex_of("laptop"), None);
        assert_eq!(hex_of(" "), None);
    }

    #[test]
    fn expiry_is_shown_from_the_clock() {
        let now = Utc::now();
        let mut r = CertRow {
            id: 1,
            serial: "01".into(),
            request_id: None,
            profile_id: 1,
            organization_id: 1,
            department_id: None,
            subject: String::new(),
            common_name: None,
            sans: vec![],
            not_before: now,
            not_after: now,
            status: "valid".into(),
            fingerprint_sha256: vec![],
            created_at: now,
        };
        assert_eq!(r.state(now), CertState::Expired);
        r.not_after = now + Duration::days(1);
        assert_eq!(r.state(now), CertState::Valid);
        r.status = "revoked".into();
        assert_eq!(r.state(now), CertState::Revoked);
    }
}
