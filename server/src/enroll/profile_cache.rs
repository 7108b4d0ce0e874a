//! Enabled profiles by name, kept in memory for the one-statement path so
//! that a common enrollment needs no read before its write. Nothing here
//! can matter for correctness: the statement that writes an enrollment
//! checks the profile revision it was made with (`store::issue_tx`), and
//! every other outcome — the general path, polls, GetCert, GetCRL — uses
//! the profile as the database has it now (read by the same request),
//! refreshing the entry. Only profiles that exist are
//! kept, so a client cannot grow the map by inventing names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::EnrollError;
use crate::store::profiles::{self, Profile};
use crate::store::{PgPool, StoreError};

/// How long an entry serves before it is read again even if unused by the
/// general path; only bounds how long a removed profile stays in memory.
const TTL: Duration = Duration::from_secs(60);

/// A profile as [`ProfileCache::get`] found it.
pub(super) struct ProfileCopy {
    pub(super) profile: Arc<Profile>,
    /// Read from the database by this very call, not from memory.
    read_now: bool,
}

#[derive(Default)]
pub(super) struct ProfileCache {
    entries: Mutex<HashMap<String, (Instant, Arc<Profile>)>>,
}

impl ProfileCache {
    /// The enabled profile `name`, from memory when a copy is recent.
    pub(super) fn get(&self, pool: &PgPool, name: &str) -> Result<ProfileCopy, EnrollError> {
        let now = Instant::now();
        if let Some((at, p)) = self.lock().get(name) {
            if now.duration_since(*at) < TTL {
                return Ok(ProfileCopy {
                    profile: Arc::clone(p),
                    read_now: false,
                });
            }
        }
        Ok(ProfileCopy {
            profile: self.load(pool, name)?,
            read_now: true,
        })
    }

    /// The profile of `copy` as the database has it now: `copy` itself
    /// when it was just read, so a miss costs one read, not two.
    pub(super) fn current(
        &self,
        pool: &PgPool,
        copy: &ProfileCopy,
    ) -> Result<Arc<Profile>, EnrollError> {
        if copy.read_now {
            Ok(Arc::clone(&copy.profile))
        } else {
            self.load(pool, &copy.profile.profile_id)
        }
    }

    /// The enabled profile `name` as the database has it now.
    pub(super) fn load(&self, pool: &PgPool, name: &str) -> Result<Arc<Profile>, EnrollError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        let found = profiles::by_profile_id(&mut conn, name)?.filter(|p| p.enabled);
        let mut entries = self.lock();
        match found {
            Some(p) => {
                let p = Arc::new(p);
                entries.insert(name.to_string(), (Instant::now(), Arc::clone(&p)));
                Ok(p)
            }
            None => {
                entries.remove(name);
                Err(EnrollError::NotFound(format!("no SCEP profile {name:?}")))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<Profile>)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
