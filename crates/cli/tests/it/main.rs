//! Tests of the `g2w` binary, run as a user runs it.
#![allow(clippy::unwrap_used)]

mod emulator_cmd;
