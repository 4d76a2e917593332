//! One module per top-level verb of the `g2w` command.

pub mod auth;
pub mod emulator;
