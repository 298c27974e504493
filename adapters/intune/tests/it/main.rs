//! `mdmsync-intune` against the simulator (`mdmsim`): snapshots, look-ups, errors, tokens.

mod common;
mod errors;
mod metadata;
mod snapshot;
mod tokens;
