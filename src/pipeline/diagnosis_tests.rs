//! Tests of the diagnosis catalogue: one real-looking failure per entry, and the rest.
use super::*;

fn cat() -> Catalogue {
    Catalogue::with(None).unwrap()
}

fn one(step: &str, text: &str) -> Diagnosis {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    cat()
        .diagnose(step, &lines, None, &Context::default())
        .unwrap_or_else(|| panic!("no diagnosis for {step}: {text}"))
}

#[test]
fn the_builtin_catalogue_parses() {
    assert!(cat().ids().len() >= 20);
}

/// One real-looking failure per entry: (entry, step, log text).
const CASES: &[(&str, &str, &str)] = &[
    (
        "cluster-ca-changed",
        "approve-csrs",
        "Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority",
    ),
    (
        "terraform-duplicate-key",
        "remove-bootstrap",
        "Error: Duplicate attribute definition\n\n  on /tmp/workingdir/config.json line 4:\n   4:   \"bootstrap_complete\": \"true\",\n\nThe argument \"bootstrap_complete\" was already set at /tmp/workingdir/config.json:3,3-23.",
    ),
    (
        "vsphere-datastore-full",
        "7.terraform-deploy",
        "Error: error cloning virtual machine: Insufficient disk space on datastore 'datastore-ssd'.",
    ),
    (
        "vsphere-permission",
        "7.terraform-deploy",
        "Error: error creating virtual machine: ServerFaultCode: Permission to perform this operation was denied.",
    ),
    (
        "vsphere-customization-failed",
        "7.terraform-deploy",
        "Error: Virtual machine customization failed on \"/Datacenter/vm/ocp4/master-0\":\n\nAn error occurred while customizing VM master-0.",
    ),
    (
        "vsphere-ambiguous-path",
        "7.terraform-deploy",
        "Error: error fetching network: path 'VM Network' resolves to multiple networks",
    ),
    (
        "config-json-unparsable",
        "6.add-ignition",
        "config.json cannot be parsed. Is it valid JSON?",
    ),
    (
        "install-config-missing",
        "4.run-installer",
        "level=fatal msg=\"failed to fetch Master Machines: failed to fetch dependency of \\\"Master Machines\\\": failed to fetch dependency of \\\"Install Config\\\": failed to generate asset \\\"SSH Key\\\": EOF\"",
    ),
    (
        "disk-full",
        "7.terraform-deploy",
        "Error: writing terraform.tfstate: write /tmp/workingdir/terraform.tfstate: no space left on device",
    ),
    (
        "vsphere-login",
        "7.terraform-deploy",
        "Error: error setting up new vSphere SOAP client: ServerFaultCode: Cannot complete login due to an incorrect user name or password.\n\n  with provider[\"registry.terraform.io/hashicorp/vsphere\"],",
    ),
    (
        "vsphere-vm-exists",
        "7.terraform-deploy",
        "Error: error cloning virtual machine: The name 'master-1' already exists.\n\n  with module.masters.vsphere_virtual_machine.vm[\"master-1\"],",
    ),
    (
        "vsphere-datastore-not-found",
        "7.terraform-deploy",
        "Error: error fetching datastore: datastore 'datastore-ssd' not found\n\n  with data.vsphere_datastore.datastore,",
    ),
    (
        "vsphere-network-not-found",
        "7.terraform-deploy",
        "Error: error fetching network: network 'VM Network 2' not found",
    ),
    (
        "vsphere-folder-not-found",
        "7.terraform-deploy",
        "Error: folder '/Datacenter/vm/ocp4test' not found",
    ),
    (
        "vsphere-resource-pool-not-found",
        "7.terraform-deploy",
        "Error: error fetching resource pool: resource pool 'Cluster/Resources/ocp4' not found",
    ),
    (
        "vsphere-template-not-found",
        "7.terraform-deploy",
        "Error: error fetching virtual machine: vm 'rhcos-4.14-template' not found",
    ),
    (
        "vsphere-datacenter-not-found",
        "7.terraform-deploy",
        "Error: error fetching datacenter: datacenter 'DC2' not found",
    ),
    (
        "dns-lookup",
        "7.terraform-deploy",
        "Error: error setting up new vSphere SOAP client: Post \"https://vcenter.example.local/sdk\": dial tcp: lookup vcenter.example.local on 10.50.1.1:53: no such host",
    ),
    (
        "vsphere-invalid-state",
        "remove-bootstrap",
        "Error: error destroying virtual machine: ServerFaultCode: The operation is not allowed in the current state.",
    ),
    (
        "ansible-unreachable",
        "8.configure-svcs",
        "TASK [Install CoreDNS packages] ***\nfatal: [svc-1]: UNREACHABLE! => {\"changed\": false, \"msg\": \"Failed to connect to the host via ssh: ssh: connect to host 10.50.1.16 port 22: No route to host\", \"unreachable\": true}",
    ),
    (
        "satellite-refused",
        "8.configure-svcs",
        "fatal: [svc-0]: FAILED! => {\"changed\": false, \"cmd\": \"/sbin/subscription-manager register --org SatOrgID --activationkey VALUE_SPECIFIED_IN_NO_LOG_PARAMETER\", \"msg\": \"HTTP error (400 - Bad Request): Organization SatOrgID does not exist.\", \"rc\": 70}",
    ),
    (
        "port-80-in-use",
        "5.ign-webserver",
        "2026/11/28 12:00:01 [emerg] 1#1: bind() to 0.0.0.0:80 failed (98: Address already in use)\nnginx: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)",
    ),
    (
        "ignition-expired",
        "approve-csrs",
        "error: You must be logged in to the server (the server has asked for the client to provide credentials): x509: certificate has expired or is not yet valid: current time 2026-11-29T12:00:00Z is after 2026-11-29T09:14:00Z",
    ),
    (
        "bootstrap-timeout",
        "wait-for-bootstrap",
        "level=info msg=\"Waiting up to 30m0s for bootstrapping to complete...\"\nlevel=fatal msg=\"Bootstrap failed to complete: timed out waiting for the condition\"",
    ),
    (
        "api-unreachable",
        "approve-csrs",
        "Unable to connect to the server: dial tcp 10.50.1.1:6443: connect: connection refused",
    ),
    (
        "nodes-not-ready",
        "approve-csrs",
        "gave up after 1h00m00s: nodes 7/9 Ready, 0 CSRs pending; not Ready: worker-2, worker-3",
    ),
    (
        "operators-not-settled",
        "wait-operators",
        "operators did not settle in 45m00s: operators 29/31 available (waiting for: console, ingress)",
    ),
    (
        "cluster-unauthorized",
        "approve-csrs",
        "error: You must be logged in to the server (Unauthorized)",
    ),
    (
        "pull-secret-invalid",
        "4.run-installer",
        "level=fatal msg=\"failed to fetch Master Machines: failed to load asset \\\"Install Config\\\": invalid \\\"install-config.yaml\\\" file: pullSecret: Invalid value: \\\"{}\\\": auths required\"",
    ),
    (
        "registry-auth",
        "pull",
        "pulling registry.example.local:5002/docker-openshift/4.run-installer:0.5: unauthorized: authentication required",
    ),
    (
        "image-not-found",
        "pull",
        "pulling registry.example.local:5002/docker-openshift/4.run-installer:0.9: reading manifest 0.9 in registry.example.local:5002/docker-openshift/4.run-installer: manifest unknown",
    ),
    (
        "registry-tls",
        "pull",
        "pinging container registry registry.example.local:5002: Get \"https://registry.example.local:5002/v2/\": tls: failed to verify certificate: x509: certificate signed by unknown authority",
    ),
    (
        "install-config-invalid",
        "4.run-installer",
        "level=fatal msg=\"failed to fetch Master Machines: failed to load asset \\\"Install Config\\\": failed to create install config: invalid \\\"install-config.yaml\\\" file: platform.vsphere.vCenter: Required value: must specify the name of the vCenter\"",
    ),
    (
        "config-json-unreadable",
        "6.add-ignition",
        "Traceback (most recent call last):\njson.decoder.JSONDecodeError: Expecting ',' delimiter: line 120 column 5 (char 3071)",
    ),
    (
        "webhook-not-ready",
        "9.post-deployment",
        "fatal: [localhost]: FAILED! => {\"changed\": false, \"msg\": \"Failed to create object: b'{\\\"kind\\\":\\\"Status\\\",\\\"message\\\":\\\"Internal error occurred: failed calling webhook\\\"}'\"}",
    ),
];

#[test]
fn every_entry_recognises_a_real_looking_failure() {
    let c = cat();
    for (id, step, text) in CASES {
        let d = one(step, text);
        assert_eq!(&d.id, id, "{step}: {text}");
        assert!(!d.cause.contains('{') && !d.fix.contains("{step}"), "{d:?}");
        assert!(
            d.fix.contains(step) || d.fix.contains('`') || d.fix.contains("config.json"),
            "{d:?}"
        );
    }
    // Every built-in entry has its case.
    for id in c.ids() {
        assert!(CASES.iter().any(|(x, _, _)| *x == id), "no case for {id}");
    }
}

#[test]
fn the_matching_line_is_the_last_one_and_counted_from_one() {
    let lines: Vec<String> = [
        "ok",
        "fatal: [svc-0]: UNREACHABLE! =>",
        "x",
        "fatal: [svc-1]: UNREACHABLE! =>",
        "PLAY RECAP",
    ]
    .map(String::from)
    .to_vec();
    let d = cat()
        .diagnose("8.configure-svcs", &lines, None, &Context::default())
        .unwrap();
    assert_eq!(d.line, Some(4));
    assert!(d.cause.contains("svc-1"), "{d:?}");
    // An entry for other steps never matches.
    assert!(
        cat()
            .diagnose("4.run-installer", &lines, None, &Context::default())
            .is_none()
    );
}

#[test]
fn the_error_message_is_tried_when_the_log_says_nothing() {
    let d = cat()
        .diagnose(
            "pull",
            &[],
            Some("pulling x:1: manifest unknown"),
            &Context::default(),
        )
        .unwrap();
    assert_eq!((d.id.as_str(), d.line), ("image-not-found", None));
}

#[test]
fn the_fix_names_the_config_fields_holding_the_value() {
    let ctx = Context {
        config: Some(
            serde_json::json!({"management": {"vsphere_datastore": "ds1"}, "assured": {"vsphere_datastore": "ds1"}, "other": "x"}),
        ),
        ..Context::default()
    };
    let lines = vec!["Error: datastore 'ds1' not found".to_string()];
    let d = cat()
        .diagnose("7.terraform-deploy", &lines, None, &ctx)
        .unwrap();
    assert!(
        d.fix
            .contains("(management.vsphere_datastore, assured.vsphere_datastore)"),
        "{}",
        d.fix
    );
}

#[test]
fn an_invalid_install_config_names_the_field_it_was_made_from() {
    let d = one(
        "4.run-installer",
        "level=fatal msg=\"failed to fetch Master Machines: failed to load asset \\\"Install Config\\\": invalid \\\"install-config.yaml\\\" file: platform.vsphere.vCenter: Required value: must specify the name of the vCenter\"",
    );
    assert!(
        d.fix.starts_with("Correct config.json vsphere.vsphere_server (install-config.yaml's platform.vsphere.vCenter is made from it)"),
        "{}",
        d.fix
    );
    assert!(d.fix.contains("--from 2.create-config"), "{}", d.fix);
}

#[test]
fn a_folder_given_as_an_absolute_path_still_names_its_field() {
    let ctx = Context {
        config: Some(serde_json::json!({"vsphere": {"vsphere_folder": "ocp4test"}})),
        ..Context::default()
    };
    let lines = vec!["Error: folder '/Datacenter/vm/ocp4test' not found".to_string()];
    let d = cat()
        .diagnose("7.terraform-deploy", &lines, None, &ctx)
        .unwrap();
    assert_eq!(d.id, "vsphere-folder-not-found");
    assert!(d.cause.contains("'/Datacenter/vm/ocp4test'"), "{}", d.cause);
    assert!(d.fix.contains("(vsphere.vsphere_folder)"), "{}", d.fix);
    // A satellite refusal shows later, as packages that cannot be found.
    let lines = vec![
        "fatal: [svc-0]: FAILED! => {\"changed\": false, \"msg\": \"No package coredns available.\"}".to_string(),
    ];
    let d = cat()
        .diagnose("8.configure-svcs", &lines, None, &Context::default())
        .unwrap();
    assert_eq!(d.id, "satellite-refused");
}

#[test]
fn old_ignition_files_are_named_even_without_the_x509_line() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("bootstrap.ign");
    std::fs::write(&f, "{}").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let ctx = Context {
        deployconfig: Some(tmp.path().into()),
        ..Context::default()
    };
    let lines = vec!["level=fatal msg=\"Bootstrap failed to complete\"".to_string()];
    let d = cat()
        .diagnose("wait-for-bootstrap", &lines, None, &ctx)
        .unwrap();
    assert_eq!(d.id, "ignition-expired");
    // A fresh file: the timeout entry instead.
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let d = cat()
        .diagnose("wait-for-bootstrap", &lines, None, &ctx)
        .unwrap();
    assert_eq!(d.id, "bootstrap-timeout");
}

#[test]
fn the_bootstrap_timeout_says_whether_the_vm_fetched_its_ignition() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("web.log");
    std::fs::write(&log, "2026-11-28T12:04:31.000000000Z stdout 10.50.1.250 - - [28/Nov/2026:12:04:31 +0000] \"GET /bootstrap.ign HTTP/1.1\" 200 295123 \"-\" \"Ignition/2.14.0\"\n").unwrap();
    let ctx = Context {
        web_logs: vec![log.clone()],
        ..Context::default()
    };
    let lines = vec![
        "level=fatal msg=\"Bootstrap failed to complete: timed out waiting for the condition\""
            .to_string(),
    ];
    let d = cat()
        .diagnose("wait-for-bootstrap", &lines, None, &ctx)
        .unwrap();
    assert!(
        d.fix
            .contains("served bootstrap.ign to 10.50.1.250 at 28/Nov/2026:12:04:31 +0000"),
        "{}",
        d.fix
    );
    std::fs::write(
        &log,
        "2026-11-28T12:04:31.000000000Z stderr nginx started\n",
    )
    .unwrap();
    let d = cat()
        .diagnose("wait-for-bootstrap", &lines, None, &ctx)
        .unwrap();
    assert!(
        d.fix.contains("shows no fetch of bootstrap.ign"),
        "{}",
        d.fix
    );
}

#[test]
fn a_users_file_extends_and_overrides_and_a_broken_one_is_named() {
    let user = "[[entry]]\nid = \"disk-full\"\npattern = 'quota exceeded'\ncause = \"Quota\"\nfix = \"Ask for more\"\n\n[[entry]]\nid = \"site-proxy\"\npattern = 'proxyconnect tcp'\ncause = \"The site proxy refused\"\nfix = \"Call the network team\"\n";
    let c = Catalogue::with(Some((user, "diagnoses.toml"))).unwrap();
    assert_eq!(c.ids()[..2], ["disk-full", "site-proxy"]);
    assert_eq!(c.ids().iter().filter(|i| **i == "disk-full").count(), 1);
    let d = c
        .diagnose(
            "pull",
            &["proxyconnect tcp: EOF".into()],
            None,
            &Context::default(),
        )
        .unwrap();
    assert_eq!(d.cause, "The site proxy refused");
    let e = Catalogue::with(Some((
        "[[entry]]\nid = \"x\"\npattern = '('\ncause = \"\"\nfix = \"\"\n",
        "diagnoses.toml",
    )))
    .unwrap_err();
    assert!(e.contains("diagnoses.toml: entry x: bad pattern"), "{e}");
}

#[test]
fn line_numbers_stay_true_when_only_the_end_of_a_big_log_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("big.log");
    let mut text = String::new();
    let pad = "x".repeat(200);
    let n = (TAIL_BYTES as usize / 200) + 5000;
    for i in 0..n {
        text.push_str(&format!(
            "2026-11-28T12:00:00.000000000Z stdout line {i} {pad}\n"
        ));
    }
    text.push_str("2026-11-28T12:00:00.000000000Z stderr Error: datastore 'd' not found\n");
    std::fs::write(&log, text).unwrap();
    let d = cat()
        .diagnose_log("7.terraform-deploy", &log, None, &Context::default())
        .unwrap();
    assert_eq!(d.line, Some(n + 1));
}

#[test]
fn only_the_bootstrap_vms_gets_count_as_fetches_not_stage2_tuis_own_checks() {
    let lines = [
        r#"10.50.1.250 - - [30/Nov/2026:09:00:00 +0000] "GET /bootstrap.ign HTTP/1.1" 200 301 "-" "Ignition/2.14.0""#,
        r#"127.0.0.1 - - [30/Nov/2026:09:00:02 +0000] "HEAD /bootstrap.ign HTTP/1.0" 200 301 "-" "stage2-tui-url-check""#,
        r#"10.50.1.5 - - [30/Nov/2026:09:00:04 +0000] "GET /bootstrap.ign HTTP/1.0" 200 301 "-" "stage2-tui-url-check""#,
    ];
    let f = super::bootstrap_fetches(lines);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].client, "10.50.1.250");
}

#[test]
fn fixes_name_the_address_field_and_fill_in_the_deployconfig() {
    let ctx = Context {
        deployconfig: Some("/home/core/deployconfig".into()),
        config: Some(serde_json::json!({
            "svcs": [
                {"hostname": "svc-0", "ipaddress": "10.50.1.20"},
                {"hostname": "svc-1", "ipaddress": "10.50.1.21"}
            ]
        })),
        ..Context::default()
    };
    let lines = vec!["fatal: [svc-1]: UNREACHABLE! => {\"changed\": false}".to_string()];
    let d = cat()
        .diagnose("8.configure-svcs", &lines, None, &ctx)
        .unwrap();
    assert!(
        d.fix
            .contains("svcs[1].hostname; its address svcs[1].ipaddress = 10.50.1.21"),
        "{}",
        d.fix
    );
    let lines = vec!["level=fatal msg=\"Bootstrap failed to complete\"".to_string()];
    let d = cat()
        .diagnose("wait-for-bootstrap", &lines, None, &ctx)
        .unwrap();
    assert!(
        d.fix.contains("--dir '/home/core/deployconfig'") && !d.fix.contains("<deployconfig>"),
        "{}",
        d.fix
    );
    let lines = vec!["Error: The name 'ocp4-bootstrap' already exists.".to_string()];
    let d = cat()
        .diagnose("7.terraform-deploy", &lines, None, &ctx)
        .unwrap();
    assert!(
        d.fix
            .contains("remove-bootstrap removes only the bootstrap VM"),
        "{}",
        d.fix
    );
}
