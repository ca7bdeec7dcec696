# mindscape-local/pgbouncer: pgbouncer /etc/pgbouncer/pgbouncer.ini, as postgres.
version=1.18 package=pgbouncer
args=(--entrypoint /usr/local/bin/pgbouncer-entrypoint --expose 6432)
cmd=(pgbouncer /etc/pgbouncer/pgbouncer.ini)
