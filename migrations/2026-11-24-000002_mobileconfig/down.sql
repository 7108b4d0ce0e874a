DROP TABLE profile_apple_payloads;
