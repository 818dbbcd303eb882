#!/bin/sh
. /usr/local/lib/demo.sh
PORT=${PORT:-80}
ROOT=/usr/share/nginx/html
now() { date -u '+%Y/%m/%d %H:%M:%S'; }
echo "$(now) [notice] 1#1: using the \"epoll\" event method"
echo "$(now) [notice] 1#1: nginx/1.20.1"
echo "$(now) [notice] 1#1: OS: Linux $(uname -r)"
echo "$(now) [notice] 1#1: start worker processes"
echo "$(now) [notice] 1#1: start worker process 7"
if [ ! -s "$ROOT/bootstrap.ign" ]; then
    echo "$(now) [emerg] 1#1: open() \"$ROOT/bootstrap.ign\" failed (2: No such file or directory)" >&2
    exit 1
fi
trap 'echo "$(now) [notice] 1#1: signal 15 (SIGTERM) received, exiting"; kill $HTTPD 2>/dev/null; exit 0' TERM INT
# busybox httpd hands every *.ign request to serve-ign.sh (a CGI interpreter), which sees the
# method, client and user agent and writes nginx's combined access line, as nginx would.
echo "*.ign:/usr/local/5.ign-webserver/serve-ign.sh" > /tmp/httpd.conf
httpd -f -p "$PORT" -h "$ROOT" -c /tmp/httpd.conf 2>&1 &
HTTPD=$!
wait
