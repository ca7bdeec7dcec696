# mindscape-local/postgres: like the official postgres image (POSTGRES_USER/_PASSWORD/_DB, PGDATA).
version=15 package=postgresql-15
args=(--entrypoint /usr/local/bin/postgres-entrypoint --expose 5432
    -e "PATH=/usr/lib/postgresql/15/bin:$std_path" -e LANG=en_US.utf8
    -e PGDATA=/var/lib/postgresql/data
    --stop-signal SIGINT)  # fast shutdown, as the official image does
cmd=(postgres) volume=/var/lib/postgresql/data
