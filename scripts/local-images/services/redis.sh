# mindscape-local/redis: like the official redis image.
version=7 package=redis-server
args=(--entrypoint /usr/local/bin/redis-entrypoint --workdir /data --expose 6379)
cmd=(redis-server) volume=/data
