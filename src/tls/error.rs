//! [`TlsError`]: what is wrong with a cluster's or a listener's TLS material. The
//! messages say what is wrong, never what a key holds.

/// A TLS configuration that cannot be built, for a cluster (client side) or for a
/// listener (`kubeplex.server.tls`, a simulated cluster's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A PEM bundle (`what`: `CA`, `client certificate`, `certificate`) does not parse.
    #[error("{what} PEM is malformed: {detail}")]
    MalformedPem {
        /// Which bundle.
        what: &'static str,
        /// The parser's complaint.
        detail: String,
    },
    /// A PEM bundle holds no certificate.
    #[error("{what} PEM holds no CERTIFICATE block")]
    NoCertificate {
        /// Which bundle.
        what: &'static str,
    },
    /// The client key PEM holds no private key of a known kind.
    #[error("client key PEM holds no PKCS#8, PKCS#1 or SEC1 private key")]
    NoPrivateKey,
    /// The client key PEM does not parse.
    #[error("client key PEM is malformed: {0}")]
    MalformedPrivateKey(String),
    /// A CA certificate parses but rustls cannot use it as a root.
    #[error("CA certificate not usable: {0}")]
    UnusableCa(String),
    /// The client certificate and key do not belong together (or rustls refuses them).
    #[error("client certificate and key do not fit: {0}")]
    CertificateKeyMismatch(String),
    /// A client certificate without a client key.
    #[error("a client certificate is set but no client key")]
    CertificateWithoutKey,
    /// A client key without a client certificate.
    #[error("a client key is set but no client certificate")]
    KeyWithoutCertificate,
    /// `tlsServerName` (or the URL host) is not a DNS name or an IP address.
    #[error("not a valid TLS server name: {0:?}")]
    InvalidServerName(String),
    /// An https cluster URL without a host.
    #[error("the cluster URL has no host")]
    UrlWithoutHost,
    /// The webpki certificate verifier cannot be built from the roots.
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(String),
    /// The crypto provider supports none of the default protocol versions.
    #[error("{0}")]
    ProtocolVersions(String),
    /// A served certificate's or key's file (`setting`: `kubeplex.server.tls.certFile`,
    /// `--tls-key`, ...) cannot be read.
    #[error("{setting}: cannot read {path}: {detail}")]
    ListenerFileUnreadable {
        /// The configuration key or flag naming the file.
        setting: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        detail: String,
    },
    /// A served certificate file holds no usable certificate chain.
    #[error("{setting}: {path}: {error}")]
    ListenerCertificate {
        /// The configuration key or flag naming the file.
        setting: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        error: Box<TlsError>,
    },
    /// A served key file holds no usable private key.
    #[error("{setting}: {path}: no usable PKCS#8, PKCS#1 or SEC1 private key ({detail})")]
    ListenerKey {
        /// The configuration key or flag naming the file.
        setting: &'static str,
        /// The file.
        path: String,
        /// The parser's complaint.
        detail: String,
    },
    /// A served certificate and key do not belong together.
    #[error("{settings}: certificate {cert} and key {key} do not fit: {detail}")]
    ListenerCertificateKeyMismatch {
        /// The configuration section or flags naming the files.
        settings: &'static str,
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// rustls' complaint.
        detail: String,
    },
    /// A self-signed certificate cannot be generated (or served).
    #[error("cannot generate a self-signed certificate: {0}")]
    SelfSigned(String),
}
