//! Integration tests of mdmsync-http against tiny axum servers on 127.0.0.1 (one test binary
//! to keep CI link time down). Test names cite the spec rules they prove.

mod common;
mod e1_errors;
mod e2_retries;
mod p2_pagination;
mod p4_oauth;
mod p5_limits;
mod sim;
