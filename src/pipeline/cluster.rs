//! The cluster taking shape: nodes Ready against the nodes config.json declares, CSRs, cluster
//! operators. Read with `oc` (the one `install-clients` put on the bastion) and the run's
//! `auth/kubeconfig`; used by the Cluster pane, `status --json`, `approve-csrs` and the
//! condition wait before `9.post-deployment`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::process::Command;

/// How long one `oc` call may take.
const OC_TIMEOUT: Duration = Duration::from_secs(30);

/// A node as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// Its Ready condition is True.
    pub ready: bool,
    /// Its roles (master, worker, infra).
    pub roles: Vec<String>,
}

/// Cluster operators' conditions, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operators {
    /// How many there are.
    pub total: usize,
    /// Available=True.
    pub available: usize,
    /// Progressing=True.
    pub progressing: usize,
    /// Degraded=True.
    pub degraded: usize,
    /// The ones not Available, Progressing, or Degraded (names, at most 12).
    pub waiting_for: Vec<String>,
    /// The ClusterVersion's Available condition (`None`: not read).
    #[serde(default)]
    pub version_available: Option<bool>,
}

impl Operators {
    /// Every operator Available, none Progressing or Degraded, and the cluster version Available
    /// (what `openshift-install wait-for install-complete` waits for).
    pub fn settled(&self) -> bool {
        self.total > 0
            && self.available == self.total
            && self.progressing == 0
            && self.degraded == 0
            && self.version_available == Some(true)
    }
}

/// One look at the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// Why the API could not be read (`None`: it answered).
    pub error: Option<String>,
    /// Node names config.json declares (masters, infras, workers of every group).
    pub declared: Vec<String>,
    /// Nodes the cluster has.
    pub nodes: Vec<Node>,
    /// Pending node CSRs (names): the ones stage2-tui approves.
    pub csr_pending: Vec<String>,
    /// Pending CSRs that are not a node's ("name (requester, signer)"): never approved, listed.
    #[serde(default)]
    pub csr_other: Vec<String>,
    /// Approved CSRs.
    pub csr_approved: usize,
    /// Cluster operators (`None` until they could be read).
    pub operators: Option<Operators>,
}

impl Snapshot {
    /// Declared nodes that are Ready.
    pub fn ready_declared(&self) -> usize {
        self.declared
            .iter()
            .filter(|d| self.nodes.iter().any(|n| n.ready && node_is(&n.name, d)))
            .count()
    }

    /// Declared nodes not Ready yet.
    pub fn not_ready(&self) -> Vec<&str> {
        self.declared
            .iter()
            .filter(|d| !self.nodes.iter().any(|n| n.ready && node_is(&n.name, d)))
            .map(String::as_str)
            .collect()
    }

    /// "nodes 7/9 Ready, 2 CSRs pending" (and ", 1 CSR not a node's, left alone").
    pub fn nodes_line(&self) -> String {
        let pending = self.csr_pending.len();
        let mut line = format!(
            "nodes {}/{} Ready, {} CSR{} pending",
            self.ready_declared(),
            self.declared.len(),
            pending,
            if pending == 1 { "" } else { "s" }
        );
        if !self.csr_other.is_empty() {
            line.push_str(&format!(
                ", {} CSR{} not a node's, left alone",
                self.csr_other.len(),
                if self.csr_other.len() == 1 { "" } else { "s" }
            ));
        }
        line
    }

    /// "operators 28/31 available, 1 degraded".
    pub fn operators_line(&self) -> String {
        match &self.operators {
            Some(o) => {
                let mut s = format!("operators {}/{} available", o.available, o.total);
                if o.degraded > 0 {
                    s.push_str(&format!(", {} degraded", o.degraded));
                }
                s
            }
            None => "operators not read yet".into(),
        }
    }
}

/// A node name stands for a declared host when it is that name, or that name plus a domain.
fn node_is(node: &str, declared: &str) -> bool {
    node == declared
        || node
            .strip_prefix(declared)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The config.json node lists terraform makes OpenShift nodes from (`rhcos_machine` modules in
/// 7.terraform-deploy's `main.tf` and `ukcloud.tf`). The svcs lists are RHEL VMs, not nodes, and
/// `small/medium/largeworkers` appear only in `tenant.tf.depreciated`, which terraform does not
/// load.
pub const NODE_LISTS: [&str; 7] = [
    "masters",
    "infras",
    "assuredworkers",
    "assuredpublicworkers",
    "combinedworkers",
    "elevatedworkers",
    "elevatedpublicworkers",
];

/// The node names config.json declares: exactly the nodes terraform makes.
pub fn declared_nodes(config: &Value) -> Vec<String> {
    NODE_LISTS
        .iter()
        .filter_map(|k| config.get(*k)?.as_array())
        .flatten()
        .filter_map(|n| n.get("hostname")?.as_str())
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect()
}

/// The CSRs of one look.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Csrs {
    /// Pending node CSRs (names).
    pub pending: Vec<String>,
    /// Pending CSRs that are not a node's, described.
    pub other: Vec<String>,
    /// Approved CSRs.
    pub approved: usize,
}

/// The node-bootstrapper service account, which asks for every new node's client certificate.
const NODE_BOOTSTRAPPER: &str =
    "system:serviceaccount:openshift-machine-config-operator:node-bootstrapper";

/// A node's CSR, as a careful admin approves them: a kubelet client certificate asked for by the
/// node-bootstrapper, or a kubelet serving certificate asked for by one of `declared` itself.
pub fn is_node_csr(user: &str, signer: &str, declared: &[String]) -> bool {
    match signer {
        "kubernetes.io/kube-apiserver-client-kubelet" => user == NODE_BOOTSTRAPPER,
        "kubernetes.io/kubelet-serving" => user
            .strip_prefix("system:node:")
            .is_some_and(|n| declared.iter().any(|d| node_is(n, d))),
        _ => false,
    }
}

/// `oc` against the run's cluster.
#[derive(Debug, Clone)]
pub struct Oc {
    /// The `oc` binary.
    pub bin: PathBuf,
    /// The kubeconfig.
    pub kubeconfig: PathBuf,
}

/// Why `oc` failed, and whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcError {
    /// What it said.
    pub message: String,
    /// The API refused us (credentials), or oc is missing: waiting will not help.
    pub fatal: bool,
}

impl std::fmt::Display for OcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn fatal_text(s: &str) -> bool {
    // x509 unknown authority: the cluster's CA is not the kubeconfig's (4.run-installer ran
    // again after the VMs were made). Waiting never mends it.
    s.contains("certificate signed by unknown authority")
        || s.contains("Unauthorized")
        || s.contains("must be logged in")
        || s.contains("Forbidden")
        || s.contains("forbidden:")
}

impl Oc {
    /// `oc` in `bin_dir` with `<deployconfig>/auth/kubeconfig`.
    pub fn new(bin_dir: &Path, dc: &Path) -> Self {
        Self {
            bin: bin_dir.join("oc"),
            kubeconfig: dc.join("auth/kubeconfig"),
        }
    }

    /// Both files exist: the cluster can be asked.
    pub fn usable(&self) -> bool {
        self.bin.is_file() && self.kubeconfig.is_file()
    }

    /// Runs `oc ARGS`, returning its stdout.
    pub async fn run(&self, args: &[&str]) -> Result<String, OcError> {
        let out = Command::new(&self.bin)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = match tokio::time::timeout(OC_TIMEOUT, out).await {
            Err(_) => {
                return Err(OcError {
                    message: format!(
                        "oc {} took more than {} s",
                        args.join(" "),
                        OC_TIMEOUT.as_secs()
                    ),
                    fatal: false,
                });
            }
            Ok(Err(e)) => {
                return Err(OcError {
                    message: format!("cannot run {}: {e}", self.bin.display()),
                    fatal: true,
                });
            }
            Ok(Ok(o)) => o,
        };
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let msg = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        Err(OcError {
            fatal: fatal_text(&msg),
            message: format!("oc {} failed ({}): {msg}", args.join(" "), out.status),
        })
    }

    async fn json(&self, what: &str) -> Result<Value, OcError> {
        let text = self
            .run(&["get", what, "-o", "json", "--request-timeout=20s"])
            .await?;
        serde_json::from_str(&text).map_err(|e| OcError {
            message: format!("oc get {what} printed no JSON: {e}"),
            fatal: false,
        })
    }

    /// The nodes.
    pub async fn nodes(&self) -> Result<Vec<Node>, OcError> {
        Ok(items(&self.json("nodes").await?)
            .iter()
            .map(|n| Node {
                name: str_at(n, &["metadata", "name"]).to_string(),
                ready: condition(n, "Ready"),
                roles: n
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .map(|l| {
                        l.keys()
                            .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// The CSRs, against the nodes `declared`: (pending node CSRs, pending others described,
    /// approved count).
    pub async fn csrs(&self, declared: &[String]) -> Result<Csrs, OcError> {
        let v = self.json("csr").await?;
        let mut out = Csrs::default();
        for c in items(&v) {
            let conds = c
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if conds.is_empty() {
                let name = str_at(c, &["metadata", "name"]).to_string();
                let user = str_at(c, &["spec", "username"]);
                let signer = str_at(c, &["spec", "signerName"]);
                if is_node_csr(user, signer, declared) {
                    out.pending.push(name);
                } else {
                    out.other.push(
                        crate::text::visible(&format!(
                            "{name} (requested by {}, signer {})",
                            if user.is_empty() {
                                "nobody named"
                            } else {
                                user
                            },
                            if signer.is_empty() {
                                "none named"
                            } else {
                                signer
                            }
                        ))
                        .chars()
                        .take(200)
                        .collect(),
                    );
                }
            } else if conds
                .iter()
                .any(|x| x["type"] == "Approved" && x["status"] == "True")
            {
                out.approved += 1;
            }
        }
        Ok(out)
    }

    /// Approves CSRs by name.
    pub async fn approve(&self, names: &[String]) -> Result<String, OcError> {
        let mut args = vec!["adm", "certificate", "approve"];
        args.extend(names.iter().map(String::as_str));
        self.run(&args).await
    }

    /// Cluster operators, counted.
    pub async fn operators(&self) -> Result<Operators, OcError> {
        let v = self.json("clusteroperators").await?;
        let mut o = Operators::default();
        for c in items(&v) {
            o.total += 1;
            let avail = condition(c, "Available");
            let degraded = condition(c, "Degraded");
            o.available += usize::from(avail);
            o.progressing += usize::from(condition(c, "Progressing"));
            o.degraded += usize::from(degraded);
            let progressing = condition(c, "Progressing");
            if (!avail || degraded || progressing) && o.waiting_for.len() < 12 {
                o.waiting_for
                    .push(str_at(c, &["metadata", "name"]).to_string());
            }
        }
        let cv = self.json("clusterversion").await?;
        o.version_available = items(&cv).first().map(|v| condition(v, "Available"));
        Ok(o)
    }

    /// One look at everything; an error reading one part is kept in `error`.
    pub async fn snapshot(&self, declared: Vec<String>) -> Snapshot {
        let mut s = Snapshot {
            at: Utc::now(),
            error: None,
            declared,
            nodes: Vec::new(),
            csr_pending: Vec::new(),
            csr_other: Vec::new(),
            csr_approved: 0,
            operators: None,
        };
        match self.nodes().await {
            Ok(n) => s.nodes = n,
            Err(e) => {
                s.error = Some(e.message);
                return s;
            }
        }
        match self.csrs(&s.declared).await {
            Ok(c) => {
                (s.csr_pending, s.csr_other, s.csr_approved) = (c.pending, c.other, c.approved)
            }
            Err(e) => s.error = Some(e.message),
        }
        match self.operators().await {
            Ok(o) => s.operators = Some(o),
            Err(e) => s.error = s.error.or(Some(e.message)),
        }
        s
    }
}

fn items(v: &Value) -> &[Value] {
    v.get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn condition(v: &Value, kind: &str) -> bool {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|x| x["type"] == kind && x["status"] == "True"))
}

/// Where the run keeps its last look at the cluster (in the state folder).
pub fn snapshot_file(state_dir: &Path) -> PathBuf {
    state_dir.join("cluster.json")
}

/// The last look saved in the state folder, if any.
pub fn load(state_dir: &Path) -> Option<Snapshot> {
    // Our own file, but read as untrusted: no link, no pipe, bounded.
    let bytes = crate::safefs::read_private(&snapshot_file(state_dir), 16 << 20, false)
        .ok()
        .flatten()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_nodes_are_the_ones_terraform_makes() {
        let cfg = serde_json::json!({
            "bootstrap": {"hostname": "bootstrap-0"},
            "svcs": [{"hostname": "svc-0"}],
            "masters": [{"hostname": "master-0"}, {"hostname": "master-1"}],
            "infras": [{"hostname": "infra-0"}],
            "smallworkers": [{"hostname": "worker-small-0"}],
            "assuredworkers": [{"hostname": "worker-assured-0"}],
            "assuredsvcs": [{"hostname": "svc-assured-0"}],
            "elevatedpublicworkers": [{"hostname": "worker-ep-0"}],
            "largeworkers": []
        });
        assert_eq!(
            declared_nodes(&cfg),
            [
                "master-0",
                "master-1",
                "infra-0",
                "worker-assured-0",
                "worker-ep-0"
            ]
        );
    }

    #[test]
    fn only_node_csrs_are_approved() {
        let declared = vec!["worker-0".to_string()];
        let client = "kubernetes.io/kube-apiserver-client-kubelet";
        let serving = "kubernetes.io/kubelet-serving";
        assert!(is_node_csr(NODE_BOOTSTRAPPER, client, &declared));
        assert!(is_node_csr("system:node:worker-0", serving, &declared));
        assert!(is_node_csr(
            "system:node:worker-0.ocp.example.com",
            serving,
            &declared
        ));
        // A serving CSR of a node terraform does not make, a client CSR asked for by someone
        // else, and any other signer: listed, never approved.
        assert!(!is_node_csr("system:node:worker-9", serving, &declared));
        assert!(!is_node_csr("system:node:worker-0", client, &declared));
        assert!(!is_node_csr(
            "system:serviceaccount:default:builder",
            "kubernetes.io/kube-apiserver-client",
            &declared
        ));
        assert!(!is_node_csr(NODE_BOOTSTRAPPER, serving, &declared));
    }

    #[test]
    fn a_node_with_a_domain_counts_for_its_host() {
        let s = Snapshot {
            at: Utc::now(),
            error: None,
            declared: vec!["master-0".into(), "worker-0".into(), "worker-1".into()],
            nodes: vec![
                Node {
                    name: "master-0.ocp4.example.com".into(),
                    ready: true,
                    roles: vec![],
                },
                Node {
                    name: "worker-0".into(),
                    ready: false,
                    roles: vec![],
                },
                Node {
                    name: "worker-10".into(),
                    ready: true,
                    roles: vec![],
                },
            ],
            csr_pending: vec!["csr-a".into()],
            csr_other: vec![],
            csr_approved: 3,
            operators: None,
        };
        assert_eq!(s.ready_declared(), 1);
        assert_eq!(s.not_ready(), ["worker-0", "worker-1"]);
        assert_eq!(s.nodes_line(), "nodes 1/3 Ready, 1 CSR pending");
    }

    #[test]
    fn credentials_refused_is_fatal_and_a_refused_connection_is_not() {
        assert!(fatal_text(
            "error: You must be logged in to the server (Unauthorized)"
        ));
        assert!(!fatal_text(
            "The connection to the server api.ocp4.example.com:6443 was refused - did you specify the right host or port?"
        ));
        // A CA the kubeconfig does not know never mends by waiting.
        assert!(fatal_text(
            "Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority"
        ));
    }
}
