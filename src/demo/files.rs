//! The demo deployconfig: a cluster config in the real `config.json` shape, and its companions.

use std::os::unix::fs::PermissionsExt;

use color_eyre::eyre::WrapErr;
use serde_json::{Value, json};

use super::{DEMO_REGISTRY, DEMO_TAG, DemoArgs};
use crate::config::Deployconfig;
use crate::pipeline::Pipeline;

fn node(host: &str, ip: &str) -> Value {
    json!({ "hostname": host, "ipaddress": ip })
}

fn zone(gw: &str, ingress: &str, vip: &str) -> Value {
    json!({
        "vsphere_resourcepool": "ocp4demo",
        "vsphere_datastore": "demo-datastore-01",
        "vsphere_edge": "vse-demo-edge (00000000-demo-0000-0000-000000000000)",
        "defaultgw": gw,
        "upstreamdns1": "10.50.1.15",
        "upstreamdns2": "10.50.1.16",
        "num_cpu": "4",
        "memory": "16384",
        "disk_size": "120",
        "externalvip": vip,
        "ingresscontroller_name": ingress,
        "ingresscontroller_domain": format!("{ingress}.ocp4demo.demo.example.internal")
    })
}

/// The demo `config.json` (key order as operators know it).
pub fn config_json() -> Value {
    json!({
        "clusterid": "ocp4demo",
        "basedomain": "demo.example.internal",
        "useletsencrypt": "False",
        "bastion": node("bastion-0", "10.50.1.254"),
        "bootstrap": node("bootstrap-0", "10.50.1.250"),
        "svcs": [node("svc-0", "10.50.1.15"), node("svc-1", "10.50.1.16")],
        "masters": [node("master-0", "10.50.1.10"), node("master-1", "10.50.1.11"), node("master-2", "10.50.1.12")],
        "infras": [node("infra-0", "10.50.1.20"), node("infra-1", "10.50.1.21")],
        // Only tenant.tf.depreciated (which terraform does not load) makes these.
        "smallworkers": [],
        "mediumworkers": [],
        "largeworkers": [],
        "assuredworkers": [node("worker-assured-0", "10.60.1.25")],
        "assuredsvcs": [],
        "combinedworkers": [],
        "combinedsvcs": [],
        "elevatedworkers": [],
        "elevatedsvcs": [],
        "assuredpublicworkers": [],
        "elevatedpublicworkers": [],
        "sshpubkey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemoKeyOnlyForTheStage2TuiDemoNotARealKey core@bastion-0",
        "registryurl": DEMO_REGISTRY,
        "registryusername": "",
        "additionalca": "",
        "imagesources": "",
        "imagetag": DEMO_TAG,
        "satellitefqdn": "satellite.demo.example.internal",
        "rhnorgid": "DemoOrg",
        "rhnactivationkey": "demo-activation-key",
        "vsphere": {
            "vsphere_server": "vcenter.demo.example.internal",
            "vsphere_cluster": "demo-cluster",
            "vsphere_datacenter": "demo-dc",
            "vsphere_folder": "ocp4demo",
            "vsphere_network": "dvs.demo-network",
            "vsphere_transportzone": "demo-transport-zone",
            "vsphere_portgroup": "demo-portgroup",
            "networkip": "10.50.1.0",
            "maskprefix": "24",
            "rhcos_template": "rhcos-4.14-template",
            "rhel_template": "RHEL8-template"
        },
        "management": {
            "vsphere_resourcepool": "ocp4demo",
            "vsphere_datastore": "demo-datastore-01",
            "vsphere_edge": "vse-demo-edge (00000000-demo-0000-0000-000000000000)",
            "defaultgw": "10.50.1.1",
            "upstreamdns1": "1.1.1.1",
            "upstreamdns2": "1.0.0.1",
            "internalvip": "10.50.1.2",
            "externalvip": "198.51.100.10",
            "ingresscontroller_name": "default"
        },
        "assured": zone("10.60.1.1", "assured", "198.51.100.20"),
        "assured_public": zone("10.70.1.1", "assuredpublic", "198.51.100.21"),
        "combined": zone("10.80.1.1", "combined", "198.51.100.22"),
        "elevated": zone("10.90.1.1", "elevated", "198.51.100.23"),
        "elevated_public": zone("10.100.1.1", "elevatedpublic", "198.51.100.24"),
        "ignition": {
            "master_ignition": "",
            "worker_ignition": "",
            "infra_ignition": "",
            "svc_ignition": "",
            "bootstrap_ignition_url": ""
        }
    })
}

/// The demo `secrets.json`.
pub fn secrets_json() -> Value {
    json!({
        "rhpullsecret": { "auths": { "registry.demo.example.internal": { "auth": "ZGVtby1wdWxsZXI6ZGVtby1wdWxsLXRva2VuLThmM2U=", "email": "demo@example.internal" } } },
        "rheltemplatepw": "demo-template-password",
        "registrytoken": "",
        "vcenterdeploy": { "username": "deploy@vsphere.local", "password": "demo-password" },
        "vcentervolumeprovisioner": { "username": "volumes@vsphere.local", "password": "demo-password" },
        "dns": { "username": "dns-demo", "password": "demo-password" },
        "objectstorage": { "accesskey": "demo-access", "secretkey": "demo-secret", "bucketname": "ocp4demo-registry", "regionendpoint": "https://objects.demo.example.internal" }
    })
}

const DEPLOY_PEM: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
ZGVtbyBrZXkgZm9yIHRoZSBzdGFnZTItdHVpIGRlbW87IG5vdCBhIHJlYWwga2V5Cg==
-----END OPENSSH PRIVATE KEY-----
";

fn write(dc: &Deployconfig, name: &str, data: &[u8], mode: u32) -> color_eyre::Result<()> {
    let path = dc.dir.join(name);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(&path, data).wrap_err_with(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .wrap_err_with(|| format!("chmod {}", path.display()))
}

/// Writes every file of the demo deployconfig.
pub fn write_all(
    dc: &Deployconfig,
    args: &DemoArgs,
    pipeline: &Pipeline,
) -> color_eyre::Result<()> {
    let pretty = |v: Value| serde_json::to_string_pretty(&v).map(|s| s + "\n");
    write(dc, "config.json", pretty(config_json())?.as_bytes(), 0o644)?;
    write(
        dc,
        "secrets.json",
        pretty(secrets_json())?.as_bytes(),
        0o600,
    )?;
    // install-config.yaml and ansible-hosts are not written here: the run's 2.create-config
    // makes them from config.json and secrets.json, as stage 1 did.
    write(dc, "deploy.pem", DEPLOY_PEM.as_bytes(), 0o600)?;
    let header =
        "# Demo pipeline written by `stage2-tui demo`: the built-in one with short timings.\n\n";
    let text = header.to_string() + &pipeline.to_toml();
    write(dc, "stage2-pipeline.toml", text.as_bytes(), 0o644)?;
    // The demo wrote this file itself: it accepts it (any later change needs accepting again).
    crate::pipeline::accept::record(dc, &crate::pipeline::accept::digest(text.as_bytes()))
        .wrap_err("recording the demo pipeline as accepted")?;
    write(
        dc,
        ".demo/marker",
        b"stage2-tui demo folder; `stage2-tui demo` may wipe it\n",
        0o644,
    )?;
    write(
        dc,
        ".demo/pace",
        format!("{}\n", args.pace.max(0.0)).as_bytes(),
        0o644,
    )?;
    write(
        dc,
        ".demo/cluster-secs",
        format!("{}\n", args.cluster_secs).as_bytes(),
        0o644,
    )?;
    for step in &args.fail {
        write(dc, &format!(".demo/fail/{step}"), b"fail once\n", 0o644)?;
    }
    if args.disconnected {
        let script = "#!/bin/sh\n# demo disconnected openshift-install override\necho \"openshift-install 4.14.0-disconnected-demo\"\necho \"built from commit 1111111111111111111111111111111111111111\"\necho \"release image registry.demo.example.internal:5000/ocp4/openshift4@sha256:1111\"\n";
        write(dc, "openshift-install", script.as_bytes(), 0o755)?;
    }
    Ok(())
}
