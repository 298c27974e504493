//! The provider catalogue (spec table P): what each MDM is called, what it syncs as device
//! groups, which credential fields it needs and where its API lives.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One of the six supported MDM providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Jamf Pro.
    Jamf,
    /// Iru, formerly Kandji.
    Iru,
    /// SimpleMDM.
    #[serde(rename = "simplemdm")]
    SimpleMdm,
    /// Fleet (fleetdm).
    Fleet,
    /// JumpCloud.
    #[serde(rename = "jumpcloud")]
    JumpCloud,
    /// Microsoft Intune, groups from Entra ID.
    Intune,
}

/// Where a provider's API lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Each customer has their own host, given with the credentials.
    TenantHost,
    /// One public endpoint (overridable, P1), with optional named regions or clouds.
    Fixed {
        /// The default API base URL.
        default_base_url: &'static str,
        /// Other selectable bases, as `(name, base URL)`.
        regions: &'static [(&'static str, &'static str)],
    },
}

/// One credential field a provider requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialField {
    /// Key as used in credential maps and the CLI (`client_secret`).
    pub key: &'static str,
    /// Label shown to people (`API Client Secret`).
    pub label: &'static str,
    /// Whether the value is a secret (never printed, encrypted at rest).
    pub secret: bool,
    /// Whether the field must be present.
    pub required: bool,
}

const fn field(key: &'static str, label: &'static str, secret: bool) -> CredentialField {
    CredentialField {
        key,
        label,
        secret,
        required: true,
    }
}

impl Provider {
    /// All providers, in catalogue order.
    pub const ALL: [Provider; 6] = [
        Provider::Jamf,
        Provider::Iru,
        Provider::SimpleMdm,
        Provider::Fleet,
        Provider::JumpCloud,
        Provider::Intune,
    ];

    /// The display name (table P). Used for G4 name suffixes and M4 console links.
    pub const fn display_name(self) -> &'static str {
        match self {
            Provider::Jamf => "Jamf",
            Provider::Iru => "Iru (formerly Kandji)",
            Provider::SimpleMdm => "SimpleMDM",
            Provider::Fleet => "Fleet",
            Provider::JumpCloud => "JumpCloud",
            Provider::Intune => "Microsoft Intune",
        }
    }

    /// The short, stable name used in configuration, the CLI and events.
    pub const fn slug(self) -> &'static str {
        match self {
            Provider::Jamf => "jamf",
            Provider::Iru => "iru",
            Provider::SimpleMdm => "simplemdm",
            Provider::Fleet => "fleet",
            Provider::JumpCloud => "jumpcloud",
            Provider::Intune => "intune",
        }
    }

    /// What the provider's groups are called, i.e. what is synced as device groups.
    pub const fn synced_as(self) -> &'static str {
        match self {
            Provider::Jamf => "computer groups (static and smart)",
            Provider::Iru => "tags",
            Provider::SimpleMdm => "assignment groups",
            Provider::Fleet => "labels",
            Provider::JumpCloud => "system groups",
            Provider::Intune => "Entra ID security groups",
        }
    }

    /// The credential fields the provider needs (table P; the CLI contract's keys).
    pub const fn credential_fields(self) -> &'static [CredentialField] {
        const JAMF: &[CredentialField] = &[
            field("host", "Host", false),
            field("client_id", "API Client ID", false),
            field("client_secret", "API Client Secret", true),
        ];
        const IRU: &[CredentialField] = &[
            field("host", "Host", false),
            field("api_token", "API Token", true),
        ];
        const SIMPLEMDM: &[CredentialField] = &[field("api_key", "API Secret Access Key", true)];
        const FLEET: &[CredentialField] = &[
            field("host", "Host", false),
            field("api_token", "API Token", true),
        ];
        const JUMPCLOUD: &[CredentialField] = &[
            field("api_key", "API Token", true),
            CredentialField {
                key: "org_id",
                label: "Organization ID",
                secret: false,
                required: false,
            },
        ];
        const INTUNE: &[CredentialField] = &[
            field("tenant_id", "Tenant ID", false),
            field("client_id", "Client ID", false),
            field("client_secret", "Client Secret", true),
        ];
        match self {
            Provider::Jamf => JAMF,
            Provider::Iru => IRU,
            Provider::SimpleMdm => SIMPLEMDM,
            Provider::Fleet => FLEET,
            Provider::JumpCloud => JUMPCLOUD,
            Provider::Intune => INTUNE,
        }
    }

    /// Where the API lives (table P).
    pub const fn endpoint(self) -> Endpoint {
        match self {
            Provider::Jamf | Provider::Iru | Provider::Fleet => Endpoint::TenantHost,
            Provider::SimpleMdm => Endpoint::Fixed {
                default_base_url: "https://a.simplemdm.com/api/v1",
                regions: &[],
            },
            Provider::JumpCloud => Endpoint::Fixed {
                default_base_url: "https://console.jumpcloud.com/api",
                regions: &[("eu", "https://console.eu.jumpcloud.com/api")],
            },
            Provider::Intune => Endpoint::Fixed {
                default_base_url: "https://graph.microsoft.com/v1.0",
                regions: &[
                    ("us-gov", "https://graph.microsoft.us/v1.0"),
                    ("us-gov-dod", "https://dod-graph.microsoft.us/v1.0"),
                    ("china", "https://microsoftgraph.chinacloudapi.cn/v1.0"),
                ],
            },
        }
    }

    /// The link text of M4: `View on <display name>`.
    pub fn console_link_text(self) -> String {
        format!("View on {}", self.display_name())
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// A provider name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown provider {0:?}: use one of jamf, iru (or kandji), simplemdm, fleet, jumpcloud, intune"
)]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jamf" | "jamf pro" | "jamf_pro" => Ok(Provider::Jamf),
            "iru" | "kandji" => Ok(Provider::Iru),
            "simplemdm" | "simple_mdm" => Ok(Provider::SimpleMdm),
            "fleet" | "fleetdm" => Ok(Provider::Fleet),
            "jumpcloud" | "jump_cloud" => Ok(Provider::JumpCloud),
            "intune" | "microsoft intune" | "microsoft_intune" => Ok(Provider::Intune),
            _ => Err(UnknownProvider(s.to_owned())),
        }
    }
}

/// A workspace's plan. Only Pro and Enterprise sync groups (G1); metadata works on all (M5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// No group sync.
    Free,
    /// Group sync.
    Pro,
    /// Group sync.
    Enterprise,
}

impl Plan {
    /// G1: whether this plan syncs groups.
    pub const fn syncs_groups(self) -> bool {
        matches!(self, Plan::Pro | Plan::Enterprise)
    }

    /// The lower-case name (`free`, `pro`, `enterprise`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plan name that is not `free`, `pro` or `enterprise`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan {0:?}: use free, pro or enterprise")]
pub struct UnknownPlan(pub String);

impl FromStr for Plan {
    type Err = UnknownPlan;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "free" => Ok(Plan::Free),
            "pro" => Ok(Plan::Pro),
            "enterprise" => Ok(Plan::Enterprise),
            _ => Err(UnknownPlan(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_catalogue_matches_table_p() {
        assert_eq!(Provider::Iru.display_name(), "Iru (formerly Kandji)");
        assert_eq!(Provider::Intune.display_name(), "Microsoft Intune");
        let keys = |p: Provider| {
            p.credential_fields()
                .iter()
                .map(|f| f.key)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(Provider::Jamf), ["host", "client_id", "client_secret"]);
        assert_eq!(keys(Provider::SimpleMdm), ["api_key"]);
        assert_eq!(
            keys(Provider::Intune),
            ["tenant_id", "client_id", "client_secret"]
        );
        assert!(matches!(
            Provider::SimpleMdm.endpoint(),
            Endpoint::Fixed { .. }
        ));
        assert_eq!(Provider::Fleet.endpoint(), Endpoint::TenantHost);
    }

    #[test]
    fn provider_names_parse_with_the_kandji_alias() {
        assert_eq!("kandji".parse::<Provider>().unwrap(), Provider::Iru);
        for p in Provider::ALL {
            assert_eq!(p.slug().parse::<Provider>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.slug()));
        }
        assert!("airwatch".parse::<Provider>().is_err());
    }

    #[test]
    fn g1_only_paid_plans_sync_groups() {
        assert!(!Plan::Free.syncs_groups());
        assert!(Plan::Pro.syncs_groups());
        assert!(Plan::Enterprise.syncs_groups());
    }
}
