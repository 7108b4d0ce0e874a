-- A profile's revision grows with every change to its row. An scepd
-- process may keep a profile in memory to skip a read per enrollment; the
-- statement that writes an enrollment made with it checks the revision it
-- was made with, so a stale copy can never issue under old settings.
ALTER TABLE device_profiles ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;

CREATE FUNCTION device_profiles_next_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := OLD.revision + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER device_profiles_revision BEFORE UPDATE ON device_profiles
    FOR EACH ROW EXECUTE FUNCTION device_profiles_next_revision();
