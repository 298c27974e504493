//! Schema evolution: an upcaster chain that turns a stored payload of an older event version
//! into the current one, on raw JSON, before the typed [`Event`] is decoded (lessons.md:
//! "`event_type` + `event_version` columns and an upcaster chain run on raw JSON").
//!
//! Every event type is at version 1 today ([`Event::TYPES`]), so the default chain is empty.
//! When a type changes shape, bump `CURRENT_VERSIONS` here (and the core's
//! `Event::schema_version`), register an [`Upcaster`] from the old version, and add a golden
//! file of the old version under `tests/golden/`.

use mdmsync_core::Event;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// One step of the chain: turns `event_type` payloads of `from_version` into `from_version + 1`.
#[derive(Clone, Copy)]
pub struct Upcaster {
    /// The event type it applies to (`GroupRenamed`).
    pub event_type: &'static str,
    /// The version it reads; it writes `from_version + 1`.
    pub from_version: u16,
    /// The transformation. An `Err` says what is wrong with the payload.
    pub upcast: fn(Value) -> Result<Value, String>,
}

impl fmt::Debug for Upcaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upcaster")
            .field("event_type", &self.event_type)
            .field("from_version", &self.from_version)
            .finish_non_exhaustive()
    }
}

/// Why a stored payload could not be brought to the current version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    /// The type is not one this build knows.
    #[error("unknown event type {0:?}; the log was written by a newer mdmsync, upgrade it")]
    UnknownType(String),
    /// The stored version is newer than this build's.
    #[error(
        "{event_type} version {version} is newer than this mdmsync knows ({current}); upgrade mdmsync"
    )]
    TooNew {
        /// The type.
        event_type: String,
        /// The stored version.
        version: u16,
        /// The current version here.
        current: u16,
    },
    /// No upcaster reads this (older) version.
    #[error("no upcaster turns {event_type} version {version} into a newer version")]
    MissingStep {
        /// The type.
        event_type: String,
        /// The version nothing reads.
        version: u16,
    },
    /// An upcaster refused the payload.
    #[error("upcasting {event_type} from version {version} failed: {message}")]
    Failed {
        /// The type.
        event_type: String,
        /// The version being upcast.
        version: u16,
        /// What the upcaster said.
        message: String,
    },
}

/// The current schema version of every event type (must agree with `Event::schema_version`).
/// Every type is at version 1 so far.
pub fn current_version(event_type: &str) -> Option<u16> {
    Event::TYPES.contains(&event_type).then_some(1)
}

/// A chain of upcasters keyed by `(event_type, from_version)`, plus the current versions.
#[derive(Clone, Debug)]
pub struct Upcasters {
    steps: HashMap<(String, u16), Upcaster>,
    current: HashMap<String, u16>,
}

impl Default for Upcasters {
    /// The production chain: every type at its current version, no step registered (all types
    /// are at their first version).
    fn default() -> Self {
        Self {
            steps: HashMap::new(),
            current: Event::TYPES
                .iter()
                .filter_map(|t| current_version(t).map(|v| ((*t).to_owned(), v)))
                .collect(),
        }
    }
}

impl Upcasters {
    /// Adds a step to the chain (builder style).
    pub fn with(mut self, step: Upcaster) -> Self {
        self.steps
            .insert((step.event_type.to_owned(), step.from_version), step);
        self
    }

    /// Declares a type's current version (for tests that simulate a newer shape).
    pub fn with_current_version(mut self, event_type: &str, version: u16) -> Self {
        self.current.insert(event_type.to_owned(), version);
        self
    }

    /// The current version of a type, if known.
    pub fn current(&self, event_type: &str) -> Option<u16> {
        self.current.get(event_type).copied()
    }

    /// True if a payload of this type and version needs no upcasting.
    pub fn is_current(&self, event_type: &str, version: u16) -> bool {
        self.current(event_type) == Some(version)
    }

    /// Brings `payload` from `version` to the type's current version.
    pub fn upcast(
        &self,
        event_type: &str,
        mut version: u16,
        mut payload: Value,
    ) -> Result<Value, UpcastError> {
        let current = self
            .current(event_type)
            .ok_or_else(|| UpcastError::UnknownType(event_type.to_owned()))?;
        if version > current {
            return Err(UpcastError::TooNew {
                event_type: event_type.to_owned(),
                version,
                current,
            });
        }
        while version < current {
            let step = self
                .steps
                .get(&(event_type.to_owned(), version))
                .ok_or_else(|| UpcastError::MissingStep {
                    event_type: event_type.to_owned(),
                    version,
                })?;
            payload = (step.upcast)(payload).map_err(|message| UpcastError::Failed {
                event_type: event_type.to_owned(),
                version,
                message,
            })?;
            version += 1;
        }
        Ok(payload)
    }

    /// Decodes a stored `(type, version, payload)` into the current [`Event`].
    pub fn decode(
        &self,
        event_type: &str,
        version: u16,
        payload: &str,
    ) -> Result<Event, DecodeError> {
        if self.is_current(event_type, version) {
            // Fast path: no `Value` in between (the core's text form of `from_payload`).
            return Event::from_payload_str(event_type, payload)
                .map_err(|e| DecodeError::Json(e.to_string()));
        }
        let value: Value =
            serde_json::from_str(payload).map_err(|e| DecodeError::Json(e.to_string()))?;
        let value = self.upcast(event_type, version, value)?;
        Event::from_payload(event_type, value).map_err(|e| DecodeError::Json(e.to_string()))
    }
}

/// Why a stored event could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The upcaster chain failed.
    #[error(transparent)]
    Upcast(#[from] UpcastError),
    /// The payload is not the JSON of its type.
    #[error("the payload does not match its type: {0}")]
    Json(String),
}
