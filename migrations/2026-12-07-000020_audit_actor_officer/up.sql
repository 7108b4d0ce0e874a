-- An officer sees its own audit entries by who it is, not by the entry's
-- actor name: device events are written under fixed names (`scep`,
-- `auto-approve`, `purge`, ...), and an officer that happened to carry
-- such a name saw every organization's issuances. The officer's id is
-- recorded with each entry an officer's action writes (`store::audit`
-- resolves it when the entry is written); NULL for system actors, API
-- keys and names that are no officer.
ALTER TABLE audit_log
    ADD COLUMN actor_officer_id BIGINT REFERENCES admins(id) ON DELETE SET NULL;

-- Earlier entries: by name, but never for a system actor's name, so an
-- officer created with such a name before names were reserved does not
-- inherit the device events.
UPDATE audit_log a SET actor_officer_id = ad.id
FROM admins ad
WHERE a.actor = ad.username
  AND lower(a.actor) NOT IN ('scep', 'auto-approve', 'purge', 'system', 'cli', 'api',
                             'bootstrap');

-- The officer's own entries as one keyset range scan, like the
-- organization and department listings.
CREATE INDEX audit_log_officer_listing ON audit_log (actor_officer_id, at DESC, id DESC)
    WHERE actor_officer_id IS NOT NULL;
CREATE INDEX audit_log_officer_event ON audit_log (actor_officer_id, event, at DESC, id DESC)
    WHERE actor_officer_id IS NOT NULL;
