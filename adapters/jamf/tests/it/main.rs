//! `mdmsync-jamf` against the simulator (`mdmsim`): snapshots, look-ups, errors, tokens, limits.

mod common;
mod errors;
mod metadata;
mod snapshot;
mod tokens;
