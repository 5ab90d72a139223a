//! Mutual TLS (feature `tls`): every node holds a certificate, signed by the cluster's CA,
//! that names it as [`tls_identity`]; each side of a connection checks the other's.
//!
//! The dialer checks the acceptor's certificate against the identity of the node it dialed
//! (ordinary server-name verification). The acceptor checks the dialer's client certificate
//! against the CA during the TLS handshake, then, once the dialer's hello claims a node id,
//! checks that the certificate names that node.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use rsm_core::NodeId;

use crate::error::{Refusal, Refused, TcpError};

/// The DNS name a node's certificate must carry as a subject alternative name:
/// `node-<id>.cluster-<cluster>.rsm`. It is never resolved; it only names the node.
pub fn tls_identity(cluster_id: u64, node: NodeId) -> String {
    format!("node-{}.cluster-{cluster_id}.rsm", node.get())
}

/// One node's TLS material: the CA certificates it trusts for peers, its own certificate
/// chain (leaf first, naming [`tls_identity`]) and the leaf's private key.
#[derive(Clone)]
pub struct TlsConfig {
    ca_certs: Vec<CertificateDer<'static>>,
    cert_chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("TlsConfig")
            .field("ca_certs", &self.ca_certs.len())
            .field("cert_chain", &self.cert_chain.len())
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// TLS material from DER values.
    pub fn new(
        ca_certs: Vec<CertificateDer<'static>>,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        Self {
            ca_certs,
            cert_chain,
            key: Arc::new(key),
        }
    }

    /// TLS material from PEM text: CA certificates, this node's chain, its private key.
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Self, TcpError> {
        let certs = |what: &str, pem: &str| {
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TcpError::Tls(format!("{what}: {e}")))
        };
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| TcpError::Tls(format!("private key: {e}")))?;
        Ok(Self::new(
            certs("CA certificates", ca_pem)?,
            certs("certificate chain", cert_pem)?,
            key,
        ))
    }
}

/// The connector and acceptor built once from a [`TlsConfig`].
#[derive(Clone)]
pub(crate) struct TlsContext {
    pub(crate) connector: TlsConnector,
    pub(crate) acceptor: TlsAcceptor,
}

impl fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsContext")
    }
}

impl TlsContext {
    pub(crate) fn new(config: &TlsConfig) -> Result<Self, TcpError> {
        let tls = |e: rustls::Error| TcpError::Tls(e.to_string());
        // An explicit provider rather than a process-wide default, so that embedding
        // programs may install their own without a conflict.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in &config.ca_certs {
            roots.add(ca.clone()).map_err(tls)?;
        }
        let roots = Arc::new(roots);

        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TcpError::Tls(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(config.cert_chain.clone(), config.key.clone_key())
            .map_err(tls)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_root_certificates(roots)
            .with_client_auth_cert(config.cert_chain.clone(), config.key.clone_key())
            .map_err(tls)?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(client)),
            acceptor: TlsAcceptor::from(Arc::new(server)),
        })
    }
}

/// The name to verify when dialing `node`.
pub(crate) fn server_name(cluster_id: u64, node: NodeId) -> Result<ServerName<'static>, Refused> {
    ServerName::try_from(tls_identity(cluster_id, node))
        .map_err(|e| Refused::new(Refusal::Tls, format!("identity of {node}: {e}")))
}

/// Check that the client's leaf certificate (already verified against the CA) names the
/// node the hello claims.
pub(crate) fn check_client_identity(
    peer_certs: Option<&[CertificateDer<'static>]>,
    cluster_id: u64,
    claimed: NodeId,
) -> Result<(), Refused> {
    let mismatch = |detail: String| Refused::new(Refusal::CertificateMismatch, detail);
    let leaf = peer_certs
        .and_then(|c| c.first())
        .ok_or_else(|| mismatch("no client certificate".into()))?;
    let parsed = ParsedCertificate::try_from(leaf)
        .map_err(|e| mismatch(format!("unreadable client certificate: {e}")))?;
    let name = server_name(cluster_id, claimed)?;
    rustls::client::verify_server_name(&parsed, &name).map_err(|e| {
        mismatch(format!(
            "hello claims {claimed} but the certificate does not name {}: {e}",
            tls_identity(cluster_id, claimed)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_valid_dns_names_distinct_per_node_and_cluster() {
        assert_eq!(tls_identity(7, NodeId(3)), "node-3.cluster-7.rsm");
        assert!(server_name(7, NodeId(3)).is_ok());
        assert_ne!(tls_identity(7, NodeId(3)), tls_identity(8, NodeId(3)));
    }

    #[test]
    fn pem_errors_are_typed() {
        let err = TlsConfig::from_pem("", "", "not a key").expect_err("no key in the text");
        assert!(matches!(err, TcpError::Tls(_)));
    }
}
