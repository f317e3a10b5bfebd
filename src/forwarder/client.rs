//! The ClickHouse HTTP client. An `http://` URL gets the `clickhouse` crate's own client; an
//! `https://` URL gets the same client over rustls (aws-lc-rs), which trusts the system's
//! root certificates and those of `--clickhouse-ca-file`.

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clickhouse::{Client, Compression};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tracing::{debug, warn};

use super::config::ClickHouse;

/// TCP keep-alive of the connections, as the `clickhouse` crate's own client sets it.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Idle pooled connections are closed after this, as in the `clickhouse` crate's own client:
/// below the server's keep-alive timeout (3 s before ClickHouse 23.11, 10 s since).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// The client for `cfg`: its URL, user, password, database and compression.
pub(crate) fn build(cfg: &ClickHouse) -> Result<Client, String> {
    let ca = cfg.ca_file.as_deref().map(read_ca_file).transpose()?;
    let mut client = if is_https(&cfg.url) {
        https_client(ca)?
    } else {
        if let Some(path) = &cfg.ca_file {
            warn!(
                ca_file = %path.display(),
                "--clickhouse-ca-file is not used: --clickhouse-url is not https"
            );
        }
        Client::default()
    };
    client = client
        .with_url(&cfg.url)
        .with_user(&cfg.user)
        .with_compression(if cfg.lz4 {
            Compression::Lz4
        } else {
            Compression::None
        });
    if !cfg.password.is_empty() {
        client = client.with_password(cfg.password.expose());
    }
    if let Some(db) = &cfg.database {
        client = client.with_database(db);
    }
    Ok(client)
}

fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// The certificates of a PEM file (one or more `CERTIFICATE` sections; other sections, such
/// as keys, are skipped) as trust anchors. The error names the file.
pub(crate) fn read_ca_file(path: &Path) -> Result<RootCertStore, String> {
    let bad = |m: String| format!("--clickhouse-ca-file {}: {m}", path.display());
    let text = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("the file is empty".into()));
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(&text).enumerate() {
        let cert = cert.map_err(|e| bad(format!("not valid PEM: {}", pem_error(&e))))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("certificate {} is not usable: {e}", i + 1)))?;
    }
    if roots.is_empty() {
        return Err(bad(
            "it holds no certificate (PEM sections `-----BEGIN CERTIFICATE-----` expected)".into(),
        ));
    }
    Ok(roots)
}

fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!(
                "no -----END {}----- line",
                String::from_utf8_lossy(end_marker)
            )
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("bad section start {:?}", String::from_utf8_lossy(line))
        }
        other => other.to_string(),
    }
}

/// The crate's own client with TLS: the same pool and TCP settings, HTTP/1.1, `https://`
/// over rustls. Trusts the system's root certificates (`SSL_CERT_FILE` and `SSL_CERT_DIR`
/// are honoured) and `ca`.
fn https_client(ca: Option<RootCertStore>) -> Result<Client, String> {
    let mut roots = ca.unwrap_or_else(RootCertStore::empty);
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        warn!(error = %e, "cannot load a system root certificate");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    debug!(added, ignored, "system root certificates");
    if roots.is_empty() {
        return Err(
            "no root certificate to verify the server's certificate with: the system has none \
             (install ca-certificates, or set SSL_CERT_FILE) and --clickhouse-ca-file is not given"
                .into(),
        );
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.set_keepalive(Some(TCP_KEEPALIVE));
    http.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let hyper = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector);
    Ok(Client::with_http_client(hyper))
}

/// The TLS failure behind a client error, if it is one: a certificate the roots do not
/// verify, a handshake the server refuses, a server that does not speak TLS. Retrying the
/// same handshake gives the same answer.
pub(crate) fn tls_failure(e: &clickhouse::error::Error) -> Option<String> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(tls) = rustls_error(err) {
            let hint = match tls {
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                    " (the server's certificate is not signed by a trusted root: give its CA \
                     with --clickhouse-ca-file)"
                }
                rustls::Error::InvalidMessage(_) => " (is the server's port an HTTPS port?)",
                _ => "",
            };
            return Some(format!("TLS with the server failed: {tls}{hint}"));
        }
        next = err.source();
    }
    None
}

/// `err` if it is a rustls error, or the rustls error that `io::Error`s wrap (hyper-rustls
/// wraps the `io::Error` of tokio-rustls, which wraps the rustls error).
fn rustls_error<'a>(mut err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        err = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// An error and its sources, `a: b: c`, without repeating what a message already holds.
pub(crate) fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(err) = next {
        let m = err.to_string();
        if !m.is_empty() && !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        next = err.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Self-signed CA certificates (`CN=dynamo-flatten test CA`, `CN=dynamo-flatten second
    /// test CA`).
    const CA_PEM: &str = "\
-----BEGIN CERTIFICATE-----
MIIBqTCCAU+gAwIBAgIUAPI5/OaZ9p/n38rwSIzEUoD2B80wCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWZHluYW1vLWZsYXR0ZW4gdGVzdCBDQTAgFw0yNjEyMDIwMzUx
NDdaGA8yMTI2MTEwODAzNTE0N1owITEfMB0GA1UEAwwWZHluYW1vLWZsYXR0ZW4g
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGsFc43uKIIG6malFjR0
ouTiprH8uod2VttZBIWshmnT8HrLEsM2KmdWBgI/4vPFinTrpZizsFTySwGulE14
KtqjYzBhMB0GA1UdDgQWBBSy95czWyF+dVGtgu+COiTX+C1YlDAfBgNVHSMEGDAW
gBSy95czWyF+dVGtgu+COiTX+C1YlDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB
/wQEAwICBDAKBggqhkjOPQQDAgNIADBFAiEAqcgOM6pU+WEqG467nAEAznngEUKN
HsZ31VHwP+wI8e4CIFKG5oIMS6DbnOxFU5zzvNc0QotbW9rtWYKaRf/d12f3
-----END CERTIFICATE-----
";
    const SECOND_CA_PEM: &str = "\
-----BEGIN CERTIFICATE-----
MIIBtjCCAV2gAwIBAgIUVQOSPD+KHx7L7J2Mcn/beGILufMwCgYIKoZIzj0EAwIw
KDEmMCQGA1UEAwwdZHluYW1vLWZsYXR0ZW4gc2Vjb25kIHRlc3QgQ0EwIBcNMjYx
MjAyMDM1MTUzWhgPMjEyNjExMDgwMzUxNTNaMCgxJjAkBgNVBAMMHWR5bmFtby1m
bGF0dGVuIHNlY29uZCB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
E1tRW3M2v6ZkFN7yafEdgMnTVuS0O4l9a79g+DQkDndjzzI+amPNfEsEa7PWRiNJ
vjaW5bKp2rdaltJSCITUq6NjMGEwHQYDVR0OBBYEFC56hYwbiShxaaQLO0r5eC0a
mlQGMB8GA1UdIwQYMBaAFC56hYwbiShxaaQLO0r5eC0amlQGMA8GA1UdEwEB/wQF
MAMBAf8wDgYDVR0PAQH/BAQDAgIEMAoGCCqGSM49BAMCA0cAMEQCIFaN1egDvmQ1
gVDYNofEyrdBIYd931e4cJ1S1g5iVyBFAiATDw2P98Luaq3JSQkXIThYqp964rzU
kBsuBnxxI8WmTg==
-----END CERTIFICATE-----
";
    /// The first CA's public key: a PEM file without a certificate.
    const PUBLIC_KEY_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEawVzje4oggbqZqUWNHSi5OKmsfy6
h3ZW21kEhayGadPwessSwzYqZ1YGAj/i88WKdOulmLOwVPJLAa6UTXgq2g==
-----END PUBLIC KEY-----
";

    /// A file in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &[u8]) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "dynamo-flatten-ca-{}-{name}.pem",
                std::process::id()
            ));
            std::fs::write(&path, contents).expect("the temporary directory is writable");
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn read(name: &str, contents: &str) -> Result<RootCertStore, String> {
        let f = TempFile::new(name, contents.as_bytes());
        read_ca_file(&f.0).map_err(|e| {
            assert!(e.contains(&f.0.display().to_string()), "{e}");
            e
        })
    }

    #[test]
    fn reads_every_certificate_of_a_pem_file() {
        assert_eq!(read("one", CA_PEM).map(|r| r.len()), Ok(1));
        let bundle = format!("# a bundle\n{CA_PEM}\n{PUBLIC_KEY_PEM}{SECOND_CA_PEM}");
        assert_eq!(read("bundle", &bundle).map(|r| r.len()), Ok(2));
        let crlf = CA_PEM.replace('\n', "\r\n");
        assert_eq!(read("crlf", &crlf).map(|r| r.len()), Ok(1));
    }

    #[test]
    fn an_empty_file_is_refused() {
        for (name, text) in [("empty", ""), ("blank", " \n\n")] {
            let e = read(name, text).unwrap_err();
            assert!(e.starts_with("--clickhouse-ca-file "), "{e}");
            assert!(e.ends_with("the file is empty"), "{e}");
        }
    }

    #[test]
    fn a_file_without_a_certificate_is_refused() {
        for (name, text) in [("key", PUBLIC_KEY_PEM), ("text", "not a certificate\n")] {
            let e = read(name, text).unwrap_err();
            assert!(e.contains("holds no certificate"), "{e}");
        }
        let der = CertificateDer::from_pem_slice(CA_PEM.as_bytes()).expect("CA_PEM is PEM");
        let f = TempFile::new("der", &der);
        let e = read_ca_file(&f.0).unwrap_err();
        assert!(e.contains("holds no certificate"), "{e}");
    }

    #[test]
    fn a_broken_certificate_is_refused() {
        let cut = &CA_PEM[..CA_PEM.len() - 30];
        let e = read("cut", cut).unwrap_err();
        assert!(
            e.contains("not valid PEM: no -----END CERTIFICATE----- line"),
            "{e}"
        );
        let garbled = CA_PEM.replacen("MIIB", "MIIC", 1);
        let e = read("garbled", &garbled).unwrap_err();
        assert!(e.contains("certificate 1 is not usable"), "{e}");
    }

    #[test]
    fn a_missing_file_is_refused() {
        let path = std::env::temp_dir().join("dynamo-flatten-no-such-ca.pem");
        let e = read_ca_file(&path).unwrap_err();
        assert_eq!(
            e,
            format!(
                "--clickhouse-ca-file {}: cannot read it: No such file or directory (os error 2)",
                path.display()
            )
        );
    }

    #[test]
    fn only_https_urls_get_tls() {
        assert!(is_https("https://ch.example.com:8443"));
        assert!(is_https("HTTPS://ch.example.com"));
        assert!(!is_https("http://localhost:8123"));
        assert!(!is_https("https:"));
    }

    #[test]
    fn tls_failures_are_found_in_the_error_chain() {
        // As hyper-rustls reports a failed handshake: an io::Error around tokio-rustls's.
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
        let e = clickhouse::error::Error::Network(Box::new(io));
        assert_eq!(
            error_chain(&e),
            "network error: invalid peer certificate: UnknownIssuer"
        );
        let m = tls_failure(&e).expect("a TLS failure");
        assert!(m.starts_with("TLS with the server failed: invalid peer certificate: UnknownIssuer (the server's certificate is not signed"), "{m}");
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(
            tls_failure(&clickhouse::error::Error::Network(Box::new(refused))),
            None
        );
    }
}
