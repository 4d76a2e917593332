//! Output for people (aligned tables, local times on a terminal) and for scripts (JSON
//! and CSV whose shape does not change).

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by `--quiet`: progress displays stay hidden.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Records `--quiet`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
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
            None => self.write_to(format, std::io::stdout().lock()),
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
                let widths: Vec<usize> = (0..self.columns.len())
                    .map(|i| {
                        self.rows
                            .iter()
                            .map(|r| r[i].chars().count())
                            .chain([self.columns[i].len()])
                            .max()
                            .unwrap_or(0)
                            .min(60)
                    })
                    .collect();
                let line = |cells: Vec<&str>| {
                    cells
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| {
                            let c: String = c.chars().take(*w).collect();
                            format!("{c:<w$}")
                        })
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_owned()
                };
                writeln!(
                    out,
                    "{}",
                    line(
                        self.columns
                            .iter()
                            .map(|c| c.to_uppercase())
                            .collect::<Vec<_>>()
                            .iter()
                            .map(String::as_str)
                            .collect()
                    )
                )?;
                for row in &self.rows {
                    writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
                }
            }
        }
        Ok(())
    }
}

/// Column names for a [`Listing`].
pub fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

/// A time for people: local time on a terminal, UTC (RFC 3339) otherwise.
pub fn human_time(t: chrono::DateTime<chrono::Utc>) -> String {
    if std::io::stdout().is_terminal() {
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    } else {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
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
