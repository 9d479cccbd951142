#!/usr/bin/env bash
# CI (as root): install PostgreSQL from Debian packages, start it on loopback and create the
# role the parallel-worker test uses (tests/test_workers.py; it skips when no server answers).
# Idempotent: safe to run on a machine where the cluster already exists or runs.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd /  # the postgres user cannot read every working directory
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
clusters="$(pg_lsclusters -h | awk '{print $2}')"
grep -qx main <<<"$clusters" || pg_createcluster "$version" main
pg_ctlcluster "$version" main start 2>/dev/null || pg_ctlcluster "$version" main status >/dev/null
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
pg_isready -h 127.0.0.1
# Password login on 127.0.0.1; CREATEDB so each test run makes and drops its own databases.
su postgres -c "psql -q -v ON_ERROR_STOP=1" <<'SQL'
SELECT 'CREATE ROLE ashare LOGIN CREATEDB' WHERE NOT EXISTS
  (SELECT FROM pg_roles WHERE rolname = 'ashare') \gexec
ALTER ROLE ashare WITH LOGIN CREATEDB PASSWORD 'ashare';
SQL
