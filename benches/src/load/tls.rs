//! TLS clients for `ncat --chat --ssl`, issue 13's reference for an encrypted
//! room: the same lines as plain clients, each connection under TLS (rustls on
//! ring). ncat's certificate is a throwaway it makes at start, so the clients
//! take any certificate: this measures the cipher's cost, not the PKI.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

/// Takes ncat's throwaway certificate, but checks the handshake's signatures with it.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The clients' configuration: rustls's defaults on ring, any server certificate.
fn config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            // ring's suites, no post-quantum key exchange (deprecated for that alone): ncat's
            // OpenSSL offers none either, and ring is already in the lock.
            #[allow(deprecated)]
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let algorithms = provider.signature_verification_algorithms;
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(algorithms)))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Runs a TLS handshake on the blocking `stream`: the connection, ready for data.
pub fn handshake(stream: &mut TcpStream) -> io::Result<ClientConnection> {
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let mut conn = ClientConnection::new(config(), name).map_err(io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(stream)?;
    }
    Ok(conn)
}

/// Reads plaintext from `conn` over the non-blocking `stream` (`WouldBlock` when there is
/// none yet); 0 at the end of the stream.
pub fn read(
    conn: &mut ClientConnection,
    stream: &mut impl Read,
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        match conn.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if conn.read_tls(stream)? == 0 {
            return Ok(0);
        }
        conn.process_new_packets().map_err(io::Error::other)?;
    }
}

/// Writes all of `buf` as TLS records to the blocking `stream`.
pub fn write_all(
    conn: &mut ClientConnection,
    stream: &mut impl Write,
    buf: &[u8],
) -> io::Result<()> {
    conn.writer().write_all(buf)?;
    while conn.wants_write() {
        conn.write_tls(stream)?;
    }
    Ok(())
}
