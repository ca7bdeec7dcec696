# mindscape-local/pgbouncer_exporter: like prometheuscommunity/pgbouncer-exporter (flags
# --pgBouncer.connectionString and --web.listen-address, password from PGPASSWORD), from
# Debian's prometheus-pgbouncer-exporter behind our entrypoint. Its metric names are Debian's
# (pgbouncer_waiting_clients, ...); the built-in alert reads either name.
version=1 package=prometheus-pgbouncer-exporter
args=(--entrypoint /usr/local/bin/pgbouncer-exporter-entrypoint --user nobody --expose 9127)
