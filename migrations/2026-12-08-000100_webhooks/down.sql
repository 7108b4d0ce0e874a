DROP TRIGGER webhook_request_declined ON enrollment_requests;
DROP TRIGGER webhook_certificate_revoked ON revocations;
DROP TRIGGER webhook_certificate_issued ON certificates;
DROP FUNCTION webhook_request_declined();
DROP FUNCTION webhook_certificate_revoked();
DROP FUNCTION webhook_certificate_issued();
DROP FUNCTION webhook_enqueue(BIGINT, TEXT, JSONB);
DROP TABLE webhook_outbox;
DROP TABLE profile_webhooks;
