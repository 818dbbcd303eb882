#!/bin/sh
. /usr/local/lib/demo.sh
cd "$WD" || exit 1
# As the real removebootstrap.sh: the line goes in after clusterid on every run (a second run
# leaves a duplicate key, which terraform rejects).
awk '{ print } /clusterid/ { print "  \"bootstrap_complete\": \"true\"," }' config.json > .config.json.rb && cat .config.json.rb > config.json
rm -f .config.json.rb
tf_duplicate_keys || exit 1
if should_fail remove-bootstrap; then
    err "Error: error destroying virtual machine: ServerFaultCode: The operation is not allowed in the current state."
    exit 1
fi
say "module.bootstrap.vsphere_virtual_machine.vm[\"bootstrap-0\"]: Destroying... [id=4219bootstrap]"
say "module.bootstrap.vsphere_virtual_machine.vm[\"bootstrap-0\"]: Destruction complete after 6s"
say ""
if [ -f terraform.tfstate ]; then
    sed 's/{"module":"module.bootstrap"[^]]*]},\{0,1\}//' terraform.tfstate > .tfstate.rb && cat .tfstate.rb > terraform.tfstate
    rm -f .tfstate.rb
fi
say "Apply complete! Resources: 0 added, 0 changed, 1 destroyed."
