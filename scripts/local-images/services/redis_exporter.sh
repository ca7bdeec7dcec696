# mindscape-local/redis_exporter: like oliver006/redis_exporter.
version=1 package=prometheus-redis-exporter
args=(--entrypoint /redis_exporter --user nobody --expose 9121)
