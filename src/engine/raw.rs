//! A minimal HTTP/1.1 GET over the engine's unix socket, for the few answers whose bollard models
//! reject what podman sends (podman 4.3.1 reports the transient state `"stopped"`, which is not
//! in bollard's `ContainerStateStatusEnum`, so `inspect_container` fails right after an exit).
//! We read those answers into our own lenient structs instead.

use std::collections::HashMap;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answer of `GET /containers/{id}/json`, only the fields we use.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Inspect {
    pub id: String,
    pub state: InspectState,
    pub log_path: Option<String>,
    pub host_config: InspectHostConfig,
    pub config: InspectConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectState {
    pub status: String,
    pub running: bool,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectHostConfig {
    pub log_config: LogConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub typ: String,
    /// Where podman 4's own inspect (the CLI's) puts the log file; 1.x and the API say `LogPath`.
    #[serde(rename = "Path")]
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectConfig {
    pub labels: Option<HashMap<String, String>>,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Summary {
    pub id: String,
    pub labels: Option<HashMap<String, String>>,
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let nl = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunked body")?;
        let size_text = std::str::from_utf8(&body[..nl]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        body = &body[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size {
            return Err("truncated chunked body".into());
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

/// Why a raw request failed.
#[derive(Debug)]
pub enum RawError {
    /// The socket did not answer (connect, write, read or time-out): the engine is away.
    Unreachable(String),
    /// The answer could not be understood.
    Protocol(String),
    /// No answer within the limit (the socket is there, the service does not answer).
    TimedOut(String),
}

impl From<&str> for RawError {
    fn from(s: &str) -> Self {
        RawError::Protocol(s.to_string())
    }
}

/// GETs `path` (with API version prefix) and returns (status, body).
pub async fn get(socket: &str, path: &str) -> Result<(u16, Vec<u8>), RawError> {
    request(socket, "GET", path, None).await
}

/// Sends one request with an optional JSON body; returns (status, body).
pub async fn request(
    socket: &str,
    method: &str,
    path: &str,
    json: Option<&[u8]>,
) -> Result<(u16, Vec<u8>), RawError> {
    request_with(
        socket,
        method,
        path,
        json,
        &[],
        std::time::Duration::from_secs(60),
    )
    .await
}

/// As [`request`], with extra headers and a time limit of its own (a pull takes minutes).
pub async fn request_with(
    socket: &str,
    method: &str,
    path: &str,
    json: Option<&[u8]>,
    headers: &[(&str, &str)],
    limit: std::time::Duration,
) -> Result<(u16, Vec<u8>), RawError> {
    answer(socket, method, path, json, headers, limit)
        .await
        .map(|(status, _, body)| (status, body))
}

/// `GET /_ping`: the status and the answer's headers (name lowercased, value as sent). Both
/// podman and Docker name their API version and product there (`Api-Version`, `Server`), at a
/// tenth of what `/version` costs podman.
pub async fn ping(
    socket: &str,
    limit: std::time::Duration,
) -> Result<(u16, Vec<(String, String)>), RawError> {
    let (status, head, _) = answer(socket, "GET", "/_ping", None, &[], limit).await?;
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    Ok((status, headers))
}

/// One request: (status, the answer's head as sent, body).
async fn answer(
    socket: &str,
    method: &str,
    path: &str,
    json: Option<&[u8]>,
    headers: &[(&str, &str)],
    limit: std::time::Duration,
) -> Result<(u16, String, Vec<u8>), RawError> {
    let started = std::time::Instant::now();
    let gone = |e: std::io::Error| RawError::Unreachable(format!("{socket}: {e}"));
    let fut = async {
        let mut s = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(gone)?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n");
        for (k, v) in headers {
            req += &format!("{k}: {v}\r\n");
        }
        if let Some(b) = json {
            req += &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            );
        }
        req += "\r\n";
        s.write_all(req.as_bytes()).await.map_err(gone)?;
        if let Some(b) = json {
            s.write_all(b).await.map_err(gone)?;
        }
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.map_err(gone)?;
        // A connection closed before a whole header came back is the engine going away (a
        // killed API service), not a bad answer.
        let head_end = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| {
                RawError::Unreachable(format!(
                    "{socket}: the engine closed the connection before answering ({} bytes)",
                    resp.len()
                ))
            })?;
        let sent = String::from_utf8_lossy(&resp[..head_end]).into_owned();
        let head = sent.to_ascii_lowercase();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or("no HTTP status in the engine's answer")?;
        let body = &resp[head_end + 4..];
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(body).map_err(RawError::Protocol)?
        } else {
            body.to_vec()
        };
        Ok((status, sent, body))
    };
    let r = tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(RawError::TimedOut(format!(
            "the engine did not answer {method} {path} within {} s",
            limit.as_secs()
        )))
    });
    // Headers are not logged: the registry credentials travel in one.
    tracing::debug!(
        %method,
        %path,
        status = ?r.as_ref().map(|a| a.0),
        error = ?r.as_ref().err(),
        ms = started.elapsed().as_millis() as u64,
        "engine API"
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_and_encoding() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n").unwrap(),
            b"Wikipedia"
        );
        assert_eq!(
            encode("{\"label\":[\"a=b\"]}"),
            "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"
        );
        let i: Inspect = serde_json::from_str(
            r#"{"Id":"x","State":{"Status":"stopped","Running":false,"ExitCode":3,"StartedAt":"2026-01-01T00:00:00Z"},"HostConfig":{"LogConfig":{"Type":"k8s-file"}}}"#,
        )
        .unwrap();
        assert_eq!(
            (
                i.state.status.as_str(),
                i.state.exit_code,
                i.host_config.log_config.typ.as_str()
            ),
            ("stopped", 3, "k8s-file")
        );
    }
}
