//! Images: presence checks, pulls with progress, offline builds from a tar context.

use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt;

use super::{Engine, EngineError, Result, api};
use crate::http;

/// How long a pull may take (many minutes over a slow link).
const PULL_LIMIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Registry credentials for pulls (registryusername + secrets.json registrytoken).
#[derive(Debug, Clone, Default)]
pub struct PullCredentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

/// A build context: the Containerfile plus files, as a tar archive in memory.
pub struct BuildContext {
    /// Tar bytes (must contain `Containerfile`).
    pub tar: Vec<u8>,
}

impl Engine {
    /// True when the image is in local storage.
    pub async fn image_exists(&self, image: &str) -> Result<bool> {
        if let Some(p) = self.cli() {
            return self.cli_image_exists(p, image).await;
        }
        let (docker, _) = self.clients("inspecting an image")?;
        match docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(api(format!("inspecting image {image}"))(e)),
        }
    }

    /// A label of a local image; `None` if the image or the label is absent.
    pub async fn image_label(&self, image: &str, key: &str) -> Result<Option<String>> {
        if let Some(p) = self.cli() {
            return self.cli_image_label(p, image, key).await;
        }
        let (docker, _) = self.clients("inspecting an image")?;
        match docker.inspect_image(image).await {
            Ok(i) => Ok(i
                .config
                .and_then(|c| c.labels)
                .and_then(|mut l| l.remove(key))),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(api(format!("inspecting image {image}"))(e)),
        }
    }

    /// Errors with [`EngineError::MissingImage`] unless the image is present.
    pub async fn require_image(&self, image: &str) -> Result<()> {
        if self.image_exists(image).await? {
            Ok(())
        } else {
            Err(EngineError::MissingImage {
                image: image.to_string(),
            })
        }
    }

    /// Pulls an image, calling `progress` with each status line the engine reports. With
    /// `tls_verify` false (a registry with a self-signed certificate, or plain HTTP, as the old
    /// script's `--tls-verify=false`), podman's own endpoint is used: the compat one cannot skip
    /// verification (ENGINE-NOTES 19).
    pub async fn pull(
        &self,
        image: &str,
        creds: Option<&PullCredentials>,
        tls_verify: bool,
        mut progress: impl FnMut(&str),
    ) -> Result<()> {
        if let Some(p) = self.cli() {
            return self
                .cli_pull(p, image, creds, tls_verify, &mut progress)
                .await;
        }
        if !tls_verify {
            return self.pull_libpod(image, creds, &mut progress).await;
        }
        let opts = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let creds = creds.map(|c| DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password.clone()),
            ..Default::default()
        });
        let (_, streams) = self.clients("pulling an image")?;
        let mut stream = streams.create_image(Some(opts), None, creds);
        while let Some(item) = stream.next().await {
            let info = item.map_err(api(format!("pulling {image}")))?;
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                return Err(api(format!("pulling {image}"))(
                    BollardError::DockerStreamError { error: err },
                ));
            }
            if let Some(status) = info.status {
                let line = match info.id {
                    Some(id) if !id.is_empty() => format!("{id}: {status}"),
                    _ => status,
                };
                progress(line.trim_end());
            }
        }
        Ok(())
    }

    /// The tags a registry has for `repo` (`host[:port]/path/name`), asked through podman's
    /// search (`listTags`), with the registry's credentials; `tls_verify` false skips the
    /// certificate check. Podman only.
    pub async fn registry_tags(
        &self,
        repo: &str,
        creds: Option<&PullCredentials>,
        tls_verify: bool,
    ) -> Result<Vec<String>> {
        let context = format!("asking the registry for the tags of {repo}");
        let fail = |m: String| super::io(&context)(std::io::Error::other(m));
        if !self.info().is_podman {
            return Err(fail(
                "the registry is asked through podman's search; this engine is not podman".into(),
            ));
        }
        if self.cli().is_some() {
            return Err(fail(format!(
                "podman {} cannot list a registry's tags (`search --list-tags` came with podman 2); the pull step will say whether the tag exists",
                self.info().version
            )));
        }
        let host = repo.split('/').next().unwrap_or_default();
        let config = creds.map(|c| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE.encode(
                serde_json::json!({ host: {"username": c.username, "password": c.password} })
                    .to_string(),
            )
        });
        let headers: Vec<(&str, &str)> = config
            .as_deref()
            .map(|a| vec![("X-Registry-Config", a)])
            .unwrap_or_default();
        let path = format!(
            "/v4.0.0/libpod/images/search?term={}&listTags=true&limit=1000&tlsVerify={tls_verify}",
            http::encode(repo)
        );
        let req = http::Request {
            headers: &headers,
            ..http::Request::new("GET", &path)
        };
        let a = http::unix(self.socket(), req, super::API_LIMIT)
            .await
            .map_err(|e| super::http_error(&context, e))?;
        let (status, body) = (a.status, a.body);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if status != 200 {
            let msg = v
                .get("cause")
                .or_else(|| v.get("message"))
                .and_then(|m| m.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            return Err(fail(msg));
        }
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.get("Tag").and_then(|t| t.as_str()).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn pull_libpod(
        &self,
        image: &str,
        creds: Option<&PullCredentials>,
        progress: &mut impl FnMut(&str),
    ) -> Result<()> {
        let context = format!("pulling {image}");
        let fail = |m: String| super::io(&context)(std::io::Error::other(m));
        if !self.info().is_podman {
            return Err(fail(
                "Docker cannot skip TLS verification for one pull: add the registry to \"insecure-registries\" in /etc/docker/daemon.json (or give it a trusted certificate) and pull with verification".into(),
            ));
        }
        let auth = creds.map(|c| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE.encode(
                serde_json::json!({"username": c.username, "password": c.password, "serveraddress": image.split('/').next().unwrap_or_default()})
                    .to_string(),
            )
        });
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("X-Registry-Auth", a)])
            .unwrap_or_default();
        let path = format!(
            "/v4.0.0/libpod/images/pull?reference={}&tlsVerify=false&quiet=false",
            http::encode(image)
        );
        let req = http::Request {
            headers: &headers,
            ..http::Request::new("POST", &path)
        };
        // Each line of progress is said as it comes: a pull can take many minutes.
        let mut error = None;
        let a = http::unix_lines(self.socket(), req, PULL_LIMIT, |line| {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
                return;
            };
            if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
                progress(s.trim_end());
            }
            if let Some(e) = v
                .get("error")
                .and_then(|e| e.as_str())
                .filter(|e| !e.is_empty())
            {
                error = Some(e.to_string());
            }
        })
        .await
        .map_err(|e| super::http_error(&context, e))?;
        let (status, body) = (a.status, a.body);
        match (status, error) {
            (200, None) => Ok(()),
            (_, Some(e)) => Err(fail(e)),
            (s, None) => Err(fail(format!(
                "engine answered {s}: {}",
                String::from_utf8_lossy(&body).trim()
            ))),
        }
    }

    /// Builds `tag` from a tar context through the engine API (works offline for `FROM scratch`).
    pub async fn build(
        &self,
        tag: &str,
        ctx: BuildContext,
        mut progress: impl FnMut(&str),
    ) -> Result<()> {
        if let Some(p) = self.cli() {
            return self.cli_build(p, tag, ctx, &mut progress).await;
        }
        let (_, streams) = self.clients("building an image")?;
        let opts = BuildImageOptionsBuilder::default()
            .dockerfile("Containerfile")
            .t(tag)
            .rm(true)
            .build();
        let body = bollard::body_full(ctx.tar.into());
        let mut stream = streams.build_image(opts, None, Some(body));
        while let Some(item) = stream.next().await {
            let info = item.map_err(api(format!("building {tag}")))?;
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                return Err(api(format!("building {tag}"))(
                    BollardError::DockerStreamError { error: err },
                ));
            }
            if let Some(s) = info.stream {
                let s = s.trim_end();
                if !s.is_empty() {
                    progress(s);
                }
            }
        }
        self.require_image(tag).await
    }
}
