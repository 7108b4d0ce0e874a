DROP TABLE api_key_scopes;
DROP TABLE api_keys;
DROP TABLE challenge_failures;
DROP TABLE access_codes;
