//! How events and their metadata are laid out in columns, and read back.

use crate::upcast::Upcasters;
use chrono::{DateTime, SecondsFormat, Utc};
use mdmsync_core::{
    Actor, Cause, EventEnvelope, EventMeta, Position, RecordedEvent, StoreError, SyncId,
    WorkspaceId,
};
use rusqlite::Row;

/// Times are stored as fixed-width RFC 3339 UTC with microseconds
/// (`2026-01-01T00:00:00.000000Z`), so text order is time order.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a stored time (any RFC 3339 form).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("bad time {s:?}: {e}"))
}

/// The actor column: its `Display` form (`scheduler`, `operator:ada`, `api:billing`, `system`).
pub fn format_actor(a: &Actor) -> String {
    a.to_string()
}

/// Parses the actor column.
pub fn parse_actor(s: &str) -> Result<Actor, String> {
    match s.split_once(':') {
        None if s == "scheduler" => Ok(Actor::Scheduler),
        None if s == "system" => Ok(Actor::System),
        Some(("operator", n)) => Ok(Actor::Operator(n.to_owned())),
        Some(("api", n)) => Ok(Actor::ApiCaller(n.to_owned())),
        _ => Err(format!("unknown actor {s:?}")),
    }
}

/// Metadata columns of one event, encoded once per distinct metadata in a batch.
pub(crate) struct MetaColumns {
    pub recorded_at: String,
    pub actor: String,
    pub sync_id: Option<String>,
    pub cause: String,
}

impl MetaColumns {
    pub(crate) fn encode(meta: &EventMeta) -> Result<Self, StoreError> {
        Ok(Self {
            recorded_at: format_time(meta.recorded_at),
            actor: format_actor(&meta.actor),
            sync_id: meta.sync_id.map(|s| s.to_string()),
            cause: serde_json::to_string(&meta.cause)
                .map_err(|e| StoreError::Backend(format!("cannot encode an event cause: {e}")))?,
        })
    }
}

/// The columns `read` selects, in order.
pub(crate) const EVENT_COLUMNS: &str = "position, stream_id, stream_version, event_type, event_version, payload, recorded_at, actor, sync_id, cause";

/// Decodes rows into [`RecordedEvent`]s, caching the last actor and cause (consecutive events
/// of one batch share them).
pub(crate) struct RowDecoder<'a> {
    upcasters: &'a Upcasters,
    last_actor: Option<(String, Actor)>,
    last_cause: Option<(String, Cause)>,
    last_time: Option<(String, DateTime<Utc>)>,
    last_stream: Option<(String, WorkspaceId)>,
}

fn corrupt(position: i64, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        position: position.max(0) as u64,
        message: message.into(),
    }
}

impl<'a> RowDecoder<'a> {
    pub(crate) fn new(upcasters: &'a Upcasters) -> Self {
        Self {
            upcasters,
            last_actor: None,
            last_cause: None,
            last_time: None,
            last_stream: None,
        }
    }

    /// Decodes one row selected with [`EVENT_COLUMNS`].
    pub(crate) fn decode(&mut self, row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
        let sql = |e: rusqlite::Error| StoreError::Backend(format!("reading an event: {e}"));
        let position: i64 = row.get(0).map_err(sql)?;
        let stream = row
            .get_ref(1)
            .map_err(sql)?
            .as_str()
            .map_err(|e| corrupt(position, format!("stream id is not text: {e}")))?;
        let workspace = match &self.last_stream {
            Some((s, id)) if s == stream => *id,
            _ => {
                let id: WorkspaceId = stream
                    .parse()
                    .map_err(|e| corrupt(position, format!("bad stream id {stream:?}: {e}")))?;
                self.last_stream = Some((stream.to_owned(), id));
                id
            }
        };
        let stream_version: i64 = row.get(2).map_err(sql)?;
        let event_type = row
            .get_ref(3)
            .map_err(sql)?
            .as_str()
            .map_err(|e| corrupt(position, format!("event type is not text: {e}")))?;
        let event_version: i64 = row.get(4).map_err(sql)?;
        let payload = row
            .get_ref(5)
            .map_err(sql)?
            .as_str()
            .map_err(|e| corrupt(position, format!("payload is not text: {e}")))?;
        let version = u16::try_from(event_version)
            .map_err(|_| corrupt(position, format!("bad event version {event_version}")))?;
        let event = self
            .upcasters
            .decode(event_type, version, payload)
            .map_err(|e| corrupt(position, format!("{event_type} v{version}: {e}")))?;

        let recorded = row
            .get_ref(6)
            .map_err(sql)?
            .as_str()
            .map_err(|e| corrupt(position, format!("recorded_at is not text: {e}")))?;
        let recorded_at = match &self.last_time {
            Some((s, t)) if s == recorded => *t,
            _ => {
                let t = parse_time(recorded).map_err(|e| corrupt(position, e))?;
                self.last_time = Some((recorded.to_owned(), t));
                t
            }
        };
        let actor_s = row
            .get_ref(7)
            .map_err(sql)?
            .as_str()
            .map_err(|e| corrupt(position, format!("actor is not text: {e}")))?;
        let actor = match &self.last_actor {
            Some((s, a)) if s == actor_s => a.clone(),
            _ => {
                let a = parse_actor(actor_s).map_err(|e| corrupt(position, e))?;
                self.last_actor = Some((actor_s.to_owned(), a.clone()));
                a
            }
        };
        let sync_id: Option<String> = row.get(8).map_err(sql)?;
        let sync_id = sync_id
            .map(|s| {
                s.parse::<SyncId>()
                    .map_err(|e| corrupt(position, format!("bad sync id {s:?}: {e}")))
            })
            .transpose()?;
        let cause_s = row
            .get_ref(9)
            .map_err(sql)?
            .as_str()
            .map_err(|e| corrupt(position, format!("cause is not text: {e}")))?;
        let cause = match &self.last_cause {
            Some((s, c)) if s == cause_s => c.clone(),
            _ => {
                let c: Cause = serde_json::from_str(cause_s)
                    .map_err(|e| corrupt(position, format!("bad cause {cause_s:?}: {e}")))?;
                self.last_cause = Some((cause_s.to_owned(), c.clone()));
                c
            }
        };
        Ok(RecordedEvent {
            position: Position(position as u64),
            stream_version: stream_version as u64,
            envelope: EventEnvelope {
                workspace,
                meta: EventMeta {
                    recorded_at,
                    actor,
                    sync_id,
                    cause,
                },
                event,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g12_actor_column_roundtrips_every_kind() {
        for a in [
            Actor::Scheduler,
            Actor::System,
            Actor::Operator("ada:lovelace".into()),
            Actor::ApiCaller(String::new()),
        ] {
            assert_eq!(parse_actor(&format_actor(&a)).unwrap(), a);
        }
        assert!(parse_actor("robot").is_err());
    }

    #[test]
    fn stored_times_sort_as_text_in_time_order() {
        let a = parse_time("2026-01-01T00:00:00Z").unwrap();
        let b = a + chrono::TimeDelta::microseconds(1);
        let c = a + chrono::TimeDelta::days(400);
        let (fa, fb, fc) = (format_time(a), format_time(b), format_time(c));
        assert!(fa < fb && fb < fc);
        assert_eq!(fa.len(), fc.len());
        assert_eq!(parse_time(&fb).unwrap(), b);
    }
}
