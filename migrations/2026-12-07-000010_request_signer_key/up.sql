-- The key that signed a request, when it is not the key being certified
-- (a renewal signed by the old certificate, or a first enrollment signed by
-- a throwaway certificate of another key). RFC 8894 §3.3.3 has CertPoll
-- signed like the request it polls, so a request is found by its
-- transactionID together with either key, never by the transactionID
-- alone, which travels in clear text. NULL: the signer held the CSR's key.
ALTER TABLE enrollment_requests ADD COLUMN signer_key_sha256 BYTEA;
CREATE INDEX enrollment_requests_signer_txid
    ON enrollment_requests (transaction_id, signer_key_sha256)
    WHERE signer_key_sha256 IS NOT NULL;
