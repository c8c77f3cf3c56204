//! One HTTPS client for the plain HTTP APIs remediator reads (Prometheus, a chat endpoint):
//! rustls with ring, the system's roots and an optional extra CA, HTTP/1.1, each call bounded by
//! a timeout. I/O: the network.

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

/// Sends `request` and reads the whole answer, within `timeout`; an error says what failed
/// (no answer in time, the connection, the body).
pub async fn send(
    client: &HttpsClient,
    request: http::Request<Full<bytes::Bytes>>,
    timeout: Duration,
) -> Result<(http::StatusCode, bytes::Bytes), String> {
    let call = async {
        let answer = client.request(request).await.map_err(|e| e.to_string())?;
        let status = answer.status();
        let body = answer
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
}
