//! Demo stage images, built offline through the engine API from `demo-stages/`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use color_eyre::eyre::{WrapErr, bail, eyre};

use crate::engine::{BuildContext, Engine};

/// The demo stages and their files (name, contents), from `demo-stages/`.
pub const STAGES: &[(&str, &[(&str, &str)])] = &[
    (
        "2.create-config",
        &[(
            "run.sh",
            include_str!("../../demo-stages/2.create-config/run.sh"),
        )],
    ),
    (
        "4.run-installer",
        &[
            (
                "run.sh",
                include_str!("../../demo-stages/4.run-installer/run.sh"),
            ),
            (
                "waitforcomplete.sh",
                include_str!("../../demo-stages/4.run-installer/waitforcomplete.sh"),
            ),
            ("oc", include_str!("../../demo-stages/4.run-installer/oc")),
            (
                "kubectl",
                include_str!("../../demo-stages/4.run-installer/kubectl"),
            ),
            (
                "openshift-install",
                include_str!("../../demo-stages/4.run-installer/openshift-install"),
            ),
        ],
    ),
    (
        "5.ign-webserver",
        &[
            (
                "run.sh",
                include_str!("../../demo-stages/5.ign-webserver/run.sh"),
            ),
            (
                "serve-ign.sh",
                include_str!("../../demo-stages/5.ign-webserver/serve-ign.sh"),
            ),
        ],
    ),
    (
        "6.add-ignition",
        &[(
            "run.sh",
            include_str!("../../demo-stages/6.add-ignition/run.sh"),
        )],
    ),
    (
        "7.terraform-deploy",
        &[
            (
                "run.sh",
                include_str!("../../demo-stages/7.terraform-deploy/run.sh"),
            ),
            (
                "removebootstrap.sh",
                include_str!("../../demo-stages/7.terraform-deploy/removebootstrap.sh"),
            ),
        ],
    ),
    (
        "8.configure-svcs",
        &[(
            "run.sh",
            include_str!("../../demo-stages/8.configure-svcs/run.sh"),
        )],
    ),
    (
        "9.post-deployment",
        &[(
            "run.sh",
            include_str!("../../demo-stages/9.post-deployment/run.sh"),
        )],
    ),
];

const LIB: &str = include_str!("../../demo-stages/lib/demo.sh");
const HASH_LABEL: &str = "stage2-tui.demo-hash";

/// Finds a statically linked busybox on the host (it must run in a `FROM scratch` image).
pub fn find_static_busybox() -> color_eyre::Result<PathBuf> {
    let candidates = [
        "/bin/busybox",
        "/usr/bin/busybox",
        "/usr/sbin/busybox",
        "/sbin/busybox",
    ];
    let mut dynamic = None;
    for c in candidates {
        let p = Path::new(c);
        if p.is_file() {
            match is_static_elf(p) {
                Ok(true) => return Ok(p.to_path_buf()),
                _ => dynamic = Some(c),
            }
        }
    }
    match dynamic {
        Some(d) => bail!(
            "{d} is dynamically linked and cannot run in a scratch image; install a static one: apt-get install busybox-static (Debian) or dnf install busybox (RHEL)"
        ),
        None => bail!(
            "no busybox found; the demo images are built from the host's static busybox: apt-get install busybox-static (Debian) or dnf install busybox (RHEL)"
        ),
    }
}

/// True when the ELF file has no program interpreter (PT_INTERP), i.e. is statically linked.
fn is_static_elf(path: &Path) -> std::io::Result<bool> {
    let data = std::fs::read(path)?;
    let bad = || std::io::Error::other("not a 64-bit little-endian ELF");
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return Err(bad());
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[32..40].try_into().map_err(|_| bad())?) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > data.len() {
            return Err(bad());
        }
        if u32::from_le_bytes(data[o..o + 4].try_into().map_err(|_| bad())?) == 3 {
            return Ok(false);
        }
    }
    Ok(true)
}

fn applets(busybox: &Path) -> color_eyre::Result<Vec<String>> {
    let out = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .wrap_err_with(|| format!("running {} --list", busybox.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/') && *a != "busybox")
        .map(String::from)
        .collect())
}

/// Where a stage's files go, its WORKDIR and ENTRYPOINT: those of the real image (UKCloud's
/// `upi/vsphere/stage2/*/Dockerfile`), so a working-directory mistake shows in the demo too
/// (`7.terraform-deploy` runs `./entrypoint.sh` and `./removebootstrap.sh` from
/// `/usr/share/terraform`; the others work in `/tmp/workingdir`).
pub fn layout(stage: &str) -> (String, &'static str, String) {
    match stage {
        "2.create-config" => (
            "/usr/local/2.create-config".into(),
            "/usr/local/2.create-config",
            "./entrypoint.sh".into(),
        ),
        "5.ign-webserver" => (
            "/usr/local/5.ign-webserver".into(),
            "/",
            "/usr/local/5.ign-webserver/entrypoint.sh".into(),
        ),
        "7.terraform-deploy" => (
            "/usr/share/terraform".into(),
            "/usr/share/terraform",
            "./entrypoint.sh".into(),
        ),
        "8.configure-svcs" | "9.post-deployment" => (
            "/usr/local/playbooks".into(),
            "/tmp/workingdir",
            "/usr/local/playbooks/entrypoint.sh".into(),
        ),
        other => (
            format!("/usr/local/{other}"),
            "/tmp/workingdir",
            format!("/usr/local/{other}/entrypoint.sh"),
        ),
    }
}

fn context(
    stage: &str,
    files: &[(&str, &str)],
    busybox: &[u8],
    applets: &[String],
) -> color_eyre::Result<(Vec<u8>, String)> {
    let mut hasher = DefaultHasher::new();
    (stage, files, LIB, busybox.len(), applets, layout(stage)).hash(&mut hasher);
    busybox[..busybox.len().min(1 << 16)].hash(&mut hasher);
    let hash = format!("{:016x}", hasher.finish());
    let (dir, workdir, entrypoint) = layout(stage);
    let containerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nCOPY stage/ {dir}/\nWORKDIR {workdir}\n\
         LABEL {HASH_LABEL}={hash} io.stage2-tui.demo=true\nENTRYPOINT [\"{entrypoint}\"]\n"
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, data)
    };
    add("Containerfile", containerfile.as_bytes(), 0o644)?;
    add("rootfs/bin/busybox", busybox, 0o755)?;
    add("rootfs/usr/local/lib/demo.sh", LIB.as_bytes(), 0o644)?;
    add(
        "rootfs/etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    )?;
    add("rootfs/etc/group", b"root:x:0:\n", 0o644)?;
    add("rootfs/tmp/.keep", b"", 0o644)?;
    for (name, body) in files {
        // The real images call their script entrypoint.sh.
        let name = if *name == "run.sh" {
            "entrypoint.sh"
        } else {
            name
        };
        add(&format!("stage/{name}"), body.as_bytes(), 0o755)?;
    }
    for a in applets {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(0);
        tar.append_link(&mut h, format!("rootfs/bin/{a}"), "busybox")?;
    }
    Ok((tar.into_inner()?, hash))
}

/// Builds (or reuses, when unchanged) every demo stage image as `<registry>/<stage>:<tag>`.
pub async fn build_all(engine: &Engine, registry: &str, tag: &str) -> color_eyre::Result<()> {
    let busybox_path = find_static_busybox()?;
    let busybox = std::fs::read(&busybox_path)
        .wrap_err_with(|| format!("reading {}", busybox_path.display()))?;
    let applets = applets(&busybox_path)?;
    for (stage, files) in STAGES {
        let image = format!("{registry}/{stage}:{tag}");
        let (tar, hash) = context(stage, files, &busybox, &applets)?;
        if engine.image_label(&image, HASH_LABEL).await?.as_deref() == Some(hash.as_str()) {
            crate::outln!("demo image {image}: up to date");
            continue;
        }
        let started = std::time::Instant::now();
        let mut last = String::new();
        engine
            .build(&image, BuildContext { tar }, |l| last = l.to_string())
            .await
            .map_err(|e| eyre!("building demo image {image}: {e} (last build output: {last})"))?;
        crate::outln!(
            "demo image {image}: built in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_script_is_a_shell_script() {
        for (stage, files) in STAGES {
            for (name, body) in *files {
                assert!(
                    body.starts_with("#!/bin/sh\n"),
                    "{stage}/{name} needs a #!/bin/sh line"
                );
            }
        }
    }

    #[test]
    fn detects_static_and_dynamic_binaries() {
        // /bin/sh on any Linux test machine is dynamically linked.
        assert!(!is_static_elf(Path::new("/bin/sh")).unwrap());
    }
}
