ALTER TABLE admins DROP COLUMN notify_email;
DROP TABLE notification_contacts;
DROP TABLE outbox;
