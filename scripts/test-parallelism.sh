#!/usr/bin/env bash
# Prints the `go test` flags (-p N -parallel M) that keep `make test` within the PostgreSQL
# cluster's free connections, so that it passes beside a running `make run` (or another test
# run). Reads max_connections and current use at URL ($1); explains itself on stderr.
#
# The rule: every running `interop` instance (sessions named "interop", one database each) may
# grow to its budget (INTEROP_DB_MAX_CONNS, default 40); 10 connections stay spare. The tests
# of cmd/interop run one at a time and hold up to 48 (an `interop dev` subprocess at the
# default budget of 40, or an in-process one at the tests' 24 with the resilience test's
# roles, plus their own pools); a test of any other package holds up to 7 (a dbtest pool of
# INTEROP_TEST_DB_MAX_CONNS=6 and a transient connection). So with -p 2, cmd/interop beside
# another package running -parallel M tests needs 48 + 7 M; with -p 1, one package at a time.
set -euo pipefail
url="${1:?usage: test-parallelism.sh POSTGRES_URL}"
cpus="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)"
say() { echo "test-parallelism: $*" >&2; }
if ! command -v psql >/dev/null; then
	say "psql not found: using go test's defaults (-p $cpus -parallel $cpus)"
	echo "-p $cpus -parallel $cpus"
	exit 0
fi
read -r max used instances interop_used < <(psql "$url" -AtF ' ' -c "
	SELECT current_setting('max_connections')::int,
	       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
	       (SELECT count(DISTINCT datname) FROM pg_stat_activity WHERE application_name = 'interop'),
	       (SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'interop' OR application_name LIKE 'interop-temporal%')" 2>/dev/null) || {
	say "cannot read pg_stat_activity: using go test's defaults"; echo "-p $cpus -parallel $cpus"; exit 0; }
budget="${INTEROP_DB_MAX_CONNS:-40}"
headroom=$(( instances * budget - interop_used ))
(( headroom < 0 )) && headroom=0
free=$(( max - used - headroom - 10 ))
p=2
par=$(( (free - 48) / 7 ))
if (( par < 1 )); then
	p=1
	par=$(( free / 7 ))
	(( par < 1 )) && par=1
	(( free < 48 )) && say "warning: only $free connections free (max_connections $max, $used in use, $headroom reserved for running interop instances): the cmd/interop tests may fail with \"too many clients\""
fi
(( par > cpus )) && par=$cpus
say "max_connections $max, $used in use, $instances interop instance(s) (+$headroom to their budget): $free free → -p $p -parallel $par"
echo "-p $p -parallel $par"
