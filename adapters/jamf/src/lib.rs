//! # mdmsync-jamf
//!
//! The Jamf Pro adapter of mdmsync: it implements the core's [`mdmsync_core::MdmClient`] port
//! over the Jamf Pro API (`/api/...`), on the shared HTTP plumbing of `mdmsync-http`, so the
//! sync engine can mirror Jamf computer groups (smart and static) into device groups, enrich
//! devices with Jamf metadata, link to the Jamf console and trigger a blank push.
//!
//! - **Auth** (P4): OAuth2 client credentials, token from `/api/oauth/token` (falling back to
//!   `/api/v1/oauth/token` on a 404), cached and refreshed `min(60 s, lifetime/2)` before it
//!   expires, checked before every page; a 401 mid-run gets one fresh token and one retry.
//! - **Snapshot** (P2, G3): the group list from `GET /api/v1/computer-groups` (every group,
//!   empty ones too, with the smart flag), then ONE paginated inventory sweep
//!   (`section=GENERAL,HARDWARE,USER_AND_LOCATION,GROUP_MEMBERSHIPS`, `page-size` 2,000,
//!   `sort=id:asc`, checked against `totalCount`) that yields every group's members — static
//!   groups included, which the Jamf Pro API cannot list otherwise — and every computer's
//!   metadata. String and integer ids are normalised. The inventory generation (v4 from Jamf
//!   Pro 11.30, else v3) is chosen from `GET /api/v1/jamf-pro-version`; a v4 404 falls back to v3.
//! - **Metadata** (M1): computer id, username as user id, real name (else username) as user
//!   name, device name, last contact; answered from the last sweep for 10 minutes, otherwise by
//!   RSQL look-ups (`hardware.serialNumber=in=(…)`, 50 serials a request).
//! - **Credential test** (C1, A7): token, version, group list, one inventory row; a missing
//!   privilege is `Forbidden` naming it.
//! - **Console link** (M4): `https://{host}/computers.html?id={id}&o=r`.
//! - **Force sync** (A1): `POST /api/v2/mdm/blank-push` with the computer's management id.
//! - **Good citizen** (P5): at most 5 connections, adaptive slow-down when latency climbs
//!   (Jamf sends no 429).
//!
//! ```no_run
//! # async fn demo() -> Result<(), mdmsync_core::MdmError> {
//! use mdmsync_core::MdmClient;
//! use mdmsync_jamf::{JamfClient, JamfConfig};
//! use secrecy::SecretString;
//!
//! let config = JamfConfig::new("acme.jamfcloud.com", "client-id", SecretString::from("secret"))?;
//! let jamf = JamfClient::new(config)?;
//! let check = jamf.validate_credentials().await?;
//! let snapshot = jamf.fetch_snapshot().await?;
//! # let _ = (check, snapshot); Ok(()) }
//! ```
//!
//! Permissions, endpoints and limits: `docs/providers/jamf.md`.

mod client;
mod config;
mod wire;

pub use client::JamfClient;
pub use config::{JamfConfig, LOOKUP_BATCH, MAX_CONNECTIONS, MAX_PAGE_SIZE};
