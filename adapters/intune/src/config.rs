//! How to reach one tenant's Microsoft Graph: cloud (Graph, login, scope, console), app
//! registration, HTTP settings and paging.

use mdmsync_core::{Credentials, Endpoint, ErrorKind, MdmError, Provider};
use mdmsync_http::{ExposeSecret, HttpConfig, SecretString, Url, parse_base_url};
use std::time::Duration;

/// Microsoft Graph v1.0, global cloud.
pub const GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
/// Entra ID login authority, global cloud.
pub const LOGIN_URL: &str = "https://login.microsoftonline.com";
/// The client-credentials scope for Graph, global cloud.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The Intune admin center, global cloud.
pub const CONSOLE_URL: &str = "https://intune.microsoft.com/";
/// Largest `$top` of directory collections (groups, members): Graph documents 999.
pub const MAX_DIRECTORY_PAGE_SIZE: u32 = 999;
/// Largest `$top` of `managedDevices`: Graph pages it by 1,000.
pub const MAX_DEVICE_PAGE_SIZE: u32 = 1000;

/// The endpoints of one Microsoft cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cloud {
    /// Login authority (the token endpoint is `{login}/{tenant}/oauth2/v2.0/token`).
    pub login_url: &'static str,
    /// Client-credentials scope.
    pub scope: String,
    /// Intune admin center, for console links.
    pub console_url: &'static str,
}

/// The login authority, scope and console of the cloud a Graph URL belongs to: the US
/// government clouds (`graph.microsoft.us`, `dod-graph.microsoft.us`) and China
/// (`microsoftgraph.chinacloudapi.cn`, operated by 21Vianet) have their own; any other host
/// (the global cloud, a proxy, a test server) gets the global ones.
pub fn cloud_for(graph: &Url) -> Cloud {
    let host = graph.host_str().unwrap_or_default().to_ascii_lowercase();
    match host.as_str() {
        "graph.microsoft.us" | "dod-graph.microsoft.us" => Cloud {
            login_url: "https://login.microsoftonline.us",
            scope: format!("https://{host}/.default"),
            console_url: "https://intune.microsoft.us/",
        },
        "microsoftgraph.chinacloudapi.cn" => Cloud {
            login_url: "https://login.chinacloudapi.cn",
            scope: format!("https://{host}/.default"),
            console_url: "https://intune.microsoftonline.cn/",
        },
        _ => Cloud {
            login_url: LOGIN_URL,
            scope: GRAPH_SCOPE.to_owned(),
            console_url: CONSOLE_URL,
        },
    }
}

/// Settings of a [`crate::IntuneClient`]. `Debug` never shows the client secret.
#[derive(Clone, Debug)]
pub struct IntuneConfig {
    /// Microsoft Graph base, e.g. `https://graph.microsoft.com/v1.0` (P1: national clouds,
    /// tests).
    pub graph_url: Url,
    /// Entra login authority, e.g. `https://login.microsoftonline.com`.
    pub login_url: Url,
    /// Client-credentials scope (`https://graph.microsoft.com/.default`).
    pub scope: String,
    /// Intune admin center base for console links (M4).
    pub console_url: Url,
    /// The Entra tenant (directory) id: a GUID or a verified domain.
    pub tenant_id: String,
    /// The app registration's application (client) id.
    pub client_id: String,
    /// The app registration's client secret.
    pub client_secret: SecretString,
    /// Timeouts, retries (429 honours `Retry-After`), extra CA certificates, 4 connections.
    pub http: HttpConfig,
    /// `$top` of groups and group members, 1 to [`MAX_DIRECTORY_PAGE_SIZE`] (default: the max).
    pub directory_page_size: u32,
    /// `$top` of managed devices, 1 to [`MAX_DEVICE_PAGE_SIZE`] (default: the max).
    pub device_page_size: u32,
    /// Group member listings run at once during a snapshot (default 4).
    pub member_concurrency: usize,
    /// How often one listing is restarted from its first page after Graph says its page
    /// token expired (`Directory_ExpiredPageToken`, P5). Default 3.
    pub max_listing_restarts: u32,
    /// Time budget of one snapshot, credential test or look-up (E2 deadline). Default 15 min.
    pub budget: Duration,
    /// How long the managed devices read by the last snapshot answer look-ups. Default 10 min;
    /// zero turns it off.
    pub index_ttl: Duration,
    /// A look-up of more serials than this lists every managed device once instead of one
    /// `$filter` request per serial. Default 25.
    pub lookup_sweep_threshold: usize,
}

impl IntuneConfig {
    /// A configuration for the global cloud with production defaults.
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        client_secret: SecretString,
    ) -> Result<Self, MdmError> {
        Self::for_cloud(GRAPH_URL, None, tenant_id, client_id, client_secret)
    }

    /// A configuration for the cloud of `graph_url` (a URL, or a region name of
    /// `Provider::Intune.endpoint()`: `us-gov`, `us-gov-dod`, `china`). `login_url` overrides
    /// the login authority [`cloud_for`] derives.
    pub fn for_cloud(
        graph_url: &str,
        login_url: Option<&str>,
        tenant_id: &str,
        client_id: &str,
        client_secret: SecretString,
    ) -> Result<Self, MdmError> {
        let p = Provider::Intune;
        let graph_text = region_url(graph_url).unwrap_or(graph_url);
        let graph = parse_base_url(graph_text).map_err(|e| e.into_mdm_error(p))?;
        let cloud = cloud_for(&graph);
        let login = login_url
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .unwrap_or(cloud.login_url);
        let login = parse_base_url(login).map_err(|e| e.into_mdm_error(p))?;
        let console = parse_base_url(cloud.console_url).map_err(|e| e.into_mdm_error(p))?;
        let tenant_id = tenant_id.trim();
        if tenant_id.is_empty()
            || !tenant_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(MdmError::new(
                ErrorKind::Unauthorized,
                "Microsoft Intune: the tenant id must be the directory (tenant) GUID or a verified domain such as contoso.onmicrosoft.com",
            ));
        }
        if client_id.trim().is_empty() {
            return Err(MdmError::new(
                ErrorKind::Unauthorized,
                "Microsoft Intune: the client id is empty; use the app registration's application (client) id",
            ));
        }
        Ok(Self {
            graph_url: graph,
            login_url: login,
            scope: cloud.scope,
            console_url: console,
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.trim().to_owned(),
            client_secret,
            http: HttpConfig::for_provider(p),
            directory_page_size: MAX_DIRECTORY_PAGE_SIZE,
            device_page_size: MAX_DEVICE_PAGE_SIZE,
            member_concurrency: 4,
            max_listing_restarts: 3,
            budget: Duration::from_secs(15 * 60),
            index_ttl: Duration::from_secs(10 * 60),
            lookup_sweep_threshold: 25,
        })
    }

    /// From the core's credentials (`tenant_id`, `client_id`, `client_secret`). `base_url`
    /// overrides Graph (a URL or a region name), `login_url` the login authority (P1).
    pub fn from_credentials(
        credentials: &Credentials,
        base_url: Option<&str>,
        login_url: Option<&str>,
    ) -> Result<Self, MdmError> {
        if credentials.provider() != Provider::Intune {
            return Err(MdmError::new(
                ErrorKind::Unauthorized,
                format!(
                    "Microsoft Intune: the credentials are for {}, not Intune; connect with tenant_id, client_id and client_secret",
                    credentials.provider()
                ),
            ));
        }
        let field = |key: &str| {
            credentials.get(key).ok_or_else(|| {
                MdmError::new(
                    ErrorKind::Unauthorized,
                    format!("Microsoft Intune: the credential field `{key}` is missing; pass it with the credentials"),
                )
            })
        };
        let graph = base_url
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .unwrap_or(GRAPH_URL);
        Self::for_cloud(
            graph,
            login_url,
            field("tenant_id")?.expose_secret(),
            field("client_id")?.expose_secret(),
            field("client_secret")?.clone(),
        )
    }

    /// The token endpoint: `{login}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> Url {
        mdmsync_http::endpoint(
            &self.login_url,
            &format!("{}/oauth2/v2.0/token", self.tenant_id),
        )
    }
}

/// A region name of `Provider::Intune.endpoint()` → its Graph URL.
fn region_url(name: &str) -> Option<&'static str> {
    match Provider::Intune.endpoint() {
        Endpoint::Fixed { regions, .. } => regions
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, u)| *u),
        Endpoint::TenantHost => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new(
            Provider::Intune,
            [
                ("tenant_id", "7d0c5b3e-0000-4000-8000-00000000a11c"),
                ("client_id", "app"),
                ("client_secret", "s3cr3t-value"),
            ]
            .map(|(k, v)| (k.to_owned(), SecretString::from(v.to_owned()))),
        )
        .unwrap()
    }

    #[test]
    fn p1_global_defaults_and_the_token_url() {
        let c = IntuneConfig::from_credentials(&creds(), None, None).unwrap();
        assert_eq!(c.graph_url.as_str(), "https://graph.microsoft.com/v1.0");
        assert_eq!(c.scope, GRAPH_SCOPE);
        assert_eq!(
            c.token_url().as_str(),
            "https://login.microsoftonline.com/7d0c5b3e-0000-4000-8000-00000000a11c/oauth2/v2.0/token"
        );
        assert_eq!(c.directory_page_size, 999);
        assert_eq!(c.device_page_size, 1000);
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn p1_national_clouds_get_their_login_scope_and_console() {
        let c = IntuneConfig::from_credentials(&creds(), Some("us-gov"), None).unwrap();
        assert_eq!(c.graph_url.as_str(), "https://graph.microsoft.us/v1.0");
        assert_eq!(c.login_url.as_str(), "https://login.microsoftonline.us/");
        assert_eq!(c.scope, "https://graph.microsoft.us/.default");
        let c = IntuneConfig::from_credentials(
            &creds(),
            Some("https://microsoftgraph.chinacloudapi.cn/v1.0"),
            None,
        )
        .unwrap();
        assert_eq!(c.login_url.as_str(), "https://login.chinacloudapi.cn/");
        assert_eq!(c.scope, "https://microsoftgraph.chinacloudapi.cn/.default");
        // Test servers: both overridden, the global scope kept.
        let c = IntuneConfig::from_credentials(
            &creds(),
            Some("http://127.0.0.1:9/v1.0"),
            Some("http://127.0.0.1:9"),
        )
        .unwrap();
        assert_eq!(
            c.token_url().as_str(),
            "http://127.0.0.1:9/7d0c5b3e-0000-4000-8000-00000000a11c/oauth2/v2.0/token"
        );
        assert_eq!(c.scope, GRAPH_SCOPE);
    }

    #[test]
    fn a_tenant_id_that_could_change_the_path_is_refused() {
        let err =
            IntuneConfig::new("../evil", "app", SecretString::from("s".to_owned())).unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::Unauthorized));
        assert!(
            IntuneConfig::new(
                "contoso.onmicrosoft.com",
                "app",
                SecretString::from("s".to_owned())
            )
            .is_ok()
        );
    }
}
