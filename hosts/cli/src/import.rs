//! Reading device lists (`devices import`) and credential files (`connect`).
//!
//! Devices: CSV with a header naming the columns `serial_number` (required) and `name`
//! (optional), in any order, RFC 4180 quoting; or a JSON array of
//! `{"serial_number": …, "name": …}`. An empty serial number is a device without one (M6).
//!
//! Credentials: a JSON object of strings, or `KEY=VALUE` lines with `#` comments. Error
//! messages name lines and keys, never values.

use crate::output::CliError;
use serde::Deserialize;

/// One device row of an import file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInput {
    /// The serial number; `None` (or blank) for a device without one.
    #[serde(default)]
    pub serial_number: Option<String>,
    /// The name in the product.
    #[serde(default)]
    pub name: Option<String>,
}

fn blank_to_none(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Parses a device list: JSON when the text starts with `[`, CSV otherwise.
pub fn parse_devices(text: &str) -> Result<Vec<DeviceInput>, CliError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rows = if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<DeviceInput>>(text).map_err(|e| {
            CliError::Failed(format!(
                "the device list is not a JSON array of {{\"serial_number\", \"name\"}} objects: {e}"
            ))
        })?
    } else {
        parse_devices_csv(text)?
    };
    Ok(rows
        .into_iter()
        .map(|d| DeviceInput {
            serial_number: blank_to_none(d.serial_number),
            name: blank_to_none(d.name),
        })
        .collect())
}

fn parse_devices_csv(text: &str) -> Result<Vec<DeviceInput>, CliError> {
    let records = parse_csv(text)?;
    let mut records = records
        .into_iter()
        .filter(|(_, r)| !(r.len() == 1 && r[0].trim().is_empty()));
    let Some((_, header)) = records.next() else {
        return Err(CliError::Failed(
            "the device list is empty; give a CSV with the header `serial_number,name` or a JSON array".into(),
        ));
    };
    let mut serial_col = None;
    let mut name_col = None;
    for (i, h) in header.iter().enumerate() {
        match h.trim().to_ascii_lowercase().as_str() {
            "serial_number" => serial_col = Some(i),
            "name" => name_col = Some(i),
            other => {
                return Err(CliError::Failed(format!(
                    "unknown CSV column {other:?}; the header is `serial_number[,name]`"
                )));
            }
        }
    }
    let Some(serial_col) = serial_col else {
        return Err(CliError::Failed(
            "the CSV header has no `serial_number` column; the first line must be `serial_number[,name]`".into(),
        ));
    };
    let mut out = Vec::new();
    for (line, r) in records {
        if r.len() > header.len() {
            return Err(CliError::Failed(format!(
                "line {line} has {} fields but the header has {}; quote names that contain commas",
                r.len(),
                header.len()
            )));
        }
        out.push(DeviceInput {
            serial_number: r.get(serial_col).cloned(),
            name: name_col.and_then(|c| r.get(c).cloned()),
        });
    }
    Ok(out)
}

/// RFC 4180 CSV: records with their 1-based starting line numbers.
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, CliError> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut start_line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.trim().is_empty() => {
                field.clear();
                in_quotes = true;
            }
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push((start_line, std::mem::take(&mut record)));
                line += 1;
                start_line = line;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(CliError::Failed(format!(
            "a quoted field starting on line {start_line} is never closed"
        )));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push((start_line, record));
    }
    Ok(records)
}

/// Parses a credentials file: a JSON object of strings, or `KEY=VALUE` lines.
pub fn parse_credentials_file(text: &str) -> Result<Vec<(String, String)>, CliError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| {
                // serde's message names a line and column, never the value.
                CliError::Failed(format!(
                    "the credentials file is not a JSON object: {}",
                    e.classify_message()
                ))
            })?;
        return map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                serde_json::Value::Null => Ok((k, String::new())),
                _ => Err(CliError::Failed(format!(
                    "credential field `{k}` must be a string in the credentials file"
                ))),
            })
            .collect();
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        out.push(parse_pair(l).map_err(|e| CliError::Failed(format!("line {}: {e}", i + 1)))?);
    }
    Ok(out)
}

/// One `KEY=VALUE` (from `--credential` or a credentials file). The error never shows the value.
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            Ok((k.trim().to_ascii_lowercase(), v.to_owned()))
        }
        _ => Err(
            "expected KEY=VALUE (e.g. client_id=abc); the value was not echoed, it may be secret"
                .to_owned(),
        ),
    }
}

/// serde_json's message without the input excerpt (it has none, but be explicit: category,
/// line and column only).
trait ClassifyMessage {
    fn classify_message(&self) -> String;
}

impl ClassifyMessage for serde_json::Error {
    fn classify_message(&self) -> String {
        format!(
            "{:?} error at line {}, column {}",
            self.classify(),
            self.line(),
            self.column()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(serial: Option<&str>, name: Option<&str>) -> DeviceInput {
        DeviceInput {
            serial_number: serial.map(str::to_owned),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn csv_with_quotes_crlf_and_a_device_without_serial_m6() {
        let text = "serial_number,name\r\nC02A,\"Ada's Mac, 2021\"\r\n,Lobby iPad\r\nC02B\r\n\r\n";
        assert_eq!(
            parse_devices(text).unwrap(),
            vec![
                d(Some("C02A"), Some("Ada's Mac, 2021")),
                d(None, Some("Lobby iPad")),
                d(Some("C02B"), None),
            ]
        );
    }

    #[test]
    fn csv_columns_in_any_order_and_serial_only() {
        assert_eq!(
            parse_devices("name,serial_number\nMac,S1\n").unwrap(),
            vec![d(Some("S1"), Some("Mac"))]
        );
        assert_eq!(
            parse_devices("serial_number\nS1\nS2").unwrap(),
            vec![d(Some("S1"), None), d(Some("S2"), None)]
        );
    }

    #[test]
    fn csv_errors_say_what_to_fix() {
        let e = parse_devices("serial,name\nS1,x").unwrap_err().to_string();
        assert!(e.contains("serial_number"), "{e}");
        let e = parse_devices("serial_number,name\nS1,a,b")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse_devices("serial_number,name\n\"S1,x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("never closed"), "{e}");
    }

    #[test]
    fn json_device_lists() {
        assert_eq!(
            parse_devices(r#"[{"serial_number":"S1","name":"Mac"},{"serial_number":null},{"name":"x","serial_number":" "}]"#)
                .unwrap(),
            vec![d(Some("S1"), Some("Mac")), d(None, None), d(None, Some("x"))]
        );
        assert!(parse_devices(r#"[{"serial":"S1"}]"#).is_err());
    }

    #[test]
    fn c2_credential_files_never_echo_values() {
        let pairs =
            parse_credentials_file("# jamf\nhost = https://h\nclient_secret=\"s3cr3t\"\n").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("host".into(), "https://h".into()),
                ("client_secret".into(), "s3cr3t".into())
            ]
        );
        let e = parse_credentials_file("host=h\nsupers3cr3t\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && !e.contains("supers3cr3t"), "{e}");
        let e = parse_credentials_file("{\"api_key\": \"supers3cr3t\",}")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("supers3cr3t"), "{e}");
        let json = parse_credentials_file(r#"{"api_key":"k","org_id":null}"#).unwrap();
        assert_eq!(
            json,
            vec![
                ("api_key".into(), "k".into()),
                ("org_id".into(), String::new())
            ]
        );
        let e = parse_pair("client_secret").unwrap_err();
        assert!(!e.contains("client_secret"));
    }
}
