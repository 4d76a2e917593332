//! # The public edge: what the gateway enforces before any handler runs
//!
//! The gateway faces the internet, so nothing a visitor does may hold its resources
//! without bound. Per connection ([`serve`]):
//!
//! - At most `max_connections` are open at once. Past that, new connections wait in the
//!   kernel's listen queue until one closes, and a log line says the limit was reached
//!   (`g2w serve` also raises its open-file limit to the hard limit at start).
//! - A connection must send a complete request head within `header_timeout` of opening,
//!   or of its first byte after an idle spell; between requests it may sit idle for
//!   `keep_alive_timeout`. A client that stops reading its answer counts as idle. Past
//!   either, the connection is closed.
//!
//! Per request ([`gate`]):
//!
//! - HTTP/1.1 needs exactly one `Host` header (400 otherwise).
//! - A body declared larger than [`crate::BODY_LIMIT`] is refused with 413 before a byte
//!   of it is read, so no `100 Continue` is sent for it; any body must arrive whole within
//!   `body_timeout` (408) and within the limit however it is framed (413).
//! - Every refusal, the framework's own included (no route, wrong method, a body that
//!   cannot be read), is the API's JSON error shape.

mod connections;
pub(crate) mod headers;
mod requests;

pub(crate) use connections::{ConnectionLimits, serve};
pub(crate) use requests::{RequestLimits, gate};
