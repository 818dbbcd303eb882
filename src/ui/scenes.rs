//! Fixed, realistic screen states: for snapshot tests, screenshots and the render benchmark.
//! Times, ids and paths are constant so renders are reproducible.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::app::{App, Header, Keymap, LogView, Screen, UrlCheck, WindowInfo};
use crate::logformat::{LogLine, Stream};
use crate::pipeline::state::Attempt;
use crate::pipeline::{Event, Finish, Outcome, Pipeline, RunState, StepStatus};
use crate::ui::theme::Theme;

/// The fixed "now" of every scene.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 10, 0)
        .single()
        .unwrap_or_default()
}

fn at(min: i64, sec: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::minutes(min)
        + Duration::seconds(sec)
}

fn attempt(
    step: &str,
    n: u32,
    start: DateTime<Utc>,
    secs: Option<i64>,
    exit: Option<i64>,
) -> Attempt {
    Attempt {
        n,
        started_at: start,
        finished_at: secs.map(|s| start + Duration::seconds(s)),
        container: Some(step.to_string()),
        container_id: Some(format!("{:0>12}", n)),
        image: Some(format!("registry.example.internal:5002/docker-openshift/{step}:0.5")),
        exit_code: exit,
        error: exit.filter(|c| *c != 0).map(|c| format!("exit code {c}: Error: error cloning virtual machine: The name 'master-1' already exists.")),
        log: PathBuf::from(format!("logs/run/{step}.{n}.log")),
        diagnosis: exit.filter(|c| *c != 0).map(|_| crate::pipeline::diagnosis::Diagnosis {
            id: "vsphere-vm-exists".into(),
            cause: "A VM named 'master-1' already exists in vCenter".into(),
            fix: format!("If it is left from an earlier attempt of this cluster, delete it in vCenter (or run remove-bootstrap / terraform destroy); otherwise rename it in config.json (masters[1].hostname). Then retry {step}"),
            line: Some(TERRAFORM.len() + 2),
            text: Some("Error: error cloning virtual machine: The name 'master-1' already exists.".into()),
        }),
    }
}

fn line(stream: Stream, text: &str) -> LogLine {
    LogLine {
        stream,
        ts: "2026-11-27T12:04:00.000000000Z".into(),
        text: text.into(),
    }
}

const TERRAFORM: &[&str] = &[
    "Initializing the backend...",
    "Initializing provider plugins...",
    "- Installed hashicorp/vsphere v2.4.3 (unauthenticated)",
    "Terraform has been successfully initialized!",
    "module.bootstrap.vsphere_virtual_machine.vm[\"bootstrap-0\"]: Creating...",
    "module.masters.vsphere_virtual_machine.vm[\"master-0\"]: Creating...",
    "module.masters.vsphere_virtual_machine.vm[\"master-1\"]: Creating...",
    "module.masters.vsphere_virtual_machine.vm[\"master-2\"]: Creating...",
    "module.bootstrap.vsphere_virtual_machine.vm[\"bootstrap-0\"]: Still creating... [10s elapsed]",
    "module.masters.vsphere_virtual_machine.vm[\"master-0\"]: Still creating... [10s elapsed]",
];

const INSTALLER: &[&str] = &[
    "level=info msg=\"Consuming Install Config from target directory\"",
    "level=warning msg=\"Making control-plane schedulable by setting MastersSchedulable to true\"",
    "level=info msg=\"Manifests created in: manifests and openshift\"",
    "level=info msg=\"Consuming Common Manifests from target directory\"",
    "level=info msg=\"Ignition-Configs created in: . and auth\"",
];

/// A base app with the built-in pipeline and a run at "now".
pub fn base(state_dir: &Path) -> App {
    let pipeline = Pipeline::default_pipeline().unwrap_or_else(|_| Pipeline { steps: vec![] });
    let header = Header {
        deployconfig: "/home/core/deployconfig".into(),
        engine: "Podman Engine 4.3.1 (API 1.41) at unix:///run/podman/podman.sock".into(),
    };
    let keys = Keymap::builtin();
    let (themes, _) = Theme::load_all_builtin();
    let mut app = App::new(
        pipeline.clone(),
        header,
        state_dir.to_path_buf(),
        state_dir.join("exports"),
        keys,
        themes,
    );
    let mut run = RunState::new(&pipeline);
    run.run_id = "20261127-120000-1a2b".into();
    run.created_at = at(0, 0);
    app.run = Some(run);
    app.now = now();
    app.tick = 3;
    app
}

fn set(app: &mut App, id: &str, status: StepStatus, a: Option<Attempt>) {
    if let Some(s) = app.run.as_mut().and_then(|r| r.step_mut(id)) {
        s.status = status;
        if let Some(a) = a {
            s.attempts.push(a);
        }
    }
}

fn tail(app: &mut App, id: &str, lines: &[&str], stream: Stream) {
    app.tails
        .insert(id.into(), lines.iter().map(|l| line(stream, l)).collect());
}

/// Stage 2 in progress: terraform running, the web server window counting down.
pub fn running(state_dir: &Path) -> App {
    let mut app = base(state_dir);
    set(
        &mut app,
        "pull",
        StepStatus::Succeeded,
        Some(attempt("pull", 1, at(0, 0), Some(2), None)),
    );
    set(
        &mut app,
        "2.create-config",
        StepStatus::Succeeded,
        Some(attempt("2.create-config", 1, at(0, 2), Some(3), Some(0))),
    );
    set(
        &mut app,
        "4.run-installer",
        StepStatus::Succeeded,
        Some(attempt("4.run-installer", 1, at(0, 5), Some(95), Some(0))),
    );
    set(
        &mut app,
        "5.ign-webserver",
        StepStatus::Serving,
        Some(attempt("5.ign-webserver", 1, at(1, 40), None, None)),
    );
    set(
        &mut app,
        "6.add-ignition",
        StepStatus::Succeeded,
        Some(attempt("6.add-ignition", 1, at(1, 41), Some(4), Some(0))),
    );
    set(
        &mut app,
        "7.terraform-deploy",
        StepStatus::Running,
        Some(attempt("7.terraform-deploy", 1, at(1, 46), None, None)),
    );
    tail(&mut app, "4.run-installer", INSTALLER, Stream::Stderr);
    tail(&mut app, "7.terraform-deploy", TERRAFORM, Stream::Stdout);
    tail(
        &mut app,
        "6.add-ignition",
        &[
            "Backing up config.json to .config.json.add-ignbak",
            "Generating svc.ign for the svc VMs",
            "config.json updated with ignition configuration",
        ],
        Stream::Stdout,
    );
    app.window = Some(WindowInfo {
        step: "5.ign-webserver".into(),
        url: Some("http://10.50.1.254/bootstrap.ign".into()),
        opened_at: at(1, 40),
        ends_at: at(1, 40) + Duration::hours(2),
        check: UrlCheck::Answered {
            status: 200,
            bytes: Some(301_232),
        },
        // terraform has not made the bootstrap VM yet: the countdown waits for it.
        waiting_for: Some("7.terraform-deploy".into()),
        fetches: vec![],
    });
    app.driving = true;
    app.selected = app.pipeline.index_of("7.terraform-deploy").unwrap_or(0);
    app.status = Some("7.terraform-deploy: container 7.terraform-deploy from registry.example.internal:5002/docker-openshift/7.terraform-deploy:0.5".into());
    app
}

/// terraform made the VMs; the web server's window counts down and its own log shows the
/// bootstrap VM fetching its ignition while 8.configure-svcs runs.
pub fn serving(state_dir: &Path) -> App {
    let mut app = running(state_dir);
    if let Some(s) = app
        .run
        .as_mut()
        .and_then(|r| r.step_mut("7.terraform-deploy"))
    {
        s.status = StepStatus::Succeeded;
        s.attempts[0] = attempt("7.terraform-deploy", 1, at(1, 46), Some(610), Some(0));
    }
    set(
        &mut app,
        "wait-svcs",
        StepStatus::Succeeded,
        Some(attempt("wait-svcs", 1, at(11, 56), Some(80), None)),
    );
    set(
        &mut app,
        "8.configure-svcs",
        StepStatus::Running,
        Some(attempt("8.configure-svcs", 1, at(13, 16), None, None)),
    );
    tail(
        &mut app,
        "8.configure-svcs",
        &[
            "PLAY [svcs] ********************************************************************",
            "TASK [Gathering Facts] *********************************************************",
            "ok: [svc-0]",
            "ok: [svc-1]",
            "TASK [Register with the satellite] *********************************************",
            "changed: [svc-0]",
            "changed: [svc-1]",
            "TASK [Install CoreDNS packages] ************************************************",
        ],
        Stream::Stdout,
    );
    tail(
        &mut app,
        "5.ign-webserver",
        &[
            "10.50.1.250 - - [27/Nov/2026:12:12:05 +0000] \"GET /bootstrap.ign HTTP/1.1\" 200 301232 \"-\" \"Ignition/2.14.0\" \"-\"",
        ],
        Stream::Stdout,
    );
    if let Some(w) = app.window.as_mut() {
        w.waiting_for = None;
        w.opened_at = at(11, 56);
        w.ends_at = at(21, 56);
        w.fetches = vec![crate::pipeline::diagnosis::Fetch {
            client: "10.50.1.250".into(),
            time: "27/Nov/2026:12:12:05 +0000".into(),
            status: 200,
            bytes: 301_232,
        }];
    }
    app.selected = app.pipeline.index_of("8.configure-svcs").unwrap_or(0);
    app.status = Some("8.configure-svcs: container 8.configure-svcs from registry.example.internal:5002/docker-openshift/8.configure-svcs:0.5".into());
    app.now = at(14, 30);
    app
}

/// terraform failed; the run halted and offers Retry.
pub fn failed(state_dir: &Path) -> App {
    let mut app = running(state_dir);
    app.driving = false;
    // terraform did not make the bootstrap VM: the web server's window still waits for it
    // (the engine ends it 2 hours after its start at the latest).
    if let Some(w) = app.window.as_mut() {
        w.waiting_for = Some("7.terraform-deploy".into());
        w.ends_at = at(1, 40) + Duration::hours(2);
        w.fetches.clear();
    }
    if let Some(s) = app
        .run
        .as_mut()
        .and_then(|r| r.step_mut("7.terraform-deploy"))
    {
        s.status = StepStatus::Failed;
        s.attempts[0] = attempt("7.terraform-deploy", 1, at(1, 46), Some(74), Some(1));
    }
    if let Some(r) = app.run.as_mut() {
        r.outcome = Outcome::Failed;
        r.finished_at = Some(at(3, 0));
    }
    let mut lines: Vec<&str> = TERRAFORM.to_vec();
    lines.extend([
        "",
        "Error: error cloning virtual machine: The name 'master-1' already exists.",
        "",
        "  with module.masters.vsphere_virtual_machine.vm[\"master-1\"],",
        "  on modules/rhcos/main.tf line 24, in resource \"vsphere_virtual_machine\" \"vm\":",
    ]);
    tail(&mut app, "7.terraform-deploy", &lines, Stream::Stderr);
    let f = Finish::Failed {
        step: "7.terraform-deploy".into(),
        error:
            "exit code 1: Error: error cloning virtual machine: The name 'master-1' already exists."
                .into(),
    };
    app.on_runner(Event::Finished(Ok(f)));
    app.now = now();
    app
}

/// Everything succeeded.
pub fn completed(state_dir: &Path) -> App {
    let mut app = base(state_dir);
    let mut t = 0;
    let ids: Vec<String> = app.pipeline.steps.iter().map(|s| s.id.clone()).collect();
    for id in &ids {
        let secs = match id.as_str() {
            "pull" => 2,
            "2.create-config" => 3,
            "4.run-installer" => 95,
            "5.ign-webserver" => 600,
            "6.add-ignition" => 4,
            "7.terraform-deploy" => 310,
            "wait-svcs" => 80,
            "8.configure-svcs" => 420,
            "install-clients" => 1,
            "wait-for-bootstrap" => 900,
            "remove-bootstrap" => 45,
            "approve-csrs" => 180,
            "9.post-deployment" => 240,
            _ => 600,
        };
        set(
            &mut app,
            id,
            StepStatus::Succeeded,
            Some(attempt(id, 1, at(0, t), Some(secs), Some(0))),
        );
        if id != "5.ign-webserver" {
            t += secs;
        }
    }
    if let Some(r) = app.run.as_mut() {
        r.outcome = Outcome::Succeeded;
        r.finished_at = Some(at(0, t));
    }
    tail(
        &mut app,
        "9.post-deployment",
        &[
            "PLAY RECAP *********************************************************",
            "localhost : ok=6 changed=5 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0",
        ],
        Stream::Stdout,
    );
    app.selected = app
        .pipeline
        .index_of("9.post-deployment")
        .unwrap_or(ids.len() - 1);
    app.on_runner(Event::Finished(Ok(Finish::Succeeded)));
    app.now = now();
    app
}

/// The last hour of an install: approve-csrs runs and the Cluster pane shows nodes joining.
pub fn cluster(state_dir: &Path) -> App {
    let mut app = base(state_dir);
    let ids: Vec<String> = app.pipeline.steps.iter().map(|s| s.id.clone()).collect();
    let mut t = 0;
    for id in &ids {
        if id == "approve-csrs" {
            set(
                &mut app,
                id,
                StepStatus::Running,
                Some(attempt(id, 1, at(0, t), None, None)),
            );
            break;
        }
        let secs = match id.as_str() {
            "4.run-installer" => 95,
            "5.ign-webserver" => 600,
            "7.terraform-deploy" => 610,
            "wait-for-bootstrap" => 1260,
            _ => 40,
        };
        set(
            &mut app,
            id,
            StepStatus::Succeeded,
            Some(attempt(id, 1, at(0, t), Some(secs), Some(0))),
        );
        if id != "5.ign-webserver" {
            t += secs;
        }
    }
    tail(
        &mut app,
        "approve-csrs",
        &[
            "approving node CSRs until these 9 nodes are Ready: master-0, master-1, master-2, infra-0, infra-1, worker-0, worker-1, worker-2, worker-3",
            "nodes 3/9 Ready, 0 CSRs pending",
            "nodes 3/9 Ready, 6 CSRs pending",
            "certificatesigningrequest.certificates.k8s.io/csr-4xk2p approved",
            "certificatesigningrequest.certificates.k8s.io/csr-8h6zq approved",
            "certificatesigningrequest.certificates.k8s.io/csr-c2v9m approved",
            "certificatesigningrequest.certificates.k8s.io/csr-f7wq1 approved",
            "certificatesigningrequest.certificates.k8s.io/csr-k9d3s approved",
            "certificatesigningrequest.certificates.k8s.io/csr-t5n8b approved",
            "nodes 5/9 Ready, 2 CSRs pending",
        ],
        Stream::Stdout,
    );
    let node = |name: &str, ready: bool, role: &str| crate::pipeline::cluster::Node {
        name: name.into(),
        ready,
        roles: vec![role.into()],
    };
    let looked = at(0, t) + Duration::seconds(90);
    app.cluster = Some(crate::pipeline::cluster::Snapshot {
        at: looked,
        error: None,
        declared: [
            "master-0", "master-1", "master-2", "infra-0", "infra-1", "worker-0", "worker-1",
            "worker-2", "worker-3",
        ]
        .map(String::from)
        .to_vec(),
        nodes: vec![
            node("master-0", true, "master"),
            node("master-1", true, "master"),
            node("master-2", true, "master"),
            node("infra-0", true, "infra"),
            node("infra-1", true, "infra"),
            node("worker-0", false, "worker"),
            node("worker-1", false, "worker"),
        ],
        csr_pending: vec!["csr-m2x7d".into(), "csr-q8w4n".into()],
        csr_other: vec![
            "csr-9zk2p (requested by system:serviceaccount:default:builder, signer kubernetes.io/kube-apiserver-client)".into(),
        ],
        csr_approved: 12,
        operators: Some(crate::pipeline::cluster::Operators {
            total: 31,
            available: 24,
            progressing: 7,
            degraded: 0,
            waiting_for: [
                "authentication",
                "console",
                "image-registry",
                "ingress",
                "monitoring",
            ]
            .map(String::from)
            .to_vec(),
            version_available: Some(false),
        }),
    });
    app.driving = true;
    app.selected = ids.iter().position(|i| i == "approve-csrs").unwrap_or(0);
    app.status = Some(
        "approve-csrs: Approve node CSRs until every node config.json declares is Ready".into(),
    );
    app.now = looked + Duration::seconds(6);
    app
}

/// Writes a realistic terraform log of `lines` lines (with an error near the end) and opens it.
pub fn log_file(state_dir: &Path, lines: usize) -> std::io::Result<PathBuf> {
    let path = state_dir.join("logs/run/7.terraform-deploy.1.log");
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    for i in 0..lines {
        let (stream, text) = match i % 7 {
            0 => (
                "stdout",
                format!(
                    "module.workers.vsphere_virtual_machine.vm[\"worker-{}\"]: Still creating... [{}s elapsed]",
                    i % 40,
                    i % 600
                ),
            ),
            1 => (
                "stdout",
                format!(
                    "\x1b[32m+\x1b[0m resource \"vsphere_virtual_machine\" \"vm\" {{ name = \"worker-{}\" }}",
                    i % 40
                ),
            ),
            _ => (
                "stdout",
                format!(
                    "module.masters.vsphere_virtual_machine.vm[\"master-{}\"]: Refreshing state... [id=4219{:08x}]",
                    i % 3,
                    i
                ),
            ),
        };
        writeln!(
            f,
            "2026-11-27T12:{:02}:{:02}.000000000Z {stream} {text}",
            (i / 60) % 60,
            i % 60
        )?;
    }
    writeln!(
        f,
        "2026-11-27T12:03:00.000000000Z stderr \x1b[31mError:\x1b[0m error cloning virtual machine: The name 'master-1' already exists."
    )?;
    writeln!(
        f,
        "2026-11-27T12:03:00.000000000Z stderr   with module.masters.vsphere_virtual_machine.vm[\"master-1\"],"
    )?;
    f.flush()?;
    Ok(path)
}

/// The full log of the failed step, searched for "master-1".
pub fn log_search(state_dir: &Path, height: u16) -> App {
    let mut app = failed(state_dir);
    let path = log_file(state_dir, 400).unwrap_or_default();
    let mut v = LogView::open("7.terraform-deploy", 1, &path, crate::ui::log_rows(height));
    v.run_search("master-1".into());
    v.settle(None);
    v.timestamps = crate::app::Timestamps::Full;
    app.screen = Screen::Log(Box::new(v));
    app
}

/// A secrets.json for setup scenes.
pub const SECRETS: &str = r#"{
  "rhpullsecret": { "auths": { "registry.example.internal": { "auth": "ZGVtbzpwdWxs", "email": "ops@example.internal" } } },
  "rheltemplatepw": "hunter22",
  "registrytoken": "",
  "vcenterdeploy": {
    "username": "deploy@vsphere.local",
    "password": "s3cret-vc"
  },
  "vcentervolumeprovisioner": {
    "username": "volumes@vsphere.local",
    "password": "s3cret-vol"
  },
  "dns": {
    "username": "dnsadmin",
    "password": "s3cret-dns"
  },
  "objectstorage": {
    "accesskey": "AKIDEXAMPLE",
    "secretkey": "s3cret-obj",
    "bucketname": "ocp4test-registry",
    "regionendpoint": "https://objects.example.internal"
  }
}
"#;

/// The setup flow on a deployconfig in `dir` holding `config` (and [`SECRETS`]); returns the app
/// and the background tasks it asked for.
pub fn setup(dir: &Path, config: &str) -> (App, Vec<crate::app::Effect>) {
    let _ = std::fs::write(dir.join("config.json"), config);
    let _ = std::fs::write(dir.join("secrets.json"), SECRETS);
    let mut app = base(&dir.join(".stage2-tui"));
    app.run = None;
    let first = app.open_setup(crate::config::Deployconfig::new(dir));
    (app, first)
}

/// Pre-flight results with the usual problems of a first install.
pub fn setup_checks() -> Vec<crate::check::Check> {
    use crate::check::{Check, Status};
    let c = |check: &str, status, message: &str, fix: Option<&str>| Check {
        check: check.into(),
        status,
        message: message.into(),
        fix: fix.map(String::from),
        key_too_open: check == "deploy.pem" && status == Status::Error,
    };
    vec![
        c(
            "engine",
            Status::Ok,
            "Podman Engine 4.3.1 (API 1.41) at unix:///run/podman/podman.sock",
            None,
        ),
        c(
            "deploy.pem",
            Status::Error,
            "/home/core/deployconfig/deploy.pem has mode 644; ssh refuses a key others can read",
            Some("chmod 600 /home/core/deployconfig/deploy.pem"),
        ),
        c(
            "config.json",
            Status::Error,
            "masters[1].ipaddress: \"10.50.2.11\" is outside 10.50.1.0/24",
            Some("edit config.json (stage2-tui's editor shows the field)"),
        ),
        c(
            "bootstrap.ign",
            Status::Error,
            "is 30 h old: its certificates expire after 24 h",
            Some("run again from 4.run-installer (it regenerates them)"),
        ),
        c(
            "images",
            Status::Warning,
            "1 of 7 not present locally: registry.example.internal:5002/docker-openshift/9.post-deployment:0.5",
            Some("the pull step pulls them"),
        ),
        c("port 80", Status::Ok, "free for 5.ign-webserver", None),
    ]
}

/// Installer versions: a connected embedded one and a disconnected override.
pub fn setup_versions() -> crate::app::setup::SetupMsg {
    crate::app::setup::SetupMsg::Versions {
        embedded: Ok("openshift-install 4.14.0\nbuilt from commit abc\nrelease image quay.io/openshift-release-dev/ocp-release@sha256:00".into()),
        overridden: Some(Ok("openshift-install 4.14.0\nrelease image registry.example.internal:5000/ocp4/openshift4@sha256:11".into())),
    }
}

/// Local tags of the installer image.
pub fn setup_tags() -> crate::app::setup::SetupMsg {
    crate::app::setup::SetupMsg::Tags(Ok(vec![
        ("0.5".into(), 7, 7),
        ("0.6-rc1".into(), 3, 7),
        ("demo".into(), 7, 7),
    ]))
}
