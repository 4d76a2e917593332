//! `g2w registrants`: the form, the list, one registrant, add, remove, export, import.

pub mod import;

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use g2w_gateway::intake::{self, Submission};
use g2w_goto::{GotoClient, GotoError, RegistrantKey, RegistrationFields, WebinarKey};

use crate::context::Context;
use crate::output::{Format, Listing, Shown, print_json, say};

/// `g2w registrants …`
#[derive(Debug, clap::Subcommand)]
pub enum RegistrantsCommand {
    /// The webinar's registration form: standard fields and custom questions with keys.
    Fields {
        /// The webinar key.
        webinar_key: WebinarKey,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Shown::Text)]
        format: Shown,
    },
    /// Everyone registered.
    List {
        /// The webinar key.
        webinar_key: WebinarKey,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One registrant with every field and answer.
    Show {
        /// The webinar key.
        webinar_key: WebinarKey,
        /// The registrant key.
        registrant_key: RegistrantKey,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Shown::Text)]
        format: Shown,
    },
    /// Remove a registrant (only while the webinar is ahead).
    Remove {
        /// The webinar key.
        webinar_key: WebinarKey,
        /// The registrant key.
        registrant_key: RegistrantKey,
    },
    /// Register someone, checked against the webinar's form first.
    Add(AddArgs),
    /// Everything GoTo keeps about every registrant.
    Export {
        /// The webinar key.
        webinar_key: WebinarKey,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
    },
    /// Register everyone in a CSV file: validated first, resumable, with a report.
    Import(import::ImportArgs),
}

/// Export formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// CSV, one column per field GoTo returned.
    Csv,
    /// A JSON array.
    Json,
}

/// Options of `g2w registrants add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The webinar key.
    webinar_key: WebinarKey,
    /// Email.
    #[arg(long)]
    email: String,
    /// First name.
    #[arg(long)]
    first_name: String,
    /// Last name.
    #[arg(long)]
    last_name: String,
    /// A standard field, as NAME=VALUE (organization=Acme, jobTitle=CTO, …).
    #[arg(long = "field", value_name = "NAME=VALUE", value_parser = parse_pair)]
    fields: Vec<(String, String)>,
    /// A custom answer, as QUESTION=ANSWER; QUESTION is the question's text or key, a
    /// multiple-choice ANSWER the answer's text or key.
    #[arg(long = "answer", value_name = "QUESTION=ANSWER", value_parser = parse_pair)]
    answers: Vec<(String, String)>,
    /// Ask GoTo to send the confirmation email again.
    #[arg(long)]
    resend_confirmation: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Shown::Text)]
    format: Shown,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// Prints a registration form.
pub fn print_fields(form: &RegistrationFields) {
    say!("  fields:");
    for f in &form.fields {
        let need = if f.required { "required" } else { "optional" };
        let choices = if f.answers.is_empty() {
            String::new()
        } else {
            format!(" — one of: {}", f.answers.join(", "))
        };
        say!("    {:<22} {need}{choices}", f.field);
    }
    if form.questions.is_empty() {
        say!("  questions: none");
    } else {
        say!("  questions:");
    }
    for q in &form.questions {
        let need = if q.required { "required" } else { "optional" };
        let kind = match q.kind {
            g2w_goto::QuestionType::ShortAnswer => format!(
                "short answer, up to {} characters",
                g2w_gateway::intake::answer_limit(q)
            ),
            g2w_goto::QuestionType::MultipleChoice => "multiple choice".to_owned(),
            g2w_goto::QuestionType::Unknown => "unknown kind".to_owned(),
        };
        say!("    [{}] {} ({need}, {kind})", q.question_key, q.question);
        for a in &q.answers {
            say!("        [{}] {}", a.answer_key, a.answer);
        }
    }
}

/// One registrant as labelled lines: the summary, every other field GoTo keeps, and
/// each answer under its question's text.
fn print_registrant(r: &g2w_goto::RegistrantDetail) {
    let s = &r.registrant;
    say!("{} {} <{}>", s.first_name, s.last_name, s.email);
    say!("  registrant key:   {}", s.registrant_key);
    say!("  status:           {}", s.status.as_deref().unwrap_or("-"));
    say!(
        "  registered:       {}",
        s.registration_date.as_deref().unwrap_or("-")
    );
    say!(
        "  join URL:         {}",
        s.join_url.as_deref().unwrap_or("-")
    );
    for (name, value) in &r.other {
        let text = match value {
            serde_json::Value::String(t) => t.clone(),
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        say!("  {:<17} {text}", format!("{name}:"));
    }
    if !r.responses.is_empty() {
        say!("  answers:");
        for a in &r.responses {
            say!("    {}: {}", a.question, a.answer);
        }
    }
}

/// The question a CSV header or `--answer` names: its key or its text (case-insensitive).
pub fn find_question<'a>(
    form: &'a RegistrationFields,
    name: &str,
) -> Option<&'a g2w_goto::Question> {
    let name = name.trim();
    form.questions.iter().find(|q| {
        q.question_key.to_string() == name || q.question.trim().eq_ignore_ascii_case(name)
    })
}

/// The join URL of an already-registered email, from GoTo's list.
pub async fn existing_join_url(
    client: &GotoClient,
    webinar: WebinarKey,
    email: &str,
    known: Option<String>,
) -> Option<String> {
    if known.is_some() {
        return known;
    }
    client
        .find_registrant(webinar, email)
        .await
        .ok()
        .flatten()
        .and_then(|r| r.join_url)
}

async fn add(client: &GotoClient, args: AddArgs) -> anyhow::Result<()> {
    let form = client
        .registration_fields(args.webinar_key)
        .await
        .context("cannot read the webinar's registration form")?;
    let mut sub = Submission::default();
    sub.fields.insert("firstName".into(), args.first_name);
    sub.fields.insert("lastName".into(), args.last_name);
    sub.fields.insert("email".into(), args.email);
    for (name, value) in args.fields {
        let canonical = import::canonical_field(&name)
            .with_context(|| format!("--field {name}: not a GoTo registration field"))?;
        sub.fields.insert(canonical.to_owned(), value);
    }
    for (question, answer) in args.answers {
        let q = find_question(&form, &question)
            .with_context(|| format!("--answer {question:?}: the webinar has no such question"))?;
        sub.answers.insert(q.question_key.to_string(), answer);
    }
    let accepted = match intake::validate(&sub, Some(&form)) {
        Ok(a) => a,
        Err(errors) => {
            bail!(
                "not sent: {}",
                intake::describe(&errors, Some(&form)).join("; ")
            );
        }
    };
    let email = accepted.registrant.email.clone();
    match client
        .create_registrant(
            args.webinar_key,
            &accepted.registrant,
            args.resend_confirmation,
        )
        .await
    {
        Ok(created) => {
            if args.format == Shown::Json {
                return print_json(&serde_json::json!({
                    "status": "registered",
                    "registrantKey": created.registrant_key,
                    "joinUrl": created.join_url,
                }));
            }
            say!("registered: registrant key {}", created.registrant_key);
            say!("join URL: {}", created.join_url);
            Ok(())
        }
        Err(GotoError::AlreadyRegistered {
            join_url,
            registrant_key,
        }) => {
            let url = existing_join_url(client, args.webinar_key, &email, join_url).await;
            if args.format == Shown::Json {
                return print_json(&serde_json::json!({
                    "status": "already_registered",
                    "registrantKey": registrant_key,
                    "joinUrl": url,
                }));
            }
            say!("already registered");
            say!("join URL: {}", url.as_deref().unwrap_or("(not found)"));
            Ok(())
        }
        Err(e) => Err(e).context("GoTo did not register them"),
    }
}

/// Runs a registrants command.
pub async fn run(ctx: &Context, command: RegistrantsCommand) -> anyhow::Result<()> {
    let client = ctx.client(ctx.token_manager().await?);
    match command {
        RegistrantsCommand::Fields {
            webinar_key,
            format,
        } => {
            let form = client.registration_fields(webinar_key).await?;
            if format == Shown::Json {
                return print_json(&form);
            }
            say!("Registration form of webinar {webinar_key}:");
            print_fields(&form);
            Ok(())
        }
        RegistrantsCommand::List {
            webinar_key,
            format,
        } => {
            let list = client.registrants(webinar_key).await?;
            Listing {
                columns: crate::output::columns(&[
                    "registrantKey",
                    "email",
                    "firstName",
                    "lastName",
                    "status",
                    "registrationDate",
                    "joinUrl",
                ]),
                rows: list
                    .iter()
                    .map(|r| {
                        vec![
                            r.registrant_key.to_string(),
                            r.email.clone(),
                            r.first_name.clone(),
                            r.last_name.clone(),
                            r.status.clone().unwrap_or_default(),
                            r.registration_date.clone().unwrap_or_default(),
                            r.join_url.clone().unwrap_or_default(),
                        ]
                    })
                    .collect(),
                json: serde_json::to_value(&list)?,
            }
            .print(format)
        }
        RegistrantsCommand::Show {
            webinar_key,
            registrant_key,
            format,
        } => {
            let r = client.registrant(webinar_key, registrant_key).await?;
            if format == Shown::Json {
                return print_json(&r);
            }
            print_registrant(&r);
            Ok(())
        }
        RegistrantsCommand::Remove {
            webinar_key,
            registrant_key,
        } => {
            client
                .delete_registrant(webinar_key, registrant_key)
                .await?;
            say!("removed registrant {registrant_key}");
            Ok(())
        }
        RegistrantsCommand::Add(args) => add(&client, args).await,
        RegistrantsCommand::Export {
            webinar_key,
            format,
        } => export(&client, webinar_key, format).await,
        RegistrantsCommand::Import(args) => import::run(ctx, &client, args).await,
    }
}

async fn export(
    client: &GotoClient,
    webinar: WebinarKey,
    format: ExportFormat,
) -> anyhow::Result<()> {
    let details = client.registrant_details(webinar).await?;
    match format {
        ExportFormat::Json => say!("{}", serde_json::to_string_pretty(&details)?),
        ExportFormat::Csv => {
            // One column per field any registrant has; answers as one column per question.
            let rows: Vec<BTreeMap<String, String>> = details
                .iter()
                .map(|d| {
                    let mut row = BTreeMap::new();
                    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(d) {
                        for (k, v) in map {
                            if k == "responses" {
                                continue;
                            }
                            let text = match v {
                                serde_json::Value::String(s) => s,
                                serde_json::Value::Null => String::new(),
                                other => other.to_string(),
                            };
                            row.insert(k, text);
                        }
                    }
                    for a in &d.responses {
                        row.insert(format!("question: {}", a.question), a.answer.clone());
                    }
                    row
                })
                .collect();
            let mut columns: Vec<String> = ["registrantKey", "email", "firstName", "lastName"]
                .map(String::from)
                .to_vec();
            for row in &rows {
                for k in row.keys() {
                    if !columns.contains(k) {
                        columns.push(k.clone());
                    }
                }
            }
            let cells = rows
                .iter()
                .map(|row| {
                    columns
                        .iter()
                        .map(|c| row.get(c).cloned().unwrap_or_default())
                        .collect()
                })
                .collect();
            crate::output::Listing {
                json: serde_json::to_value(&rows)?,
                columns,
                rows: cells,
            }
            .print(crate::output::Format::Csv)?;
        }
    }
    Ok(())
}
