#!/bin/sh
. /usr/local/lib/demo.sh
task() { say ""; say "TASK [$1] $(printf '%*s' $((60 - ${#1})) '' | tr ' ' '*')"; }
say "PLAY [Post-deployment configuration] ***********************************"
task "Wait for all cluster operators to be available"
say "ok: [localhost]"
if should_fail 9.post-deployment; then
    task "Configure ingress controllers"
    err "fatal: [localhost]: FAILED! => {\"changed\": false, \"msg\": \"Failed to create object: b'{\\\"kind\\\":\\\"Status\\\",\\\"message\\\":\\\"Internal error occurred: failed calling webhook\\\"}'\"}"
    say ""
    say "PLAY RECAP *************************************************************"
    say "localhost : ok=1 changed=0 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0"
    exit 2
fi
for t in "Configure ingress controllers" "Move router pods to infra nodes" "Configure image registry storage" "Add additional CA trust" "Remove kubeadmin"; do
    task "$t"
    say "changed: [localhost]"
done
say ""
say "PLAY RECAP *************************************************************"
say "localhost : ok=6 changed=5 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"
