//! `g2w`: registers people for GoTo Webinar events and takes the OAuth pain out of it.
//!
//! Exit codes: 0 ok, 1 error, 2 usage, 3 reauthorization required.

mod cmd;
mod context;
mod exit;
mod limits;
mod output;
mod settings;
mod signal;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::settings::{CredentialFlags, ProcessEnv, Settings};

/// What `g2w --help` and the manual page say after the commands.
const AFTER_HELP: &str = "\
Time zones: a webinar's times are read and shown on its own clocks, named the IANA way \
(Europe/Berlin, America/New_York): `--start \"2027-03-04 09:00\"` is 09:00 there, and each \
time printed carries its offset (CET, CEST). `--format json` gives times in UTC (RFC 3339).

Exit codes: 0 done; 1 an error; 2 a usage error; 3 a GoTo login is needed \
(`g2w auth login [--profile NAME]`); 130 interrupted.

Files: the store (g2w.db) and its key (g2w.key) in the data directory (`g2w config show`); \
a made-up admin console password in admin-password there.

Documentation: README.md and docs/ in g2w's repository.";

/// Registers people for GoTo Webinar events, with OAuth that looks after itself.
#[derive(Debug, Parser)]
#[command(name = "g2w", version, about, long_about = None, after_long_help = AFTER_HELP)]
struct Cli {
    /// Which stored GoTo login to use.
    #[arg(long, global = true, env = settings::table::PROFILE.var, default_value = "default", value_parser = settings::parse_profile)]
    profile: String,
    /// Only errors on stderr.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More detail on stderr (repeat for more); `-v` on `serve` logs a line a request.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// How log lines on stderr are written: `text` for people, `json` (one object a
    /// line) for log shippers.
    #[arg(long, global = true, value_enum, env = settings::table::LOG_FORMAT.var, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    credentials: CredentialFlags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in to GoTo, inspect and refresh the stored tokens.
    #[command(subcommand)]
    Auth(cmd::auth::AuthCommand),
    /// List, show, create, update, copy and cancel webinars.
    #[command(subcommand)]
    Webinars(cmd::webinars::WebinarsCommand),
    /// Registration forms, registrants, and bulk import from CSV.
    #[command(subcommand)]
    Registrants(cmd::registrants::RegistrantsCommand),
    /// Run the registration gateway (landing pages post here; nothing is lost).
    Serve(cmd::serve::Args),
    /// Inspect and retry the registration outbox.
    #[command(subcommand)]
    Outbox(cmd::outbox::OutboxCommand),
    /// A webinar's sessions that have ended.
    #[command(subcommand)]
    Sessions(cmd::attendance::SessionsCommand),
    /// Who attended: join and leave times, minutes attended (list or export).
    #[command(subcommand)]
    Attendees(cmd::attendance::AttendeesCommand),
    /// Reports: attendance and no-shows of every registrant, for a follow-up mailing.
    #[command(subcommand)]
    Report(cmd::attendance::ReportCommand),
    /// GoTo's webhooks into this gateway: set up, status, remove.
    #[command(subcommand)]
    Webhooks(cmd::webhooks::WebhooksCommand),
    /// Form builders (Typeform, Webflow, Tally, Unbounce, any tool) that post sign-ups
    /// to the gateway: add them, see and fix their mapping, replay what waits.
    #[command(subcommand)]
    Sources(cmd::sources::SourcesCommand),
    /// API keys for programs that use g2w's logins: a fresh token on request, calls to
    /// GoTo through g2w, registrations without the per-address limit.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// The admin console: a new password when the old one is lost.
    #[command(subcommand)]
    Admin(cmd::admin::AdminCommand),
    /// The database: create or upgrade its schema, copy it into PostgreSQL.
    #[command(subcommand)]
    Store(cmd::store::StoreCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Run the built-in GoTo emulator (OAuth server and Webinar v2 API) on its own.
    Emulator(cmd::emulator::Args),
    /// Print a completion script for a shell (`g2w completions bash > /etc/bash_completion.d/g2w`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (`g2w man > g2w.1; man ./g2w.1`), or write one page per
    /// command into a directory (`g2w man --dir /usr/local/share/man/man1`).
    Man {
        /// Write g2w.1 and a page per command (g2w-webinars-create.1, …) here.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Lines for people (coloured on a terminal, unless `NO_COLOR` is set).
    Text,
    /// One JSON object a line.
    Json,
}

fn init_logging(quiet: bool, verbose: u8, format: LogFormat) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info,g2w=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(settings::table::LOG.var)
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("{default},{}=info", output::NOTICE_TARGET))
        });
    let color = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(color).init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = || Settings::resolve(&ProcessEnv, &cli.credentials);
    let context = async || context::Context::open(settings()?, &cli.profile).await;
    match cli.command {
        Command::Emulator(args) => cmd::emulator::run(args).await,
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "g2w", &mut out);
            output::write_out(format_args!("{}", String::from_utf8_lossy(&out)));
            Ok(())
        }
        Command::Man { dir: None } => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command()).render(&mut out)?;
            output::write_out(format_args!("{}", String::from_utf8_lossy(&out)));
            Ok(())
        }
        Command::Man { dir: Some(dir) } => {
            let written = man_pages(&dir)?;
            output::say!("{written} manual pages written to {}", dir.display());
            Ok(())
        }
        Command::Config(command) => cmd::config::run(&command, &cli.credentials),
        Command::Auth(command) => cmd::auth::run(context().await?, command).await,
        Command::Webinars(command) => cmd::webinars::run(&context().await?, command).await,
        Command::Registrants(command) => cmd::registrants::run(&context().await?, command).await,
        Command::Sessions(command) => cmd::attendance::sessions(&context().await?, command).await,
        Command::Attendees(command) => cmd::attendance::attendees(&context().await?, command).await,
        Command::Report(command) => cmd::attendance::report(&context().await?, command).await,
        Command::Webhooks(command) => cmd::webhooks::run(&context().await?, command).await,
        Command::Sources(command) => cmd::sources::run(&context().await?, command).await,
        Command::Keys(command) => cmd::keys::run(&context().await?, command).await,
        Command::Admin(command) => cmd::admin::run(&context().await?, command).await,
        Command::Serve(args) => cmd::serve::run(settings()?, &cli.profile, args).await,
        Command::Store(command) => cmd::store::run(&settings()?, command).await,
        Command::Outbox(command) => cmd::outbox::run(&context().await?, command).await,
    }
}

/// The command line, with each command showing only the options that apply to it: the
/// emulator keeps no logins and reads no configuration.
fn command() -> clap::Command {
    use clap::Arg;
    // A subcommand's own (hidden) argument of a global's name keeps the global out of
    // its help; the values still parse as the global's would.
    Cli::command().mut_subcommand("emulator", |emulator| {
        emulator
            .arg(
                Arg::new("profile")
                    .long("profile")
                    .hide(true)
                    .value_parser(settings::parse_profile),
            )
            .arg(Arg::new("client_id").long("client-id").hide(true))
            .arg(Arg::new("client_secret").long("client-secret").hide(true))
            .arg(
                Arg::new("config")
                    .long("config")
                    .hide(true)
                    .value_parser(clap::value_parser!(std::path::PathBuf)),
            )
    })
}

/// Writes `g2w.1` and a page per command and subcommand (`g2w-webinars-create.1`), each
/// named as the pages that mention it say (`g2w-webinars(1)`); how many.
fn man_pages(dir: &std::path::Path) -> anyhow::Result<usize> {
    fn write(dir: &std::path::Path, page: clap::Command, name: &str) -> anyhow::Result<usize> {
        let mut out = Vec::new();
        let subcommands: Vec<clap::Command> = page
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .cloned()
            .collect();
        clap_mangen::Man::new(page.clone().display_name(name.to_owned())).render(&mut out)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, out)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        let mut written = 1;
        for sub in subcommands {
            let sub_name = format!("{name}-{}", sub.get_name());
            written += write(dir, sub, &sub_name)?;
        }
        Ok(written)
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot make {}: {e}", dir.display()))?;
    let mut cli = command();
    cli.build();
    write(dir, cli, "g2w")
}

/// Parses the command line; a shortened `--format` (`--form`, `--fmt`) is answered with
/// `--format` rather than whatever clap finds nearest (`--from`).
fn parse() -> Cli {
    match command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::{ContextKind, ContextValue, ErrorKind};
            if e.kind() == ErrorKind::UnknownArgument
                && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
                && ["--form", "--forma", "--fmt", "--formt"]
                    .contains(&arg.split('=').next().unwrap_or_default())
            {
                eprintln!(
                    "error: unexpected argument '{arg}': did you mean '--format'?\n\nFor more information, try '--help'."
                );
                std::process::exit(2);
            }
            e.exit()
        }
    }
}

fn main() -> ExitCode {
    let cli = parse();
    init_logging(cli.quiet, cli.verbose, cli.log_format);
    output::set_json_logs(cli.log_format == LogFormat::Json);
    output::set_quiet(cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            for cause in err.chain() {
                if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                    output::quit_if_no_reader(io);
                }
            }
            if output::json_logs() {
                // Every stderr line is JSON in JSON mode, errors too.
                tracing::error!("{err:#}");
            } else {
                eprintln!("error: {err:#}");
            }
            exit::code_for(&err)
        }
    }
}
