//! How the daemon gets an MDM client for a workspace: an injected [`ClientFactory`], so the
//! scheduler runs against the real provider adapters in production and against
//! `mdmsync_core::testkit::FakeMdm` in tests. Also the MDM host a connection talks to, which
//! the per-host concurrency limit (P5) is keyed by.

use mdmsync_core::{ConnectionSettings, Credentials, Endpoint, MdmClient, Provider, WorkspaceId};
use secrecy::ExposeSecret;
use std::sync::Arc;

/// Builds an MDM client for one workspace's connection. Called once per connection change;
/// the client is then kept (its token cache and request budget live in it, P4/P5). The
/// error is a message for the log and the status page; it must not contain a credential.
pub trait ClientFactory: Send + Sync {
    /// A client for `provider` with these credentials and settings.
    fn connect(
        &self,
        workspace: WorkspaceId,
        provider: Provider,
        credentials: &Credentials,
        settings: &ConnectionSettings,
    ) -> Result<Arc<dyn MdmClient>, String>;
}

impl<F> ClientFactory for F
where
    F: Fn(
            WorkspaceId,
            Provider,
            &Credentials,
            &ConnectionSettings,
        ) -> Result<Arc<dyn MdmClient>, String>
        + Send
        + Sync,
{
    fn connect(
        &self,
        workspace: WorkspaceId,
        provider: Provider,
        credentials: &Credentials,
        settings: &ConnectionSettings,
    ) -> Result<Arc<dyn MdmClient>, String> {
        self(workspace, provider, credentials, settings)
    }
}

/// The MDM host (`host[:port]`, lower case) a connection talks to: the base-URL override,
/// else the credentials' `host` field (tenant-host providers), else the provider's public
/// endpoint. Used as the key of the per-host concurrency limit.
pub fn host_key(
    provider: Provider,
    settings: &ConnectionSettings,
    credentials: Option<&Credentials>,
) -> String {
    let from = |text: &str| -> Option<String> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("https://{text}")
        };
        let url = url::Url::parse(&with_scheme).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        Some(match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        })
    };
    if let Some(h) = settings.base_url.as_deref().and_then(from) {
        return h;
    }
    // The `host` field is not a secret (provider catalogue); it only names the tenant.
    if let Some(h) = credentials
        .and_then(|c| c.get("host"))
        .and_then(|h| from(h.expose_secret()))
    {
        return h;
    }
    match provider.endpoint() {
        Endpoint::Fixed {
            default_base_url, ..
        } => from(default_base_url).unwrap_or_else(|| provider.slug().to_owned()),
        Endpoint::TenantHost => provider.slug().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn creds(provider: Provider, pairs: &[(&str, &str)]) -> Credentials {
        Credentials::new(
            provider,
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string()))),
        )
        .unwrap()
    }

    #[test]
    fn p5_host_key_from_override_credentials_or_public_endpoint() {
        let jamf = creds(
            Provider::Jamf,
            &[
                ("host", "Acme.jamfcloud.com"),
                ("client_id", "id"),
                ("client_secret", "s"),
            ],
        );
        assert_eq!(
            host_key(Provider::Jamf, &ConnectionSettings::default(), Some(&jamf)),
            "acme.jamfcloud.com"
        );
        let over = ConnectionSettings {
            base_url: Some("http://127.0.0.1:8080/api".into()),
            login_url: None,
        };
        assert_eq!(
            host_key(Provider::Jamf, &over, Some(&jamf)),
            "127.0.0.1:8080"
        );
        assert_eq!(
            host_key(Provider::Intune, &ConnectionSettings::default(), None),
            "graph.microsoft.com"
        );
        assert_eq!(
            host_key(Provider::Fleet, &ConnectionSettings::default(), None),
            "fleet"
        );
    }
}
