//! Two processes on one file (placeholder while being written).
fn main() {}
