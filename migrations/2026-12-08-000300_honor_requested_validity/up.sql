-- A profile may honour the validity a CSR asks for (Microsoft's enrollment
-- name-value pairs ValidityPeriod/ValidityPeriodUnits, which Windows' SCEP
-- client sends), never beyond validity_days. Off by default: a client
-- choosing its own validity is new behaviour an officer turns on.
--
-- The revision trigger fires on every UPDATE of the row, so changing it
-- raises the revision like any other setting.
ALTER TABLE device_profiles
    ADD COLUMN honor_requested_validity BOOLEAN NOT NULL DEFAULT FALSE;
