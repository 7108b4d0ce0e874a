-- Console search at scale: substring search on names uses trigram GIN
-- indexes (pg_trgm is a trusted extension, so a database owner may create
-- it); SAN, serial, fingerprint and transactionID searches are exact
-- matches on their own indexes, so every arm of the search's OR can use an
-- index and a million certificates are never scanned.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX certificates_cn_trgm ON certificates USING gin (common_name gin_trgm_ops);
CREATE INDEX certificates_subject_trgm ON certificates USING gin (subject gin_trgm_ops);
CREATE INDEX certificates_sans ON certificates USING gin (sans);
CREATE INDEX enrollment_requests_cn_trgm ON enrollment_requests USING gin (common_name gin_trgm_ops);
CREATE INDEX enrollment_requests_subject_trgm ON enrollment_requests USING gin (subject gin_trgm_ops);
