//! # mdmsync-daemon
//!
//! `mdmsyncd`, the long-running host of mdmsync. It decides when each workspace syncs.
