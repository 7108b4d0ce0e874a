-- A request is one (transactionID, key) per certificate it renews.
-- certmonger derives its transactionID from the public key, so a renewal
-- that keeps the key carries the transactionID of the first enrollment:
-- it is a new request (signed by the certificate it renews), not a
-- retransmission of the first.
ALTER TABLE enrollment_requests
    DROP CONSTRAINT enrollment_requests_transaction_id_public_key_sha256_key;
CREATE UNIQUE INDEX enrollment_requests_transaction_key_renewal
    ON enrollment_requests (transaction_id, public_key_sha256, renewal_of) NULLS NOT DISTINCT;
