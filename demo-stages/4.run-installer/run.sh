#!/bin/sh
. /usr/local/lib/demo.sh
cd "$WD" || exit 1
CLUSTER=$(json_str clusterid); DOMAIN=$(json_str basedomain)
# As the real entrypoint.sh (no `set -e`): clear the last run's state, so that a new install CA
# is made, and back up the install config that `create manifests` is about to consume.
mv .openshift_install_state.json .openshift_install_state.json.old 2>/dev/null
mv terraform.tfstate .terraform.tfstate.old 2>/dev/null
rm -rf auth/ ./*.ign metadata.json
cp install-config.yaml .install-config.yaml.bak 2>/dev/null
if [ -f "$WD/openshift-install" ]; then
    say "Disconnected openshift-install is being used"
fi
if [ ! -f install-config.yaml ]; then
    log_installer fatal "failed to fetch Master Machines: failed to fetch dependency of \\\"Master Machines\\\": failed to fetch dependency of \\\"Install Config\\\": failed to generate asset \\\"SSH Key\\\": EOF"
    # With no install config openshift-install asks questions, and with no terminal it fails at
    # once. The real script goes on to its last `cp`, whose status is the container's: 0.
    cp /usr/local/4.run-installer/oc /usr/local/4.run-installer/kubectl "$WD/"
    exit 0
fi
say "openshift-install v4.14.0-demo (built from commit 0000000, release image localhost/stage2-demo/ocp-release:4.14.0)"
log_installer info "Consuming Install Config from target directory"
log_installer warning "Making control-plane schedulable by setting MastersSchedulable to true for Scheduler cluster settings"
if should_fail 4.run-installer; then
    log_installer fatal "failed to fetch Master Machines: failed to load asset \\\"Install Config\\\": failed to create install config: invalid \\\"install-config.yaml\\\" file: platform.vsphere.vCenter: Required value: must specify the name of the vCenter"
    # No `set -e`: the script goes on to `cp worker.ign infra.ign` (fails) and its last `cp`,
    # whose status (0) is the container's.
    cp worker.ign infra.ign 2>/dev/null || err "cp: cannot stat 'worker.ign': No such file or directory"
    cp /usr/local/4.run-installer/oc /usr/local/4.run-installer/kubectl "$WD/"
    exit 0
fi
# `create manifests` consumes the install config (only the .bak stays).
rm -f install-config.yaml
log_installer info "Manifests created in: manifests and openshift"
log_installer info "Consuming Openshift Manifests from target directory"
log_installer info "Consuming Master Machines from target directory"
log_installer info "Consuming Worker Machines from target directory"
log_installer info "Consuming Common Manifests from target directory"
log_installer info "Consuming OpenShift Install (Manifests) from target directory"
INFRA="$CLUSTER-$(rand_hex 3 | cut -c1-5)"
for role in bootstrap master worker infra; do
    {
        printf '{"ignition":{"version":"3.2.0","config":{},"security":{"tls":{"certificateAuthorities":[{"source":"data:text/plain;charset=utf-8;base64,%s"}]}}},' "$(rand_hex 48 | base64 -w0)"
        printf '"storage":{"files":[{"path":"/etc/hostname","contents":{"source":"data:,%s-%s"}}' "$role" "$INFRA"
        if [ "$role" = bootstrap ]; then
            i=0; while [ $i -lt 40 ]; do printf ',{"path":"/opt/openshift/manifests/demo-%02d.yaml","contents":{"source":"data:text/plain;base64,%s"}}' $i "$(rand_hex 96 | base64 -w0)"; i=$((i+1)); done
        fi
        printf ']},"systemd":{"units":[{"name":"kubelet.service","enabled":true}]}}\n'
    } > "$role.ign"
done
mkdir -p auth
cat > auth/kubeconfig <<KCFG
clusters:
- cluster:
    certificate-authority-data: $(rand_hex 32 | base64 -w0)
    server: https://api.$CLUSTER.$DOMAIN:6443
  name: $CLUSTER
contexts:
- context:
    cluster: $CLUSTER
    user: admin
  name: admin
current-context: admin
apiVersion: v1
kind: Config
users:
- name: admin
  user:
    client-certificate-data: $(rand_hex 32 | base64 -w0)
KCFG
rand_hex 12 | base64 -w0 | cut -c1-23 > auth/kubeadmin-password
printf '{"clusterName":"%s","clusterID":"%s","infraID":"%s","vsphere":{"vCenter":"vcenter.%s"}}\n' \
    "$CLUSTER" "$(rand_hex 16)" "$INFRA" "$DOMAIN" > metadata.json
cp /usr/local/4.run-installer/oc /usr/local/4.run-installer/kubectl "$WD/"
chmod 0755 "$WD/oc" "$WD/kubectl"
log_installer info "Ignition-Configs created in: . and auth"
say "Copied oc and kubectl to the deployconfig folder"
