#!/bin/sh
. /usr/local/lib/demo.sh
cd "$WD" || exit 1
if should_fail remove-bootstrap; then
    err "Error: error destroying virtual machine: ServerFaultCode: The operation is not allowed in the current state."
    exit 1
fi
say "module.bootstrap.vsphere_virtual_machine.vm[\"bootstrap-0\"]: Destroying... [id=4219bootstrap]"
say "module.bootstrap.vsphere_virtual_machine.vm[\"bootstrap-0\"]: Destruction complete after 6s"
say ""
say "Destroy complete! Resources: 1 destroyed."
