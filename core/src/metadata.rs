//! Device metadata rules: which MDM record a serial means (M6) and what is recorded (M1, M4).

use crate::event::MdmMetadata;
use crate::ports::MdmDeviceRecord;

/// M6: of several MDM records with one serial, the most recently seen one (records never seen
/// come last; ties go to the greatest MDM id, so the choice is deterministic). Returns the
/// chosen record and how many others there were.
pub fn choose_record(records: &[MdmDeviceRecord]) -> Option<(&MdmDeviceRecord, u32)> {
    let chosen = records.iter().max_by(|a, b| {
        a.last_seen
            .cmp(&b.last_seen)
            .then_with(|| a.mdm_device_id.cmp(&b.mdm_device_id))
    })?;
    Some((chosen, records.len().saturating_sub(1) as u32))
}

/// M1 + M4: the metadata recorded for a chosen record.
pub fn metadata_from(record: &MdmDeviceRecord, console_url: Option<String>) -> MdmMetadata {
    MdmMetadata {
        mdm_device_id: record.mdm_device_id.clone(),
        mdm_user_id: record.user_id.clone(),
        mdm_display_name: record.display_name(),
        console_url,
    }
}

/// M3: whether a device matches a search by serial number or MDM display name
/// (case-insensitive substring).
pub fn matches_search(serial: Option<&str>, display_name: Option<&str>, query: &str) -> bool {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return true;
    }
    [serial, display_name]
        .into_iter()
        .flatten()
        .any(|s| s.to_lowercase().contains(&q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn rec(id: &str, seen: Option<i64>, user: Option<&str>) -> MdmDeviceRecord {
        MdmDeviceRecord {
            mdm_device_id: id.into(),
            serial_number: "C02X".into(),
            device_name: Some(format!("mac-{id}")),
            user_id: user.map(Into::into),
            user_name: user.map(|u| format!("User {u}")),
            last_seen: seen.map(|s| Utc.timestamp_opt(s, 0).unwrap()),
        }
    }

    #[test]
    fn m6_duplicate_serial_takes_the_most_recently_seen_and_reports_ambiguity() {
        let records = [
            rec("1", Some(100), None),
            rec("2", Some(300), None),
            rec("3", None, None),
        ];
        let (chosen, others) = choose_record(&records).unwrap();
        assert_eq!(chosen.mdm_device_id.as_str(), "2");
        assert_eq!(others, 2);
        assert!(choose_record(&[]).is_none());
    }

    #[test]
    fn m1_display_name_is_the_user_else_the_device() {
        assert_eq!(
            metadata_from(&rec("1", None, Some("7")), None)
                .mdm_display_name
                .as_deref(),
            Some("User 7")
        );
        assert_eq!(
            metadata_from(&rec("1", None, None), None)
                .mdm_display_name
                .as_deref(),
            Some("mac-1")
        );
    }

    #[test]
    fn m3_search_matches_serial_and_display_name() {
        assert!(matches_search(Some("C02ABC"), None, "02ab"));
        assert!(matches_search(Some("X"), Some("Ada Lovelace"), "lovelace"));
        assert!(!matches_search(Some("X"), Some("Ada"), "bob"));
    }
}
