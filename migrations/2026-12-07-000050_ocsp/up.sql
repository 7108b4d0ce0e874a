-- Where a profile's certificates point relying parties for revocation
-- status (RFC 5280 §4.2.1.13 cRLDistributionPoints, §4.2.2.1
-- authorityInfoAccess id-ad-ocsp; docs/ocsp.md). Both on by default: every
-- scepd publishes CRLs and answers OCSP. A profile may carry either, both or
-- neither (clients that cannot reach the service, or check nothing).
--
-- The revision trigger fires on every UPDATE of the row, so changing either
-- raises the revision like any other setting.
ALTER TABLE device_profiles
    ADD COLUMN include_crl_dp BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN include_ocsp_url BOOLEAN NOT NULL DEFAULT TRUE;
