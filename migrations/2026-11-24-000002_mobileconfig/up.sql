-- Per-profile settings for the optional Apple payloads that use the SCEP
-- identity in an exported .mobileconfig: a WPA2/WPA3-Enterprise EAP-TLS
-- network (com.apple.wifi.managed) and an IKEv2 VPN (com.apple.vpn.managed).
-- One row per profile; no row means neither payload is exported.
CREATE TABLE profile_apple_payloads (
    profile_id                BIGINT PRIMARY KEY REFERENCES device_profiles(id),
    wifi_ssid                 TEXT CHECK (length(wifi_ssid) BETWEEN 1 AND 32),
    wifi_hidden               BOOLEAN NOT NULL DEFAULT FALSE,
    -- Apple's EncryptionType: WPA2 also joins WPA3 networks; WPA3 only WPA3.
    wifi_encryption           TEXT NOT NULL DEFAULT 'WPA2' CHECK (wifi_encryption IN ('WPA2', 'WPA3')),
    -- RADIUS server certificate names the device trusts (TLSTrustedServerNames).
    wifi_trusted_server_names TEXT[] NOT NULL DEFAULT '{}',
    vpn_name                  TEXT,
    vpn_remote_address        TEXT,
    vpn_remote_identifier     TEXT,
    vpn_local_identifier      TEXT,
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A VPN needs at least the server address and its identity.
    CHECK ((vpn_remote_address IS NULL) = (vpn_remote_identifier IS NULL))
);
