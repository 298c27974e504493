//! # mdmsync-intune
//!
//! The Microsoft Intune adapter of mdmsync: it implements the core's
//! [`mdmsync_core::MdmClient`] port over Microsoft Graph v1.0, on the shared HTTP plumbing of
//! `mdmsync-http`, so the sync engine can mirror Entra ID security groups — with the Intune
//! managed devices in them — into device groups, enrich devices with Intune metadata, link to
//! the Intune admin center and ask a device to sync.
//!
//! - **Auth** (P4): Entra client credentials at `{login}/{tenant}/oauth2/v2.0/token` with the
//!   scope `https://graph.microsoft.com/.default` (national clouds: their Graph host), cached
//!   and refreshed `min(60 s, lifetime/2)` before expiry, checked before every page; a 401
//!   mid-run gets one fresh token and one retry. Login and Graph URLs are configurable (P1).
//! - **Snapshot** (P2, G3): security groups (`$filter=securityEnabled eq true`, `$top=999`,
//!   Microsoft 365 groups left out; dynamic groups are the smart kind), every managed device
//!   (`$top=1000`), and each group's **transitive** device members
//!   (`/transitiveMembers/microsoft.graph.device`, `ConsistencyLevel: eventual`,
//!   `$count=true`), so devices in nested groups count. Members are joined Entra `deviceId` →
//!   `managedDevice.azureADDeviceId` → managed device `id`, the id look-ups, `syncDevice` and
//!   the console link use; the all-zero GUID is skipped. `@odata.nextLink` is followed
//!   verbatim; `Directory_ExpiredPageToken` restarts that listing (at most 3 times); 429
//!   honours `Retry-After`. Members without `deviceId` mean `Device.Read.All` is missing:
//!   `Forbidden` naming it, never a silently empty group.
//! - **Metadata** (M1): managed device id, `userId`, `userDisplayName`, `deviceName`,
//!   `serialNumber`, `lastSyncDateTime` as last seen.
//! - **Console link** (M4): `https://intune.microsoft.com/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/overview/mdmDeviceId/{id}`.
//! - **Force sync** (A1): `POST /deviceManagement/managedDevices/{id}/syncDevice` → 204.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mdmsync_core::MdmError> {
//! use mdmsync_core::MdmClient;
//! use mdmsync_intune::{IntuneClient, IntuneConfig};
//! use secrecy::SecretString;
//!
//! let config = IntuneConfig::new("contoso.onmicrosoft.com", "app-id", SecretString::from("secret"))?;
//! let intune = IntuneClient::new(config)?;
//! let check = intune.validate_credentials().await?;
//! let snapshot = intune.fetch_snapshot().await?;
//! # let _ = (check, snapshot); Ok(()) }
//! ```
//!
//! Permissions, endpoints and limits: `docs/providers/intune.md`.

mod client;
mod config;
mod wire;

pub use client::IntuneClient;
pub use config::{
    CONSOLE_URL, Cloud, GRAPH_SCOPE, GRAPH_URL, IntuneConfig, LOGIN_URL, MAX_DEVICE_PAGE_SIZE,
    MAX_DIRECTORY_PAGE_SIZE, cloud_for,
};
