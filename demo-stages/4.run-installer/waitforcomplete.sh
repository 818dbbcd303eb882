#!/bin/sh
. /usr/local/lib/demo.sh
CLUSTER=$(json_str clusterid); DOMAIN=$(json_str basedomain)
if should_fail wait-for-bootstrap; then
    log_installer info "Waiting up to 20m0s for the Kubernetes API at https://api.$CLUSTER.$DOMAIN:6443..."
    log_installer error "Attempted to gather ClusterOperator status after wait failure: listing ClusterOperator objects: Get \\\"https://api.$CLUSTER.$DOMAIN:6443/apis/config.openshift.io/v1/clusteroperators\\\": dial tcp 10.50.1.1:6443: connect: connection refused"
    log_installer fatal "Bootstrap failed to complete: Get \\\"https://api.$CLUSTER.$DOMAIN:6443/version\\\": dial tcp 10.50.1.1:6443: connect: connection refused"
    exit 5
fi
log_installer info "Waiting up to 20m0s for the Kubernetes API at https://api.$CLUSTER.$DOMAIN:6443..."
log_installer info "API v1.27.6+f67aeb3 up"
log_installer info "Waiting up to 30m0s for bootstrapping to complete..."
log_installer info "It is now safe to remove the bootstrap resources"
log_installer info "Time elapsed: 14m12s"
