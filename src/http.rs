//! The one HTTP client of stage2-tui besides bollard's: hyper, over the engine's unix socket
//! (hyperlocal) for the libpod calls bollard lacks, and over TCP for the web server's URL check.
//! Nothing here parses HTTP by hand; answers can be read whole or line by line as they come (a
//! pull's progress).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The server did not answer (connect, write or read failed, or it closed the connection):
    /// for the engine, it is away.
    #[error("{0}")]
    Unreachable(String),
    /// The answer could not be understood.
    #[error("{0}")]
    Protocol(String),
    /// No whole answer within the limit (the socket is there, the service does not answer).
    #[error("{0}")]
    TimedOut(String),
}

/// One request to send.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, `DELETE`, …
    pub method: &'a str,
    /// The path and query (`/v4.0.0/libpod/…`).
    pub path: &'a str,
    /// A JSON body.
    pub json: Option<&'a [u8]>,
    /// Extra headers (never logged: registry credentials travel in one).
    pub headers: &'a [(&'a str, &'a str)],
}

impl<'a> Request<'a> {
    /// A request with no body and no extra headers.
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Request {
            method,
            path,
            json: None,
            headers: &[],
        }
    }
}

/// An answer: its status, its headers (names lowercase) and its body.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body (for [`unix_lines`]: only what was not a line, or the last 64 KiB).
    pub body: Vec<u8>,
}

/// Percent-encodes a query or path value.
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

/// The error's message with its causes (`client error (Connect): No such file or directory`).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out += ": ";
            out += &s;
        }
        cur = c.source();
    }
    out
}

/// Sends `req` over the unix socket and returns the answer's head and body stream.
async fn send_unix(socket: &str, req: Request<'_>) -> Result<(Answer, Incoming), HttpError> {
    let gone = |what: String| HttpError::Unreachable(format!("{socket}: {what}"));
    // No pool: an engine restarted between two calls must not be asked on a dead connection.
    let client: Client<hyperlocal::UnixConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(hyperlocal::UnixConnector);
    let mut b = hyper::Request::builder()
        .method(req.method)
        .uri(hyper::Uri::from(hyperlocal::Uri::new(socket, req.path)))
        .header("host", "d");
    for (k, v) in req.headers {
        b = b.header(*k, *v);
    }
    if req.json.is_some() {
        b = b.header("content-type", "application/json");
    }
    let body = Full::new(Bytes::copy_from_slice(req.json.unwrap_or_default()));
    let request = b
        .body(body)
        .map_err(|e| HttpError::Protocol(format!("cannot make the request: {e}")))?;
    let resp = client.request(request).await.map_err(|e| {
        if e.is_connect() {
            gone(chain(&e))
        } else {
            // A connection closed before a whole head came back is the engine going away (a
            // killed API service), not a bad answer.
            gone(format!(
                "the engine closed the connection before answering ({})",
                chain(&e)
            ))
        }
    })?;
    let (parts, incoming) = resp.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok((
        Answer {
            status: parts.status.as_u16(),
            headers,
            body: Vec::new(),
        },
        incoming,
    ))
}

/// Reads the body's frames, handing each to `each`; a read that fails is the server going away.
async fn read_body(
    socket: &str,
    mut incoming: Incoming,
    mut each: impl FnMut(&[u8]),
) -> Result<(), HttpError> {
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| {
            HttpError::Unreachable(format!(
                "{socket}: the engine closed the connection in the middle of its answer ({})",
                chain(&e)
            ))
        })?;
        if let Some(data) = frame.data_ref() {
            each(data);
        }
    }
    Ok(())
}

/// Bounds `fut` by `limit`, logs the request (never its headers) and its outcome.
async fn bounded<T>(
    req: Request<'_>,
    limit: Duration,
    status: impl Fn(&T) -> u16,
    fut: impl std::future::Future<Output = Result<T, HttpError>>,
) -> Result<T, HttpError> {
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(HttpError::TimedOut(format!(
            "the engine did not answer {} {} within {} s",
            req.method,
            req.path,
            limit.as_secs()
        )))
    });
    tracing::debug!(
        method = %req.method,
        path = %req.path,
        status = ?r.as_ref().map(&status),
        error = ?r.as_ref().err(),
        ms = started.elapsed().as_millis() as u64,
        "engine API"
    );
    r
}

/// Sends `req` over the engine's unix socket and reads the whole answer within `limit`.
pub async fn unix(socket: &str, req: Request<'_>, limit: Duration) -> Result<Answer, HttpError> {
    bounded(req, limit, |a: &Answer| a.status, async {
        let (mut answer, incoming) = send_unix(socket, req).await?;
        read_body(socket, incoming, |d| answer.body.extend_from_slice(d)).await?;
        Ok(answer)
    })
    .await
}

/// The most of a line-by-line answer kept besides its lines (for an error message).
const KEEP: usize = 64 << 10;

/// Sends `req` and hands each line of the answer to `line` as soon as it arrives (a pull's
/// progress), within `limit` for the whole answer. The returned body holds only the last 64 KiB.
pub async fn unix_lines(
    socket: &str,
    req: Request<'_>,
    limit: Duration,
    mut line: impl FnMut(&[u8]),
) -> Result<Answer, HttpError> {
    bounded(req, limit, |a: &Answer| a.status, async {
        let (mut answer, incoming) = send_unix(socket, req).await?;
        let mut pending: Vec<u8> = Vec::new();
        read_body(socket, incoming, |d| {
            pending.extend_from_slice(d);
            while let Some(nl) = memchr::memchr(b'\n', &pending) {
                let rest = pending.split_off(nl + 1);
                let l = &pending[..nl];
                if !l.is_empty() {
                    line(l);
                }
                answer.body.extend_from_slice(&pending);
                pending = rest;
            }
            if answer.body.len() > 2 * KEEP {
                answer.body.drain(..answer.body.len() - KEEP);
            }
        })
        .await?;
        if !pending.is_empty() {
            line(&pending);
            answer.body.extend_from_slice(&pending);
        }
        Ok(answer)
    })
    .await
}

/// `HEAD url` over TCP with a user agent of its own, within `limit`: the status and the
/// `Content-Length` the server gives.
pub async fn head(
    url: &str,
    user_agent: &str,
    limit: Duration,
) -> Result<(u16, Option<u64>), HttpError> {
    if !url.starts_with("http://") {
        return Err(HttpError::Protocol("only http:// URLs are checked".into()));
    }
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| HttpError::Protocol(format!("not a URL: {e}")))?;
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let request = hyper::Request::head(uri)
        .header("user-agent", user_agent)
        .body(Empty::new())
        .map_err(|e| HttpError::Protocol(format!("cannot make the request: {e}")))?;
    let fut = client.request(request);
    let resp = match tokio::time::timeout(limit, fut).await {
        Err(_) => {
            return Err(HttpError::TimedOut(format!(
                "no answer within {} s",
                limit.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(HttpError::Unreachable(chain(&e))),
        Ok(Ok(r)) => r,
    };
    let bytes = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse().ok());
    Ok((resp.status().as_u16(), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn encoding() {
        assert_eq!(encode("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(encode("x-y_z.~"), "x-y_z.~");
    }

    /// A unix socket server that answers one request with `head`, then sends `chunks` one by one:
    /// after a chunk that ends a line, the next only once the client said it got that line.
    async fn serve(
        path: std::path::PathBuf,
        head: &'static str,
        chunks: Vec<&'static str>,
        mut got: tokio::sync::mpsc::UnboundedReceiver<()>,
    ) {
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut req = Vec::new();
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            req.extend_from_slice(&buf[..n]);
        }
        s.write_all(head.as_bytes()).await.unwrap();
        for c in chunks {
            s.write_all(format!("{:x}\r\n{c}\r\n", c.len()).as_bytes())
                .await
                .unwrap();
            s.flush().await.unwrap();
            if c.ends_with('\n') && got.recv().await.is_none() {
                return;
            }
        }
        s.write_all(b"0\r\n\r\n").await.unwrap();
    }

    #[tokio::test]
    async fn lines_arrive_while_the_answer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let server = tokio::spawn(serve(
            path.clone(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            vec!["{\"stream\":\"one\"}\n{\"str", "eam\":\"two\"}\n", "tail"],
            rx,
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut lines = Vec::new();
        let a = unix_lines(
            path.to_str().unwrap(),
            Request::new("POST", "/pull"),
            Duration::from_secs(10),
            |l| {
                lines.push(String::from_utf8_lossy(l).into_owned());
                // The server sends the next part only once this line came: a client that read
                // the whole answer first would wait here forever (and time out).
                let _ = tx.send(());
            },
        )
        .await
        .unwrap();
        // "one" came, then "two" (split across two chunks), then the last part, which has no
        // newline, with the end.
        assert_eq!(
            lines,
            ["{\"stream\":\"one\"}", "{\"stream\":\"two\"}", "tail"]
        );
        assert_eq!(a.status, 200);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_connection_is_unreachable_and_a_silent_one_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let e = unix(
            path.to_str().unwrap(),
            Request::new("GET", "/_ping"),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, HttpError::Unreachable(_)), "{e:?}");
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        let closer = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            drop(s);
            let (s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(s);
        });
        let e = unix(
            path.to_str().unwrap(),
            Request::new("GET", "/_ping"),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&e, HttpError::Unreachable(m) if m.contains("closed the connection")),
            "{e:?}"
        );
        let e = unix(
            path.to_str().unwrap(),
            Request::new("GET", "/_ping"),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, HttpError::TimedOut(_)), "{e:?}");
        closer.abort();
    }
}
