#!/bin/sh
# The streaming standby: on its first start, copy the primary with
# pg_basebackup -R (standby.signal, primary_conninfo), then run postgres.
# synchronous_standby_names is cleared on the command line: the copy
# carries the primary's setting, and once this server is promoted it has
# no standby of its own to wait for (attach a new one, then set it again).
set -eu

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_isready -h db-primary -U replicator -d postgres -q; do
        sleep 1
    done
    PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup \
        -h db-primary -U replicator -D "$PGDATA" -R -X stream -c fast
    chmod 0700 "$PGDATA"
fi
exec postgres -c synchronous_standby_names= -c hot_standby=on
