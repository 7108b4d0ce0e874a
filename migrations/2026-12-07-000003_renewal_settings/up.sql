-- How a profile treats a renewal (RFC 8894 §3.3.1.2), beside
-- revoke_on_replace, which also revokes the certificate a renewal
-- supersedes once its successor is delivered.
--
-- auto_renew: on a manual profile, a renewal that keeps the certificate's
-- subject and SANs is issued at once instead of waiting for an officer.
-- An auto-approve profile renews at once whatever this says.
--
-- renewal_allows_identity_change: a renewal may ask for another subject or
-- other SANs than the certificate it renews; such a renewal always waits
-- for an officer. Off: it is refused.
--
-- The revision trigger fires on every UPDATE of the row, so changing
-- either column raises the revision like any other setting.
ALTER TABLE device_profiles
    ADD COLUMN auto_renew                     BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN renewal_allows_identity_change BOOLEAN NOT NULL DEFAULT FALSE;

-- A certificate is renewed once: every renewal looks up the requests that
-- renew its certificate.
CREATE INDEX enrollment_requests_renewal_of
    ON enrollment_requests (renewal_of) WHERE renewal_of IS NOT NULL;
