//! One HTTPS client for the plain HTTP APIs remediator reads (Prometheus, a chat endpoint):
//! rustls with ring, the system's roots and an optional extra CA, HTTP/1.1, each call bounded by
//! a timeout and each answer by a size ([`MAX_BODY`]). Credentials (an `Authorization` header)
//! are never sent over plain HTTP to a host other than loopback. I/O: the network.

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// The variable that bounds each request to the Kubernetes API and to GitHub, in seconds, as
/// kubectl's `--request-timeout` does; the clients' own defaults when it is not set.
pub const REQUEST_TIMEOUT: &str = "REMEDIATOR_REQUEST_TIMEOUT";

/// [`REQUEST_TIMEOUT`], when set; a value that is not a whole number of seconds above zero is
/// an error naming the variable.
pub fn request_timeout() -> Result<Option<Duration>, String> {
    match std::env::var(REQUEST_TIMEOUT) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(seconds) if seconds > 0 => Ok(Some(Duration::from_secs(seconds))),
            _ => Err(format!(
                "{REQUEST_TIMEOUT}={text}: give the seconds each request may take, such as 30"
            )),
        },
        Err(error) => Err(format!("{REQUEST_TIMEOUT}: {error}")),
    }
}

/// A client; cheap to clone.
pub type HttpsClient = Client<Https, Full<bytes::Bytes>>;

/// A client trusting the system's roots and, when given, the CAs of a PEM file.
pub fn client(ca_file: Option<&Path>) -> Result<HttpsClient, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("caFile {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("caFile {}: {e}", path.display()))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("caFile {}: {e}", path.display()))?;
        }
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The largest answer read: a Prometheus range query over a whole cluster stays far below it.
pub const MAX_BODY: usize = 256 << 20;

/// Why `request` may not be sent as it is: credentials over plain HTTP to a host that is not
/// loopback, where anyone on the path reads them.
pub fn refusal<B>(request: &http::Request<B>) -> Option<String> {
    let uri = request.uri();
    let plain = uri.scheme_str() != Some("https");
    let credentials = request.headers().contains_key(http::header::AUTHORIZATION);
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (plain && credentials && !loopback).then(|| {
        format!(
            "{}://{host}: credentials are not sent over plain HTTP to a host that is not loopback; use https://",
            uri.scheme_str().unwrap_or("http")
        )
    })
}

/// Sends `request` and reads the whole answer, within `timeout` and [`MAX_BODY`]; an error says
/// what failed (credentials over plain HTTP, no answer in time, the connection, the body, its
/// size).
pub async fn send(
    client: &HttpsClient,
    request: http::Request<Full<bytes::Bytes>>,
    timeout: Duration,
) -> Result<(http::StatusCode, bytes::Bytes), String> {
    send_limited(client, request, timeout, MAX_BODY).await
}

/// [`send`] with an answer of at most `limit` bytes.
pub async fn send_limited(
    client: &HttpsClient,
    request: http::Request<Full<bytes::Bytes>>,
    timeout: Duration,
    limit: usize,
) -> Result<(http::StatusCode, bytes::Bytes), String> {
    if let Some(refused) = refusal(&request) {
        return Err(refused);
    }
    let call = async {
        let answer = client.request(request).await.map_err(|e| e.to_string())?;
        let status = answer.status();
        let body = http_body_util::Limited::new(answer.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    format!("the answer is larger than {} MiB", limit >> 20)
                } else {
                    e.to_string()
                }
            })?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, auth: bool) -> http::Request<()> {
        let mut builder = http::Request::get(url);
        if auth {
            builder = builder.header("authorization", "Bearer x");
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn credentials_go_over_plain_http_only_to_loopback() {
        assert!(refusal(&request("http://prometheus.monitoring:9090/api", true)).is_some());
        assert!(refusal(&request("http://10.0.0.7/api", true)).is_some());
        assert!(refusal(&request("http://prometheus.monitoring:9090/api", false)).is_none());
        assert!(refusal(&request("https://prometheus.example.com/api", true)).is_none());
        assert!(refusal(&request("http://127.0.0.1:9090/api", true)).is_none());
        assert!(refusal(&request("http://[::1]:9090/api", true)).is_none());
        assert!(refusal(&request("http://localhost:9090/api", true)).is_none());
    }

    #[test]
    fn an_answer_past_the_limit_is_an_error() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            drop(socket.read(&mut request));
            let body = vec![b'x'; 3 << 20];
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            drop(socket.write_all(head.as_bytes()));
            drop(socket.write_all(&body));
        });
        runtime.block_on(async {
            let request = http::Request::get(format!("http://{address}/"))
                .body(Full::default())
                .unwrap();
            let error = send_limited(
                &client(None).unwrap(),
                request,
                Duration::from_secs(10),
                1 << 20,
            )
            .await
            .unwrap_err();
            assert!(error.contains("larger than 1 MiB"), "{error}");
        });
    }
}
