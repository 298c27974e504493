//! Property tests of reconciliation and replay live in `tests/`. This library holds the
//! generators they share.
