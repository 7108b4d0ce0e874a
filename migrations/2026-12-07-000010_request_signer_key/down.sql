DROP INDEX enrollment_requests_signer_txid;
ALTER TABLE enrollment_requests DROP COLUMN signer_key_sha256;
