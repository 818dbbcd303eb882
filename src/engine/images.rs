//! Images: presence checks, pulls with progress, offline builds from a tar context.

use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt;

use super::{Engine, EngineError, Result, api};

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
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(api(format!("inspecting image {image}"))(e)),
        }
    }

    /// A label of a local image; `None` if the image or the label is absent.
    pub async fn image_label(&self, image: &str, key: &str) -> Result<Option<String>> {
        match self.docker.inspect_image(image).await {
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

    /// Pulls an image, calling `progress` with each status line the engine reports.
    pub async fn pull(
        &self,
        image: &str,
        creds: Option<&PullCredentials>,
        mut progress: impl FnMut(&str),
    ) -> Result<()> {
        let opts = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let creds = creds.map(|c| DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password.clone()),
            ..Default::default()
        });
        let mut stream = self.streams.create_image(Some(opts), None, creds);
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

    /// Builds `tag` from a tar context through the engine API (works offline for `FROM scratch`).
    pub async fn build(
        &self,
        tag: &str,
        ctx: BuildContext,
        mut progress: impl FnMut(&str),
    ) -> Result<()> {
        let opts = BuildImageOptionsBuilder::default()
            .dockerfile("Containerfile")
            .t(tag)
            .rm(true)
            .build();
        let body = bollard::body_full(ctx.tar.into());
        let mut stream = self.streams.build_image(opts, None, Some(body));
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
