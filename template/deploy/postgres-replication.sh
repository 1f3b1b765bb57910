#!/bin/sh
# Run once by the postgres image when it creates the primary's data: lets the service's role
# stream WAL to the replica of the compose file's "replica" profile.
set -eu
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "${PGDATA}/pg_hba.conf"
