ALTER TABLE admins DROP COLUMN must_change_password;
