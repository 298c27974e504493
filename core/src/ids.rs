//! Newtype identifiers. Product-side ids are UUIDs chosen by the caller; MDM-side ids are the
//! provider's own, normalised to strings (Jamf sends both `12` and `"12"` for the same computer).

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Wraps an existing UUID.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A workspace (tenant); also the id of its event stream.
    WorkspaceId
);
uuid_id!(
    /// A device known to the embedding product.
    DeviceId
);
uuid_id!(
    /// A device group, manual or synced.
    GroupId
);
uuid_id!(
    /// One sync run. Every event a sync appends carries it (G12).
    SyncId
);

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a provider id, trimming surrounding white space.
            pub fn new(id: impl Into<String>) -> Self {
                let id = id.into();
                let trimmed = id.trim();
                if trimmed.len() == id.len() { Self(id) } else { Self(trimmed.to_owned()) }
            }
            /// The id as the provider spells it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::new(s)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self::new(s)
            }
        }

        impl From<u64> for $name {
            fn from(n: u64) -> Self {
                Self(n.to_string())
            }
        }
    };
}

string_id!(
    /// A group's id in the MDM (Jamf computer group id, Iru tag UUID, Entra group GUID, …).
    MdmGroupId
);
string_id!(
    /// A device's id in the MDM: the key group membership is matched by (G3).
    MdmDeviceId
);
string_id!(
    /// The id of the user an MDM assigns to a device (M1).
    MdmUserId
);

impl MdmGroupId {
    /// The order G4 numbers colliding names in: numeric ids by value, then other ids by text.
    pub fn naming_order(&self) -> (u8, u128, &str) {
        match self.0.parse::<u128>() {
            Ok(n) => (0, n, self.0.as_str()),
            Err(_) => (1, 0, self.0.as_str()),
        }
    }
}

/// Deterministic id derivation for ids the core must mint itself (UUID v5 under a fixed
/// namespace), so that the same inputs always give the same events.
pub(crate) fn derived_uuid(parts: &[&[u8]]) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x6d64_6d73_796e_6300_8000_0000_0000_0001);
    let mut name = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for p in parts {
        name.extend_from_slice(p);
        name.push(0);
    }
    Uuid::new_v5(&NAMESPACE, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mdm_ids_are_trimmed_and_ints_normalise_to_strings() {
        assert_eq!(MdmDeviceId::new(" 12 "), MdmDeviceId::from(12u64));
        assert_eq!(MdmGroupId::from("7").as_str(), "7");
    }

    #[test]
    fn naming_order_is_numeric_for_numeric_ids() {
        let mut ids = [
            MdmGroupId::from("10"),
            MdmGroupId::from("9"),
            MdmGroupId::from("a"),
        ];
        ids.sort_by(|a, b| a.naming_order().cmp(&b.naming_order()));
        let got: Vec<_> = ids.iter().map(MdmGroupId::as_str).collect();
        assert_eq!(got, ["9", "10", "a"]);
    }
}
