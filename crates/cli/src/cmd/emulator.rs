//! `g2w emulator`: the GoTo emulator as a standalone server, for trying g2w (or any
//! other GoTo client) offline.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use g2w_emulator::EmulatorConfig;

/// Options of `g2w emulator`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on: HOST:PORT, :PORT (every interface) or PORT (this machine),
    /// as for `g2w serve`.
    #[arg(long, default_value = "127.0.0.1:9090", value_parser = crate::settings::serve::parse_listen)]
    listen: SocketAddr,
    /// Approve every authorization request at once, without the consent page.
    #[arg(long)]
    auto_approve: bool,
    /// An extra OAuth client, as ID:SECRET (demo-client/demo-secret always exists).
    #[arg(long = "client", value_name = "ID:SECRET", value_parser = parse_client)]
    clients: Vec<(String, String)>,
    /// An extra allowed redirect URI (loopback URIs are always allowed).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// API requests per second per GoTo account; 0 turns the limit off.
    #[arg(long, default_value_t = 10, value_name = "N")]
    rate_limit: u32,
    /// Add the owner fields of GoTo's old token host (organizer_key, account_key, …).
    #[arg(long)]
    legacy_token_fields: bool,
    /// Start with demo data: two organizers, webinars of each, and a series.
    #[arg(long)]
    seed_demo: bool,
}

fn parse_client(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok((id.to_owned(), secret.to_owned()))
        }
        _ => Err("expected ID:SECRET, both non-empty".to_owned()),
    }
}

/// Runs the emulator until Ctrl-C or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let config = EmulatorConfig {
        auto_approve: args.auto_approve,
        clients: args.clients,
        redirect_uris: args.redirect_uris,
        rate_limit: args.rate_limit,
        legacy_token_fields: args.legacy_token_fields,
        seed_demo: args.seed_demo,
        ..EmulatorConfig::default()
    };
    // Scripts wait for this exact line, so it is the only thing on stdout.
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "emulator listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        bail!("cannot write to stdout");
    }
    drop(stdout);
    g2w_emulator::serve(listener, config, crate::signal::shutdown())
        .await
        .context("the emulator stopped with an error")
}

#[cfg(test)]
mod tests {
    use super::parse_client;

    #[test]
    fn client_flag_needs_both_halves() {
        assert_eq!(
            parse_client("id:se:cret"),
            Ok(("id".into(), "se:cret".into()))
        );
        assert!(parse_client("id").is_err());
        assert!(parse_client(":secret").is_err());
        assert!(parse_client("id:").is_err());
    }
}
