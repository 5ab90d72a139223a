//! Mutual TLS, with a CA and node certificates minted in the test: nodes that prove their
//! identity talk; a client without a certificate, with one from another CA, or with one
//! naming another node is refused, and the node keeps working.

#![cfg(feature = "tls")]

mod support;

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rsm_core::NodeId;
use rsm_tcp::{Hello, Refusal, TlsConfig, tls_identity};
use rustls::pki_types::{CertificateDer, ServerName};
use support::{
    CLUSTER, NEVER_DIALED, Node, RawPeer, cluster, config, deliver, eventually, expect_rejected,
    localhost, within,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A certificate authority for one test.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        Pki { ca }
    }

    fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// A leaf certificate naming `name`, signed by this CA, and its key, both in PEM.
    fn leaf(&self, name: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("node params");
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("node key");
        let cert = params.signed_by(&key, &self.ca).expect("node certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// TLS material that trusts this CA and presents `leaf`.
    fn trusting(&self, (cert, key): (String, String)) -> TlsConfig {
        TlsConfig::from_pem(&self.ca.pem(), &cert, &key).expect("PEM from rcgen parses")
    }

    /// TLS material for node `id`, as a well-configured node holds it.
    fn node(&self, id: NodeId) -> TlsConfig {
        self.trusting(self.leaf(&tls_identity(CLUSTER, id)))
    }
}

fn tls_client(pki: &Pki) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der()).expect("CA certificate");
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn nodes_with_certificates_talk_over_mutual_tls() {
    let pki = Pki::new("rsm test CA");
    let nodes = cluster(3, |c| c.tls = Some(pki.node(c.id))).await;
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            deliver(a, b, "over TLS").await;
            deliver(b, a, "over TLS, back").await;
        }
    }
    for node in &nodes {
        let stats = node.transport.stats();
        assert_eq!(stats.connections, 2);
        assert!(stats.rejections.is_empty(), "{:?}", stats.rejections);
    }
}

#[tokio::test]
async fn clients_without_a_certificate_or_without_tls_are_refused() {
    let pki = Pki::new("rsm test CA");
    let nodes = cluster(2, |c| c.tls = Some(pki.node(c.id))).await;
    let (n1, n2) = (&nodes[0], &nodes[1]);
    deliver(n1, n2, "before").await;

    // Trusts the CA, but has no client certificate to show.
    let tcp = within(TcpStream::connect(n2.addr()))
        .await
        .expect("connect");
    let name = ServerName::try_from(tls_identity(CLUSTER, NodeId(2))).expect("DNS name");
    // With TLS 1.3 the client may finish before the server has judged its certificate; the
    // refusal then shows on the next read.
    if let Ok(mut tls) = within(tls_client(&pki).connect(name, tcp)).await {
        let hello = Hello::new(CLUSTER, NodeId(1))
            .encode_frame()
            .expect("hello");
        let _ = tls.write_all(&hello).await;
        let mut answer = Vec::new();
        let read = within(tls.read_to_end(&mut answer)).await;
        assert!(
            read.is_err() || answer.is_empty(),
            "no hello for a client without a certificate"
        );
    }
    expect_rejected(n2, Refusal::Tls, 1).await;

    // Plain TCP to a TLS node: the hello is not a TLS record.
    let mut plain = RawPeer::connect(n2.addr()).await;
    plain.send_hello(Hello::new(CLUSTER, NodeId(1))).await;
    // A TLS alert may precede the close, never a hello.
    plain.expect_closed().await;
    expect_rejected(n2, Refusal::Tls, 2).await;

    deliver(n1, n2, "after").await;
    assert_eq!(n2.transport.stats().connections, 1);
}

/// Node 2 with `tls2`, then node 1 (which dials it) with `tls1`; once `refuser` has
/// refused a connection for `reason`, checks that neither side counts a connection.
async fn refused_pair(tls1: TlsConfig, tls2: TlsConfig, refuser: u64, reason: Refusal) {
    let mut c2 = config(2, localhost(), &[(1, NEVER_DIALED)]);
    c2.tls = Some(tls2);
    let n2 = Node::start(c2).await;
    let mut c1 = config(1, localhost(), &[(2, n2.addr())]);
    c1.tls = Some(tls1);
    let n1 = Node::start(c1).await;
    let judge = if refuser == 1 { &n1 } else { &n2 };
    eventually(&format!("node {refuser} refuses: {reason}"), || {
        judge.transport.stats().rejected(reason) >= 1
    })
    .await;
    assert_eq!(n1.transport.stats().connections, 0);
    assert_eq!(n2.transport.stats().connections, 0);
    assert!(!n1.transport.stats().peers[&NodeId(2)].connected);
}

#[tokio::test]
async fn a_client_certificate_naming_another_node_is_refused() {
    let pki = Pki::new("rsm test CA");
    // Node 1 holds a valid certificate, but for node 3.
    let borrowed = pki.node(NodeId(3));
    refused_pair(
        borrowed,
        pki.node(NodeId(2)),
        2,
        Refusal::CertificateMismatch,
    )
    .await;
}

#[tokio::test]
async fn a_server_certificate_naming_another_node_is_refused_by_the_dialer() {
    let pki = Pki::new("rsm test CA");
    let borrowed = pki.node(NodeId(3));
    refused_pair(pki.node(NodeId(1)), borrowed, 1, Refusal::Tls).await;
}

#[tokio::test]
async fn a_certificate_from_another_authority_is_refused() {
    let pki = Pki::new("rsm test CA");
    let rogue = Pki::new("another CA");
    // Trusts the real CA (so it accepts node 2) but its own certificate is the rogue's.
    let foreign = pki.trusting(rogue.leaf(&tls_identity(CLUSTER, NodeId(1))));
    refused_pair(foreign, pki.node(NodeId(2)), 2, Refusal::Tls).await;
}
