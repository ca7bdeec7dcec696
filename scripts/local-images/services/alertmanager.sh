# mindscape-local/alertmanager: like prom/alertmanager.
version=0.25 package=prometheus-alertmanager
args=(--entrypoint /bin/alertmanager --user nobody --workdir /alertmanager --expose 9093)
cmd=(--config.file=/etc/alertmanager/alertmanager.yml --storage.path=/alertmanager)
volume=/alertmanager
