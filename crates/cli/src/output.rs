//! Output for people (aligned tables, local times on a terminal) and for scripts (JSON
//! and CSV whose shape does not change).

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

/// `println!` for g2w's output: a reader that has gone away (`g2w … | head`) ends g2w
/// quietly, with success, as it ends other Unix tools.
macro_rules! say {
    () => { $crate::output::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use say;

/// Writes `text` to stdout (see [`say`]).
pub fn write_out(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        quit_if_no_reader(&e);
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// Ends g2w quietly if `e` says the reader of its output has gone away.
pub fn quit_if_no_reader(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
}

/// Ends g2w quietly if writing stdout failed because its reader went away, whichever
/// writer (CSV, JSON, a table) met it.
fn quit_if_reader_gone(e: &anyhow::Error) {
    for cause in e.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            quit_if_no_reader(io);
        }
        if let Some(csv) = cause.downcast_ref::<csv::Error>()
            && let csv::ErrorKind::Io(io) = csv.kind()
        {
            quit_if_no_reader(io);
        }
    }
}

/// Asks `question` on the terminal (yes/no, no by default); `yes` (`--yes`) answers it.
///
/// # Errors
/// Without `--yes` and without a terminal to ask on, a refusal that names `--yes`.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        anyhow::bail!("{question} Not without --yes: there is no terminal to ask on.");
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// Set by `--quiet`: progress displays and notices stay hidden.
static QUIET: AtomicBool = AtomicBool::new(false);
/// Set by `--log-format json`: stderr carries JSON lines only.
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Records `--quiet`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Records `--log-format json`.
pub fn set_json_logs(json: bool) {
    JSON_LOGS.store(json, Ordering::Relaxed);
}

/// Whether stderr carries JSON lines only (`--log-format json`).
pub fn json_logs() -> bool {
    JSON_LOGS.load(Ordering::Relaxed)
}

/// The target of notices in the logs (the default log filter always lets it through).
pub const NOTICE_TARGET: &str = "g2w::notice";

/// `eprintln!` for what a command tells the person running it (a gateway started or
/// stopped, what to do next): a plain line, or a JSON log line under
/// `--log-format json` so that stderr stays parseable; nothing under `--quiet`.
macro_rules! notice {
    ($($arg:tt)*) => { $crate::output::write_notice(&format!($($arg)*)) };
}
pub(crate) use notice;

/// See [`notice`].
pub fn write_notice(text: &str) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    if JSON_LOGS.load(Ordering::Relaxed) {
        tracing::info!(target: "g2w::notice", "{text}");
    } else {
        eprintln!("{text}");
    }
}

/// Whether a progress display belongs on stderr: a terminal, and not `--quiet`.
pub fn show_progress() -> bool {
    !QUIET.load(Ordering::Relaxed) && std::io::stderr().is_terminal()
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// A JSON array.
    Json,
    /// CSV with a header row.
    Csv,
}

/// How one record (not a listing) is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Shown {
    /// Labelled lines, for people.
    #[default]
    Text,
    /// One JSON object whose keys stay the same from release to release.
    Json,
}

/// Prints `value` as pretty JSON.
///
/// # Errors
/// When it cannot be serialized.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A listing: column names and rows of text; `json` is what `--format json` prints.
pub struct Listing {
    /// Column names (CSV header and table header).
    pub columns: Vec<String>,
    /// Rows, one cell per column.
    pub rows: Vec<Vec<String>>,
    /// The JSON form.
    pub json: serde_json::Value,
}

impl Listing {
    /// Prints the listing to stdout.
    ///
    /// # Errors
    /// When stdout cannot be written.
    pub fn print(&self, format: Format) -> anyhow::Result<()> {
        self.write(format, None)
    }

    /// Writes the listing to `path` (created or replaced), or stdout when `None`.
    ///
    /// # Errors
    /// When the file or stdout cannot be written.
    pub fn write(&self, format: Format, path: Option<&std::path::Path>) -> anyhow::Result<()> {
        match path {
            None => self
                .write_to(format, std::io::stdout().lock())
                .inspect_err(quit_if_reader_gone),
            Some(path) => {
                let file = std::fs::File::create(path)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                let mut out = std::io::BufWriter::new(file);
                self.write_to(format, &mut out)?;
                out.flush()
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
            }
        }
    }

    fn write_to(&self, format: Format, mut out: impl std::io::Write) -> anyhow::Result<()> {
        match format {
            Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&self.json)?)?,
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(&self.columns)?;
                for row in &self.rows {
                    w.write_record(row)?;
                }
                w.flush()?;
            }
            Format::Table => {
                let table = table(&self.columns, &self.rows, terminal_width());
                for line in table.lines() {
                    writeln!(out, "{}", line.trim_end())?;
                }
            }
        }
        Ok(())
    }
}

/// Columns whose text may be wrapped onto more lines: free text. Every other column (keys,
/// URLs, emails, times, counts) is printed whole, so what is copied from it works.
const WRAPPABLE: &[&str] = &[
    "subject",
    "firstName",
    "lastName",
    "organization",
    "jobTitle",
    "reason",
    "error",
    "lastError",
    "question",
    "description",
    "title",
];

/// The terminal's width when stdout is one; `None` (no limit) when it is a pipe or file.
fn terminal_width() -> Option<u16> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    terminal_size::terminal_size().map(|(w, _)| w.0)
}

/// Aligned columns, fitted to `width` by wrapping free-text columns only.
fn table(columns: &[String], rows: &[Vec<String>], width: Option<u16>) -> String {
    use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets};
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    match width {
        Some(width) => {
            table
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(width);
        }
        None => {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    table.set_header(columns.iter().map(|c| c.to_uppercase()));
    for row in rows {
        table.add_row(row);
    }
    for (column, name) in table.column_iter_mut().zip(columns) {
        column.set_padding((0, 2));
        if !WRAPPABLE.contains(&name.as_str()) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    table.to_string()
}

/// Column names for a [`Listing`].
pub fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
///
/// # Errors
/// Anything else, named.
pub fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{text:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

/// [`parse_time`] as a [`g2w_goto::Timestamp`], for `--…-before DATE` flags.
///
/// # Errors
/// Anything but a date or an RFC 3339 time, named.
pub fn parse_moment(text: &str) -> anyhow::Result<g2w_goto::Timestamp> {
    parse_time(text)
        .map(|t| g2w_goto::Timestamp::from_millis(t.timestamp_millis()))
        .map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn keys_and_urls_are_never_cut_and_free_text_wraps_to_the_terminal() {
        let url = "https://global.gotowebinar.com/join/8881234567890123456/123456789012345678";
        let columns = columns(&["registrantKey", "subject", "joinUrl"]);
        let rows = vec![vec![
            "9007199254740993".to_owned(),
            "A long webinar title that goes on and on about delivery".to_owned(),
            url.to_owned(),
        ]];
        for width in [Some(60), Some(200), None] {
            let shown = table(&columns, &rows, width);
            assert!(shown.contains(url), "{width:?}:\n{shown}");
            assert!(shown.contains("9007199254740993"), "{shown}");
            assert!(
                shown.lines().next().unwrap().starts_with("REGISTRANTKEY"),
                "{shown}"
            );
        }
        let narrow = table(&columns, &rows, Some(120));
        assert!(
            narrow.lines().count() > 2,
            "the subject wraps to fit 120 columns:\n{narrow}"
        );
        assert!(narrow.contains("A long webinar"), "{narrow}");
        let piped = table(&columns, &rows, None);
        assert_eq!(
            piped.lines().count(),
            2,
            "one line a row in a pipe:\n{piped}"
        );
    }
}

/// Parses a span as people write it: `90d`, `2w`, `12h`, `30m`, `45s`, or several such
/// parts together (`1h30m`).
///
/// # Errors
/// Anything else, or a span too long to count.
pub fn parse_span(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a span like 90d, 12h, 30m or 1h30m");
    let t = text.trim().to_ascii_lowercase();
    let mut total: u64 = 0;
    let mut rest = t.as_str();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        total = number
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        rest = &rest[digits + 1..];
    }
    (total <= 100 * 365 * 86_400)
        .then(|| std::time::Duration::from_secs(total))
        .ok_or_else(bad)
}

#[cfg(test)]
mod span_tests {
    #[test]
    fn spans_read_as_written() {
        for (text, secs) in [
            ("90d", 90 * 86_400),
            ("2w", 14 * 86_400),
            ("12h", 43_200),
            ("30m", 1_800),
            ("45s", 45),
        ] {
            assert_eq!(
                super::parse_span(text),
                Ok(std::time::Duration::from_secs(secs)),
                "{text}"
            );
        }
        assert_eq!(
            super::parse_span("1h30m"),
            Ok(std::time::Duration::from_secs(5_400))
        );
        for bad in [
            "",
            "d",
            "90",
            "-1d",
            "1.5h",
            "9999999999999w",
            "1y",
            "1h 30m",
            "h1",
        ] {
            assert!(super::parse_span(bad).is_err(), "{bad}");
        }
    }
}
