DROP INDEX enrollment_requests_transaction_key_renewal;
ALTER TABLE enrollment_requests
    ADD CONSTRAINT enrollment_requests_transaction_id_public_key_sha256_key
    UNIQUE (transaction_id, public_key_sha256);
