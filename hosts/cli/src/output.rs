//! What a command prints and how it exits: one JSON document with `--json`, a human-readable
//! text otherwise; errors as `{"error": …}` (JSON) or `error: …` on stderr (text).

use serde_json::{Value, json};
use std::io::{IsTerminal, Write};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: something went wrong that is not one of the outcomes below (bad input, unknown
/// workspace, database failure).
pub const EXIT_ERROR: u8 = 1;
/// Exit code: a sync failed, a credential test failed, a force sync failed, or a rule forbids
/// a group edit (G5).
pub const EXIT_FAILED: u8 = 2;
/// Exit code: a sync was held by the safety thresholds (G11).
pub const EXIT_HELD: u8 = 3;
/// Exit code: a sync was refused (cooldown T2, plan G1, not connected, another sync running T4).
pub const EXIT_REFUSED: u8 = 4;
/// Exit code: the command line is wrong (unknown flag, missing argument).
pub const EXIT_USAGE: u8 = 64;

/// A command's result: what to print in each mode, and the exit code.
#[derive(Debug, Clone)]
pub struct Output {
    /// The one JSON document printed with `--json`.
    pub json: Value,
    /// The text printed otherwise (a trailing newline is added if missing).
    pub human: String,
    /// The exit code.
    pub code: u8,
    /// The command printed its output itself (a stream such as `events export`).
    pub streamed: bool,
}

impl Output {
    /// A successful result.
    pub fn ok(json: Value, human: impl Into<String>) -> Self {
        Self {
            json,
            human: human.into(),
            code: EXIT_OK,
            streamed: false,
        }
    }

    /// The command printed its output itself, as it went.
    pub fn streamed() -> Self {
        Self {
            json: Value::Null,
            human: String::new(),
            code: EXIT_OK,
            streamed: true,
        }
    }

    /// A result with another exit code.
    pub fn with_code(mut self, code: u8) -> Self {
        self.code = code;
        self
    }
}

/// A command that did not produce its result. Messages say what went wrong and what to do,
/// and never carry a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// The input is wrong (a file that does not parse, an unknown workspace): exit 1.
    #[error("{0}")]
    Failed(String),
    /// A rule forbids the change (G5 and the other domain rules): exit 2.
    #[error("{0}")]
    Rule(String),
    /// The MDM call failed (E1): exit 2.
    #[error("{}", mdm_text(*kind, message))]
    Mdm {
        /// The E1 kind; `None` when the provider has no such operation (A1, JumpCloud).
        kind: Option<mdmsync_core::ErrorKind>,
        /// What went wrong (no secret).
        message: String,
    },
}

fn mdm_text(kind: Option<mdmsync_core::ErrorKind>, message: &str) -> String {
    match kind {
        Some(k) => format!("{} ({}); {}", message, k.as_str(), k.advice()),
        None => message.to_owned(),
    }
}

impl CliError {
    /// The exit code.
    pub fn code(&self) -> u8 {
        match self {
            CliError::Failed(_) => EXIT_ERROR,
            CliError::Rule(_) | CliError::Mdm { .. } => EXIT_FAILED,
        }
    }

    /// The `{"error": …}` document (with `error_kind` for MDM failures).
    pub fn json(&self) -> Value {
        match self {
            CliError::Mdm { kind, message } => {
                json!({ "error": message, "error_kind": kind.map(|k| k.as_str()) })
            }
            other => json!({ "error": other.to_string() }),
        }
    }
}

impl From<mdmsync_sqlite::Error> for CliError {
    fn from(e: mdmsync_sqlite::Error) -> Self {
        CliError::Failed(e.to_string())
    }
}

impl From<mdmsync_core::ServiceError> for CliError {
    fn from(e: mdmsync_core::ServiceError) -> Self {
        match e {
            mdmsync_core::ServiceError::Domain(d) => CliError::Rule(d.to_string()),
            mdmsync_core::ServiceError::Mdm(e) | mdmsync_core::ServiceError::CredentialTest(e) => {
                CliError::Mdm {
                    kind: e.kind(),
                    message: e.message(),
                }
            }
            other => CliError::Failed(other.to_string()),
        }
    }
}

impl From<mdmsync_core::VaultError> for CliError {
    fn from(e: mdmsync_core::VaultError) -> Self {
        CliError::Failed(e.to_string())
    }
}

/// Writes to stdout, ignoring a closed pipe (`mdmsync … | head`).
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// Writes to stdout as is (no newline added), ignoring a closed pipe.
pub fn print_raw(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints a result in the chosen mode.
pub fn emit(output: &Output, json_mode: bool) {
    if output.streamed {
        return;
    }
    if json_mode {
        print_stdout(&output.json.to_string());
    } else if !output.human.is_empty() {
        print_stdout(&output.human);
    }
}

/// Prints an error in the chosen mode: `{"error"}` on stdout with `--json`, else on stderr.
pub fn emit_error(error: &CliError, json_mode: bool) {
    if json_mode {
        print_stdout(&error.json().to_string());
    } else {
        eprintln!("error: {error}");
    }
}

/// Progress on long work, on stderr, only when a person is watching (stderr is a terminal).
pub fn progress(message: &str) {
    let err = std::io::stderr();
    if err.is_terminal() {
        let _ = writeln!(err.lock(), "{message}");
    }
}

/// A plain text table: a header row, then rows, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(cell);
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `-` for a missing value in tables.
pub fn or_dash(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_to_the_widest_cell() {
        let t = table(
            &["NAME", "N"],
            &[
                vec!["Engineering".into(), "3".into()],
                vec!["Ops".into(), "12".into()],
            ],
        );
        assert_eq!(t, "NAME         N\nEngineering  3\nOps          12");
    }

    #[test]
    fn errors_map_to_exit_codes() {
        assert_eq!(CliError::Failed("x".into()).code(), 1);
        assert_eq!(CliError::Rule("x".into()).code(), 2);
        assert_eq!(
            CliError::Rule("managed".into()).json(),
            json!({"error": "managed"})
        );
    }
}
