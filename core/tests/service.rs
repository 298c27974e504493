//! `SyncService` over the in-memory store and the fake MDM: G8, G10, G11, G12, C1, C3, C4, M1,
//! M2, M6, T2 as the use cases see them.

use async_trait::async_trait;
use chrono::TimeDelta;
use futures::executor::block_on;
use mdmsync_core::testkit::{FakeMdm, ManualClock, SequentialIds, t0};
use mdmsync_core::*;
use secrecy::SecretString;
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

type Svc<S = InMemoryEventStore> = SyncService<S, ManualClock, SequentialIds>;

fn ws() -> WorkspaceId {
    WorkspaceId(Uuid::from_u128(42))
}

fn creds() -> Credentials {
    Credentials::new(
        Provider::Fleet,
        [
            ("host", "fleet.example.test"),
            ("api_token", "tok-SECRET-123"),
        ]
        .map(|(k, v)| (k.to_owned(), SecretString::from(v))),
    )
    .unwrap()
}

fn record(serial: &str, id: &str, seen: i64) -> MdmDeviceRecord {
    MdmDeviceRecord {
        mdm_device_id: id.into(),
        serial_number: serial.into(),
        device_name: Some(format!("host-{id}")),
        user_id: None,
        user_name: None,
        last_seen: Some(t0() + TimeDelta::seconds(seen)),
    }
}

/// A Pro workspace with devices S0..Sn known to the fake MDM as ids 0..n, connected (which
/// syncs once, C3).
async fn setup<S: EventStore>(svc: &Svc<S>, mdm: &FakeMdm, devices: u32) {
    let op = Actor::Operator("op".into());
    svc.execute(
        ws(),
        Command::CreateWorkspace {
            workspace_id: ws(),
            name: "W".into(),
            plan: Plan::Pro,
        },
        op.clone(),
    )
    .await
    .unwrap();
    for n in 0..devices {
        let serial = format!("S{n}");
        svc.execute(
            ws(),
            Command::RegisterDevice {
                device_id: DeviceId(Uuid::from_u128(n.into())),
                serial_number: Some(serial.clone()),
                name: None,
            },
            op.clone(),
        )
        .await
        .unwrap();
        mdm.add_record(record(&serial, &n.to_string(), 0));
    }
    svc.connect(
        ws(),
        mdm,
        &InMemoryVault::default(),
        &creds(),
        ConnectionSettings::default(),
        op,
    )
    .await
    .unwrap();
}

fn svc() -> Svc {
    SyncService::new(
        InMemoryEventStore::new(),
        ManualClock::new(t0()),
        SequentialIds::default(),
    )
}

fn two_groups() -> Snapshot {
    Snapshot::new(Provider::Fleet)
        .with_group("1", "A", ["0", "1"])
        .with_group("2", "B", ["2"])
}

#[test]
fn c3_connecting_refreshes_metadata_and_syncs_at_once() {
    block_on(async {
        let (svc, mdm) = (svc(), FakeMdm::new(Provider::Fleet));
        mdm.set_snapshot(two_groups());
        setup(&svc, &mdm, 3).await;
        let state = svc.load(ws()).await.unwrap().state;
        assert_eq!(state.groups().len(), 2);
        assert!(
            state.devices().values().all(|d| d.metadata.is_some()),
            "M1 ran before the sync"
        );
        assert_eq!(
            state.last_sync().unwrap().trigger,
            SyncTrigger::ProviderChanged
        );
    });
}

#[test]
fn c1_failed_credential_test_saves_nothing() {
    block_on(async {
        let svc = svc();
        let mdm = FakeMdm::new(Provider::Fleet);
        svc.execute(
            ws(),
            Command::CreateWorkspace {
                workspace_id: ws(),
                name: "W".into(),
                plan: Plan::Pro,
            },
            Actor::System,
        )
        .await
        .unwrap();
        let before = svc.store().len();
        mdm.set_fault(Some(MdmError::new(
            ErrorKind::Unauthorized,
            "Fleet: get current user: HTTP 401",
        )));
        let vault = InMemoryVault::default();
        let err = svc
            .connect(
                ws(),
                &mdm,
                &vault,
                &creds(),
                Default::default(),
                Actor::System,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, ServiceError::CredentialTest(ref e) if e.kind() == Some(ErrorKind::Unauthorized)),
            "{err}"
        );
        assert_eq!(svc.store().len(), before, "no event");
        assert!(
            vault.load(ws()).await.unwrap().is_none(),
            "no credentials saved"
        );
    });
}

#[test]
fn c2_no_event_carries_a_credential() {
    block_on(async {
        let (svc, mdm) = (svc(), FakeMdm::new(Provider::Fleet));
        mdm.set_snapshot(two_groups());
        setup(&svc, &mdm, 3).await;
        let all = svc.store().read_all(Position(0), 10_000).await.unwrap();
        let json = serde_json::to_string(&all).unwrap();
        assert!(!json.contains("tok-SECRET-123"));
    });
}

#[test]
fn g8_fetch_error_appends_sync_failed_and_nothing_else() {
    block_on(async {
        let (svc, mdm) = (svc(), FakeMdm::new(Provider::Fleet));
        mdm.set_snapshot(two_groups());
        setup(&svc, &mdm, 3).await;
        let before = svc.load(ws()).await.unwrap();
        mdm.set_fault(Some(MdmError::new(
            ErrorKind::SslError,
            "Fleet: list labels: certificate not trusted",
        )));
        svc.clock().advance(TimeDelta::hours(6));
        let out = svc
            .sync(
                ws(),
                &mdm,
                SyncRequest::new(SyncTrigger::Scheduled, Actor::Scheduler),
            )
            .await
            .unwrap();
        assert!(matches!(
            out.result,
            SyncResult::Failed {
                error_kind: ErrorKind::SslError,
                ..
            }
        ));
        assert_eq!(out.events.len(), 1);
        let after = svc.load(ws()).await.unwrap();
        assert_eq!(after.version, before.version + 1);
        assert_eq!(after.state.groups(), before.state.groups());
        assert_eq!(
            after.state.last_failure().unwrap().kind,
            ErrorKind::SslError
        );
    });
}

#[test]
fn g12_every_sync_event_carries_actor_sync_id_and_time() {
    block_on(async {
        let (svc, mdm) = (svc(), FakeMdm::new(Provider::Fleet));
        setup(&svc, &mdm, 3).await;
        mdm.set_snapshot(two_groups());
        svc.clock().advance(TimeDelta::minutes(20));
        let out = svc
            .sync(
                ws(),
                &mdm,
                SyncRequest::new(SyncTrigger::Manual, Actor::ApiCaller("console".into())),
            )
            .await
            .unwrap();
        let sync_id = out.sync_id.unwrap();
        // The outcome carries only the last event; the store has all of them.
        assert_eq!(out.events.len(), 1);
        assert!(matches!(out.events[0].event, Event::SyncSucceeded { .. }));
        let stored: Vec<EventEnvelope> = svc
            .store()
            .read_all(Position(0), 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.envelope)
            .filter(|e| e.meta.sync_id == Some(sync_id))
            .collect();
        assert!(stored.len() > 3, "group and member events of the sync");
        assert_eq!(stored.last(), out.events.last());
        for e in &stored {
            assert_eq!(e.meta.sync_id, Some(sync_id));
            assert_eq!(e.meta.actor, Actor::ApiCaller("console".into()));
            assert_eq!(e.meta.recorded_at, t0() + TimeDelta::minutes(20));
            assert_eq!(
                e.meta.cause,
                Cause::Sync {
                    trigger: SyncTrigger::Manual
                }
            );
        }
    });
}

#[test]
fn t2_manual_sync_in_the_cooldown_is_refused_with_the_time_it_is_allowed() {
    block_on(async {
        let (svc, mdm) = (svc(), FakeMdm::new(Provider::Fleet));
        setup(&svc, &mdm, 1).await;
        let fetches = mdm.fetches.load(Ordering::SeqCst);
        svc.clock().advance(TimeDelta::minutes(5));
        let out = svc
            .sync(
                ws(),
                &mdm,
                SyncRequest::new(SyncTrigger::Manual, Actor::System),
            )
            .await
            .unwrap();
        assert_eq!(
            out.result,
            SyncResult::Refused {
                refusal: Refusal::Cooldown {
                    allowed_at: t0() + TimeDelta::minutes(15)
                }
            }
        );
        assert_eq!(
            mdm.fetches.load(Ordering::SeqCst),
            fetches,
            "a refused sync does not call the MDM"
        );
        let forced = svc
            .sync(
                ws(),
                &mdm,
                SyncRequest::new(SyncTrigger::ForcedManual, Actor::System),
            )
            .await
            .unwrap();
        assert!(
            matches!(forced.result, SyncResult::Succeeded { .. }),
            "an operator's --force bypasses the cooldown"
        );
    });
}

#[test]
fn dry_run_returns_the_plan_and_appends_nothing() {
    block_on(async {
        let (svc, mdm) = (svc(), FakeMdm::new(Provider::Fleet));
        setup(&svc, &mdm, 3).await;
        mdm.set_snapshot(two_groups());
        let before = svc.store().len();
        let mut req = SyncRequest::new(SyncTrigger::ForcedManual, Actor::System);
        req.dry_run = true;
        let out = svc.sync(ws(), &mdm, req).await.unwrap();
        assert!(out.dry_run);
        assert_eq!(
            out.events
                .iter()
                .filter(|e| matches!(e.event, Event::GroupCreated { .. }))
                .count(),
            2
        );
        assert_eq!(svc.store().len(), before);
    });
}

#[test]
fn g11_held_sync_is_applied_only_by_confirmation() {
    block_on(async {
        let (svc, mdm) = (svc(), FakeMdm::new(Provider::Fleet));
        mdm.set_snapshot(two_groups());
        setup(&svc, &mdm, 3).await;
        mdm.set_snapshot(Snapshot::new(Provider::Fleet));
        let out = svc
            .sync(
                ws(),
                &mdm,
                SyncRequest::new(SyncTrigger::ForcedManual, Actor::System),
            )
            .await
            .unwrap();
        let SyncResult::Held {
            reason: HoldReason::EmptySnapshot { synced_groups: 2 },
            ..
        } = out.result
        else {
            panic!("{:?}", out.result)
        };
        let held = out.sync_id.unwrap();
        assert_eq!(
            svc.load(ws())
                .await
                .unwrap()
                .state
                .groups()
                .values()
                .filter(|g| g.synced_key().is_some())
                .count(),
            2
        );
        let mut confirm = SyncRequest::new(SyncTrigger::Confirmation, Actor::Operator("op".into()));
        confirm.confirm = Some(held);
        let out = svc.sync(ws(), &mdm, confirm).await.unwrap();
        assert!(
            matches!(out.result, SyncResult::Succeeded { ref report } if report.detached == 2),
            "{:?}",
            out.result
        );
        let confirming = out.sync_id.unwrap();
        let stored: Vec<RecordedEvent> = svc
            .store()
            .read_all(Position(0), 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.envelope.meta.sync_id == Some(confirming))
            .collect();
        assert!(
            matches!(stored[0].envelope.event, Event::SyncConfirmed { held_sync_id } if held_sync_id == held)
        );
        assert!(
            stored.len() >= 4,
            "SyncConfirmed, two detaches, SyncSucceeded"
        );
        assert!(
            stored
                .iter()
                .all(|e| e.envelope.meta.cause == Cause::Confirmation { held_sync: held })
        );
    });
}

/// A store that lets another writer slip in before the first `n` appends (G10).
struct Racing {
    inner: InMemoryEventStore,
    races_left: std::sync::atomic::AtomicU32,
    raced: AtomicBool,
}

#[async_trait]
impl EventStore for Racing {
    async fn append(
        &self,
        stream: WorkspaceId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        if self.races_left.load(Ordering::SeqCst) > 0 {
            self.races_left.fetch_sub(1, Ordering::SeqCst);
            self.raced.store(true, Ordering::SeqCst);
            let other = EventEnvelope {
                workspace: stream,
                meta: events[0].meta.clone(),
                event: Event::DeviceRegistered {
                    device_id: DeviceId(Uuid::from_u128(
                        0xFFFF_0000 + u128::from(self.races_left.load(Ordering::SeqCst)),
                    )),
                    serial_number: Some("RACE".into()),
                    name: None,
                },
            };
            self.inner
                .append(stream, ExpectedVersion::Any, vec![other])
                .await?;
        }
        self.inner.append(stream, expected, events).await
    }
    async fn read_stream(
        &self,
        s: WorkspaceId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(s, after, limit).await
    }
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }
}

fn racing(races: u32) -> Svc<Racing> {
    let store = Racing {
        inner: InMemoryEventStore::new(),
        races_left: races.into(),
        raced: AtomicBool::new(false),
    };
    SyncService::new(store, ManualClock::new(t0()), SequentialIds::default())
}

#[test]
fn g10_stale_base_state_is_decided_again_from_fresh_state() {
    block_on(async {
        let svc = racing(0);
        let mdm = FakeMdm::new(Provider::Fleet);
        setup(&svc, &mdm, 3).await;
        mdm.set_snapshot(two_groups());
        svc.store().races_left.store(1, Ordering::SeqCst);
        let out = svc
            .sync(
                ws(),
                &mdm,
                SyncRequest::new(SyncTrigger::ForcedManual, Actor::System),
            )
            .await
            .unwrap();
        assert!(svc.store().raced.load(Ordering::SeqCst));
        assert!(matches!(out.result, SyncResult::Succeeded { .. }));
        let state = svc.load(ws()).await.unwrap().state;
        assert_eq!(state.devices().len(), 4, "the other writer's event is kept");
        assert_eq!(
            state.groups().len(),
            2,
            "the sync landed once, on top of it"
        );
        assert_eq!(
            mdm.fetches.load(Ordering::SeqCst),
            2,
            "no second fetch: the same snapshot is decided again"
        );
    });
}

#[test]
fn g10_a_sync_that_keeps_conflicting_gives_up_and_appends_nothing() {
    block_on(async {
        let svc = racing(0).with_conflict_retries(2);
        let mdm = FakeMdm::new(Provider::Fleet);
        setup(&svc, &mdm, 1).await;
        mdm.set_snapshot(two_groups());
        svc.store().races_left.store(100, Ordering::SeqCst);
        let before = svc.load(ws()).await.unwrap().state.groups().len();
        let err = svc
            .sync(
                ws(),
                &mdm,
                SyncRequest::new(SyncTrigger::ForcedManual, Actor::System),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, ServiceError::TooManyConflicts { attempts: 3 }),
            "{err}"
        );
        let state = svc.load(ws()).await.unwrap().state;
        assert_eq!(state.groups().len(), before);
        assert_eq!(
            state.last_sync().unwrap().trigger,
            SyncTrigger::ProviderChanged,
            "no trace of the failed append"
        );
    });
}

#[test]
fn m2_metadata_is_refreshed_at_most_once_a_day() {
    block_on(async {
        let (svc, mdm) = (svc(), FakeMdm::new(Provider::Fleet));
        setup(&svc, &mdm, 3).await;
        svc.clock().advance(TimeDelta::hours(23));
        let r = svc
            .refresh_metadata(ws(), &mdm, false, Actor::Scheduler)
            .await
            .unwrap();
        assert_eq!((r.refreshed, r.not_due), (0, 3));
        svc.clock().advance(TimeDelta::hours(1));
        let r = svc
            .refresh_metadata(ws(), &mdm, false, Actor::Scheduler)
            .await
            .unwrap();
        assert_eq!((r.refreshed, r.not_due), (3, 0));
        let r = svc
            .refresh_metadata(ws(), &mdm, true, Actor::Operator("op".into()))
            .await
            .unwrap();
        assert_eq!(r.refreshed, 3, "force ignores M2");
    });
}

#[test]
fn m6_duplicate_serial_takes_the_latest_record_and_serialless_devices_are_skipped() {
    block_on(async {
        let (svc, mdm) = (svc(), FakeMdm::new(Provider::Fleet));
        setup(&svc, &mdm, 1).await;
        mdm.add_record(record("S0", "77", 500));
        svc.execute(
            ws(),
            Command::RegisterDevice {
                device_id: DeviceId(Uuid::from_u128(9)),
                serial_number: None,
                name: Some("byod".into()),
            },
            Actor::System,
        )
        .await
        .unwrap();
        svc.execute(
            ws(),
            Command::RegisterDevice {
                device_id: DeviceId(Uuid::from_u128(10)),
                serial_number: Some("NOPE".into()),
                name: None,
            },
            Actor::System,
        )
        .await
        .unwrap();
        let r = svc
            .refresh_metadata(ws(), &mdm, true, Actor::System)
            .await
            .unwrap();
        assert_eq!(
            r,
            MetadataReport {
                refreshed: 1,
                not_found: 1,
                skipped: 1,
                ambiguous: 1,
                not_due: 0
            }
        );
        let state = svc.load(ws()).await.unwrap().state;
        let d = &state.devices()[&DeviceId(Uuid::from_u128(0))];
        assert_eq!(d.metadata.as_ref().unwrap().mdm_device_id.as_str(), "77");
        assert_eq!(d.ambiguous_candidates, 1);
        assert_eq!(
            d.metadata.as_ref().unwrap().console_url.as_deref(),
            Some("https://mdm.example.test/devices/77"),
            "M4"
        );
    });
}

#[test]
fn a1_force_sync_needs_the_devices_mdm_id() {
    block_on(async {
        let (svc, mdm) = (svc(), FakeMdm::new(Provider::Fleet));
        setup(&svc, &mdm, 1).await;
        svc.force_sync_device(ws(), &mdm, DeviceId(Uuid::from_u128(0)))
            .await
            .unwrap();
        svc.execute(
            ws(),
            Command::RegisterDevice {
                device_id: DeviceId(Uuid::from_u128(9)),
                serial_number: None,
                name: None,
            },
            Actor::System,
        )
        .await
        .unwrap();
        let err = svc
            .force_sync_device(ws(), &mdm, DeviceId(Uuid::from_u128(9)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("metadata refresh"), "{err}");
    });
}

#[test]
fn in_memory_store_passes_the_contract_suite() {
    block_on(mdmsync_core::testkit::contract::run_all(
        InMemoryEventStore::new,
    ));
}
