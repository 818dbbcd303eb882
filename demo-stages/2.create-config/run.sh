#!/bin/sh
# Demo of stage 1's 2.create-config (create-config.ps1 with install-config.tmpl and
# ansible-hosts.tmpl): makes install-config.yaml and ansible-hosts from config.json and
# secrets.json, as the real templates lay them out. Like the real script it says when a file does
# not parse and `Exit`s with no code (0).
. /usr/local/lib/demo.sh
cd "$WD" || exit 1
parses() { tr -d ' \n\t' < "$1" | grep -q '^{.*}$' && ! grep -q '"[^"]*": *"[^"]*" *"' "$1"; }
if should_fail 2.create-config || ! parses config.json; then
    say "config.json cannot be parsed Is it valid JSON?"
    exit 0
fi
if ! parses secrets.json; then
    say "secrets.json cannot be parsed. Is it valid JSON?"
    exit 0
fi
# top FILE KEY: a top-level string; in SECTION FILE SECTION KEY: a string of a top-level object
# (the files are laid out two spaces per level, as stage2-tui and the demo write them).
top() { sed -n "s/^  \"$2\": *\"\\(.*\\)\",\\{0,1\\}\$/\\1/p" "$1" | head -n 1; }
in_section() { sed -n "/^  \"$2\": {/,/^  }/s/^    \"$3\": *\"\\(.*\\)\",\\{0,1\\}\$/\\1/p" "$1" | head -n 1; }
CLUSTER=$(top config.json clusterid)
DOMAIN=$(top config.json basedomain)
PULL=$(awk '/^  "rhpullsecret": /{on=1} on{print} on && (/^  },?$/ || /^  "rhpullsecret": .*[^{]$/){exit}' secrets.json \
    | tr -d '\n' | sed 's/^ *"rhpullsecret": *//; s/, *$//; s/  */ /g')
say "Pull Secret:  $PULL"
{
    echo "apiVersion: v1"
    echo "baseDomain: \"$DOMAIN\""
    echo "metadata:"
    echo "  name: \"$CLUSTER\""
    echo "compute:"
    echo "- hyperthreading: Enabled"
    echo "  name: worker"
    echo "  replicas: 3"
    echo "controlPlane:"
    echo "  hyperthreading: Enabled"
    echo "  name: master"
    echo "  replicas: 3 "
    echo "platform:"
    echo "  vsphere:"
    echo "    vCenter: \"$(in_section config.json vsphere vsphere_server)\""
    echo "    username: \"$(in_section secrets.json vcentervolumeprovisioner username)\""
    echo "    password: \"$(in_section secrets.json vcentervolumeprovisioner password)\""
    echo "    datacenter: \"$(in_section config.json vsphere vsphere_datacenter)\""
    echo "    defaultDatastore: \"$(in_section config.json management vsphere_datastore)\""
    echo "pullsecret: '$PULL'"
    echo "sshKey: '$(top config.json sshpubkey)'"
} > install-config.yaml
# Every node as "group host ip", from the node lists and the single nodes.
awk '
/^  "[a-z_]+": / { g = $0; sub(/^  "/, "", g); sub(/".*/, "", g) }
/"hostname": / { h = $0; sub(/.*"hostname": *"/, "", h); sub(/".*/, "", h) }
/"ipaddress": / { ip = $0; sub(/.*"ipaddress": *"/, "", ip); sub(/".*/, "", ip); if (h != "") print g, h, ip; h = "" }
' config.json > .nodes
EXTVIP=$(in_section config.json management externalvip)
section() {
    echo "[$1]"
    shift
    for g in "$@"; do
        while read -r grp host ip; do
            [ "$grp" = "$g" ] || continue
            case "$g" in
            *svcs) echo "$host.$CLUSTER.$DOMAIN ip=$ip ansible_host=$ip" ;;
            bastion) echo "$host.$CLUSTER.$DOMAIN ip=$ip ansible_host=$EXTVIP" ;;
            *) echo "$host.$CLUSTER.$DOMAIN ip=$ip" ;;
            esac
        done < .nodes
    done
    echo ""
}
{
    printf '[all:children]\nmasters\nworkers\ninfras\nsvcs\nbootstrap\nbastion\n\n'
    section masters masters
    section workers smallworkers mediumworkers largeworkers assuredworkers combinedworkers elevatedworkers assuredpublicworkers elevatedpublicworkers
    section infras infras
    section svcs svcs
    section asvcs assuredsvcs
    section csvcs combinedsvcs
    section esvcs elevatedsvcs
    section bootstrap bootstrap
    section bastion bastion
    echo "[all:vars]"
    echo "domain_suffix=$CLUSTER.$DOMAIN"
    echo "management_external_lb_ip=$EXTVIP"
    echo "management_internal_lb_ip=$(in_section config.json management internalvip)"
    echo "ansible_ssh_private_key_file=/tmp/workingdir/deploy.pem"
} > ansible-hosts
rm -f .nodes
say "Ansible hosts:  $(grep -c ' ip=' ansible-hosts) hosts for $CLUSTER.$DOMAIN"
say "Created ansible-hosts file"
say "Created install-config.yaml file"
