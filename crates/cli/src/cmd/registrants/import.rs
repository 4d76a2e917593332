//! `g2w registrants import`: a CSV file of people, registered once each.
//!
//! Three streaming passes over the file, so memory stays flat whatever its size:
//! validate every row (and stop there with `--dry-run`); send the valid rows with
//! bounded concurrency under the account's rate limit, recording each outcome in the
//! store's journal; write the report. Running the same file for the same webinar again
//! skips rows the journal has as done, without calling GoTo. Ctrl-C stops sending,
//! waits for the calls in flight, and a re-run continues.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context as _, bail};
use g2w_gateway::intake::{self, Submission};
use g2w_goto::{GotoClient, GotoError, NewRegistrant, RegistrationFields, WebinarKey};
use g2w_store::{JournalEntry, JournalOutcome, Store};
use sha2::{Digest as _, Sha256};

use crate::context::Context;
use crate::output::{Shown, print_json, say};

/// Options of `g2w registrants import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The webinar key.
    webinar_key: WebinarKey,
    /// The CSV file: a header row, then one person a row.
    file: PathBuf,
    /// Check every row and list the problems; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Registrations in flight at once (they share the account's rate limit).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Ask GoTo to send confirmation emails again to people already registered.
    #[arg(long)]
    resend_confirmation: bool,
    /// Write every row with its outcome and join URL to this CSV file.
    #[arg(long, value_name = "OUT.csv")]
    report: Option<PathBuf>,
    /// The character between fields: `,`, `;`, `tab` or `|`. Default: whichever of
    /// them the header row uses (spreadsheets in many countries save with `;`).
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
    delimiter: Option<u8>,
    /// How the summary is printed.
    #[arg(long, value_enum, default_value_t = Shown::Text)]
    format: Shown,
}

fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        "|" | "pipe" => Ok(b'|'),
        other => Err(format!(
            "{other:?} is not a delimiter g2w reads: use ',', ';', 'tab' or '|'"
        )),
    }
}

/// The delimiter the header row of `path` uses: the candidate seen most often outside
/// quotes, `,` when none is.
fn sniff_delimiter(path: &Path) -> anyhow::Result<u8> {
    use std::io::Read as _;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut counts = [(b',', 0_usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for &b in head.iter().take_while(|&&b| b != b'\n') {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(c) = counts.iter_mut().find(|(d, _)| *d == b) {
            c.1 += 1;
        }
    }
    Ok(counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(_, n)| *n)
        .map_or(b',', |(d, _)| *d))
}

/// The GoTo field a CSV header means, matched leniently (`First Name`, `first_name`,
/// `firstName` and `given name` are all `firstName`).
pub fn canonical_field(header: &str) -> Option<&'static str> {
    let key: String = header
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase();
    Some(match key.as_str() {
        "firstname" | "givenname" | "first" | "forename" => "firstName",
        "lastname" | "surname" | "familyname" | "last" => "lastName",
        "email" | "emailaddress" | "mail" => "email",
        "organization" | "organisation" | "company" | "companyname" => "organization",
        "jobtitle" | "title" | "position" => "jobTitle",
        "phone" | "phonenumber" | "telephone" => "phone",
        "address" | "street" => "address",
        "city" => "city",
        "state" | "province" | "region" => "state",
        "zipcode" | "zip" | "postalcode" | "postcode" => "zipCode",
        "country" => "country",
        "industry" => "industry",
        "numberofemployees" | "employees" | "companysize" => "numberOfEmployees",
        "purchasingtimeframe" => "purchasingTimeFrame",
        "purchasingrole" => "purchasingRole",
        "questionsandcomments" | "questions" | "comments" => "questionsAndComments",
        "source" => "source",
        _ => return None,
    })
}

/// What a CSV column feeds.
#[derive(Debug, Clone)]
enum Column {
    Field(&'static str),
    Question(String),
    Ignored,
}

fn map_header(
    header: &csv::ByteRecord,
    form: &RegistrationFields,
) -> anyhow::Result<(Vec<Column>, Vec<String>)> {
    let mut columns = Vec::with_capacity(header.len());
    let mut ignored = Vec::new();
    for (i, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .with_context(|| format!("line 1: column {} of the header is not UTF-8 text", i + 1))?
            .trim();
        let column = if let Some(field) = canonical_field(name) {
            Column::Field(field)
        } else if let Some(q) = super::find_question(form, name) {
            Column::Question(q.question_key.to_string())
        } else {
            ignored.push(name.to_owned());
            Column::Ignored
        };
        columns.push(column);
    }
    for needed in ["email", "firstName", "lastName"] {
        if !columns
            .iter()
            .any(|c| matches!(c, Column::Field(f) if *f == needed))
        {
            bail!(
                "line 1: the header has no {needed} column (headers are matched leniently: `{needed}`, `{}`…)",
                match needed {
                    "email" => "E-mail",
                    "firstName" => "First Name",
                    _ => "last_name",
                }
            );
        }
    }
    Ok((columns, ignored))
}

fn submission(columns: &[Column], record: &csv::ByteRecord) -> Result<Submission, String> {
    if record.len() > columns.len() {
        return Err(format!(
            "has {} fields but the header has {}",
            record.len(),
            columns.len()
        ));
    }
    let mut sub = Submission::default();
    for (i, (column, raw)) in columns.iter().zip(record.iter()).enumerate() {
        let text = std::str::from_utf8(raw)
            .map_err(|_| format!("field {} is not UTF-8 text (save the file as UTF-8)", i + 1))?;
        match column {
            Column::Field(f) => {
                sub.fields.insert((*f).to_owned(), text.to_owned());
            }
            Column::Question(key) => {
                sub.answers.insert(key.clone(), text.to_owned());
            }
            Column::Ignored => {}
        }
    }
    Ok(sub)
}

/// The CSV reader g2w uses. Records end at `\n` only: with the csv crate's default
/// (any of CR, LF, CRLF) the line numbers of CRLF files are one short. A trailing CR is
/// whitespace and trimmed with the rest.
fn reader_builder(delimiter: u8) -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder
        .delimiter(delimiter)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'));
    builder
}

/// Who a row names as given (email, first name, last name), valid or not: the report
/// shows it for refused rows too.
type Who = (String, String, String);

/// The row's email and names as written, whatever else is wrong with it (too many
/// fields, text that is not UTF-8): a refused row in the report says whose it was.
fn who(columns: &[Column], record: &csv::ByteRecord) -> Who {
    let get = |name: &str| {
        columns
            .iter()
            .position(|c| matches!(c, Column::Field(f) if *f == name))
            .and_then(|i| record.get(i))
            .map(|raw| String::from_utf8_lossy(raw).trim().to_owned())
            .unwrap_or_default()
    };
    (get("email"), get("firstName"), get("lastName"))
}

/// A row: its line number, who it names, and what validation made of it.
type Row = (u64, Who, Result<NewRegistrant, String>);

/// Streams the rows of `path`, each validated against `form`.
fn rows(
    path: &Path,
    delimiter: u8,
    columns: Arc<Vec<Column>>,
    form: Arc<RegistrationFields>,
) -> anyhow::Result<impl Iterator<Item = Row>> {
    let mut reader = reader_builder(delimiter)
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    reader.byte_headers()?;
    Ok(reader.into_byte_records().map(move |record| match record {
        Ok(record) => {
            let line = record.position().map_or(0, csv::Position::line);
            let sub = submission(&columns, &record);
            let who = who(&columns, &record);
            let row = sub
                .and_then(|sub| {
                    intake::validate(&sub, Some(&form))
                        .map_err(|e| intake::describe(&e, Some(&form)).join("; "))
                })
                .map(|a| a.registrant);
            (line, who, row)
        }
        Err(e) => {
            let line = e.position().map_or(0, csv::Position::line);
            (line, Who::default(), Err(format!("unreadable CSV: {e}")))
        }
    }))
}

fn import_id(path: &Path, webinar: WebinarKey) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("cannot read {}", path.display()))?;
    hasher.update(webinar.to_string().as_bytes());
    Ok(hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[derive(Default)]
struct Tally {
    registered: AtomicU64,
    already: AtomicU64,
    invalid: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
}

impl Tally {
    fn add(&self, outcome: JournalOutcome) {
        let counter = match outcome {
            JournalOutcome::Registered => &self.registered,
            JournalOutcome::AlreadyRegistered => &self.already,
            JournalOutcome::Invalid => &self.invalid,
            JournalOutcome::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn done(&self) -> u64 {
        [
            &self.registered,
            &self.already,
            &self.invalid,
            &self.failed,
            &self.skipped,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

async fn journal(store: &Store, id: &str, line: u64, entry: JournalEntry) -> anyhow::Result<()> {
    store
        .journal_record(id, line, &entry, g2w_goto::Timestamp::now())
        .await?;
    Ok(())
}

async fn journal_get(store: &Store, id: &str, line: u64) -> anyhow::Result<Option<JournalEntry>> {
    Ok(store.journal_entry(id, line).await?)
}

/// Registers one row and says how it ended.
async fn send(
    client: &GotoClient,
    webinar: WebinarKey,
    registrant: &NewRegistrant,
    resend: bool,
) -> JournalEntry {
    let entry = |outcome: JournalOutcome,
                 key: Option<String>,
                 url: Option<String>,
                 detail: Option<String>| JournalEntry {
        outcome,
        registrant_key: key,
        join_url: url,
        detail,
    };
    match client.create_registrant(webinar, registrant, resend).await {
        Ok(c) => entry(
            JournalOutcome::Registered,
            Some(c.registrant_key.to_string()),
            Some(c.join_url),
            None,
        ),
        Err(GotoError::AlreadyRegistered {
            registrant_key,
            join_url,
        }) => {
            let url = super::existing_join_url(client, webinar, &registrant.email, join_url).await;
            entry(
                JournalOutcome::AlreadyRegistered,
                registrant_key.map(|k| k.to_string()),
                url,
                None,
            )
        }
        Err(e @ GotoError::RegistrationInvalid { .. }) => {
            entry(JournalOutcome::Invalid, None, None, Some(e.to_string()))
        }
        Err(e) => entry(JournalOutcome::Failed, None, None, Some(e.to_string())),
    }
}

/// Runs the import.
pub async fn run(ctx: &Context, client: &GotoClient, args: ImportArgs) -> anyhow::Result<()> {
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?
        .len();
    if size == 0 {
        bail!(
            "{} is empty: it needs a header row and at least one person",
            args.file.display()
        );
    }
    let form = Arc::new(
        client
            .registration_fields(args.webinar_key)
            .await
            .context("cannot read the webinar's registration form")?,
    );
    let delimiter = match args.delimiter {
        Some(d) => d,
        None => sniff_delimiter(&args.file)?,
    };
    let mut reader = reader_builder(delimiter).from_path(&args.file)?;
    let header = reader
        .byte_headers()
        .with_context(|| format!("line 1 of {}: unreadable header", args.file.display()))?
        .clone();
    drop(reader);
    let (columns, ignored) = map_header(&header, &form)?;
    if !ignored.is_empty() {
        eprintln!(
            "note: columns ignored (neither a GoTo field nor a question of this webinar): {}",
            ignored.join(", ")
        );
    }
    let columns = Arc::new(columns);

    // Pass 1: validate everything before anything is sent.
    let (mut valid, mut invalid, mut shown) = (0_u64, 0_u64, 0);
    for (line, _, row) in rows(&args.file, delimiter, columns.clone(), form.clone())? {
        match row {
            Ok(_) => valid += 1,
            Err(why) => {
                invalid += 1;
                if shown < 50 {
                    eprintln!("line {line}: {why}");
                    shown += 1;
                }
            }
        }
    }
    if invalid > 50 {
        eprintln!("… and {} more invalid rows", invalid - 50);
    }
    if valid + invalid == 0 {
        bail!("{} has a header but no rows", args.file.display());
    }
    if args.dry_run {
        say!(
            "{} rows: {valid} valid, {invalid} invalid. Nothing was sent (--dry-run).",
            valid + invalid
        );
        if invalid > 0 {
            bail!("{invalid} invalid row(s)");
        }
        return Ok(());
    }

    // Pass 2: send, resumably.
    let id = import_id(&args.file, args.webinar_key)?;
    let total = valid + invalid;
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let progress = crate::output::show_progress();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(usize::from(args.concurrency)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut interrupted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut last_draw = Instant::now();
    for (line, _, row) in rows(&args.file, delimiter, columns.clone(), form.clone())? {
        if let Some(entry) = journal_get(&ctx.store, &id, line).await?
            && entry.is_done()
        {
            tally.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let registrant = match row {
            Ok(r) => r,
            Err(why) => {
                journal(
                    &ctx.store,
                    &id,
                    line,
                    JournalEntry {
                        outcome: JournalOutcome::Invalid,
                        registrant_key: None,
                        join_url: None,
                        detail: Some(why),
                    },
                )
                .await?;
                tally.add(JournalOutcome::Invalid);
                continue;
            }
        };
        let permit = tokio::select! {
            p = semaphore.clone().acquire_owned() => p?,
            _ = &mut ctrl_c => { interrupted = true; break; }
        };
        let (client, store, id, counts) =
            (client.clone(), ctx.store.clone(), id.clone(), tally.clone());
        let (webinar, resend) = (args.webinar_key, args.resend_confirmation);
        tasks.spawn(async move {
            let entry = send(&client, webinar, &registrant, resend).await;
            counts.add(entry.outcome);
            let result = journal(&store, &id, line, entry).await;
            drop(permit);
            result
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
        if progress && last_draw.elapsed().as_millis() >= 200 {
            last_draw = Instant::now();
            draw(&tally, total, started);
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    if progress {
        draw(&tally, total, started);
        eprintln!();
    }

    // Pass 3: the report, in file order.
    if let Some(path) = &args.report {
        write_report(ctx, (&args.file, delimiter), path, &id, columns, form).await?;
    }
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    if args.format == Shown::Json {
        print_json(&serde_json::json!({
            "registered": get(&tally.registered),
            "alreadyRegistered": get(&tally.already),
            "invalid": get(&tally.invalid),
            "failed": get(&tally.failed),
            "doneInAnEarlierRun": get(&tally.skipped),
            "interrupted": interrupted,
            "report": args.report.as_ref().map(|p| p.display().to_string()),
        }))?;
    } else {
        say!(
            "registered: {}, already registered: {}, invalid: {}, failed: {}, done in an earlier run: {}",
            get(&tally.registered),
            get(&tally.already),
            get(&tally.invalid),
            get(&tally.failed),
            get(&tally.skipped)
        );
    }
    if interrupted {
        eprintln!(
            "Stopped by Ctrl-C after the calls in flight; run the same command again to continue."
        );
        std::process::exit(130);
    }
    let bad = get(&tally.invalid) + get(&tally.failed);
    if bad > 0 {
        bail!(
            "{bad} row(s) invalid or failed{}",
            if args.report.is_some() {
                "; see the report"
            } else {
                "; --report OUT.csv lists them"
            }
        );
    }
    Ok(())
}

fn draw(tally: &Tally, total: u64, started: Instant) {
    let done = tally.done();
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let rate = done as f64 / secs;
    let eta = if rate > 0.0 {
        (total.saturating_sub(done)) as f64 / rate
    } else {
        0.0
    };
    eprint!("\r{done}/{total} rows  {rate:.0} rows/s  ETA {eta:.0}s   ");
}

async fn write_report(
    ctx: &Context,
    (file, delimiter): (&Path, u8),
    path: &Path,
    id: &str,
    columns: Arc<Vec<Column>>,
    form: Arc<RegistrationFields>,
) -> anyhow::Result<()> {
    // The same delimiter as the file imported: the spreadsheet that made it reads it.
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_path(path)
        .with_context(|| format!("cannot write the report {}", path.display()))?;
    w.write_record([
        "line",
        "email",
        "firstName",
        "lastName",
        "outcome",
        "registrantKey",
        "joinUrl",
        "detail",
    ])?;
    for (line, (email, first, last), _) in rows(file, delimiter, columns, form)? {
        let entry = journal_get(&ctx.store, id, line).await?;
        let (outcome, key, url, detail) = match entry {
            Some(e) => (
                e.outcome.as_str().to_owned(),
                e.registrant_key,
                e.join_url,
                e.detail,
            ),
            None => ("not_processed".to_owned(), None, None, None),
        };
        w.write_record([
            line.to_string(),
            email,
            first,
            last,
            outcome,
            key.unwrap_or_default(),
            url.unwrap_or_default(),
            detail.unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::canonical_field;

    #[test]
    fn headers_match_leniently() {
        for h in ["firstName", "first_name", "First Name", " FIRST-NAME "] {
            assert_eq!(canonical_field(h), Some("firstName"), "{h}");
        }
        for h in ["email", "E-mail", "Email Address"] {
            assert_eq!(canonical_field(h), Some("email"), "{h}");
        }
        assert_eq!(canonical_field("Company"), Some("organization"));
        assert_eq!(canonical_field("favourite colour"), None);
    }
}
