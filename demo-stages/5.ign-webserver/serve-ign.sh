#!/bin/sh
# CGI interpreter for *.ign: serves the file and logs nginx's combined access line (method,
# client, status, bytes, user agent) on standard error, which the server sends to the log.
f="$1"
ip=${REMOTE_ADDR#[}; ip=${ip%]}; ip=${ip#::ffff:}
if [ -f "$f" ]; then status=200; size=$(stat -c %s "$f"); else status=404; size=0; fi
echo "$ip - - [$(date -u '+%d/%b/%Y:%H:%M:%S +0000')] \"$REQUEST_METHOD $REQUEST_URI HTTP/1.1\" $status $size \"-\" \"${HTTP_USER_AGENT:--}\"" >&2
if [ "$status" = 404 ]; then
    printf 'Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnot found\n'
    exit 0
fi
printf 'Content-Type: application/octet-stream\r\nContent-Length: %s\r\n\r\n' "$size"
[ "$REQUEST_METHOD" = HEAD ] || cat "$f"
