//! An in-memory `EventStore` (and `CredentialVault`), for tests and for embedding where
//! durability is not needed. Same contract as the SQLite store: the suite in
//! `testkit::contract` runs against both.

use crate::credentials::Credentials;
use crate::event::{EventEnvelope, Position, RecordedEvent};
use crate::ids::WorkspaceId;
use crate::ports::{
    AppendOutcome, CredentialVault, EventStore, ExpectedVersion, StoreError, VaultError,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

#[derive(Debug, Default)]
struct Log {
    events: Vec<RecordedEvent>,
    /// Per stream: indexes into `events`.
    streams: HashMap<WorkspaceId, Vec<usize>>,
}

/// An event store in memory. Appends are atomic and checked against the expected version.
#[derive(Debug, Default)]
pub struct InMemoryEventStore {
    log: Mutex<Log>,
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events are stored.
    pub fn len(&self) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .events
            .len()
    }

    /// True if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(
        &self,
        stream: WorkspaceId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let actual = log.streams.get(&stream).map_or(0, |s| s.len() as u64);
        if !expected.matches(actual) {
            return Err(StoreError::Conflict {
                stream,
                expected,
                actual,
            });
        }
        if let Some(stray) = events.iter().find(|e| e.workspace != stream) {
            return Err(StoreError::Backend(format!(
                "an event for stream {} was in a batch for stream {stream}; nothing was appended",
                stray.workspace
            )));
        }
        let mut version = actual;
        for envelope in events {
            version += 1;
            let position = Position(log.events.len() as u64 + 1);
            let index = log.events.len();
            log.events.push(RecordedEvent {
                position,
                stream_version: version,
                envelope,
            });
            log.streams.entry(stream).or_default().push(index);
        }
        Ok(AppendOutcome {
            stream_version: version,
            last_position: Position(log.events.len() as u64),
        })
    }

    async fn read_stream(
        &self,
        stream: WorkspaceId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(log
            .streams
            .get(&stream)
            .map(|idx| {
                idx.iter()
                    .skip(after_version as usize)
                    .take(limit)
                    .map(|&i| log.events[i].clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(log
            .events
            .iter()
            .skip(after.0 as usize)
            .take(limit)
            .cloned()
            .collect())
    }
}

/// A credential vault in memory (no encryption: nothing leaves the process).
#[derive(Default)]
pub struct InMemoryVault {
    entries: Mutex<HashMap<WorkspaceId, Credentials>>,
}

impl std::fmt::Debug for InMemoryVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryVault").finish_non_exhaustive()
    }
}

#[async_trait]
impl CredentialVault for InMemoryVault {
    async fn save(
        &self,
        workspace: WorkspaceId,
        credentials: &Credentials,
    ) -> Result<(), VaultError> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(workspace, credentials.clone());
        Ok(())
    }

    async fn load(&self, workspace: WorkspaceId) -> Result<Option<Credentials>, VaultError> {
        Ok(self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&workspace)
            .cloned())
    }

    async fn remove(&self, workspace: WorkspaceId) -> Result<(), VaultError> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&workspace);
        Ok(())
    }
}
