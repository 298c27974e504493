//! # mdmsync-jumpcloud
//!
//! The JumpCloud adapter: implements the core's [`mdmsync_core::MdmClient`] port on top of
//! `mdmsync-http`, following `shared/providers.md` §5.
//!
//! - **Auth**: `x-api-key` on every call, plus `x-org-id` for multi-tenant (MTP) admins.
//! - **Endpoint**: `https://console.jumpcloud.com/api` (v1) and `…/api/v2`; the EU region
//!   (`eu`: `https://console.eu.jumpcloud.com/api`) or any base URL can be chosen (P1).
//! - **Groups** are *system groups* (`GET /api/v2/systemgroups?limit=100&skip=N`); members come
//!   from `GET /api/v2/systemgroups/{id}/membership?limit=100&skip=N`. JumpCloud pages can be
//!   short before the end (null associations are dropped after paging: the "200-member
//!   truncation"), so listings are read **until an empty page**, never stopped on a short one.
//!   `STATIC`/`NOTSET` groups are static, `DYNAMIC_*` smart.
//! - **Ids**: a member is the system id (24 hex digits): `id` in v2, `_id` in v1 — the same id
//!   [`JumpCloudClient::lookup_devices`] reports (G3).
//! - **Metadata** (M1): `GET /api/systems?filter=serialNumber:$eq:X` (v1 envelope with
//!   `totalCount`), or one sweep of all systems for large batches; the primary user from
//!   `GET /api/systemusers/{id}`.
//! - **Force sync** (A1): JumpCloud has no such API: [`mdmsync_core::MdmError::Unsupported`]
//!   ("force sync is not supported by JumpCloud").
//! - **Console link** (M4): `https://console.jumpcloud.com/#/devices/{id}/details` (the EU
//!   console for the EU region).
//!
//! ```no_run
//! # async fn demo() -> Result<(), mdmsync_core::MdmError> {
//! use mdmsync_core::MdmClient;
//! use mdmsync_jumpcloud::{JumpCloudClient, JumpCloudConfig};
//! use secrecy::SecretString;
//!
//! let config = JumpCloudConfig::new(SecretString::from("api-key")).with_base_url("eu")?;
//! let client = JumpCloudClient::new(config)?;
//! let snapshot = client.fetch_snapshot().await?;
//! # let _ = snapshot; Ok(()) }
//! ```

mod client;
mod config;
mod wire;

pub use client::{JumpCloudClient, PAGE_LIMIT};
pub use config::{DEFAULT_OPERATION_TIMEOUT, JumpCloudConfig};
