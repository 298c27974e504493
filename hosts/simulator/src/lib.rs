//! `mdmsim`: a fake of the six MDM providers' APIs (Jamf Pro, Iru/Kandji, SimpleMDM, Fleet,
//! JumpCloud, Microsoft Intune/Graph), faithful to `shared/providers.md` in auth flows,
//! endpoints, JSON shapes, id types, pagination styles (with the real default and maximum page
//! sizes) and error bodies. It serves a [`Scenario`] on 127.0.0.1 over HTTP or HTTPS (a
//! generated CA and certificate; [`RunningSim::ca_cert_pem`]), logs every request
//! ([`SimControl::requests`]), and lets tests change the scenario and inject faults
//! ([`SimControl`], or the HTTP control API under `/_sim/`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), mdmsim::SimError> {
//! use mdmsim::{Scenario, SimOptions, Simulator, FaultKind, FaultRule};
//! use mdmsync_core::Provider;
//! let sim = Simulator::start(SimOptions::new(Provider::Jamf, Scenario::sample())).await?;
//! let ctl = sim.control();
//! ctl.add_fault(FaultRule::new(FaultKind::TooManyRequests { retry_after_secs: 1 })
//!     .route("jamf.inventory").times(1));
//! println!("{}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See `docs/simulator.md` for the endpoints per provider, the faults and the control API.

mod control;
pub mod ids;
mod providers;
mod scenario;
mod server;
mod state;
mod wire;

pub use control::{
    ActiveFault, FaultKind, FaultRule, ForceSyncAction, RequestRecord, SimControl, SimStats,
};
pub use mdmsync_core::Provider;
pub use scenario::{Device, Group, Scenario, ScenarioError, ScenarioOptions, SimCredentials, User};

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What can go wrong starting or controlling a simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}; pick another port or use port 0")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Only loopback addresses may be bound.
    #[error("refusing to listen on {0}: the simulator binds loopback (127.0.0.1) only")]
    NotLoopback(SocketAddr),
    /// Certificate or TLS setup failed.
    #[error("cannot set up TLS for the simulator: {0}")]
    Tls(String),
    /// No group with that id.
    #[error("no group with sim id {0} in the scenario")]
    NoSuchGroup(u64),
    /// No device with that id.
    #[error("no device with sim id {0} in the scenario")]
    NoSuchDevice(u64),
}

/// How to start a simulator.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Which provider's API to serve.
    pub provider: Provider,
    /// What to serve.
    pub scenario: Scenario,
    /// Serve HTTPS with a generated certificate (for 127.0.0.1 and localhost).
    pub tls: bool,
    /// Where to listen; must be loopback. Default 127.0.0.1:0 (any free port).
    pub bind: SocketAddr,
}

impl SimOptions {
    /// Plain HTTP on 127.0.0.1, any free port.
    pub fn new(provider: Provider, scenario: Scenario) -> Self {
        Self {
            provider,
            scenario,
            tls: false,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        }
    }

    /// With HTTPS.
    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }
}

/// Starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Binds, then serves in the background until [`RunningSim::shutdown`] or drop.
    pub async fn start(opts: SimOptions) -> Result<RunningSim, SimError> {
        if !opts.bind.ip().is_loopback() {
            return Err(SimError::NotLoopback(opts.bind));
        }
        let shared = Arc::new(state::Shared::new(opts.provider, opts.scenario)?);
        let listener = tokio::net::TcpListener::bind(opts.bind)
            .await
            .map_err(|source| SimError::Bind {
                addr: opts.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: opts.bind,
            source,
        })?;
        let (acceptor, ca_pem) = if opts.tls {
            let (acc, pem) = tls_acceptor()?;
            (Some(acc), Some(pem))
        } else {
            (None, None)
        };
        let app = server::App {
            shared: shared.clone(),
            scheme: if opts.tls { "https" } else { "http" },
            local: addr.to_string(),
        };
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, acceptor, server::router(app), rx));
        Ok(RunningSim {
            provider: opts.provider,
            addr,
            tls: opts.tls,
            ca_pem,
            control: SimControl { shared },
            stop: tx,
            task: Some(task),
        })
    }
}

/// A simulator serving in the background. Dropping it stops it.
#[derive(Debug)]
pub struct RunningSim {
    provider: Provider,
    addr: SocketAddr,
    tls: bool,
    ca_pem: Option<String>,
    control: SimControl,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningSim {
    /// The provider served.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The socket address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`: the host of tenant-host providers
    /// (Jamf, Iru, Fleet) and the root the control API lives under (`/_sim/...`).
    pub fn origin(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// The API base URL an adapter's base-URL override (P1) takes, in the form of the
    /// provider's public default: Jamf, Iru, Fleet: the origin; SimpleMDM: `{origin}/api/v1`;
    /// JumpCloud: `{origin}/api` (v2 at `{origin}/api/v2`); Intune: `{origin}/v1.0` (Graph).
    pub fn base_url(&self) -> String {
        let o = self.origin();
        match self.provider {
            Provider::Jamf | Provider::Iru | Provider::Fleet => o,
            Provider::SimpleMdm => format!("{o}/api/v1"),
            Provider::JumpCloud => format!("{o}/api"),
            Provider::Intune => format!("{o}/v1.0"),
        }
    }

    /// Intune: the login authority (stands for `https://login.microsoftonline.com`); the token
    /// endpoint is `{login_url}/{tenant}/oauth2/v2.0/token`. `None` for other providers.
    pub fn login_url(&self) -> Option<String> {
        (self.provider == Provider::Intune).then(|| self.origin())
    }

    /// The OAuth token endpoint (Jamf: `{origin}/api/oauth/token`; Intune: with the scenario's
    /// tenant). `None` for static-token providers.
    pub fn token_url(&self) -> Option<String> {
        match self.provider {
            Provider::Jamf => Some(format!("{}/api/oauth/token", self.origin())),
            Provider::Intune => Some(format!(
                "{}/{}/oauth2/v2.0/token",
                self.origin(),
                self.control.scenario().credentials.tenant_id
            )),
            _ => None,
        }
    }

    /// The PEM of the CA that signed the server certificate, when serving HTTPS: add it to a
    /// client as an extra root to connect; without it a verifying client must fail.
    pub fn ca_cert_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// The control handle.
    pub fn control(&self) -> SimControl {
        self.control.clone()
    }

    /// The credentials the simulator accepts, keyed as in the provider catalogue
    /// (`Provider::credential_fields`: `host`, `client_id`, `client_secret`, `api_token`,
    /// `api_key`, `tenant_id`, `org_id`), with `host` = [`Self::origin`].
    pub fn credentials(&self) -> BTreeMap<String, String> {
        let c = self.control.scenario().credentials;
        let mut m = BTreeMap::new();
        for f in self.provider.credential_fields() {
            let v = match f.key {
                "host" => Some(self.origin()),
                "client_id" => Some(c.client_id.clone()),
                "client_secret" => Some(c.client_secret.clone()),
                "api_token" => Some(c.api_token.clone()),
                "api_key" => Some(c.api_key.clone()),
                "tenant_id" => Some(c.tenant_id.clone()),
                "org_id" => c.org_id.clone(),
                _ => None,
            };
            if let Some(v) = v {
                m.insert(f.key.to_owned(), v);
            }
        }
        m
    }

    /// Stops accepting, closes every connection and waits for the server task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Installs rustls' `ring` provider as the process default (once; an already installed
/// provider is kept).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn tls_acceptor() -> Result<(axum_server::tls_rustls::RustlsAcceptor, String), SimError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    install_crypto_provider();
    let e = |e: rcgen::Error| SimError::Tls(e.to_string());
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "mdmsim test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(e)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).map_err(e)?;
    leaf.distinguished_name.push(DnType::CommonName, "mdmsim");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(e)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(e)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain = vec![
        CertificateDer::from(leaf_cert.der().to_vec()),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SimError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| SimError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
    );
    Ok((acceptor, ca_cert.pem()))
}
