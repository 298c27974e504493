//! A snapshot: everything one fetch got from the MDM. A snapshot is complete or it is not a
//! snapshot (P2): adapters return one only after every page of every listing arrived.
//!
//! # What an invalid snapshot is
//! [`Snapshot::validate`] rejects, as a whole:
//! - two groups with the same MDM group id;
//! - a group listing the same member twice (the symptom of a repeated page, P2);
//! - an empty group id or member id, or a group whose name is blank.
//!
//! An invalid snapshot is never reconciled: the sync fails with [`ErrorKind::ServerError`]
//! ("a response that is not the documented shape", E1) and nothing changes (G8).
//!
//! [`ErrorKind::ServerError`]: crate::error::ErrorKind::ServerError

use crate::ids::{MdmDeviceId, MdmGroupId};
use crate::provider::Provider;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Whether an MDM group's membership is computed by the MDM or kept by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// Membership computed from criteria (Jamf smart group, dynamic Entra group, Fleet dynamic label).
    Smart,
    /// Membership kept by hand.
    Static,
    /// The provider does not say (Iru tags, SimpleMDM assignment groups).
    Unknown,
}

/// One MDM group and its members, as fetched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdmGroup {
    /// The group's id in the MDM.
    pub id: MdmGroupId,
    /// The group's name in the MDM.
    pub name: String,
    /// Smart or static.
    pub kind: GroupKind,
    /// Member MDM device ids.
    pub members: Vec<MdmDeviceId>,
}

/// Everything one fetch got from the MDM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The provider it came from.
    pub provider: Provider,
    /// All groups, in any order.
    pub groups: Vec<MdmGroup>,
}

/// Why a snapshot is not one (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Two groups share an id.
    #[error(
        "the MDM listed group id {0} twice; the listing is inconsistent, so nothing was applied"
    )]
    DuplicateGroup(MdmGroupId),
    /// A group lists a member twice.
    #[error(
        "MDM group {group} lists device {member} twice (a repeated page?); nothing was applied"
    )]
    DuplicateMember {
        /// The group.
        group: MdmGroupId,
        /// The repeated member.
        member: MdmDeviceId,
    },
    /// An empty id.
    #[error("the MDM returned a group or member with an empty id; nothing was applied")]
    EmptyId,
    /// A blank group name.
    #[error("MDM group {0} has a blank name; nothing was applied")]
    BlankName(MdmGroupId),
}

/// A snapshot that passed [`Snapshot::validate`]: groups keyed and ordered by MDM id, members
/// sorted and unique. It borrows from the [`Snapshot`], so validating copies no id (a sync of
/// 500,000 memberships would otherwise clone 500,000 strings). Reconciliation only accepts
/// this type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidSnapshot<'a> {
    provider: Provider,
    groups: BTreeMap<&'a MdmGroupId, ValidGroup<'a>>,
    digest: String,
}

/// A group of a [`ValidSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidGroup<'a> {
    /// The MDM name, as sent.
    pub name: &'a str,
    /// Smart or static.
    pub kind: GroupKind,
    /// Members, sorted, each once.
    pub members: Vec<&'a MdmDeviceId>,
}

impl Snapshot {
    /// An empty snapshot of a provider.
    pub fn new(provider: Provider) -> Self {
        Self {
            provider,
            groups: Vec::new(),
        }
    }

    /// Adds a group (builder style, for tests and fakes).
    pub fn with_group<I, M>(mut self, id: impl Into<MdmGroupId>, name: &str, members: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: Into<MdmDeviceId>,
    {
        self.groups.push(MdmGroup {
            id: id.into(),
            name: name.to_owned(),
            kind: GroupKind::Static,
            members: members.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Checks the snapshot (see the module docs) and orders it, without copying ids.
    pub fn validate(&self) -> Result<ValidSnapshot<'_>, SnapshotError> {
        let mut groups = BTreeMap::new();
        for g in &self.groups {
            if g.id.as_str().is_empty() {
                return Err(SnapshotError::EmptyId);
            }
            if g.name.trim().is_empty() {
                return Err(SnapshotError::BlankName(g.id.clone()));
            }
            // Close to linear: MDMs list members in id order, and the sort finds such runs.
            let mut members: Vec<&MdmDeviceId> = g.members.iter().collect();
            members.sort_unstable();
            if members.first().is_some_and(|m| m.as_str().is_empty()) {
                return Err(SnapshotError::EmptyId);
            }
            if let Some(pair) = members.windows(2).find(|w| w[0] == w[1]) {
                return Err(SnapshotError::DuplicateMember {
                    group: g.id.clone(),
                    member: pair[0].clone(),
                });
            }
            let group = ValidGroup {
                name: &g.name,
                kind: g.kind,
                members,
            };
            if groups.insert(&g.id, group).is_some() {
                return Err(SnapshotError::DuplicateGroup(g.id.clone()));
            }
        }
        let digest = digest(self.provider, &groups);
        Ok(ValidSnapshot {
            provider: self.provider,
            groups,
            digest,
        })
    }
}

/// SHA-256 over the ordered content, so the same snapshot in any order has the same digest.
fn digest(provider: Provider, groups: &BTreeMap<&MdmGroupId, ValidGroup<'_>>) -> String {
    let mut h = Sha256::new();
    h.update(provider.slug().as_bytes());
    for (id, g) in groups {
        h.update([0xff]);
        h.update(id.as_str().as_bytes());
        h.update([0]);
        h.update(g.name.as_bytes());
        h.update([0]);
        for m in &g.members {
            h.update(m.as_str().as_bytes());
            h.update([1]);
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl<'a> ValidSnapshot<'a> {
    /// The provider it came from.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Groups by MDM id, in id order.
    pub fn groups(&self) -> &BTreeMap<&'a MdmGroupId, ValidGroup<'a>> {
        &self.groups
    }

    /// A content digest, independent of the order groups and members arrived in. A held sync
    /// (G11) is applied on confirmation only if the fresh snapshot has the same digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// True if the MDM returned no group at all.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_group_ids_make_a_snapshot_invalid() {
        let s = Snapshot::new(Provider::Jamf)
            .with_group("1", "A", ["d1"])
            .with_group("1", "B", ["d2"]);
        assert_eq!(
            s.validate().unwrap_err(),
            SnapshotError::DuplicateGroup("1".into())
        );
    }

    #[test]
    fn p2_a_member_listed_twice_makes_a_snapshot_invalid() {
        let s = Snapshot::new(Provider::Fleet).with_group("1", "A", ["d1", "d2", "d1"]);
        assert!(matches!(
            s.validate(),
            Err(SnapshotError::DuplicateMember { .. })
        ));
    }

    #[test]
    fn blank_names_and_empty_ids_are_invalid() {
        let s = Snapshot::new(Provider::Fleet).with_group("1", "  ", ["d1"]);
        assert!(matches!(s.validate(), Err(SnapshotError::BlankName(_))));
        let s = Snapshot::new(Provider::Fleet).with_group("1", "A", [""]);
        assert_eq!(s.validate().unwrap_err(), SnapshotError::EmptyId);
    }

    #[test]
    fn digest_ignores_order() {
        let a = Snapshot::new(Provider::Iru)
            .with_group("2", "B", ["x", "y"])
            .with_group("1", "A", ["z"]);
        let b = Snapshot::new(Provider::Iru)
            .with_group("1", "A", ["z"])
            .with_group("2", "B", ["y", "x"]);
        assert_eq!(
            a.validate().unwrap().digest(),
            b.validate().unwrap().digest()
        );
        let c = Snapshot::new(Provider::Iru).with_group("1", "A", ["z"]);
        assert_ne!(
            a.validate().unwrap().digest(),
            c.validate().unwrap().digest()
        );
    }
}
