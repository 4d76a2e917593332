//! `g2w config example`: a commented config file to start from, written from the
//! settings table.

use crate::settings::table;

/// `g2w config …`
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print a commented example config file.
    Example,
}

/// Runs a config command.
pub fn run(command: &ConfigCommand) {
    match command {
        ConfigCommand::Example => crate::output::write_out(format_args!("{}", table::example())),
    }
}
