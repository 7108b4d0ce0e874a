ALTER TABLE device_profiles DROP COLUMN min_cipher;
