# mindscape-local/prometheus: like prom/prometheus.
version=2 package=prometheus
args=(--entrypoint /bin/prometheus --user nobody --workdir /prometheus --expose 9090)
cmd=(--config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus)
volume=/prometheus
