#!/bin/sh
. /usr/local/lib/demo.sh
cd "$WD" || exit 1
say "Initializing the backend..."
say ""
say "Initializing provider plugins..."
say "- Finding hashicorp/vsphere versions matching \"~> 2.4\"..."
say "- Installing hashicorp/vsphere v2.4.3..."
say "- Installed hashicorp/vsphere v2.4.3 (unauthenticated)"
say ""
say "Terraform has been successfully initialized!"
say ""
tf_duplicate_keys || exit 1
BOOT=$(bootstrap_vm)
N=0
for h in $BOOT $(hostnames | grep -v -e '^bastion' -e '^bootstrap'); do
    case "$h" in master*) m=masters ;; svc*) m=svcs ;; infra*) m=infras ;; bootstrap*) m=bootstrap ;; *) m=workers ;; esac
    say "module.$m.vsphere_virtual_machine.vm[\"$h\"]: Creating..."
    N=$((N + 1))
done
if should_fail 7.terraform-deploy; then
    err ""
    err "Error: error cloning virtual machine: The name 'master-1' already exists."
    err ""
    err "  with module.masters.vsphere_virtual_machine.vm[\"master-1\"],"
    err "  on modules/rhcos/main.tf line 24, in resource \"vsphere_virtual_machine\" \"vm\":"
    err "  24: resource \"vsphere_virtual_machine\" \"vm\" {"
    err ""
    exit 1
fi
RES=""
for h in $BOOT $(hostnames | grep -v -e '^bastion' -e '^bootstrap'); do
    case "$h" in master*) m=masters ;; svc*) m=svcs ;; infra*) m=infras ;; bootstrap*) m=bootstrap ;; *) m=workers ;; esac
    id="4219$(rand_hex 6)"
    say "module.$m.vsphere_virtual_machine.vm[\"$h\"]: Creation complete after 1m$((N % 50 + 10))s [id=$id]"
    RES="$RES{\"module\":\"module.$m\",\"type\":\"vsphere_virtual_machine\",\"name\":\"vm\",\"instances\":[{\"index_key\":\"$h\",\"attributes\":{\"id\":\"$id\",\"name\":\"$h\"}}]},"
done
printf '{"version":4,"terraform_version":"1.5.7","serial":%d,"lineage":"%s","outputs":{},"resources":[%s]}\n' \
    "$N" "$(rand_hex 16)" "${RES%,}" > terraform.tfstate
say ""
say "Apply complete! Resources: $N added, 0 changed, 0 destroyed."
