#!/usr/bin/env bash
# Three pyindex replicas on one PostgreSQL catalog and one bucket, behind nginx on HOST:PORT
# (round-robin, keep-alive to the replicas, the next replica tried on an error). Run by
# bench/scaleout.py through the harness (its CommandAdapter): the harness starts this script in
# a session of its own and stops it by signalling that session, which ends the replicas too.
#
#   bench/scaleout/replicas.sh HOST PORT DATA_DIR
#
# Env: PYINDEX_BIN (the release binary), PYINDEX_DATABASE, PYINDEX_STORAGE, PYINDEX_S3_ENDPOINT
# and the AWS_* credentials, read by every replica.
set -euo pipefail
host="$1" port="$2" data="$3"
mkdir -p "$data/nginx/logs" "$data/nginx/tmp"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

servers=""
for i in 1 2 3; do
  p="$(free_port)"
  "$PYINDEX_BIN" serve --listen "127.0.0.1:$p" --data "$data/replica-$i" --max-upload-size 2GiB \
    --request-log off >>"$data/replica-$i.log" 2>&1 &
  servers+="        server 127.0.0.1:$p max_fails=1 fail_timeout=2s;"$'\n'
done

cat >"$data/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $data/nginx/nginx.pid;
error_log $data/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $data/nginx/tmp/body;
    proxy_temp_path $data/nginx/tmp/proxy;
    fastcgi_temp_path $data/nginx/tmp/fastcgi;
    uwsgi_temp_path $data/nginx/tmp/uwsgi;
    scgi_temp_path $data/nginx/tmp/scgi;
    keepalive_requests 1000000;
    upstream pyindex {
$servers        keepalive 64;
    }
    server {
        listen $host:$port;
        client_max_body_size 0;
        location / {
            proxy_pass http://pyindex;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_request_buffering off;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 1s;
        }
    }
}
CONF
exec nginx -c "$data/nginx/nginx.conf" -p "$data/nginx/"
