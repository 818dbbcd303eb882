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
# busybox httpd -vv logs "ip:port: url:/path" and "ip:port: response:200"; print nginx access lines.
httpd -f -vv -p "$PORT" -h "$ROOT" 2>&1 | while read -r peer what; do
    case "$what" in
    url:*) path=${what#url:} ;;
    response:*)
        size=$(stat -c %s "$ROOT$path" 2>/dev/null || echo 0)
        ip=${peer%:}; ip=${ip%:*}; ip=${ip#[}; ip=${ip%]}; ip=${ip#::ffff:}
        echo "$ip - - [$(date -u '+%d/%b/%Y:%H:%M:%S +0000')] \"GET $path HTTP/1.1\" ${what#response:} $size \"-\" \"Ignition/2.14.0\"" ;;
    esac
done &
HTTPD=$!
wait
