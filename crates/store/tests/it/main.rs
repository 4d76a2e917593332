//! The store's tests, one binary: each backend passes the same stories (logins and
//! locks, registrations and their jobs, events and their forwarding, the GoTo budget),
//! opening fails clearly, and a database of the previous release migrates intact.
#![allow(clippy::unwrap_used, missing_docs)]

mod backends;
mod events;
mod migration;
mod opening;
mod registrations;
