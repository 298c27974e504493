//! The production [`ClientFactory`]: the provider adapters (`mdmsync-providers`).

use crate::factory::ClientFactory;
use mdmsync_core::{ConnectionSettings, Credentials, MdmClient, Provider, WorkspaceId};
use std::sync::Arc;

/// The factory `mdmsyncd` runs with: every connection through the provider adapters, with the
/// configured extra CA certificates (E3).
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
        _credentials: &Credentials,
        _settings: &ConnectionSettings,
    ) -> Result<Arc<dyn MdmClient>, String> {
        Err(format!(
            "this build of mdmsyncd has no {} adapter",
            provider.display_name()
        ))
    }
}
