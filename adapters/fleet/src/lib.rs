//! # mdmsync-fleet
//!
//! The Fleet (fleetdm) adapter: implements the core's [`mdmsync_core::MdmClient`] port on top
//! of `mdmsync-http`, following `shared/providers.md` §4.
//!
//! - **Groups** are Fleet *labels* (`GET /api/v1/fleet/labels`, unpaginated). Builtin labels
//!   (`label_type: "builtin"`: "All Hosts", "macOS", …) are not synced. `dynamic` (and
//!   `host_vitals`) labels are smart, `manual` labels static.
//! - **Members** come from `GET /api/v1/fleet/labels/{id}/hosts?page=N&per_page=500&order_key=id`
//!   (0-based `page`, `per_page` always sent, no total: a short page is the last; repeated
//!   hosts, loops and runaway page counts fail the snapshot, P2). A member is the integer host
//!   `id`, the same id [`FleetClient::lookup_devices`] reports (G3).
//! - **Metadata** (M1): hosts by serial (`GET /api/v1/fleet/hosts?query=SERIAL`, or one sweep of
//!   all hosts for large batches), then each host's detail for `end_users[0]` (`idp_id`,
//!   `idp_full_name`), which list responses do not carry. Duplicate serials give several
//!   records (M6).
//! - **Force sync** (A1): `POST /api/v1/fleet/hosts/{id}/refetch`.
//! - **Credential test** (C1): `GET /api/v1/fleet/me`, then the labels (group sync) and one
//!   host (metadata).
//! - **Console link** (M4): `https://{host}/hosts/{id}`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mdmsync_core::MdmError> {
//! use mdmsync_core::MdmClient;
//! use mdmsync_fleet::{FleetClient, FleetConfig};
//! use secrecy::SecretString;
//!
//! let config = FleetConfig::new("fleet.example.com", SecretString::from("api-token"))?;
//! let client = FleetClient::new(config)?;
//! let snapshot = client.fetch_snapshot().await?;
//! # let _ = snapshot; Ok(()) }
//! ```

mod client;
mod config;
mod wire;

pub use client::FleetClient;
pub use config::{DEFAULT_OPERATION_TIMEOUT, DEFAULT_PER_PAGE, FleetConfig};
