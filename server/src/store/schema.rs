// @generated automatically by Diesel CLI.

diesel::table! {
    access_codes (id) {
        id -> Int8,
        organization_id -> Int8,
        department_id -> Nullable<Int8>,
        profile_id -> Nullable<Int8>,
        label -> Text,
        code_hash -> Text,
        enabled -> Bool,
        created_by -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    admin_scopes (id) {
        id -> Int8,
        admin_id -> Int8,
        organization_id -> Int8,
        department_id -> Nullable<Int8>,
    }
}

diesel::table! {
    admins (id) {
        id -> Int8,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        email -> Nullable<Text>,
        enabled -> Bool,
        created_at -> Timestamptz,
        notify_email -> Bool,
        must_change_password -> Bool,
        totp_secret -> Nullable<Bytea>,
        totp_enabled_at -> Nullable<Timestamptz>,
        totp_last_step -> Nullable<Int8>,
    }
}

diesel::table! {
    admin_recovery_codes (id) {
        id -> Int8,
        admin_id -> Int8,
        code_hash -> Bytea,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    api_key_profiles (api_key_id, profile_id) {
        api_key_id -> Int8,
        profile_id -> Int8,
    }
}

diesel::table! {
    api_key_scopes (api_key_id, organization_id) {
        api_key_id -> Int8,
        organization_id -> Int8,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Int8,
        name -> Text,
        token_hash -> Bytea,
        created_by -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        requests_per_minute -> Int4,
    }
}

diesel::table! {
    api_key_usage (api_key_id, window_start) {
        api_key_id -> Int8,
        window_start -> Timestamptz,
        count -> Int4,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        at -> Timestamptz,
        actor -> Text,
        event -> Text,
        target -> Nullable<Text>,
        details -> Jsonb,
        client_ip -> Nullable<Text>,
        organization_id -> Nullable<Int8>,
        department_id -> Nullable<Int8>,
        actor_officer_id -> Nullable<Int8>,
    }
}

diesel::table! {
    ca_identity (id) {
        id -> Int2,
        ca_cert -> Bytea,
        ca_sha256 -> Bytea,
        ca_chain_pem -> Text,
        ra_cert -> Bytea,
        ra_sha256 -> Bytea,
        ra_enc_cert -> Bytea,
        ra_enc_sha256 -> Bytea,
        next_ca_cert -> Nullable<Bytea>,
        next_ca_sha256 -> Nullable<Bytea>,
        next_ra_cert -> Nullable<Bytea>,
        next_ra_sha256 -> Nullable<Bytea>,
        next_ra_enc_cert -> Nullable<Bytea>,
        next_ra_enc_sha256 -> Nullable<Bytea>,
        recorded_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    certificates (id) {
        id -> Int8,
        serial -> Text,
        request_id -> Nullable<Int8>,
        profile_id -> Int8,
        organization_id -> Int8,
        department_id -> Nullable<Int8>,
        subject -> Text,
        common_name -> Nullable<Text>,
        sans -> Array<Text>,
        not_before -> Timestamptz,
        not_after -> Timestamptz,
        status -> Text,
        fingerprint_sha256 -> Bytea,
        public_key_sha256 -> Bytea,
        issuer_sha256 -> Bytea,
        der -> Bytea,
        replaces_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    challenge_failures (client_ip, window_start) {
        client_ip -> Text,
        window_start -> Timestamptz,
        count -> Int4,
    }
}

diesel::table! {
    challenges (id) {
        id -> Int8,
        secret_hash -> Bytea,
        profile_id -> Int8,
        organization_id -> Int8,
        department_id -> Nullable<Int8>,
        device_identity -> Nullable<Text>,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        created_by -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    console_sessions (id_hash) {
        id_hash -> Bytea,
        admin_id -> Int8,
        csrf_token -> Text,
        created_at -> Timestamptz,
        last_seen -> Timestamptz,
        expires_at -> Timestamptz,
        second_factor_pending -> Bool,
        second_factor_failures -> Int4,
        authenticated_at -> Timestamptz,
    }
}

diesel::table! {
    departments (id) {
        id -> Int8,
        organization_id -> Int8,
        name -> Text,
        enabled -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    device_profiles (id) {
        id -> Int8,
        profile_id -> Text,
        name -> Text,
        cert_type -> Text,
        validity_days -> Int4,
        key_usage -> Array<Text>,
        extended_key_usage -> Array<Text>,
        subject_template -> Text,
        san_types -> Array<Text>,
        san_pattern -> Nullable<Text>,
        min_rsa_bits -> Int4,
        allowed_ec_curves -> Array<Text>,
        hash_alg -> Text,
        approval_mode -> Text,
        renewal_window_days -> Int4,
        max_active_per_device -> Int4,
        revoke_on_replace -> Bool,
        allow_post -> Bool,
        enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        revision -> Int8,
        certrep_includes_chain -> Bool,
        signer_key_must_match -> Bool,
        auto_renew -> Bool,
        renewal_allows_identity_change -> Bool,
        min_cipher -> Text,
        include_crl_dp -> Bool,
        include_ocsp_url -> Bool,
        honor_requested_validity -> Bool,
    }
}

diesel::table! {
    enrollment_requests (id) {
        id -> Int8,
        transaction_id -> Text,
        public_key_sha256 -> Bytea,
        message_type -> Text,
        profile_id -> Int8,
        organization_id -> Int8,
        department_id -> Nullable<Int8>,
        status -> Text,
        subject -> Text,
        common_name -> Nullable<Text>,
        sans -> Array<Text>,
        key_desc -> Text,
        csr_der -> Bytea,
        challenge_id -> Nullable<Int8>,
        renewal_of -> Nullable<Int8>,
        certificate_id -> Nullable<Int8>,
        decline_reason -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        signer_key_sha256 -> Nullable<Bytea>,
    }
}

diesel::table! {
    intune_settings (profile_id) {
        profile_id -> Int8,
        tenant -> Text,
        client_id -> Text,
        client_secret_sealed -> Bytea,
        organization_id -> Int8,
        department_id -> Nullable<Int8>,
        authority_url -> Text,
        graph_url -> Text,
        intune_resource_url -> Text,
        intune_app_id -> Text,
        validation_url -> Nullable<Text>,
        pki_connector_url -> Nullable<Text>,
        revocation_enabled -> Bool,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Timestamptz>,
        last_success_at -> Nullable<Timestamptz>,
        last_revocation_sync_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Int8,
        username -> Text,
        client_ip -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    notification_contacts (id) {
        id -> Int8,
        organization_id -> Int8,
        profile_id -> Nullable<Int8>,
        email -> Text,
        events -> Array<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    organizations (id) {
        id -> Int8,
        name -> Text,
        enabled -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        kind -> Text,
        recipient -> Text,
        payload -> Jsonb,
        subject -> Nullable<Text>,
        body_text -> Nullable<Text>,
        body_html -> Nullable<Text>,
        dedupe_key -> Nullable<Text>,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        locked_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    profile_apple_payloads (profile_id) {
        profile_id -> Int8,
        wifi_ssid -> Nullable<Text>,
        wifi_hidden -> Bool,
        wifi_encryption -> Text,
        wifi_trusted_server_names -> Array<Text>,
        vpn_name -> Nullable<Text>,
        vpn_remote_address -> Nullable<Text>,
        vpn_remote_identifier -> Nullable<Text>,
        vpn_local_identifier -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    profile_scopes (id) {
        id -> Int8,
        profile_id -> Int8,
        organization_id -> Int8,
        department_id -> Nullable<Int8>,
    }
}

diesel::table! {
    profile_webhooks (id) {
        id -> Int8,
        profile_id -> Int8,
        purpose -> Text,
        url -> Text,
        secret_sealed -> Bytea,
        timeout_ms -> Int4,
        pending_on_error -> Bool,
        events -> Array<Text>,
        enabled -> Bool,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Timestamptz>,
        last_success_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    request_events (id) {
        id -> Int8,
        request_id -> Int8,
        from_status -> Nullable<Text>,
        to_status -> Text,
        actor -> Text,
        note -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    revocations (certificate_id) {
        certificate_id -> Int8,
        reason -> Text,
        revoked_at -> Timestamptz,
        revoked_by -> Text,
    }
}

diesel::table! {
    webhook_outbox (id) {
        id -> Int8,
        webhook_id -> Int8,
        event -> Text,
        payload -> Jsonb,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(access_codes -> departments (department_id));
diesel::joinable!(access_codes -> device_profiles (profile_id));
diesel::joinable!(access_codes -> organizations (organization_id));
diesel::joinable!(admin_recovery_codes -> admins (admin_id));
diesel::joinable!(admin_scopes -> admins (admin_id));
diesel::joinable!(admin_scopes -> departments (department_id));
diesel::joinable!(admin_scopes -> organizations (organization_id));
diesel::joinable!(api_key_profiles -> api_keys (api_key_id));
diesel::joinable!(api_key_profiles -> device_profiles (profile_id));
diesel::joinable!(api_key_scopes -> api_keys (api_key_id));
diesel::joinable!(api_key_scopes -> organizations (organization_id));
diesel::joinable!(api_key_usage -> api_keys (api_key_id));
diesel::joinable!(audit_log -> admins (actor_officer_id));
diesel::joinable!(audit_log -> departments (department_id));
diesel::joinable!(audit_log -> organizations (organization_id));
diesel::joinable!(certificates -> departments (department_id));
diesel::joinable!(certificates -> device_profiles (profile_id));
diesel::joinable!(certificates -> organizations (organization_id));
diesel::joinable!(challenges -> departments (department_id));
diesel::joinable!(challenges -> device_profiles (profile_id));
diesel::joinable!(challenges -> organizations (organization_id));
diesel::joinable!(console_sessions -> admins (admin_id));
diesel::joinable!(departments -> organizations (organization_id));
diesel::joinable!(enrollment_requests -> challenges (challenge_id));
diesel::joinable!(enrollment_requests -> departments (department_id));
diesel::joinable!(enrollment_requests -> device_profiles (profile_id));
diesel::joinable!(enrollment_requests -> organizations (organization_id));
diesel::joinable!(intune_settings -> departments (department_id));
diesel::joinable!(intune_settings -> device_profiles (profile_id));
diesel::joinable!(intune_settings -> organizations (organization_id));
diesel::joinable!(notification_contacts -> device_profiles (profile_id));
diesel::joinable!(notification_contacts -> organizations (organization_id));
diesel::joinable!(profile_apple_payloads -> device_profiles (profile_id));
diesel::joinable!(profile_scopes -> departments (department_id));
diesel::joinable!(profile_scopes -> device_profiles (profile_id));
diesel::joinable!(profile_scopes -> organizations (organization_id));
diesel::joinable!(profile_webhooks -> device_profiles (profile_id));
diesel::joinable!(request_events -> enrollment_requests (request_id));
diesel::joinable!(revocations -> certificates (certificate_id));
diesel::joinable!(webhook_outbox -> profile_webhooks (webhook_id));

diesel::allow_tables_to_appear_in_same_query!(
    access_codes,
    admin_recovery_codes,
    admin_scopes,
    admins,
    api_key_profiles,
    api_key_scopes,
    api_key_usage,
    api_keys,
    audit_log,
    ca_identity,
    certificates,
    challenge_failures,
    challenges,
    console_sessions,
    departments,
    device_profiles,
    enrollment_requests,
    intune_settings,
    login_failures,
    notification_contacts,
    organizations,
    outbox,
    profile_apple_payloads,
    profile_scopes,
    profile_webhooks,
    request_events,
    revocations,
    webhook_outbox,
);
