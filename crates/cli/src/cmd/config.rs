//! `g2w config`: a commented example file, the settings in effect and where each came
//! from, and where the config file is. All of it from the settings table.

use crate::output::{Shown, print_json, say};
use crate::settings::{CredentialFlags, Env, ProcessEnv, table};

/// `g2w config …`
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print a commented example config file.
    Example,
    /// Every setting in effect, and where its value came from (a flag, a variable, the
    /// config file, or the default); secrets are never shown, only whether they are set.
    Show {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Shown::Text)]
        format: Shown,
    },
    /// Where the config file is read from, and whether it exists.
    Path,
}

/// Runs a config command.
///
/// # Errors
/// A config file that cannot be read.
pub fn run(command: &ConfigCommand, flags: &CredentialFlags) -> anyhow::Result<()> {
    let env = ProcessEnv;
    match command {
        ConfigCommand::Example => {
            crate::output::write_out(format_args!("{}", table::example()));
            Ok(())
        }
        ConfigCommand::Path => {
            match crate::settings::config_path(&env, flags) {
                Some((path, chosen)) => {
                    let how = match (path.exists(), chosen) {
                        (true, _) => "in use",
                        (false, true) => "named but missing",
                        (false, false) => "not present: defaults and variables apply",
                    };
                    say!("{} ({how})", path.display());
                }
                None => say!("no config file: this system has no config directory"),
            }
            Ok(())
        }
        ConfigCommand::Show { format } => show(&env, flags, *format),
    }
}

fn show(env: &dyn Env, flags: &CredentialFlags, format: Shown) -> anyhow::Result<()> {
    let path = crate::settings::config_path(env, flags)
        .filter(|(path, chosen)| *chosen || path.exists())
        .map(|(path, _)| path);
    let file = match &path {
        Some(path) => crate::settings::read_config_file(path)?,
        None => crate::settings::ConfigFile::default(),
    };
    let settings = crate::settings::effective(env, &file, flags);
    if format == Shown::Json {
        return print_json(&serde_json::json!({
            "configFile": path.as_ref().map(|p| p.display().to_string()),
            "settings": settings.iter().map(|s| serde_json::json!({
                "section": s.spec.section.name(),
                "key": s.spec.key,
                "variable": s.spec.var,
                "value": s.value,
                "source": s.source.as_str(),
            })).collect::<Vec<_>>(),
        }));
    }
    say!(
        "config file: {}",
        path.as_ref()
            .map_or_else(|| "none".to_owned(), |p| p.display().to_string())
    );
    let mut section = None;
    for s in &settings {
        if section != Some(s.spec.section) {
            section = Some(s.spec.section);
            say!();
            say!(
                "{}",
                match s.spec.section {
                    table::Section::General => "[every command]".to_owned(),
                    other => format!("[{}]", other.name()),
                }
            );
        }
        let name = s.spec.key.unwrap_or(s.spec.var);
        let value = s.value.as_deref().unwrap_or("(not set)");
        say!("  {name:<28} {value:<40} {}", s.source.as_str());
    }
    Ok(())
}
