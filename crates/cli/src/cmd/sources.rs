//! `g2w sources`: the form builders that post sign-ups to the gateway (`/in/{name}`), their
//! mapping of fields, the posts kept until a mapping is fixed, and replays. Sources live in
//! the store, so every gateway on it takes their posts at once; `replay` and `test` run
//! the gateway's own intake in this process (the running gateway delivers).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use g2w_gateway::sources::{
    Encoding, GenericSignature, How, Kind, Line, Source, SourceSettings, SourceTarget, check_name,
    explain, new_secret, parse_map,
};
use g2w_goto::Timestamp;
use g2w_store::{PostState, Setting};
use serde_json::json;

use crate::context::Context;
use crate::output::{Shown, confirm, print_json, say};
use crate::settings::serve::{self as serve_settings, ServeFlags};
use crate::settings::{Env, FileSource, ProcessEnv};

/// `g2w sources …`
#[derive(Debug, clap::Subcommand)]
pub enum SourcesCommand {
    /// Adds a form builder: it posts sign-ups to `/in/NAME` (Unbounce and unsigned
    /// generic sources: `/in/NAME/SECRET`).
    Add(AddArgs),
    /// Every source, with the posts waiting for a fixed mapping.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Shown::Text)]
        format: Shown,
    },
    /// One source: its URL, and its mapping against the fields its latest post had.
    Show {
        /// The source's name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Shown::Text)]
        format: Shown,
    },
    /// Changes a source: its mapping, webinar, secret, addresses or signature.
    Set(SetArgs),
    /// Removes a source and the posts kept for it; its URL answers 404 from then on.
    Remove {
        /// The source's name.
        name: String,
        /// Remove without asking (needed when there is no terminal to ask on).
        #[arg(long, short)]
        yes: bool,
    },
    /// Prints the registration a payload would make, or exactly why it would be refused;
    /// stores and sends nothing.
    Test {
        /// The source's name.
        name: String,
        /// A file with the body the tool posts (its signature is not checked).
        #[arg(long, value_name = "FILE")]
        payload: PathBuf,
        /// The body's type (else JSON, or a form for Unbounce).
        #[arg(long)]
        content_type: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Shown::Text)]
        format: Shown,
    },
    /// The posts kept because they could not be registered, and why.
    Failures {
        /// The source's name.
        name: String,
        /// Also the ones a replay registered since.
        #[arg(long)]
        all: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Shown::Text)]
        format: Shown,
    },
    /// Sends the kept posts through intake again, with the mapping as it is now.
    Replay {
        /// The source's name.
        name: String,
    },
}

/// What a generic source's signature is (flags of `add` and `set`).
#[derive(Debug, Default, clap::Args)]
pub struct SignatureArgs {
    /// A generic source's signature header (without one, the secret is in the URL).
    #[arg(long, value_name = "HEADER")]
    signature_header: Option<String>,
    /// How the digest is written.
    #[arg(long, value_name = "hex|base64", value_parser = |s: &str| s.parse::<Encoding>())]
    signature_encoding: Option<Encoding>,
    /// What comes before the digest in the header (`sha256=`).
    #[arg(long, value_name = "TEXT")]
    signature_prefix: Option<String>,
    /// The header with the signing time, when the tool signs it too (`TIME.BODY`).
    #[arg(long, value_name = "HEADER")]
    timestamp_header: Option<String>,
    /// Between the time and the body in what is signed (default `.`).
    #[arg(long, value_name = "TEXT")]
    timestamp_separator: Option<String>,
}

/// `g2w sources add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The tool: typeform, webflow, tally, unbounce or generic.
    #[arg(value_parser = |s: &str| s.parse::<Kind>())]
    kind: Kind,
    /// Its name: the last part of its URL (letters, digits, - and _).
    #[arg(long)]
    name: String,
    /// The webinar it registers for.
    #[arg(
        long,
        value_name = "KEY",
        required_unless_present = "series",
        conflicts_with = "series"
    )]
    webinar: Option<String>,
    /// The series it registers for (the date a field names, else the next one).
    #[arg(long, value_name = "KEY")]
    series: Option<String>,
    /// Read the secret from stdin: the one the tool signs with (Typeform, Webflow,
    /// Tally, a signed generic source); else g2w makes one for the URL.
    #[arg(long)]
    secret_stdin: bool,
    /// A GoTo field from the tool's field (its label or key): `email="Work e-mail"`,
    /// `"Why are you coming?"=reason`, `date=Session`. Repeatable.
    #[arg(long = "map", value_name = "GOTO=TOOL")]
    map: Vec<String>,
    /// Take posts only from this address or range. Repeatable.
    #[arg(long, value_name = "ADDR")]
    allow: Vec<String>,
    /// A generic source's field with the tool's submission id (dotted in JSON).
    #[arg(long, value_name = "FIELD")]
    id_field: Option<String>,
    #[command(flatten)]
    signature: SignatureArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Shown::Text)]
    format: Shown,
}

/// `g2w sources set`.
#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The source's name.
    name: String,
    /// A GoTo field from the tool's field: `email="Work e-mail"`. Repeatable.
    #[arg(long = "map", value_name = "GOTO=TOOL")]
    map: Vec<String>,
    /// Back to guessing this GoTo field from labels. Repeatable.
    #[arg(long, value_name = "GOTO")]
    unmap: Vec<String>,
    /// Register for this webinar from now on.
    #[arg(long, value_name = "KEY", conflicts_with = "series")]
    webinar: Option<String>,
    /// Register for this series from now on.
    #[arg(long, value_name = "KEY")]
    series: Option<String>,
    /// Read a new secret from stdin.
    #[arg(long)]
    secret_stdin: bool,
    /// Take posts only from this address or range (replaces the list). Repeatable.
    #[arg(long, value_name = "ADDR", conflicts_with = "any_address")]
    allow: Vec<String>,
    /// Take posts from any address again.
    #[arg(long)]
    any_address: bool,
    /// A generic source's field with the tool's submission id.
    #[arg(long, value_name = "FIELD")]
    id_field: Option<String>,
    #[command(flatten)]
    signature: SignatureArgs,
}

fn target(webinar: Option<&str>, series: Option<&str>) -> anyhow::Result<Option<SourceTarget>> {
    Ok(match (webinar, series) {
        (Some(w), _) => {
            Some(SourceTarget::Webinar(w.trim().parse().map_err(|_| {
                anyhow::anyhow!("--webinar {w:?} is not a webinar key")
            })?))
        }
        (None, Some(s)) => {
            Some(SourceTarget::Series(s.trim().parse().map_err(|_| {
                anyhow::anyhow!("--series {s:?} is not a series key")
            })?))
        }
        (None, None) => None,
    })
}

/// Applies `--map` entries to `settings`.
fn mapped(settings: &mut SourceSettings, entries: &[String]) -> anyhow::Result<()> {
    for entry in entries {
        let (goto, tool) = parse_map(entry).map_err(|e| anyhow::anyhow!("--map {e}"))?;
        settings.map.insert(goto, tool);
    }
    Ok(())
}

/// Applies the signature flags to a generic source's settings.
fn signed(settings: &mut SourceSettings, args: SignatureArgs) {
    let given = args.signature_header.is_some()
        || args.signature_encoding.is_some()
        || args.signature_prefix.is_some()
        || args.timestamp_header.is_some()
        || args.timestamp_separator.is_some();
    if !given {
        return;
    }
    let mut sig = settings.signature.clone().unwrap_or(GenericSignature {
        header: String::new(),
        encoding: Encoding::Hex,
        prefix: String::new(),
        timestamp_header: None,
        separator: ".".to_owned(),
    });
    if let Some(h) = args.signature_header {
        sig.header = h;
    }
    if let Some(e) = args.signature_encoding {
        sig.encoding = e;
    }
    if let Some(p) = args.signature_prefix {
        sig.prefix = p;
    }
    if let Some(t) = args.timestamp_header {
        sig.timestamp_header = Some(t);
    }
    if let Some(s) = args.timestamp_separator {
        sig.separator = s;
    }
    settings.signature = Some(sig);
}

async fn load(ctx: &Context, name: &str) -> anyhow::Result<Source> {
    let record = ctx
        .store
        .source(name)
        .await?
        .with_context(|| format!("no source called {name:?} (see g2w sources list)"))?;
    Source::from_record(record).map_err(anyhow::Error::msg)
}

/// The gateway's public base URL, when GoTo's webhooks were set up (they know it).
async fn public_base(ctx: &Context) -> Option<String> {
    let callback = ctx
        .store
        .setting(Setting::WebhookCallback)
        .await
        .ok()
        .flatten()?;
    callback
        .split_once("/hooks/")
        .map(|(base, _)| base.to_owned())
}

async fn url(ctx: &Context, source: &Source) -> String {
    match public_base(ctx).await {
        Some(base) => format!("{base}{}", source.path()),
        None => format!("https://YOUR-GATEWAY{}", source.path()),
    }
}

/// A gateway over this store, as `g2w serve` would run it, to act through.
async fn gateway(ctx: &Context) -> anyhow::Result<g2w_gateway::Gateway> {
    let config = serve_settings::gateway_config(
        &ProcessEnv,
        &ctx.settings.file,
        &ServeFlags::default(),
        &ctx.profile,
    )?;
    let named = serve_settings::profiles(&ProcessEnv, &ctx.settings.file, None)?;
    let profiles = ctx.served_profiles(named).await?;
    crate::cmd::serve::gateway(ctx, config, &profiles).await
}

fn how(how: How) -> &'static str {
    match how {
        How::Set => "set",
        How::Guessed => "guessed",
        How::ByText => "by text",
        How::Missing => "NOT FOUND",
    }
}

fn print_lines(lines: &[Line]) {
    let width = lines.iter().map(|l| l.goto.len()).max().unwrap_or(0);
    for l in lines {
        say!(
            "  {:<width$}  ← {:<40}  {}",
            l.goto,
            l.from.as_deref().unwrap_or("—"),
            how(l.how)
        );
    }
}

fn when(t: Timestamp) -> String {
    t.to_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The source the config file declares, over what the store holds of it (its URL's
/// secret, once made, is kept; its fields seen too).
fn from_file(
    env: &dyn Env,
    declared: &FileSource,
    stored: Option<&Source>,
    now: Timestamp,
) -> anyhow::Result<Source> {
    let kind: Kind = declared.kind.parse().map_err(anyhow::Error::msg)?;
    let Some(target) = target(declared.webinar.as_deref(), declared.series.as_deref())? else {
        bail!("name its webinar (webinar = \"KEY\") or series (series = \"KEY\")");
    };
    let mut settings = SourceSettings {
        map: declared.map.clone(),
        allow: declared.allow.clone(),
        id_field: declared.id_field.clone(),
        ..SourceSettings::default()
    };
    for goto in settings.map.keys() {
        g2w_gateway::sources::Rule::of(goto).map_err(anyhow::Error::msg)?;
    }
    signed(
        &mut settings,
        SignatureArgs {
            signature_header: declared.signature_header.clone(),
            signature_encoding: declared
                .signature_encoding
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            signature_prefix: declared.signature_prefix.clone(),
            timestamp_header: declared.timestamp_header.clone(),
            timestamp_separator: declared.timestamp_separator.clone(),
        },
    );
    let secret = match &declared.secret_env {
        Some(var) => Some(g2w_goto::SecretString::from(
            env.var(var)
                .with_context(|| format!("secret_env names {var}, which is not set"))?,
        )),
        None if kind.signs(&settings) => {
            bail!("a {kind} source needs the secret the tool signs with: secret_env = \"VARIABLE\"")
        }
        None => Some(
            stored
                .and_then(|s| s.secret.clone())
                .unwrap_or_else(new_secret),
        ),
    };
    let source = Source {
        name: declared.name.clone(),
        kind,
        target,
        secret,
        settings,
        seen: stored.map(|s| s.seen.clone()).unwrap_or_default(),
        created_at: stored.map_or(now, |s| s.created_at),
    };
    source.check().map_err(anyhow::Error::msg)?;
    Ok(source)
}

/// Brings the store in line with the config file's `[sources.NAME]` tables (`g2w serve`
/// and every `g2w sources` command do this first): each added, or changed as the file
/// now says.
///
/// # Errors
/// A declared source that does not hold together (named in the message), or the store.
pub async fn sync_file_sources(ctx: &Context) -> anyhow::Result<()> {
    for declared in &ctx.settings.file.sources {
        let stored = match ctx.store.source(&declared.name).await? {
            Some(record) => Some(Source::from_record(record).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let source = from_file(&ProcessEnv, declared, stored.as_ref(), ctx.now())
            .with_context(|| format!("[sources.{}] in the config file", declared.name))?;
        let same = stored.as_ref().is_some_and(|s| {
            use g2w_goto::ExposeSecret as _;
            s.kind == source.kind
                && s.target == source.target
                && s.settings == source.settings
                && s.secret.as_ref().map(|x| x.expose_secret().to_owned())
                    == source.secret.as_ref().map(|x| x.expose_secret().to_owned())
        });
        if same {
            continue;
        }
        let record = source.to_record(ctx.now());
        if stored.is_some() {
            ctx.store.update_source(&record).await?;
        } else {
            ctx.store.add_source(&record).await?;
        }
    }
    Ok(())
}

/// Refuses to change by hand what the config file declares (the next start would undo it).
fn not_from_file(ctx: &Context, name: &str) -> anyhow::Result<()> {
    if ctx.settings.file.sources.iter().any(|s| s.name == name) {
        bail!("source {name} is declared in the config file ([sources.{name}]): change it there");
    }
    Ok(())
}

/// Runs a sources command.
pub async fn run(ctx: &Context, command: SourcesCommand) -> anyhow::Result<()> {
    sync_file_sources(ctx).await?;
    match command {
        SourcesCommand::Add(args) => add(ctx, args).await,
        SourcesCommand::List { format } => list(ctx, format).await,
        SourcesCommand::Show { name, format } => show(ctx, &name, format).await,
        SourcesCommand::Set(args) => set(ctx, args).await,
        SourcesCommand::Remove { name, yes } => remove(ctx, &name, yes).await,
        SourcesCommand::Test {
            name,
            payload,
            content_type,
            format,
        } => test(ctx, &name, &payload, content_type, format).await,
        SourcesCommand::Failures { name, all, format } => failures(ctx, &name, all, format).await,
        SourcesCommand::Replay { name } => replay(ctx, &name).await,
    }
}

async fn add(ctx: &Context, args: AddArgs) -> anyhow::Result<()> {
    check_name(&args.name).map_err(anyhow::Error::msg)?;
    not_from_file(ctx, &args.name)?;
    let Some(target) = target(args.webinar.as_deref(), args.series.as_deref())? else {
        bail!("name the webinar (--webinar KEY) or the series (--series KEY)");
    };
    let mut settings = SourceSettings {
        allow: args.allow,
        id_field: args.id_field,
        ..SourceSettings::default()
    };
    mapped(&mut settings, &args.map)?;
    signed(&mut settings, args.signature);
    let secret = if args.secret_stdin {
        crate::cmd::auth::read_stdin_secret("secret")?
    } else if args.kind.signs(&settings) {
        bail!(
            "a {} source needs the secret {} signs with: pass it on stdin with --secret-stdin",
            args.kind,
            if args.kind == Kind::Generic {
                "the tool"
            } else {
                args.kind.as_str()
            }
        );
    } else {
        new_secret()
    };
    let source = Source {
        name: args.name,
        kind: args.kind,
        target,
        secret: Some(secret),
        settings,
        seen: Vec::new(),
        created_at: ctx.now(),
    };
    source.check().map_err(anyhow::Error::msg)?;
    if !ctx.store.add_source(&source.to_record(ctx.now())).await? {
        bail!(
            "a source called {:?} exists: change it with g2w sources set, or remove it first",
            source.name
        );
    }
    let url = url(ctx, &source).await;
    match args.format {
        Shown::Json => print_json(
            &json!({"name": source.name, "kind": source.kind, "target": source.target.to_string(), "url": url, "path": source.path()}),
        ),
        Shown::Text => {
            say!("Source {} added: {} posts to", source.name, source.kind);
            say!("  {url}");
            if !source.kind.signs(&source.settings) {
                say!("The URL holds the secret: keep it like a password.");
            }
            say!(
                "See its mapping once the first post comes: g2w sources show {}",
                source.name
            );
            Ok(())
        }
    }
}

async fn list(ctx: &Context, format: Shown) -> anyhow::Result<()> {
    let sources = ctx.store.sources().await?;
    let waiting = ctx.store.waiting_posts().await?;
    let mut rows = Vec::new();
    for record in sources {
        let name = record.name.clone();
        let source = Source::from_record(record).map_err(anyhow::Error::msg)?;
        let waits = waiting.get(&name).copied().unwrap_or(0);
        rows.push((source, waits));
    }
    match format {
        Shown::Json => print_json(
            &rows
                .iter()
                .map(|(s, waits)| {
                    json!({"name": s.name, "kind": s.kind, "target": s.target.to_string(),
                        "path": s.path(), "needsMapping": waits})
                })
                .collect::<Vec<_>>(),
        ),
        Shown::Text => {
            if rows.is_empty() {
                say!(
                    "No sources yet: g2w sources add typeform --name NAME --webinar KEY --secret-stdin"
                );
                return Ok(());
            }
            say!(
                "{:<24}  {:<9}  {:<28}  {:>13}  URL path",
                "NAME",
                "TOOL",
                "REGISTERS FOR",
                "NEEDS MAPPING"
            );
            for (s, waits) in &rows {
                let path = if s.kind.signs(&s.settings) {
                    s.path()
                } else {
                    format!("/in/{}/…", s.name)
                };
                say!(
                    "{:<24}  {:<9}  {:<28}  {:>13}  {path}",
                    s.name,
                    s.kind.as_str(),
                    s.target.to_string(),
                    waits
                );
            }
            Ok(())
        }
    }
}

async fn show(ctx: &Context, name: &str, format: Shown) -> anyhow::Result<()> {
    let source = load(ctx, name).await?;
    let waiting = ctx
        .store
        .waiting_posts()
        .await?
        .get(name)
        .copied()
        .unwrap_or(0);
    let lines = explain(&source, &source.seen);
    let url = url(ctx, &source).await;
    match format {
        Shown::Json => print_json(&json!({
            "name": source.name, "kind": source.kind, "target": source.target.to_string(),
            "url": url, "path": source.path(), "signed": source.kind.signs(&source.settings),
            "settings": source.settings, "needsMapping": waiting,
            "fieldsSeen": source.seen, "mapping": lines,
        })),
        Shown::Text => {
            say!(
                "{} ({}) registers for {}",
                source.name,
                source.kind,
                source.target
            );
            if ctx
                .settings
                .file
                .sources
                .iter()
                .any(|s| s.name == source.name)
            {
                say!("Declared in the config file ([sources.{}]).", source.name);
            }
            say!("URL:       {url}");
            say!(
                "Checked:   {}",
                if source.kind.signs(&source.settings) {
                    "the tool's signature (secret stored encrypted)"
                } else {
                    "the secret in the URL"
                }
            );
            say!(
                "Addresses: {}",
                if source.settings.allow.is_empty() {
                    "any".to_owned()
                } else {
                    source.settings.allow.join(", ")
                }
            );
            if waiting > 0 {
                say!("Waiting:   {waiting} post(s) need mapping (g2w sources failures {name})");
            }
            say!("");
            if source.seen.is_empty() {
                say!("No post yet: the mapping below is what is set; the rest is guessed from");
                say!("the labels of the first post (First name, Last name, E-mail, Company…).");
            } else {
                say!("Mapping, against the fields of the latest post:");
            }
            print_lines(&lines);
            Ok(())
        }
    }
}

async fn set(ctx: &Context, args: SetArgs) -> anyhow::Result<()> {
    not_from_file(ctx, &args.name)?;
    let mut source = load(ctx, &args.name).await?;
    mapped(&mut source.settings, &args.map)?;
    for goto in &args.unmap {
        if source.settings.map.remove(goto.trim()).is_none() {
            bail!("--unmap {goto:?}: the mapping does not set it");
        }
    }
    if let Some(target) = target(args.webinar.as_deref(), args.series.as_deref())? {
        source.target = target;
    }
    if args.secret_stdin {
        source.secret = Some(crate::cmd::auth::read_stdin_secret("secret")?);
    }
    if args.any_address {
        source.settings.allow.clear();
    } else if !args.allow.is_empty() {
        source.settings.allow = args.allow;
    }
    if let Some(field) = args.id_field {
        source.settings.id_field = Some(field);
    }
    signed(&mut source.settings, args.signature);
    source.check().map_err(anyhow::Error::msg)?;
    if !ctx
        .store
        .update_source(&source.to_record(ctx.now()))
        .await?
    {
        bail!("no source called {:?}", source.name);
    }
    say!("Source {} changed. Its mapping now:", source.name);
    print_lines(&explain(&source, &source.seen));
    let waiting = ctx
        .store
        .waiting_posts()
        .await?
        .get(&source.name)
        .copied()
        .unwrap_or(0);
    if waiting > 0 {
        say!(
            "{waiting} kept post(s) wait: g2w sources replay {} sends them",
            source.name
        );
    }
    Ok(())
}

async fn remove(ctx: &Context, name: &str, yes: bool) -> anyhow::Result<()> {
    not_from_file(ctx, name)?;
    load(ctx, name).await?;
    let kept = ctx.store.kept_posts(name, false, u32::MAX).await?.len();
    let question = format!(
        "Remove source {name} and the {kept} post(s) kept for it? Its URL will answer 404."
    );
    if !confirm(&question, yes)? {
        bail!("nothing removed");
    }
    ctx.store.remove_source(name).await?;
    say!("Source {name} removed.");
    Ok(())
}

async fn test(
    ctx: &Context,
    name: &str,
    payload: &std::path::Path,
    content_type: Option<String>,
    format: Shown,
) -> anyhow::Result<()> {
    let source = load(ctx, name).await?;
    let body = std::fs::read(payload)
        .with_context(|| format!("cannot read the payload {}", payload.display()))?;
    if body.len() > g2w_gateway::BODY_LIMIT {
        bail!(
            "the payload has {} bytes; the gateway takes at most {}",
            body.len(),
            g2w_gateway::BODY_LIMIT
        );
    }
    let content_type = content_type.unwrap_or_else(|| {
        match source.kind {
            Kind::Unbounce => "application/x-www-form-urlencoded",
            _ => "application/json",
        }
        .to_owned()
    });
    let tested = gateway(ctx)
        .await?
        .test_source(name, &content_type, &body)
        .await
        .map_err(anyhow::Error::msg)?;
    match format {
        Shown::Json => print_json(&json!({
            "submissionId": tested.submission_id,
            "mapping": tested.mapping,
            "registration": tested.outcome.as_ref().ok(),
            "refused": tested.outcome.as_ref().err(),
        }))?,
        Shown::Text => {
            if !tested.mapping.is_empty() {
                say!("Mapping:");
                print_lines(&tested.mapping);
                say!("");
            }
            if let Ok(preview) = &tested.outcome {
                say!(
                    "Would register for webinar {} (profile {}){}:",
                    preview.webinar_key,
                    preview.profile,
                    if preview.validated {
                        ""
                    } else {
                        ", checked on the basics only (GoTo could not describe the form)"
                    }
                );
                say!("{}", serde_json::to_string_pretty(&preview.registrant)?);
                if let Some(id) = &tested.submission_id {
                    say!("Submission id (a repeat registers nobody twice): {id}");
                }
            }
        }
    }
    match tested.outcome {
        Ok(_) => Ok(()),
        Err(why) => bail!("it would be kept, not registered: {why}"),
    }
}

async fn failures(ctx: &Context, name: &str, all: bool, format: Shown) -> anyhow::Result<()> {
    load(ctx, name).await?;
    let posts = ctx.store.kept_posts(name, !all, 10_000).await?;
    match format {
        Shown::Json => print_json(
            &posts
                .iter()
                .map(|p| {
                    json!({"id": p.id, "submissionId": p.submission_id,
                        "receivedAt": p.received_at.to_rfc3339(),
                        "state": match p.state { PostState::NeedsMapping => "needs_mapping", PostState::Registered => "registered" },
                        "reason": p.reason, "registrationId": p.registration_id,
                        "contentType": p.content_type,
                        "body": String::from_utf8_lossy(&p.body)})
                })
                .collect::<Vec<_>>(),
        ),
        Shown::Text => {
            if posts.is_empty() {
                say!("No posts of {name} wait for a mapping.");
                return Ok(());
            }
            for p in &posts {
                let state = match p.state {
                    PostState::NeedsMapping => "needs mapping".to_owned(),
                    PostState::Registered => format!(
                        "registered ({})",
                        p.registration_id.as_deref().unwrap_or("")
                    ),
                };
                say!(
                    "{}  {}  submission {}  {state}",
                    p.id,
                    when(p.received_at),
                    p.submission_id
                );
                if let Some(reason) = &p.reason {
                    say!("    {reason}");
                }
            }
            say!("");
            say!("Fix the mapping (g2w sources set {name} --map GOTO=TOOL), then: g2w sources replay {name}");
            Ok(())
        }
    }
}

async fn replay(ctx: &Context, name: &str) -> anyhow::Result<()> {
    load(ctx, name).await?;
    let replayed = gateway(ctx)
        .await?
        .replay_source(name)
        .await
        .map_err(anyhow::Error::msg)?;
    say!(
        "{} post(s) registered (the gateway delivers them), {} still refused.",
        replayed.registered.len(),
        replayed.refused.len()
    );
    for (id, why) in &replayed.refused {
        say!("  {id}: {why}");
    }
    if replayed.interrupted {
        bail!("the store stopped answering: run g2w sources replay {name} again");
    }
    Ok(())
}
