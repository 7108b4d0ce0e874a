DROP TRIGGER device_profiles_revision ON device_profiles;
DROP FUNCTION device_profiles_next_revision();
ALTER TABLE device_profiles DROP COLUMN revision;
