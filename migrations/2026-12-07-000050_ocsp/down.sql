ALTER TABLE device_profiles
    DROP COLUMN include_ocsp_url,
    DROP COLUMN include_crl_dp;
