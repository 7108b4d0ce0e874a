//! Per-profile settings of the optional Apple payloads (Wi-Fi EAP-TLS and
//! IKEv2 VPN) that an exported `.mobileconfig` adds next to its SCEP payload.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::profile_apple_payloads;
use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = profile_apple_payloads)]
#[diesel(treat_none_as_null = true)]
pub struct ApplePayloads {
    pub profile_id: i64,
    pub wifi_ssid: Option<String>,
    pub wifi_hidden: bool,
    /// `WPA2` (also joins WPA3) or `WPA3`.
    pub wifi_encryption: String,
    pub wifi_trusted_server_names: Vec<String>,
    pub vpn_name: Option<String>,
    pub vpn_remote_address: Option<String>,
    pub vpn_remote_identifier: Option<String>,
    pub vpn_local_identifier: Option<String>,
    #[diesel(skip_insertion, skip_update)]
    pub updated_at: DateTime<Utc>,
}

impl ApplePayloads {
    /// No Wi-Fi and no VPN for `profile_id`.
    pub fn none(profile_id: i64) -> Self {
        Self {
            profile_id,
            wifi_ssid: None,
            wifi_hidden: false,
            wifi_encryption: "WPA2".into(),
            wifi_trusted_server_names: vec![],
            vpn_name: None,
            vpn_remote_address: None,
            vpn_remote_identifier: None,
            vpn_local_identifier: None,
            updated_at: Utc::now(),
        }
    }
}

/// The settings of a profile; `None` when it has no Apple payloads.
pub fn for_profile(
    conn: &mut PgConnection,
    profile_id: i64,
) -> Result<Option<ApplePayloads>, StoreError> {
    Ok(profile_apple_payloads::table
        .find(profile_id)
        .select(ApplePayloads::as_select())
        .first(conn)
        .optional()?)
}

/// Insert or replace the settings of `p.profile_id`.
pub fn upsert(conn: &mut PgConnection, p: &ApplePayloads) -> Result<ApplePayloads, StoreError> {
    Ok(diesel::insert_into(profile_apple_payloads::table)
        .values(p)
        .on_conflict(profile_apple_payloads::profile_id)
        .do_update()
        .set((p, profile_apple_payloads::updated_at.eq(diesel::dsl::now)))
        .returning(ApplePayloads::as_returning())
        .get_result(conn)?)
}
