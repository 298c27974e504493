//! How each provider's id forms are derived from a scenario's neutral ids.
//!
//! A [`Scenario`](crate::Scenario) names devices and groups by a neutral positive integer (the
//! *sim id*) and users by a free string. Every provider module derives its own id forms from
//! them, deterministically, so a test can compute what an adapter should report:
//!
//! | provider | device id | group id | user id |
//! |---|---|---|---|
//! | Jamf | computer id = sim id as a decimal string (`"17"`; int in smart membership and Classic); `general.managementId` = [`jamf_management_id`] | sim id as a string (`"3"`) | `userAndLocation.username` = the user's `id` |
//! | Iru | `device_id` = [`iru_device_id`] (UUID) | tag id = [`iru_tag_id`] (UUID) | [`iru_user_id`] (UUID) |
//! | SimpleMDM | sim id (int) | sim id (int) | none (SimpleMDM has no assigned user) |
//! | Fleet | host `id` = sim id (int); host `uuid` = [`fleet_host_uuid`] | label id = [`fleet_label_id`] (sim id + 100; builtin labels are 1–6) | `idp_id` = [`fleet_idp_id`] |
//! | JumpCloud | system id = [`jumpcloud_system_id`] (24 hex) | [`jumpcloud_group_id`] (24 hex) | systemuser `_id` = [`jumpcloud_user_id`] (24 hex) |
//! | Intune | managed device `id` = [`intune_managed_device_id`]; Entra `deviceId` = `azureADDeviceId` = [`intune_entra_device_id`] (zero GUID for kiosk devices); Entra object `id` = [`intune_entra_object_id`] | [`intune_group_id`] (GUID) | `userId` = [`intune_user_id`] (GUID) |
//!
//! [`device_id`] gives the id an adapter should report as the MDM device id (what
//! [`Scenario::expected_snapshot`](crate::Scenario::expected_snapshot) lists as members): the
//! Jamf computer id, Iru `device_id`, SimpleMDM id, Fleet host id, JumpCloud system id, and for
//! Intune the managed device `id` (needed for force sync and the console link; adapters join the
//! Entra `deviceId` of group members to `managedDevice.azureADDeviceId` to find it).

use mdmsync_core::Provider;
use uuid::Uuid;

/// The namespace of every UUID the simulator derives (UUID v5).
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6d64_6d73_696d_4000_8000_5f5f_5f5f_5f5f);

/// The all-zero GUID Intune reports as `azureADDeviceId` for devices not registered in Entra.
pub const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// A random UUID (request ids in error bodies).
pub(crate) fn random_uuid() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

fn v5(kind: &str, key: &str) -> String {
    Uuid::new_v5(&NAMESPACE, format!("{kind}:{key}").as_bytes()).to_string()
}

/// FNV-1a, 64 bit: a stable hash for string keys (user ids) where an integer is needed.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Jamf `general.managementId` (a UUID; blank push takes it).
pub fn jamf_management_id(device: u64) -> String {
    v5("jamf-management", &device.to_string())
}

/// Iru `device_id` (UUID).
pub fn iru_device_id(device: u64) -> String {
    v5("iru-device", &device.to_string())
}

/// Iru tag id (UUID).
pub fn iru_tag_id(group: u64) -> String {
    v5("iru-tag", &group.to_string())
}

/// Iru user id (UUID).
pub fn iru_user_id(user: &str) -> String {
    v5("iru-user", user)
}

/// Fleet host `uuid` (hardware UUID, upper case as Fleet shows Apple hosts).
pub fn fleet_host_uuid(device: u64) -> String {
    v5("fleet-host", &device.to_string()).to_uppercase()
}

/// Fleet label id of a scenario group: sim id + 100 (ids 1–6 are the builtin labels).
pub fn fleet_label_id(group: u64) -> u64 {
    group + 100
}

/// Fleet `end_users[].idp_id`.
pub fn fleet_idp_id(user: &str) -> String {
    v5("fleet-idp", user)
}

/// JumpCloud system id (`_id` in v1, `id` in v2), 24 hex digits.
pub fn jumpcloud_system_id(device: u64) -> String {
    format!("5f3a1c00{device:016x}")
}

/// JumpCloud system group id, 24 hex digits.
pub fn jumpcloud_group_id(group: u64) -> String {
    format!("5f3a1c01{group:016x}")
}

/// JumpCloud system user `_id`, 24 hex digits.
pub fn jumpcloud_user_id(user: &str) -> String {
    format!("5f3a1c02{:016x}", fnv(user))
}

/// Intune managed device `id` (GUID).
pub fn intune_managed_device_id(device: u64) -> String {
    v5("intune-managed-device", &device.to_string())
}

/// Entra `device.deviceId` (GUID) = `managedDevice.azureADDeviceId` of a registered device.
pub fn intune_entra_device_id(device: u64) -> String {
    v5("entra-device-id", &device.to_string())
}

/// Entra `device.id` (directory object id, GUID).
pub fn intune_entra_object_id(device: u64) -> String {
    v5("entra-object-id", &device.to_string())
}

/// Entra group id (GUID).
pub fn intune_group_id(group: u64) -> String {
    v5("entra-group", &group.to_string())
}

/// Entra user object id (GUID), `managedDevice.userId`.
pub fn intune_user_id(user: &str) -> String {
    v5("entra-user", user)
}

/// The MDM device id an adapter should report for a device (see the module docs).
pub fn device_id(provider: Provider, device: u64) -> String {
    match provider {
        Provider::Jamf | Provider::SimpleMdm | Provider::Fleet => device.to_string(),
        Provider::Iru => iru_device_id(device),
        Provider::JumpCloud => jumpcloud_system_id(device),
        Provider::Intune => intune_managed_device_id(device),
    }
}

/// The MDM group id an adapter should report for a group.
pub fn group_id(provider: Provider, group: u64) -> String {
    match provider {
        Provider::Jamf | Provider::SimpleMdm => group.to_string(),
        Provider::Iru => iru_tag_id(group),
        Provider::Fleet => fleet_label_id(group).to_string(),
        Provider::JumpCloud => jumpcloud_group_id(group),
        Provider::Intune => intune_group_id(group),
    }
}

/// The MDM user id an adapter should report for a user, if the provider has one.
pub fn user_id(provider: Provider, user: &str) -> Option<String> {
    match provider {
        Provider::Jamf => Some(user.to_owned()),
        Provider::Iru => Some(iru_user_id(user)),
        Provider::SimpleMdm => None,
        Provider::Fleet => Some(fleet_idp_id(user)),
        Provider::JumpCloud => Some(jumpcloud_user_id(user)),
        Provider::Intune => Some(intune_user_id(user)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_forms_have_the_providers_shapes() {
        assert_eq!(jumpcloud_system_id(7).len(), 24);
        assert_eq!(jumpcloud_user_id("alice").len(), 24);
        assert_eq!(iru_device_id(1), iru_device_id(1));
        assert_ne!(iru_device_id(1), iru_device_id(2));
        assert!(Uuid::parse_str(&intune_entra_device_id(3)).is_ok());
        assert_eq!(device_id(Provider::Jamf, 12), "12");
        assert_eq!(group_id(Provider::Fleet, 1), "101");
    }
}
