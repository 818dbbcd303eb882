//! The checks that ask the engine and the registry: images present, the web server's port free,
//! the registry reachable with the tag.

use super::*;
use crate::pipeline::spec::Work;

pub(super) fn port_of(url: &str) -> u16 {
    url.strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .and_then(|h| h.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(80)
}

pub(super) async fn images_and_port(
    engine: &Engine,
    dc: &Deployconfig,
    edited: Option<&Edited>,
    pipeline: &Pipeline,
    tls_verify: bool,
    out: &mut Vec<Check>,
) {
    let cfg = match edited {
        Some(e) => crate::config::parse_json(&dc.config_json(), &e.config)
            .and_then(|v| PipelineConfig::from_value(&dc.config_json(), &v)),
        None => PipelineConfig::load(dc),
    };
    let Ok(cfg) = cfg else {
        return;
    };
    let stages = pipeline.stage_images();
    let mut missing = Vec::new();
    for s in &stages {
        match engine.image_exists(&cfg.image(s)).await {
            Ok(true) => {}
            Ok(false) => missing.push(cfg.image(s)),
            Err(e) => out.push(c(
                "images",
                Status::Warning,
                format!("cannot check {}: {e}", cfg.image(s)),
                None,
            )),
        }
    }
    if missing.is_empty() {
        out.push(c(
            "images",
            Status::Ok,
            format!(
                "all {} stage images for tag {} are present",
                stages.len(),
                cfg.tag
            ),
            None,
        ));
    } else {
        out.push(c(
            "images",
            Status::Warning,
            format!("{} of {} not present locally: {}", missing.len(), stages.len(), missing.join(", ")),
            Some("the pull step pulls them: the registry must be reachable (or pick a tag that is present)"),
        ));
        registry_probe(engine, dc, &cfg, tls_verify, out).await;
    }
    for s in &pipeline.steps {
        if let Work::Service(container, w) = &s.work {
            port_check(engine, &cfg, &s.id, container, w, out).await;
        }
    }
}

/// Whether a service's port is free (or served by its own running container).
async fn port_check(
    engine: &Engine,
    cfg: &PipelineConfig,
    id: &str,
    container: &crate::pipeline::spec::Container,
    w: &crate::pipeline::spec::Window,
    out: &mut Vec<Check>,
) {
    let url = w
        .url
        .clone()
        .unwrap_or_default()
        .replace("{bastion_ip}", &cfg.bastion_ip);
    let port = port_of(&url);
    let ours = engine
        .inspect(&container.name)
        .await
        .ok()
        .flatten()
        .is_some_and(|st| st.running);
    let check = format!("port {port}");
    match std::net::TcpListener::bind(("0.0.0.0", port)) {
        Ok(_) => out.push(c(&check, Status::Ok, format!("free for {id}"), None)),
        Err(_) if ours => out.push(c(
            &check,
            Status::Ok,
            format!("served by the running {} container", container.name),
            None,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => out.push(c(
            &check,
            Status::Error,
            format!("in use by another program; {id} needs it"),
            Some(&format!("find it with: ss -ltnp 'sport = :{port}'")),
        )),
        Err(e) => out.push(c(
            &check,
            Status::Warning,
            format!("cannot check ({e})"),
            Some("run as root to check ports below 1024"),
        )),
    }
}

/// Asks the registry whether it has the tag, as the pull step would reach it.
pub(super) async fn registry_probe(
    engine: &Engine,
    dc: &Deployconfig,
    cfg: &PipelineConfig,
    tls_verify: bool,
    out: &mut Vec<Check>,
) {
    let repo = format!("{}/4.run-installer", cfg.registry);
    let creds = match cfg.credentials(dc) {
        Ok(c) => {
            c.map(|(username, password)| crate::engine::PullCredentials { username, password })
        }
        Err(e) => {
            out.push(c(
                "registry",
                Status::Error,
                e.to_string(),
                Some("set registrytoken in secrets.json"),
            ));
            return;
        }
    };
    let how = if tls_verify {
        ""
    } else {
        " (without TLS verification)"
    };
    match engine.registry_tags(&repo, creds.as_ref(), tls_verify).await {
        Ok(tags) if tags.contains(&cfg.tag) => out.push(c(
            "registry",
            Status::Ok,
            format!("{repo} answers{how} and has tag {}", cfg.tag),
            None,
        )),
        Ok(tags) => out.push(c(
            "registry",
            Status::Error,
            format!(
                "{repo} answers{how} but has no tag {} (it has: {})",
                cfg.tag,
                if tags.is_empty() { "none".to_string() } else { tags.join(", ") }
            ),
            Some("set imagetag in config.json to a tag the registry has"),
        )),
        Err(e) if tls_verify && e.is_tls() => out.push(c(
            "registry",
            Status::Error,
            format!("{repo}: a TLS problem: the registry's certificate is not trusted (self-signed, or plain HTTP): {e}"),
            Some("run with --tls-verify=false to pull without checking it (as the old script did), or give the registry a CA the bastion trusts in /etc/containers/certs.d/<registry>/ca.crt"),
        )),
        Err(e) => out.push(c(
            "registry",
            Status::Warning,
            format!("{repo}: {e}"),
            Some("check registryurl, registryusername and registrytoken, and that the bastion reaches the registry"),
        )),
    }
}
