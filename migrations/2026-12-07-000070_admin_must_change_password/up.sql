-- The first MRAO's generated password must be replaced at first login.
ALTER TABLE admins ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT false;
