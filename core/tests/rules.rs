//! One test per rule of spec.md (G, C, M), over the pure aggregate with the given/when/then
//! harness. Test names start with the rule they prove.

use mdmsync_core::testkit::{
    Given, connected_workspace, device, given, manual_group, mdm_device, sync_id, t0,
};
use mdmsync_core::{
    Command, DetachReason, DomainError, ErrorKind, Event, GroupId, GroupSource, HoldReason,
    MdmGroupId, Plan, Provider, SafetyThresholds, Snapshot, SyncTrigger, Workspace,
};

fn jamf(devices: u32) -> Given {
    given(connected_workspace(Provider::Jamf, devices))
}

fn snap() -> Snapshot {
    Snapshot::new(Provider::Jamf)
}

fn members(range: std::ops::Range<u32>) -> Vec<mdmsync_core::MdmDeviceId> {
    range.map(mdm_device).collect()
}

fn synced_id(ws: &Workspace, mdm: &str) -> GroupId {
    ws.synced_group(Provider::Jamf, &MdmGroupId::from(mdm))
        .expect("synced group")
}

fn name_of(ws: &Workspace, mdm: &str) -> String {
    ws.group(synced_id(ws, mdm)).unwrap().name.clone()
}

fn apply_snapshot(snapshot: Snapshot, confirm: Option<mdmsync_core::SyncId>) -> Command {
    Command::ApplySnapshot {
        snapshot,
        trigger: SyncTrigger::Manual,
        started_at: t0(),
        confirm,
    }
}

// ---------------------------------------------------------------- G1

#[test]
fn g1_free_plan_does_not_sync_groups() {
    let then = jamf(2)
        .and_command(Command::SetPlan { plan: Plan::Free })
        .when_synced(snap().with_group("1", "A", members(0..2)));
    assert_eq!(
        then.error(),
        &DomainError::PlanDoesNotSyncGroups(Plan::Free)
    );
}

#[test]
fn g1_enterprise_syncs_groups() {
    let then = jamf(2)
        .and_command(Command::SetPlan {
            plan: Plan::Enterprise,
        })
        .when_synced(snap().with_group("1", "A", members(0..2)));
    assert_eq!(then.state().groups().len(), 1);
}

// ---------------------------------------------------------------- G2

#[test]
fn g2_new_mdm_group_creates_a_synced_group_named_from_the_mdm() {
    let then = jamf(1).when_synced(snap().with_group("7", "Engineering", members(0..1)));
    let created: Vec<_> = then
        .events()
        .iter()
        .filter(|e| matches!(e, Event::GroupCreated { .. }))
        .collect();
    assert_eq!(created.len(), 1);
    let ws = then.state();
    let g = ws.group(synced_id(&ws, "7")).unwrap();
    assert_eq!(g.name, "Engineering");
    assert_eq!(
        g.source,
        GroupSource::Synced {
            provider: Provider::Jamf,
            mdm_group_id: "7".into()
        }
    );
}

#[test]
fn g2_changed_mdm_name_renames_the_same_group() {
    let g = jamf(1).and_synced(snap().with_group("7", "Eng", members(0..1)));
    let id_before = synced_id(&g.state, "7");
    let then = g.when_synced(snap().with_group("7", "Engineering", members(0..1)));
    assert!(then.events().iter().any(|e| matches!(e, Event::GroupRenamed { from, to, .. } if from == "Eng" && to == "Engineering")));
    let ws = then.state();
    assert_eq!(
        synced_id(&ws, "7"),
        id_before,
        "a rename keeps the group's id"
    );
    assert_eq!(name_of(&ws, "7"), "Engineering");
}

#[test]
fn g2_gone_mdm_group_is_detached_keeping_name_members_and_policies() {
    let g = jamf(3).and_synced(snap().with_group("1", "A", members(0..2)).with_group(
        "2",
        "B",
        members(2..3),
    ));
    let gid = synced_id(&g.state, "1");
    let g = g.and_command(Command::SetPolicy {
        group_id: gid,
        key: "wifi".into(),
        value: Some(serde_json::json!({"ssid": "corp"})),
    });
    let then = g.when_synced(snap().with_group("2", "B", members(2..3)));
    assert!(then.events().iter().any(|e| matches!(e,
        Event::GroupDetached { group_id, reason: DetachReason::GoneFromMdm, .. } if *group_id == gid)));
    assert!(
        !then
            .events()
            .iter()
            .any(|e| matches!(e, Event::MemberRemoved { .. } | Event::GroupDeleted { .. }))
    );
    let ws = then.state();
    let detached = ws.group(gid).unwrap();
    assert_eq!(detached.source, GroupSource::Manual);
    assert_eq!(detached.name, "A");
    assert_eq!(detached.members.len(), 2);
    assert_eq!(detached.policies["wifi"]["ssid"], "corp");
}

// ---------------------------------------------------------------- G3

#[test]
fn g3_members_are_matched_by_mdm_device_id_and_unmatched_are_counted() {
    let s = snap()
        .with_group("1", "A", ["m0", "m1", "unknown-1", "unknown-2"])
        .with_group("2", "B", ["unknown-1"]);
    let then = jamf(2).when_synced(s);
    let ws = then.state();
    let members: Vec<_> = ws
        .group(synced_id(&ws, "1"))
        .unwrap()
        .members
        .iter()
        .copied()
        .collect();
    assert_eq!(members, vec![device(0), device(1)]);
    let report = then.given.state.preview_report(then.events()).unwrap();
    assert_eq!(
        report.unmatched_members, 2,
        "distinct unmatched MDM device ids"
    );
    assert_eq!(report.members_added, 2);
}

#[test]
fn g3_m6_two_devices_with_one_mdm_id_both_join_and_leave_independently() {
    use mdmsync_core::MdmMetadata;
    let meta = |id: &str| MdmMetadata {
        mdm_device_id: id.into(),
        mdm_user_id: None,
        mdm_display_name: None,
        console_url: None,
    };
    // Devices 0 and 1 both resolve to MDM device m0 (a duplicated serial, M6).
    let g = jamf(2).and_command(Command::RecordDeviceMetadata {
        device_id: device(1),
        metadata: Some(meta("m0")),
        ambiguous_candidates: 1,
    });
    assert_eq!(
        g.state.devices_with_mdm_id(&mdm_device(0)),
        [device(0), device(1)]
    );
    let g = g.and_synced(snap().with_group("1", "A", ["m0"]));
    let gid = synced_id(&g.state, "1");
    assert_eq!(
        g.state.group(gid).unwrap().members,
        [device(0), device(1)].into()
    );
    // Device 1 is re-matched elsewhere: the next sync removes only it.
    let g = g.and_command(Command::RecordDeviceMetadata {
        device_id: device(1),
        metadata: Some(meta("m9")),
        ambiguous_candidates: 0,
    });
    assert_eq!(g.state.devices_with_mdm_id(&mdm_device(0)), [device(0)]);
    let ws = g.when_synced(snap().with_group("1", "A", ["m0"])).state();
    assert_eq!(ws.group(gid).unwrap().members, [device(0)].into());
}

#[test]
fn g3_membership_follows_the_mdm_both_ways() {
    let g = jamf(4).and_synced(snap().with_group("1", "A", members(0..3)));
    let then = g.when_synced(snap().with_group("1", "A", members(2..4)));
    let added = then
        .events()
        .iter()
        .filter(|e| matches!(e, Event::MemberAdded { .. }))
        .count();
    let removed = then
        .events()
        .iter()
        .filter(|e| matches!(e, Event::MemberRemoved { .. }))
        .count();
    assert_eq!((added, removed), (1, 2));
    let ws = then.state();
    assert_eq!(
        ws.group(synced_id(&ws, "1")).unwrap().members,
        [device(2), device(3)].into()
    );
}

#[test]
fn g3_member_added_records_the_mdm_id_it_matched_by() {
    let then = jamf(1).when_synced(snap().with_group("1", "A", members(0..1)));
    assert!(
        then.events()
            .iter()
            .any(|e| matches!(e, Event::MemberAdded { via: Some(v), .. } if *v == mdm_device(0)))
    );
}

// ---------------------------------------------------------------- G4

#[test]
fn g4_conflicting_name_gets_provider_suffix() {
    let g = jamf(0).and_command(Command::CreateGroup {
        group_id: manual_group(1),
        name: "Engineering".into(),
    });
    let ws = g
        .when_synced(snap().with_group("1", "Engineering", Vec::<&str>::new()))
        .state();
    assert_eq!(name_of(&ws, "1"), "Engineering (Jamf)");
    assert_eq!(
        ws.group(manual_group(1)).unwrap().name,
        "Engineering",
        "manual groups are never renamed by a sync"
    );
}

#[test]
fn g4_names_compare_case_insensitively_after_trimming() {
    let g = jamf(0).and_command(Command::CreateGroup {
        group_id: manual_group(1),
        name: "engineering".into(),
    });
    let ws = g
        .when_synced(snap().with_group("1", "  ENGINEERING ", Vec::<&str>::new()))
        .state();
    assert_eq!(name_of(&ws, "1"), "ENGINEERING (Jamf)");
}

#[test]
fn g4_taken_suffix_gets_numbered_in_mdm_id_order() {
    let g = jamf(0)
        .and_command(Command::CreateGroup {
            group_id: manual_group(1),
            name: "Eng".into(),
        })
        .and_command(Command::CreateGroup {
            group_id: manual_group(2),
            name: "Eng (Jamf)".into(),
        });
    // Ids 10 and 9: numeric order gives 9 the first free name.
    let ws = g
        .when_synced(
            snap()
                .with_group("10", "Eng", Vec::<&str>::new())
                .with_group("9", "eng", Vec::<&str>::new()),
        )
        .state();
    assert_eq!(name_of(&ws, "9"), "eng (Jamf) 2");
    assert_eq!(name_of(&ws, "10"), "Eng (Jamf) 3");
}

#[test]
fn g4_two_new_mdm_groups_with_one_name_the_lower_id_keeps_it() {
    let ws = jamf(0)
        .when_synced(
            snap()
                .with_group("2", "Sales", Vec::<&str>::new())
                .with_group("1", "Sales", Vec::<&str>::new()),
        )
        .state();
    assert_eq!(name_of(&ws, "1"), "Sales");
    assert_eq!(name_of(&ws, "2"), "Sales (Jamf)");
}

#[test]
fn g4_names_do_not_flip_when_the_conflict_goes_away() {
    let g = jamf(0)
        .and_command(Command::CreateGroup {
            group_id: manual_group(1),
            name: "Eng".into(),
        })
        .and_synced(snap().with_group("1", "Eng", Vec::<&str>::new()))
        .and_command(Command::DeleteGroup {
            group_id: manual_group(1),
        });
    let then = g.when_synced(snap().with_group("1", "Eng", Vec::<&str>::new()));
    assert!(
        then.group_events().is_empty(),
        "no rename back to the bare name"
    );
    assert_eq!(name_of(&then.state(), "1"), "Eng (Jamf)");
}

#[test]
fn g4_a_renamed_group_frees_its_old_name_in_the_same_sync() {
    let g = jamf(0).and_synced(
        snap()
            .with_group("1", "Sales", Vec::<&str>::new())
            .with_group("2", "Marketing", Vec::<&str>::new()),
    );
    // Swap the names in the MDM.
    let ws = g
        .when_synced(
            snap()
                .with_group("1", "Marketing", Vec::<&str>::new())
                .with_group("2", "Sales", Vec::<&str>::new()),
        )
        .state();
    assert_eq!(name_of(&ws, "1"), "Marketing");
    assert_eq!(name_of(&ws, "2"), "Sales");
}

#[test]
fn g4_manual_group_names_are_unique_too() {
    let g = jamf(0).and_synced(snap().with_group("1", "Ops", Vec::<&str>::new()));
    let then = g.when(Command::CreateGroup {
        group_id: manual_group(1),
        name: " ops ".into(),
    });
    assert_eq!(then.error(), &DomainError::NameTaken { name: "ops".into() });
}

// ---------------------------------------------------------------- G5

#[test]
fn g5_synced_group_name_and_members_are_read_only() {
    let g = jamf(2).and_synced(snap().with_group("1", "A", members(0..1)));
    let gid = synced_id(&g.state, "1");
    for cmd in [
        Command::RenameGroup {
            group_id: gid,
            name: "B".into(),
        },
        Command::AddMembers {
            group_id: gid,
            device_ids: vec![device(1)],
        },
        Command::RemoveMembers {
            group_id: gid,
            device_ids: vec![device(0)],
        },
    ] {
        let then = g.clone().when(cmd);
        let err = then.error();
        assert!(
            matches!(
                err,
                DomainError::ManagedByProvider {
                    provider: Provider::Jamf,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("managed by Jamf"), "{err}");
    }
}

#[test]
fn g5_synced_group_policies_are_editable_and_the_group_deletable() {
    let g = jamf(1).and_synced(snap().with_group("1", "A", members(0..1)));
    let gid = synced_id(&g.state, "1");
    let then = g.clone().when(Command::SetPolicy {
        group_id: gid,
        key: "k".into(),
        value: Some(1.into()),
    });
    assert_eq!(then.events().len(), 1);
    let then = g.when(Command::DeleteGroup { group_id: gid });
    assert!(then.state().group(gid).is_none());
}

#[test]
fn g5_manual_groups_are_fully_editable() {
    let g = jamf(2).and_command(Command::CreateGroup {
        group_id: manual_group(1),
        name: "Mine".into(),
    });
    let g = g.and_command(Command::AddMembers {
        group_id: manual_group(1),
        device_ids: vec![device(0), device(1), device(0)],
    });
    assert_eq!(g.state.group(manual_group(1)).unwrap().members.len(), 2);
    let then = g.when(Command::RenameGroup {
        group_id: manual_group(1),
        name: "Ours".into(),
    });
    assert_eq!(then.state().group(manual_group(1)).unwrap().name, "Ours");
}

// ---------------------------------------------------------------- G6

#[test]
fn g6_deleted_synced_group_is_excluded_and_not_recreated() {
    let s = snap().with_group("1", "A", members(0..1));
    let g = jamf(1).and_synced(s.clone());
    let gid = synced_id(&g.state, "1");
    let g = g.and_command(Command::DeleteGroup { group_id: gid });
    assert!(g.state.excluded().contains(&(Provider::Jamf, "1".into())));
    let then = g.when_synced(s);
    assert!(then.group_events().is_empty());
    assert_eq!(
        then.given
            .state
            .preview_report(then.events())
            .unwrap()
            .excluded,
        1
    );
}

#[test]
fn g6_included_group_is_created_anew_by_the_next_sync() {
    let s = snap().with_group("1", "A", members(0..1));
    let g = jamf(1).and_synced(s.clone());
    let old = synced_id(&g.state, "1");
    let g = g
        .and_command(Command::DeleteGroup { group_id: old })
        .and_command(Command::IncludeGroup {
            mdm_group_id: "1".into(),
        });
    let ws = g.when_synced(s).state();
    let new = synced_id(&ws, "1");
    assert_ne!(new, old);
    assert_eq!(ws.group(new).unwrap().members.len(), 1);
}

#[test]
fn g6_including_a_group_that_is_not_excluded_is_refused() {
    let then = jamf(0).when(Command::IncludeGroup {
        mdm_group_id: "5".into(),
    });
    assert_eq!(then.error(), &DomainError::NotExcluded("5".into()));
}

// ---------------------------------------------------------------- G7

#[test]
fn g7_detached_group_is_never_touched_again_and_a_returning_mdm_group_is_new() {
    let g = jamf(3)
        .and_synced(
            snap()
                .with_group("1", "A", members(0..2))
                .with_group("2", "B", members(2..3)),
        )
        .and_synced(snap().with_group("2", "B", members(2..3)));
    let detached = g.state.group_named("A").unwrap();
    let before = g.state.group(detached).unwrap().clone();
    let then = g.when_synced(snap().with_group("1", "A", members(2..3)).with_group(
        "2",
        "B",
        members(2..3),
    ));
    let ws = then.state();
    assert_eq!(
        ws.group(detached).unwrap(),
        &before,
        "detached group untouched"
    );
    let new = synced_id(&ws, "1");
    assert_ne!(new, detached);
    assert_eq!(
        ws.group(new).unwrap().name,
        "A (Jamf)",
        "G4 applies against the detached group's name"
    );
}

// ---------------------------------------------------------------- G8

#[test]
fn g8_failed_sync_records_only_the_failure() {
    let g = jamf(2).and_synced(snap().with_group("1", "A", members(0..2)));
    let then = g.when(Command::RecordSyncFailure {
        trigger: SyncTrigger::Scheduled,
        started_at: t0(),
        kind: ErrorKind::Unauthorized,
        message: "Jamf: list computer groups: HTTP 401".into(),
    });
    assert_eq!(then.events().len(), 1);
    assert!(matches!(
        then.events()[0],
        Event::SyncFailed {
            kind: ErrorKind::Unauthorized,
            ..
        }
    ));
    let ws = then.state();
    assert_eq!(ws.groups(), then.given.state.groups());
    assert_eq!(ws.last_failure().unwrap().kind, ErrorKind::Unauthorized);
}

#[test]
fn g8_failure_is_shown_until_the_next_successful_sync() {
    let s = snap().with_group("1", "A", members(0..1));
    let g = jamf(1).and_command(Command::RecordSyncFailure {
        trigger: SyncTrigger::Scheduled,
        started_at: t0(),
        kind: ErrorKind::ServerError,
        message: "boom".into(),
    });
    assert!(g.state.last_failure().is_some());
    let g = g.and_synced(s);
    assert!(g.state.last_failure().is_none());
}

#[test]
fn g8_invalid_snapshot_fails_the_sync_as_a_server_error() {
    let g = jamf(2).and_synced(snap().with_group("1", "A", members(0..2)));
    let then = g.when_synced(snap().with_group("1", "A", ["m0", "m0"]));
    assert!(then.group_events().is_empty());
    assert!(
        matches!(&then.events()[0], Event::SyncFailed { kind: ErrorKind::ServerError, message, .. } if message.contains("twice"))
    );
}

// ---------------------------------------------------------------- G9

#[test]
fn g9_unchanged_snapshot_emits_no_group_or_membership_event() {
    let s = snap()
        .with_group("1", "A", members(0..3))
        .with_group("2", "B", ["m1", "nobody"]);
    let then = jamf(3).and_synced(s.clone()).when_synced(s);
    assert!(then.group_events().is_empty());
    assert!(matches!(then.events(), [Event::SyncSucceeded { .. }]));
}

// ---------------------------------------------------------------- G11

fn big_workspace(groups: u32, per_group: u32) -> (Given, Snapshot) {
    let mut s = snap();
    for g in 0..groups {
        s = s.with_group(
            u64::from(g),
            &format!("G{g}"),
            ((g * per_group)..((g + 1) * per_group)).map(mdm_device),
        );
    }
    (jamf(groups * per_group).and_synced(s.clone()), s)
}

fn keep_groups(s: &Snapshot, n: usize) -> Snapshot {
    Snapshot {
        provider: s.provider,
        groups: s.groups[..n].to_vec(),
    }
}

#[test]
fn g11_detaching_more_than_half_of_synced_groups_is_held() {
    let (g, s) = big_workspace(4, 1);
    let then = g.clone().when_synced(keep_groups(&s, 1));
    assert!(
        then.group_events().is_empty(),
        "a held sync changes nothing"
    );
    assert!(matches!(
        then.events(),
        [Event::SyncHeld {
            reason: HoldReason::TooManyDetached {
                detached: 3,
                synced_groups: 4
            },
            ..
        }]
    ));
    // Exactly half is not "more than half".
    let then = g.when_synced(keep_groups(&s, 2));
    assert!(matches!(
        then.events().last(),
        Some(Event::SyncSucceeded { .. })
    ));
}

#[test]
fn g11_detach_threshold_needs_at_least_four_synced_groups() {
    let (g, s) = big_workspace(3, 1);
    let then = g.when_synced(keep_groups(&s, 1));
    assert!(matches!(
        then.events().last(),
        Some(Event::SyncSucceeded { .. })
    ));
}

#[test]
fn g11_removing_more_than_half_of_all_memberships_is_held() {
    let (g, s) = big_workspace(2, 60); // 120 memberships
    let mut shrunk = s.clone();
    for group in &mut shrunk.groups {
        group.members.truncate(29); // removes 62 of 120
    }
    let then = g.clone().when_synced(shrunk);
    assert!(matches!(
        then.events(),
        [Event::SyncHeld {
            reason: HoldReason::TooManyMembershipsRemoved {
                removed: 62,
                memberships: 120
            },
            ..
        }]
    ));
    let mut half = s;
    for group in &mut half.groups {
        group.members.truncate(30); // removes exactly 60: not more than half
    }
    assert!(matches!(
        g.when_synced(half).events().last(),
        Some(Event::SyncSucceeded { .. })
    ));
}

#[test]
fn g11_membership_threshold_needs_at_least_100_memberships() {
    let (g, s) = big_workspace(2, 49);
    let mut emptied = s;
    for group in &mut emptied.groups {
        group.members.clear();
    }
    assert!(matches!(
        g.when_synced(emptied).events().last(),
        Some(Event::SyncSucceeded { .. })
    ));
}

#[test]
fn g11_removing_more_than_30_percent_of_a_large_group_is_held() {
    let (g, s) = big_workspace(1, 200);
    let mut cut = s.clone();
    cut.groups[0].members.truncate(139); // removes 61 of 200 (30.5 %)
    let then = g.clone().when_synced(cut);
    assert!(matches!(
        then.events(),
        [Event::SyncHeld {
            reason: HoldReason::TooManyRemovedFromGroup {
                removed: 61,
                members: 200,
                ..
            },
            ..
        }]
    ));
    let mut ok = s;
    ok.groups[0].members.truncate(140); // exactly 30 %
    assert!(matches!(
        g.when_synced(ok).events().last(),
        Some(Event::SyncSucceeded { .. })
    ));
}

#[test]
fn g11_empty_snapshot_is_always_held_even_with_thresholds_off() {
    let (g, _) = big_workspace(1, 1);
    let off = SafetyThresholds {
        enabled: false,
        ..SafetyThresholds::default()
    };
    let then = g
        .and_command(Command::SetSafetyThresholds { thresholds: off })
        .when_synced(snap());
    assert!(matches!(
        then.events(),
        [Event::SyncHeld {
            reason: HoldReason::EmptySnapshot { synced_groups: 1 },
            ..
        }]
    ));
}

#[test]
fn g11_thresholds_can_be_switched_off_per_workspace() {
    let (g, s) = big_workspace(4, 1);
    let off = SafetyThresholds {
        enabled: false,
        ..SafetyThresholds::default()
    };
    let then = g
        .and_command(Command::SetSafetyThresholds { thresholds: off })
        .when_synced(keep_groups(&s, 1));
    assert!(matches!(
        then.events().last(),
        Some(Event::SyncSucceeded { .. })
    ));
}

#[test]
fn g11_confirming_the_held_sync_applies_the_same_snapshot() {
    let (g, s) = big_workspace(4, 1);
    let then = g.when_synced(keep_groups(&s, 1));
    let held = then.state().held().unwrap().sync_id;
    let g = then.then_given();
    let then = g.when(apply_snapshot(keep_groups(&s, 1), Some(held)));
    assert!(
        matches!(then.events().first(), Some(Event::SyncConfirmed { held_sync_id }) if *held_sync_id == held)
    );
    assert_eq!(
        then.events()
            .iter()
            .filter(|e| matches!(e, Event::GroupDetached { .. }))
            .count(),
        3
    );
    assert!(then.state().held().is_none());
}

#[test]
fn g11_confirmation_of_a_changed_snapshot_is_a_new_hold() {
    let (g, s) = big_workspace(4, 1);
    let g = g.when_synced(keep_groups(&s, 1)).then_given();
    let held = g.state.held().unwrap().sync_id;
    let then = g.when(apply_snapshot(keep_groups(&s, 0), Some(held)));
    assert!(
        matches!(then.events(), [Event::SyncHeld { reason: HoldReason::SnapshotChangedSinceHold { held_sync }, .. }] if *held_sync == held)
    );
    assert!(then.group_events().is_empty());
}

#[test]
fn g11_confirming_a_sync_that_is_not_held_is_refused() {
    let (g, s) = big_workspace(4, 1);
    let then = g.when(apply_snapshot(s, Some(sync_id(99))));
    assert!(matches!(then.error(), DomainError::NotHeld { .. }));
}

// ---------------------------------------------------------------- C3 / C4

#[test]
fn c4_changing_credentials_clears_every_devices_metadata() {
    let then = jamf(3).when(Command::Connect {
        provider: Provider::Jamf,
        settings: Default::default(),
    });
    assert!(matches!(then.events()[0], Event::CredentialsChanged { .. }));
    let cleared = then
        .events()
        .iter()
        .filter(|e| matches!(e, Event::DeviceMetadataCleared { .. }))
        .count();
    assert_eq!(cleared, 3);
    assert!(
        then.state()
            .devices()
            .values()
            .all(|d| d.metadata.is_none() && d.metadata_checked_at.is_none())
    );
}

#[test]
fn c3_changing_provider_detaches_the_old_providers_groups() {
    let g = jamf(2).and_synced(snap().with_group("1", "A", members(0..2)));
    let gid = synced_id(&g.state, "1");
    let then = g.when(Command::Connect {
        provider: Provider::Intune,
        settings: Default::default(),
    });
    assert!(matches!(
        then.events()[0],
        Event::ProviderConnected {
            provider: Provider::Intune,
            previous: Some(Provider::Jamf),
            ..
        }
    ));
    let ws = then.state();
    assert_eq!(ws.group(gid).unwrap().source, GroupSource::Manual);
    assert_eq!(ws.group(gid).unwrap().members.len(), 2);
    assert_eq!(ws.connection().unwrap().provider, Provider::Intune);
}

#[test]
fn snapshot_of_another_provider_is_refused() {
    let then = jamf(0).when_synced(Snapshot::new(Provider::Fleet));
    assert!(matches!(then.error(), DomainError::ProviderMismatch { .. }));
}

// ---------------------------------------------------------------- M1 / M6

#[test]
fn m1_metadata_recorded_and_not_found_clears_it() {
    let g = jamf(1);
    let then = g.clone().when(Command::RecordDeviceMetadata {
        device_id: device(0),
        metadata: None,
        ambiguous_candidates: 0,
    });
    let ws = then.state();
    let d = &ws.devices()[&device(0)];
    assert!(d.metadata.is_none());
    assert!(
        d.metadata_checked_at.is_some(),
        "the check is recorded so M2 waits"
    );
    assert!(
        ws.devices_with_mdm_id(&mdm_device(0)).is_empty(),
        "G3 no longer matches it"
    );
}

#[test]
fn m6_device_without_serial_is_registered_without_one() {
    let then = jamf(0).when(Command::RegisterDevice {
        device_id: device(5),
        serial_number: Some("  ".into()),
        name: None,
    });
    assert_eq!(then.state().devices()[&device(5)].serial_number, None);
}
