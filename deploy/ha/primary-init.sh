#!/bin/sh
# Runs once, when the official postgres image initialises the primary's
# data directory (/docker-entrypoint-initdb.d): a role for the standby's
# WAL stream, a pg_hba line letting it in, and synchronous replication.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v repl_password="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'repl_password';
-- Written to postgresql.auto.conf and read when the real server starts
-- (the temporary server of the init phase must not wait for a standby).
-- A commit is acknowledged only once the standby has flushed it, so a
-- promoted standby holds every enrollment a client was answered for.
ALTER SYSTEM SET synchronous_standby_names = '*';
ALTER SYSTEM SET synchronous_commit = 'on';
SQL

echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
