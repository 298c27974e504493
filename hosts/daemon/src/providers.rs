//! The production [`ClientFactory`]: the six provider adapters of `mdmsync-providers`.

use crate::factory::ClientFactory;
use mdmsync_core::{ConnectionSettings, Credentials, MdmClient, Provider, WorkspaceId};
use mdmsync_providers::{ConnectOptions, connect};
use std::sync::Arc;

/// The factory `mdmsyncd` runs with: each workspace's connection settings (base URL, login
/// URL, P1) plus the configured extra CA certificates (E3), through
/// [`mdmsync_providers::connect`] with each provider's recommended HTTP settings (P5).
#[derive(Clone, Debug, Default)]
pub struct ProviderFactory {
    /// Extra trusted CA certificates (PEM), added to the public roots.
    pub extra_ca_pem: Vec<String>,
}

impl ClientFactory for ProviderFactory {
    fn connect(
        &self,
        _workspace: WorkspaceId,
        provider: Provider,
        credentials: &Credentials,
        settings: &ConnectionSettings,
    ) -> Result<Arc<dyn MdmClient>, String> {
        let options = ConnectOptions {
            base_url: settings.base_url.clone(),
            login_url: settings.login_url.clone(),
            extra_ca_pem: self.extra_ca_pem.clone(),
            http: None,
        };
        // ConnectError messages name the provider and the setting, never a secret.
        connect(provider, credentials, &options).map_err(|e| e.to_string())
    }
}
