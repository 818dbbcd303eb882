#!/bin/sh
. /usr/local/lib/demo.sh
cd "$WD" || exit 1
BASTION=$(sed -n '/"bastion"/,/}/s/.*"ipaddress": *"\([^"]*\)".*/\1/p' config.json | head -n 1)
# As add-ignition.ps1: a config.json that does not parse is reported, and the script `Exit`s with
# no code (0).
if should_fail 6.add-ignition || ! tr -d ' \n\t' < config.json | grep -q '^{.*}$' || grep -q '"[^"]*": *"[^"]*" *"' config.json; then
    say "config.json cannot be parsed. Is it valid JSON?"
    exit 0
fi
for f in master.ign worker.ign infra.ign; do
    if [ ! -s "$f" ]; then
        err "Get-Content: Cannot find path '/tmp/workingdir/$f' because it does not exist."
    fi
done
say "Backing up config.json to .config.json.add-ignbak"
cp config.json .config.json.add-ignbak
say "Generating svc.ign for the svc VMs"
printf '{"ignition":{"version":"3.2.0","config":{"merge":[{"source":"http://%s/bootstrap.ign"}]}},"passwd":{"users":[{"name":"core"}]}}\n' "$BASTION" > svc.ign
set_field() { sed -i "s|\"$1\": *\"[^\"]*\"|\"$1\": \"$2\"|" config.json; say "Set ignition.$1 ($(printf %s "$2" | wc -c) bytes)"; }
set_field master_ignition "$(base64 -w0 < master.ign)"
set_field worker_ignition "$(base64 -w0 < worker.ign)"
set_field infra_ignition "$(base64 -w0 < infra.ign)"
set_field svc_ignition "$(base64 -w0 < svc.ign)"
set_field bootstrap_ignition_url "http://$BASTION/bootstrap.ign"
say "config.json updated with ignition configuration"
