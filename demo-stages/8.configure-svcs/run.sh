#!/bin/sh
. /usr/local/lib/demo.sh
SVCS=$(hostnames | grep '^svc')
task() { say ""; say "TASK [$1] $(printf '%*s' $((60 - ${#1})) '' | tr ' ' '*')"; }
say "PLAY [Configure svc VMs] ***********************************************"
task "Gathering Facts"
for h in $SVCS; do say "ok: [$h]"; done
task "Create core user"
for h in $SVCS; do say "changed: [$h]"; done
task "Register with Satellite $(json_str satellitefqdn)"
for h in $SVCS; do say "changed: [$h]"; done
if should_fail 8.configure-svcs; then
    last=$(echo "$SVCS" | tail -n 1)
    task "Install CoreDNS packages"
    err "fatal: [$last]: UNREACHABLE! => {\"changed\": false, \"msg\": \"Failed to connect to the host via ssh: ssh: connect to host $last port 22: No route to host\", \"unreachable\": true}"
    say ""
    say "PLAY RECAP *************************************************************"
    for h in $SVCS; do
        if [ "$h" = "$last" ]; then say "$h : ok=3 changed=2 unreachable=1 failed=0 skipped=0 rescued=0 ignored=0"
        else say "$h : ok=3 changed=2 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"; fi
    done
    # The real entrypoint.sh runs three playbooks and exits with the last one's status: this
    # failure shows only in the recap above, and the container exits 0.
    say ""
    say "PLAY [Configure svc DNS] ***********************************************"
    task "Gathering Facts"
    for h in $SVCS; do [ "$h" = "$last" ] || say "ok: [$h]"; done
    say ""
    say "PLAY RECAP *************************************************************"
    for h in $SVCS; do [ "$h" = "$last" ] || say "$h : ok=1 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"; done
    exit 0
fi
task "Install CoreDNS packages"
for h in $SVCS; do say "changed: [$h]"; done
task "Template Corefile for $(json_str clusterid).$(json_str basedomain)"
for h in $SVCS; do say "changed: [$h]"; done
task "Enable and start coredns.service"
for h in $SVCS; do say "changed: [$h]"; done
say ""
say "PLAY RECAP *************************************************************"
for h in $SVCS; do say "$h : ok=6 changed=5 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"; done
