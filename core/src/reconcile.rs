//! Reconciliation: a snapshot against a workspace's synced groups, as a pure plan (G2–G11).
//!
//! The plan is computed in three steps — classify every MDM group and synced group (create,
//! keep, rename, detach, skip as excluded), name the groups that need a name (G4), diff the
//! memberships (G3) — and then gated by the safety thresholds (G11). Nothing here reads a clock
//! or mints a random id: new group ids are UUID v5 of (workspace, sync, provider, MDM id).

use crate::event::{
    DetachReason, Event, GroupSource, HoldReason, SafetyThresholds, SyncReport, SyncTrigger,
};
use crate::ids::{DeviceId, GroupId, MdmDeviceId, MdmGroupId, SyncId, derived_uuid};
use crate::provider::Provider;
use crate::snapshot::{Snapshot, ValidSnapshot};
use crate::workspace::{DomainError, Workspace, name_key};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashSet};

/// What a sync would do: the events to append, in order, and its report.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncPlan {
    /// The events, ending with `SyncSucceeded`, `SyncHeld` or `SyncFailed`.
    pub events: Vec<Event>,
    /// The report (also inside the last event, for succeeded and held syncs).
    pub report: SyncReport,
}

/// A group that needs a name this sync (created, or renamed in the MDM).
struct Naming<'a> {
    mdm_group_id: &'a MdmGroupId,
    mdm_name: &'a str,
    existing: Option<GroupId>,
}

/// The G4 candidates for an MDM name: the name, then `name (Provider)`, then
/// `name (Provider) 2`, `… 3`, …
fn name_candidates(mdm_name: &str, provider: Provider) -> impl Iterator<Item = String> + '_ {
    let base = mdm_name.trim().to_owned();
    let suffixed = format!("{base} ({})", provider.display_name());
    std::iter::once(base)
        .chain(std::iter::once(suffixed.clone()))
        .chain((2u64..).map(move |n| format!("{suffixed} {n}")))
}

/// Plans a sync of `snapshot` against `ws` (see the module docs). An invalid snapshot plans a
/// `SyncFailed` of kind `ServerError` and nothing else (G8).
pub fn plan_sync(
    ws: &Workspace,
    snapshot: &Snapshot,
    sync_id: SyncId,
    trigger: SyncTrigger,
    started_at: DateTime<Utc>,
    confirm: Option<SyncId>,
    now: DateTime<Utc>,
) -> Result<SyncPlan, DomainError> {
    let workspace_id = ws.id.ok_or(DomainError::NoWorkspace)?;
    ws.require_sync_allowed(snapshot.provider)?;
    if let Some(requested) = confirm {
        if ws.held.as_ref().map(|h| h.sync_id) != Some(requested) {
            let held = ws
                .held
                .as_ref()
                .map_or_else(|| "none".to_owned(), |h| h.sync_id.to_string());
            return Err(DomainError::NotHeld { requested, held });
        }
    }
    let snapshot = match snapshot.validate() {
        Ok(s) => s,
        Err(e) => {
            let event = Event::SyncFailed {
                sync_id,
                trigger,
                started_at,
                finished_at: now,
                kind: crate::error::ErrorKind::ServerError,
                message: format!(
                    "{}: invalid snapshot: {e}",
                    snapshot.provider.display_name()
                ),
            };
            return Ok(SyncPlan {
                events: vec![event],
                report: SyncReport::default(),
            });
        }
    };
    let provider = snapshot.provider();
    let mut report = SyncReport::default();

    // 1. Classify. MDM groups in id order; synced groups not in the snapshot are detached.
    let mut to_name: Vec<Naming<'_>> = Vec::new();
    let mut mirrored: Vec<(GroupId, &MdmGroupId)> = Vec::new();
    let mut seen_synced: HashSet<GroupId> = HashSet::new();
    for (&mdm_id, g) in snapshot.groups() {
        let key = (provider, mdm_id.clone());
        if ws.excluded.contains(&key) {
            report.excluded += 1;
            continue;
        }
        match ws.synced.get(&key) {
            Some(&gid) => {
                seen_synced.insert(gid);
                let current = &ws.groups[&gid];
                if current.mdm_name.as_deref() != Some(g.name) {
                    to_name.push(Naming {
                        mdm_group_id: mdm_id,
                        mdm_name: g.name,
                        existing: Some(gid),
                    });
                }
                mirrored.push((gid, mdm_id));
            }
            None => to_name.push(Naming {
                mdm_group_id: mdm_id,
                mdm_name: g.name,
                existing: None,
            }),
        }
    }
    let detached: Vec<(GroupId, Provider, MdmGroupId)> = ws
        .synced_groups()
        .filter(|(gid, _)| !seen_synced.contains(gid))
        .filter_map(|(gid, g)| g.synced_key().map(|(p, id)| (gid, p, id.clone())))
        .collect();

    // 2. G4 names. Every group not being (re)named keeps its name, detached ones included; a
    //    renamed group's old name is free for others. Then names are handed out in MDM id order.
    let renaming: HashSet<GroupId> = to_name.iter().filter_map(|n| n.existing).collect();
    let mut taken: HashSet<String> = ws
        .groups
        .iter()
        .filter(|(gid, _)| !renaming.contains(gid))
        .map(|(_, g)| name_key(&g.name))
        .collect();
    to_name.sort_by(|a, b| {
        a.mdm_group_id
            .naming_order()
            .cmp(&b.mdm_group_id.naming_order())
    });
    let mut group_events = Vec::new();
    let mut created: Vec<(GroupId, &MdmGroupId)> = Vec::new();
    for n in &to_name {
        let name = name_candidates(n.mdm_name, provider)
            .find(|c| !taken.contains(&name_key(c)))
            .unwrap_or_else(|| unreachable!("the numbered candidates never run out"));
        taken.insert(name_key(&name));
        match n.existing {
            Some(gid) => {
                let current = &ws.groups[&gid];
                report.renamed += 1;
                group_events.push(Event::GroupRenamed {
                    group_id: gid,
                    from: current.name.clone(),
                    to: name,
                    mdm_name: Some(n.mdm_name.to_owned()),
                });
            }
            None => {
                let gid = GroupId(derived_uuid(&[
                    workspace_id.as_uuid().as_bytes(),
                    sync_id.as_uuid().as_bytes(),
                    provider.slug().as_bytes(),
                    n.mdm_group_id.as_str().as_bytes(),
                ]));
                report.created += 1;
                group_events.push(Event::GroupCreated {
                    group_id: gid,
                    name,
                    source: GroupSource::Synced {
                        provider,
                        mdm_group_id: n.mdm_group_id.clone(),
                    },
                    mdm_name: Some(n.mdm_name.to_owned()),
                });
                created.push((gid, n.mdm_group_id));
            }
        }
    }

    // 3. G3 membership, for every group that mirrors an MDM group after this sync. Matched
    //    devices are collected as a sorted vector and merged against the current (sorted) set:
    //    no set is built per group.
    let mut member_events = Vec::new();
    let mut unmatched: HashSet<&MdmDeviceId> = HashSet::new();
    let mut largest_removal: Option<HoldReason> = None;
    let th = &ws.thresholds;
    let mut all: Vec<(GroupId, &MdmGroupId, bool)> =
        mirrored.iter().map(|(g, m)| (*g, *m, false)).collect();
    all.extend(created.iter().map(|(g, m)| (*g, *m, true)));
    all.sort_by(|a, b| a.1.naming_order().cmp(&b.1.naming_order()));
    let empty = BTreeSet::new();
    let mut matched: Vec<(DeviceId, &MdmDeviceId)> = Vec::new();
    let mut added: Vec<(DeviceId, &MdmDeviceId)> = Vec::new();
    for (gid, mdm_id, is_new) in all {
        let mdm_group = &snapshot.groups()[mdm_id];
        matched.clear();
        for &m in &mdm_group.members {
            match ws.by_mdm_device.get(m) {
                Some(devices) => matched.extend(devices.as_slice().iter().map(|d| (*d, m))),
                None => {
                    unmatched.insert(m);
                }
            }
        }
        matched.sort_unstable_by_key(|(d, _)| *d);
        matched.dedup_by_key(|(d, _)| *d);
        let current = if is_new {
            &empty
        } else {
            &ws.groups[&gid].members
        };
        // Merge two sorted sequences: in `current` only → removed; in `matched` only → added.
        added.clear();
        let mut removed = 0u64;
        let mut cur = current.iter().peekable();
        for &(d, via) in &matched {
            while let Some(&&c) = cur.peek() {
                if c < d {
                    removed += 1;
                    member_events.push(Event::MemberRemoved {
                        group_id: gid,
                        device_id: c,
                    });
                    cur.next();
                } else {
                    break;
                }
            }
            if cur.peek() == Some(&&d) {
                cur.next();
            } else {
                added.push((d, via));
            }
        }
        for &c in cur {
            removed += 1;
            member_events.push(Event::MemberRemoved {
                group_id: gid,
                device_id: c,
            });
        }
        report.members_added += added.len() as u64;
        member_events.extend(added.iter().map(|&(d, via)| Event::MemberAdded {
            group_id: gid,
            device_id: d,
            via: Some(via.clone()),
        }));
        report.members_removed += removed;
        let size = current.len() as u64;
        if largest_removal.is_none()
            && size >= th.min_group_size
            && exceeds(removed, size, th.max_removed_from_group_ratio)
        {
            largest_removal = Some(HoldReason::TooManyRemovedFromGroup {
                group_id: gid,
                name: ws.groups[&gid].name.clone(),
                removed,
                members: size,
            });
        }
    }
    report.unmatched_members = unmatched.len() as u64;
    report.detached = detached.len() as u64;

    // 4. G11: hold, unless this is the confirmation of the same snapshot.
    let hold = hold_reason(ws, th, &snapshot, &report, largest_removal);
    let finish = |mut report: SyncReport, events: Vec<Event>| -> SyncPlan {
        let mut events = events;
        match report.hold_reason.clone() {
            Some(reason) => events.push(Event::SyncHeld {
                sync_id,
                trigger,
                started_at,
                finished_at: now,
                reason,
                report: Box::new(report.clone()),
                snapshot_digest: snapshot.digest().to_owned(),
            }),
            None => {
                report.hold_reason = None;
                events.push(Event::SyncSucceeded {
                    sync_id,
                    trigger,
                    started_at,
                    finished_at: now,
                    report: Box::new(report.clone()),
                    snapshot_digest: snapshot.digest().to_owned(),
                })
            }
        }
        SyncPlan { events, report }
    };
    let mut events = Vec::new();
    if let Some(reason) = hold {
        let held = ws.held.as_ref();
        let confirmed =
            confirm.is_some() && held.is_some_and(|h| h.snapshot_digest == snapshot.digest());
        if !confirmed {
            report.hold_reason = Some(match (confirm, held) {
                (Some(held_sync), Some(_)) => HoldReason::SnapshotChangedSinceHold { held_sync },
                _ => reason,
            });
            return Ok(finish(report, events));
        }
        events.push(Event::SyncConfirmed {
            held_sync_id: held.map(|h| h.sync_id).unwrap_or(sync_id),
        });
    }
    for (group_id, provider, mdm_group_id) in detached {
        events.push(Event::GroupDetached {
            group_id,
            provider,
            mdm_group_id,
            reason: DetachReason::GoneFromMdm,
        });
    }
    events.extend(group_events);
    events.extend(member_events);
    Ok(finish(report, events))
}

/// `part / whole > ratio`, exactly (no float rounding for the integer cases).
fn exceeds(part: u64, whole: u64, ratio: f64) -> bool {
    whole > 0 && (part as f64) > ratio * (whole as f64)
}

fn hold_reason(
    ws: &Workspace,
    th: &SafetyThresholds,
    snapshot: &ValidSnapshot,
    report: &SyncReport,
    largest_removal: Option<HoldReason>,
) -> Option<HoldReason> {
    let synced_groups = ws.synced_groups().count() as u64;
    // "Always held": an MDM that suddenly returns nothing must not wipe groups, even with the
    // thresholds switched off.
    if snapshot.is_empty() && synced_groups > 0 {
        return Some(HoldReason::EmptySnapshot { synced_groups });
    }
    if !th.enabled {
        return None;
    }
    if synced_groups >= th.min_groups
        && exceeds(report.detached, synced_groups, th.max_detached_ratio)
    {
        return Some(HoldReason::TooManyDetached {
            detached: report.detached,
            synced_groups,
        });
    }
    let memberships: u64 = ws
        .synced_groups()
        .map(|(_, g)| g.members.len() as u64)
        .sum();
    if memberships >= th.min_memberships
        && exceeds(
            report.members_removed,
            memberships,
            th.max_removed_memberships_ratio,
        )
    {
        return Some(HoldReason::TooManyMembershipsRemoved {
            removed: report.members_removed,
            memberships,
        });
    }
    largest_removal
}
