# mindscape-local/postgres_exporter: like prometheuscommunity/postgres-exporter.
version=0.11 package=prometheus-postgres-exporter
args=(--entrypoint /bin/postgres_exporter --user nobody --expose 9187)
