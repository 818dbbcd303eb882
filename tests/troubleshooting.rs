//! Troubleshooting against the real engine: the support bundle carries what support needs and
//! no secret, even one a stage printed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

/// Every string in secrets.json, at any depth (what must never be in a bundle).
fn secret_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if s.chars().count() >= 4 => out.push(s.clone()),
        serde_json::Value::Object(m) => m.values().for_each(|x| secret_strings(x, out)),
        serde_json::Value::Array(a) => a.iter().for_each(|x| secret_strings(x, out)),
        _ => {}
    }
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn a_support_bundle_has_everything_and_no_secret_even_one_a_stage_printed() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    // A hostile or careless stage prints all of secrets.json, each value on its own, then fails
    // with a failure the catalogue knows.
    set_pipeline(
        &dir,
        &oneshot(
            "leaky",
            "cat /tmp/workingdir/secrets.json; sed -n 's/.*: *\"\\(.*\\)\".*/value \\1/p' /tmp/workingdir/secrets.json >&2; echo \"Error: datastore 'demo-datastore' not found\" >&2; exit 1",
        ),
    );
    let o = run(&["run", "--headless", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    let out = tmp.path().join("support.tar.gz");
    let o = run(&[
        "bundle",
        "--deployconfig",
        d,
        "--out",
        out.to_str().unwrap(),
    ]);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(0), "{said}");
    assert!(said.contains("support bundle written to"), "{said}");
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let x = tmp.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let st = std::process::Command::new("tar")
        .args(["xzf", out.to_str().unwrap(), "-C", x.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let root = x.join("support");
    for f in [
        "README.txt",
        "status.json",
        "state.json",
        "config.json",
        "secrets.redacted.json",
        "pipeline.toml",
        "check.json",
        "engine.json",
        "diagnoses.json",
        "webserver-access.txt",
    ] {
        assert!(root.join(f).is_file(), "{f} missing from the bundle");
    }
    let inspect = format!("inspect/{}.json", container_name("leaky"));
    assert!(
        root.join(&inspect).is_file(),
        "{inspect} missing from the bundle"
    );
    let mut files = Vec::new();
    files_under(&root, &mut files);
    assert!(
        files
            .iter()
            .any(|p| p.to_string_lossy().ends_with("leaky.1.log")),
        "{files:?}"
    );
    // The stage's output is there, masked.
    let log = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with("leaky.1.log"))
        .unwrap();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("••••••"), "{log}");
    assert!(
        log.contains("\"vcenterdeploy\""),
        "secrets.json's shape is kept: {log}"
    );
    // The diagnosis made it, naming the field that holds the value.
    let diag = std::fs::read_to_string(root.join("diagnoses.json")).unwrap();
    assert!(diag.contains("vsphere-datastore-not-found"), "{diag}");
    let engine = std::fs::read_to_string(root.join("engine.json")).unwrap();
    assert!(engine.contains("\"version\""), "{engine}");
    // secrets.json keeps its keys, not its values.
    let redacted: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("secrets.redacted.json")).unwrap())
            .unwrap();
    assert_eq!(redacted["vcenterdeploy"]["password"], "<redacted>");

    // No secrets.json value anywhere in the bundle.
    let secrets: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("secrets.json")).unwrap()).unwrap();
    let mut values = Vec::new();
    secret_strings(&secrets, &mut values);
    assert!(values.len() >= 8, "{values:?}");
    for f in &files {
        let body = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        for v in &values {
            assert!(!body.contains(v.as_str()), "{v} found in {}", f.display());
        }
    }
    remove_containers_of(&dir);
}

/// A deployconfig where only the cluster steps run, against the demo `oc` (its cluster takes
/// `cluster_secs` to form): `oc` in `<dc>/bin`, a kubeconfig in `auth/`.
fn cluster_only(extra_wait: &str, cluster_secs: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, dir) = demo_dc(&[]);
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("demo-stages/4.run-installer/oc"),
        bin.join("oc"),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("oc"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(dir.join("auth")).unwrap();
    std::fs::write(
        dir.join("auth/kubeconfig"),
        "apiVersion: v1\nkind: Config\n",
    )
    .unwrap();
    std::fs::write(dir.join(".demo/cluster-secs"), format!("{cluster_secs}\n")).unwrap();
    set_pipeline(
        &dir,
        &format!(
            "[[step]]\nid = \"approve-csrs\"\nkind = \"host\"\naction = \"approve-csrs\"\nbin_dir = \"{{deployconfig}}/bin\"\ninterval_secs = 1\ntimeout_secs = 60\n\n\
             [[step]]\nid = \"wait-operators\"\nkind = \"wait\"\nuntil = \"cluster-operators\"\nbin_dir = \"{{deployconfig}}/bin\"\ninterval_secs = 1\nstable_secs = 1\n{extra_wait}\n"
        ),
    );
    (tmp, dir)
}

#[test]
fn csrs_are_approved_until_every_node_is_ready_through_api_blips_then_operators_settle() {
    let (_tmp, dir) = cluster_only("timeout_secs = 60", 3);
    // The API refuses the first 3 calls: retried within the step, not a failure.
    std::fs::write(dir.join(".demo/api-refuse"), "3\n").unwrap();
    let o = run(&["run", "--headless", "--deployconfig", dir.to_str().unwrap()]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(
        all.contains("the cluster did not answer") && all.contains("was refused"),
        "{all}"
    );
    assert!(
        all.contains("nodes 3/6 Ready, 3 CSRs pending, 1 CSR not a node's, left alone"),
        "{all}"
    );
    assert!(
        all.contains("every declared node is Ready (6/6) and no node CSR is pending"),
        "{all}"
    );
    assert!(all.contains("operators 31/31 available"), "{all}");
    let st = state(&dir);
    assert_eq!(
        step(&st, "approve-csrs")["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Both client and serving CSRs of the 3 workers and infras were approved, nothing else
    // (not the builder's CSR, which is not a node's).
    let approved = std::fs::read_to_string(dir.join(".demo/cluster/approved")).unwrap();
    assert_eq!(approved.lines().count(), 6, "{approved}");
    assert!(!approved.contains("csr-9zk2p"), "{approved}");
}

#[test]
fn operators_that_never_settle_fail_the_wait_on_time_with_a_diagnosis() {
    // A cluster that takes 10 minutes: the 3 s wait gives up.
    let (_tmp, dir) = cluster_only("timeout_secs = 3", 600);
    std::fs::write(
        dir.join("stage2-pipeline.toml"),
        std::fs::read_to_string(dir.join("stage2-pipeline.toml"))
            .unwrap()
            .replace("timeout_secs = 60", "timeout_secs = 2"),
    )
    .unwrap();
    accept_pipeline(&dir);
    let o = run(&["run", "--headless", "--deployconfig", dir.to_str().unwrap()]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("stage 2 FAILED at approve-csrs: gave up after 2.0s"),
        "{all}"
    );
    assert!(
        all.contains("not Ready: infra-0, infra-1, worker-assured-0"),
        "{all}"
    );
    assert!(
        all.contains("diagnosis: Not every node config.json declares became Ready: infra-0"),
        "{all}"
    );
    // The operators wait alone (a new run of a pipeline without the CSR step) times out too.
    let pipeline = std::fs::read_to_string(dir.join("stage2-pipeline.toml")).unwrap();
    let wait = &pipeline[pipeline.rfind("[[step]]").unwrap()..];
    set_pipeline(&dir, wait);
    let o = run(&[
        "run",
        "--headless",
        "--restart",
        "--deployconfig",
        dir.to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("operators did not settle in 3.0s"), "{all}");
    let (_, js) = status(&dir);
    let w = js["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "wait-operators")
        .unwrap();
    assert_eq!(w["diagnosis"]["id"], "operators-not-settled", "{js}");
}
