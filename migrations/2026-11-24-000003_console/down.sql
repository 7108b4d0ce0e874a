DROP TABLE login_failures;
DROP TABLE console_sessions;
