//! One module per top-level verb of the `g2w` command.

pub mod admin;
pub mod attendance;
pub mod auth;
pub mod config;
pub mod emulator;
pub mod keys;
pub mod outbox;
pub mod registrants;
pub mod serve;
pub mod sources;
pub mod store;
pub mod webhooks;
pub mod webinars;
