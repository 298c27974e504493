//! Embedding mdmsync-core: sync a hand-made snapshot through the in-memory store twice and print
//! the groups and the events. Shows G2 (create, rename, detach), G3 (membership), G4 (a name
//! conflict resolved with the provider's name) and G9 (an unchanged resync emits nothing).
//!
//! Run with `cargo run -p mdmsync-core --example embed`.

use futures::executor::block_on;
use mdmsync_core::testkit::{FakeMdm, ManualClock, SequentialIds, t0};
use mdmsync_core::{
    Actor, Command, DeviceId, Event, InMemoryEventStore, MdmDeviceRecord, Plan, Provider, Snapshot,
    SyncRequest, SyncResult, SyncService, SyncTrigger, WorkspaceId,
};
use mdmsync_core::{GroupId, InMemoryVault};
use std::collections::BTreeMap;
use uuid::Uuid;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new(t0());
    let service = SyncService::new(InMemoryEventStore::new(), clock, SequentialIds::default());
    let ws = WorkspaceId(Uuid::from_u128(1));
    let operator = Actor::Operator("ada".into());

    // A Pro workspace with four devices and a manual group that will collide with the MDM's.
    service
        .execute(
            ws,
            Command::CreateWorkspace {
                workspace_id: ws,
                name: "Acme".into(),
                plan: Plan::Pro,
            },
            operator.clone(),
        )
        .await?;
    let mdm = FakeMdm::new(Provider::Jamf);
    for n in 1..=4u128 {
        let serial = format!("C02SERIAL{n}");
        service
            .execute(
                ws,
                Command::RegisterDevice {
                    device_id: DeviceId(Uuid::from_u128(100 + n)),
                    serial_number: Some(serial.clone()),
                    name: None,
                },
                operator.clone(),
            )
            .await?;
        mdm.add_record(MdmDeviceRecord {
            mdm_device_id: format!("{n}").into(),
            serial_number: serial,
            device_name: Some(format!("mac-{n}")),
            user_id: None,
            user_name: Some(format!("User {n}")),
            last_seen: None,
        });
    }
    service
        .execute(
            ws,
            Command::CreateGroup {
                group_id: GroupId(Uuid::from_u128(900)),
                name: "Engineering".into(),
            },
            operator.clone(),
        )
        .await?;

    // The MDM's groups before the first sync.
    mdm.set_snapshot(
        Snapshot::new(Provider::Jamf)
            .with_group("1", "Engineering", ["1", "2"])
            .with_group("2", "Design", ["3"])
            .with_group("3", "Contractors", ["4", "99"]),
    );
    // Connecting tests the credentials, refreshes metadata (M1) and syncs at once (C3).
    let creds = mdmsync_core::Credentials::new(
        Provider::Jamf,
        [
            ("host", "acme.jamfcloud.com"),
            ("client_id", "id"),
            ("client_secret", "secret"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned().into())),
    )?;
    let connected = service
        .connect(
            ws,
            &mdm,
            &InMemoryVault::default(),
            &creds,
            Default::default(),
            operator.clone(),
        )
        .await?;
    println!("== first sync (on connect, C3)");
    if let Some(sync) = &connected.sync {
        print_outcome(&sync.result, &sync.events);
    }
    print_groups(&service, ws).await?;

    // The MDM changes: a rename, a removed group, moved members.
    mdm.set_snapshot(
        Snapshot::new(Provider::Jamf)
            .with_group("1", "Engineering", ["1", "3"])
            .with_group("2", "Product Design", ["2"]),
    );
    service.clock().advance(chrono::TimeDelta::hours(6));
    let second = service
        .sync(
            ws,
            &mdm,
            SyncRequest::new(SyncTrigger::Scheduled, Actor::Scheduler),
        )
        .await?;
    println!("\n== second sync: rename (G2), detach (G2), moved members (G3)");
    print_outcome(&second.result, &second.events);
    print_groups(&service, ws).await?;

    service.clock().advance(chrono::TimeDelta::hours(6));
    let third = service
        .sync(
            ws,
            &mdm,
            SyncRequest::new(SyncTrigger::Scheduled, Actor::Scheduler),
        )
        .await?;
    println!("\n== third sync, nothing changed in the MDM (G9)");
    print_outcome(&third.result, &third.events);
    let group_events = third
        .events
        .iter()
        .filter(|e| e.event.touches_groups())
        .count();
    println!("group or membership events: {group_events}");
    Ok(())
}

fn print_outcome(result: &SyncResult, events: &[mdmsync_core::EventEnvelope]) {
    match result {
        SyncResult::Succeeded { report } => println!(
            "succeeded: created {} renamed {} detached {} +{} -{} members, {} unmatched",
            report.created,
            report.renamed,
            report.detached,
            report.members_added,
            report.members_removed,
            report.unmatched_members
        ),
        other => println!("{other:?}"),
    }
    for e in events {
        println!("  {:<16} {}", e.event.event_type(), describe(&e.event));
    }
}

fn describe(e: &Event) -> String {
    match e {
        Event::GroupCreated { name, source, .. } => format!("{name:?} {source:?}"),
        Event::GroupRenamed { from, to, .. } => format!("{from:?} -> {to:?}"),
        Event::GroupDetached { mdm_group_id, .. } => {
            format!("MDM group {mdm_group_id} is gone; now manual")
        }
        Event::MemberAdded {
            group_id,
            device_id,
            via,
        } => format!("{device_id} -> {group_id} (MDM id {via:?})"),
        Event::MemberRemoved {
            group_id,
            device_id,
        } => format!("{device_id} <- {group_id}"),
        Event::SyncSucceeded { sync_id, .. } => format!("sync {sync_id}"),
        _ => String::new(),
    }
}

async fn print_groups<S, C, I>(
    service: &SyncService<S, C, I>,
    ws: WorkspaceId,
) -> Result<(), Box<dyn std::error::Error>>
where
    S: mdmsync_core::EventStore,
    C: mdmsync_core::Clock,
    I: mdmsync_core::IdGenerator,
{
    let state = service.load(ws).await?.state;
    let serials: BTreeMap<DeviceId, String> = state
        .devices()
        .iter()
        .map(|(id, d)| (*id, d.serial_number.clone().unwrap_or_default()))
        .collect();
    println!("groups:");
    for g in state.groups().values() {
        let members: Vec<&str> = g.members.iter().map(|d| serials[d].as_str()).collect();
        let source = match g.synced_key() {
            Some((p, id)) => format!("synced from {} group {id}", p.display_name()),
            None => "manual".into(),
        };
        println!("  {:<24} {:<30} {:?}", g.name, source, members);
    }
    Ok(())
}
