//! Ports: what the core needs from the outside, as `async_trait` traits. Adapters implement
//! them (`mdmsync-jamf`, `mdmsync-sqlite`, …); hosts wire them together. Time and ids are
//! ports too, so the core never reads a clock or a random source itself.

use crate::credentials::Credentials;
use crate::error::MdmError;
use crate::event::{EventEnvelope, Position, RecordedEvent};
use crate::ids::{MdmDeviceId, MdmUserId, SyncId, WorkspaceId};
use crate::provider::Provider;
use crate::snapshot::Snapshot;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One device record in the MDM, as found by serial number (M1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdmDeviceRecord {
    /// The device's id in the MDM (what group members are listed as).
    pub mdm_device_id: MdmDeviceId,
    /// Its serial number in the MDM.
    pub serial_number: String,
    /// The device name in the MDM.
    pub device_name: Option<String>,
    /// The assigned user's id, if any.
    pub user_id: Option<MdmUserId>,
    /// The assigned user's display name, if any.
    pub user_name: Option<String>,
    /// When the MDM last heard from the device; picks among duplicate serials (M6).
    pub last_seen: Option<DateTime<Utc>>,
}

impl MdmDeviceRecord {
    /// M1: the display name is the assigned user's name, else the device name.
    pub fn display_name(&self) -> Option<String> {
        self.user_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .or_else(|| self.device_name.clone())
    }
}

/// Whether a credential can do one thing (A7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Proven by a call that succeeded.
    Yes,
    /// Refused by the MDM (403).
    No,
    /// Not checked (checking would have side effects).
    Unknown,
    /// The provider has no API for it (A1: JumpCloud has no force sync).
    Unsupported,
}

/// What the credential test (C1) found out (A7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialCheck {
    /// Group sync (read groups and members).
    pub group_sync: Capability,
    /// Device metadata (read devices).
    pub metadata: Capability,
    /// Force sync (A1).
    pub force_sync: Capability,
    /// The MDM's version, where it says.
    pub server_version: Option<String>,
}

/// An MDM, as the core needs it. One instance talks to one tenant with one set of credentials.
///
/// Every method maps failures to [`MdmError`] with an E1 kind (P3); none returns a partial
/// result (P2).
#[async_trait]
pub trait MdmClient: Send + Sync {
    /// The provider this client talks to.
    fn provider(&self) -> Provider;

    /// C1: the test call made before credentials are saved. Fails with `Forbidden` if the
    /// credential cannot read groups, so a missing privilege shows at connect time.
    async fn validate_credentials(&self) -> Result<CredentialCheck, MdmError>;

    /// P2: every group with all its members, or an error. Never a partial snapshot.
    async fn fetch_snapshot(&self) -> Result<Snapshot, MdmError>;

    /// M1: the MDM records for each serial (several if serials repeat, M6; none if unknown).
    /// The adapter chooses between per-serial look-ups and one inventory sweep.
    async fn lookup_devices(
        &self,
        serials: &[String],
    ) -> Result<BTreeMap<String, Vec<MdmDeviceRecord>>, MdmError>;

    /// M4: the device's page in the MDM's web console.
    fn console_url(&self, device: &MdmDeviceId) -> Option<String>;

    /// A1: ask the MDM to make the device check in now.
    async fn force_sync(&self, device: &MdmDeviceId) -> Result<(), MdmError>;
}

/// What a stream's version must be for an append to go through (G10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version (0 = no events).
    Exact(u64),
    /// No check.
    Any,
}

impl ExpectedVersion {
    /// Whether a stream at `actual` (0 = empty) satisfies this expectation.
    pub fn matches(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => v == actual,
            ExpectedVersion::Any => true,
        }
    }
}

/// Where a batch landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's version after the append.
    pub stream_version: u64,
    /// Position of the batch's last event (unchanged for an empty batch).
    pub last_position: Position,
}

/// Event store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// G10: the stream moved on since the caller read it. Re-read and decide again.
    #[error(
        "stream {stream} is at version {actual}, expected {expected:?}: someone else wrote to it; reload and retry"
    )]
    Conflict {
        /// The stream.
        stream: WorkspaceId,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// What it was.
        actual: u64,
    },
    /// A stored event could not be decoded (an unknown type or version, a damaged payload).
    #[error("event at position {position} could not be decoded: {message}; run `mdmsync verify`")]
    Corrupt {
        /// Where.
        position: u64,
        /// What is wrong.
        message: String,
    },
    /// The backend failed (disk, database, lock).
    #[error("event store failed: {0}")]
    Backend(String),
}

/// The append-only log, one stream per workspace (decision 0001).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` to `stream` atomically if its version matches `expected`: all or
    /// nothing (G10). A mismatch is [`StoreError::Conflict`], never a backend error.
    async fn append(
        &self,
        stream: WorkspaceId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Up to `limit` events of `stream` with version greater than `after_version`, in order.
    async fn read_stream(
        &self,
        stream: WorkspaceId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of all streams with position greater than `after`, in order.
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
}

/// Where credentials live between runs: encrypted at rest, keyed by workspace (C2).
#[async_trait]
pub trait CredentialVault: Send + Sync {
    /// Stores (or replaces) a workspace's credentials.
    async fn save(
        &self,
        workspace: WorkspaceId,
        credentials: &Credentials,
    ) -> Result<(), VaultError>;
    /// The workspace's credentials, if any.
    async fn load(&self, workspace: WorkspaceId) -> Result<Option<Credentials>, VaultError>;
    /// Forgets a workspace's credentials.
    async fn remove(&self, workspace: WorkspaceId) -> Result<(), VaultError>;
}

/// Credential vault failures. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The key cannot decrypt what is stored (wrong key file, or tampering).
    #[error("stored credentials could not be decrypted: wrong key file, or the data was altered")]
    Decrypt,
    /// The backend failed.
    #[error("credential vault failed: {0}")]
    Backend(String),
}

/// The time, passed in.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// New sync ids, passed in.
pub trait IdGenerator: Send + Sync {
    /// A fresh, unique sync id.
    fn new_sync_id(&self) -> SyncId;
}
