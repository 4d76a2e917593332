//! Form builders that post sign-ups to `/in/{source}`: Typeform, Webflow, Tally, Unbounce,
//! or any tool that posts JSON or a form (generic). A post is checked on its raw bytes
//! (`signature`), read the tool's way into fields (`fields`), mapped to GoTo's fields
//! (`mapping`), and then goes through the one intake like every registration
//! (`receive`). A signed post g2w cannot register yet is kept, as it came, for a replay
//! once its source's mapping (or its webinar) is fixed.

#[cfg(feature = "testing")]
pub mod fake;
mod fields;
mod mapping;
mod receive;
mod signature;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use g2w_goto::{RecurrenceKey, SecretString, Timestamp, WebinarKey};
use g2w_store::SourceRecord;
use serde::{Deserialize, Serialize};

use crate::proxy::ProxyRange;

pub use fields::{Field, Hint};
pub use mapping::{How, Line, Rule, explain, parse_map, standard_fields};
pub(crate) use receive::{Post, Received, receive, replay, test};
pub use receive::{Preview, Replayed, Tested};
pub(crate) use signature::Unsigned;

/// The longest source name (it is a URL segment).
const NAME_MAX: usize = 64;

/// The tools g2w reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Typeform: JSON answers by field reference, `Typeform-Signature`.
    Typeform,
    /// Webflow: JSON data by field label, `x-webflow-signature` over the timestamp too.
    Webflow,
    /// Tally: JSON fields, `Tally-Signature`.
    Tally,
    /// Unbounce: a form with `data.json`; a secret in the URL, an optional allow-list.
    Unbounce,
    /// Any tool: JSON or a form; a header you name, or a secret in the URL.
    Generic,
}

impl Kind {
    /// Every tool, as `g2w sources add` takes them.
    pub const ALL: [Self; 5] = [
        Self::Typeform,
        Self::Webflow,
        Self::Tally,
        Self::Unbounce,
        Self::Generic,
    ];

    /// Its name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Typeform => "typeform",
            Self::Webflow => "webflow",
            Self::Tally => "tally",
            Self::Unbounce => "unbounce",
            Self::Generic => "generic",
        }
    }

    /// Whether the tool signs its posts with the secret (else the secret is in the URL).
    #[must_use]
    pub fn signs(self, settings: &SourceSettings) -> bool {
        match self {
            Self::Typeform | Self::Webflow | Self::Tally => true,
            Self::Unbounce => false,
            Self::Generic => settings.signature.is_some(),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                format!(
                    "{text:?} is not a tool g2w reads: {}",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }
}

/// What a source registers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceTarget {
    /// One webinar.
    Webinar(WebinarKey),
    /// A series: the date the post names (a field mapped to `date`), else the next one.
    Series(RecurrenceKey),
}

impl fmt::Display for SourceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Webinar(key) => write!(f, "webinar:{key}"),
            Self::Series(key) => write!(f, "series:{key}"),
        }
    }
}

impl FromStr for SourceTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not webinar:KEY or series:KEY");
        match text.split_once(':') {
            Some(("webinar", key)) => key.parse().map(Self::Webinar).map_err(|_| bad()),
            Some(("series", key)) => key.parse().map(Self::Series).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

/// How a generic source's signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lower- or upper-case hex.
    #[default]
    Hex,
    /// Standard base64.
    Base64,
}

impl FromStr for Encoding {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "hex" => Ok(Self::Hex),
            "base64" => Ok(Self::Base64),
            _ => Err(format!("{text:?} is not hex or base64")),
        }
    }
}

/// A generic source's signature: HMAC-SHA256 under the secret of the body, or of the
/// timestamp header's value, the separator and the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenericSignature {
    /// The header that carries it.
    pub header: String,
    /// How the digest is written.
    #[serde(default)]
    pub encoding: Encoding,
    /// What comes before the digest in the header (`sha256=`), if anything.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// The header with the signing time (Unix seconds or milliseconds), when it is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// Between the timestamp and the body.
    #[serde(default = "dot", skip_serializing_if = "is_dot")]
    pub separator: String,
}

fn dot() -> String {
    ".".to_owned()
}

fn is_dot(s: &str) -> bool {
    s == "."
}

/// A source's settings beside its tool, target and secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSettings {
    /// GoTo's field (`email`, `organization`, `date`, a question's text or key) → the
    /// tool's field (its key or label). What is not here is guessed from labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map: BTreeMap<String, String>,
    /// A generic source's signature (without one, its secret is in the URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<GenericSignature>,
    /// A generic source's field with the tool's submission id (a dotted path in JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_field: Option<String>,
    /// The only addresses posts are taken from (addresses or ranges), when set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
}

/// A configured source.
#[derive(Clone)]
pub struct Source {
    /// Its name: `/in/{name}`.
    pub name: String,
    /// The tool.
    pub kind: Kind,
    /// What it registers for.
    pub target: SourceTarget,
    /// The secret the tool signs with, or that its URL carries.
    pub secret: Option<SecretString>,
    /// The rest.
    pub settings: SourceSettings,
    /// The tool's fields as its latest post named them.
    pub seen: Vec<Field>,
    /// When it was added.
    pub created_at: Timestamp,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("target", &self.target)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Checks a source name: letters, digits, `-` and `_`, at most 64.
///
/// # Errors
/// What is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(format!("a source name has 1 to {NAME_MAX} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{name:?}: a source name has letters, digits, - and _ only (it is part of a URL)"
        ));
    }
    Ok(())
}

impl Source {
    /// Checks that the parts fit together: a secret where the tool needs one, a
    /// signature only on a generic source, allow-list entries that are addresses.
    ///
    /// # Errors
    /// What does not fit, as a sentence.
    pub fn check(&self) -> Result<(), String> {
        check_name(&self.name)?;
        if self.secret.is_none() {
            return Err(match self.kind {
                Kind::Typeform | Kind::Webflow | Kind::Tally => format!(
                    "a {} source needs the secret {} signs with (--secret-stdin)",
                    self.kind, self.kind
                ),
                Kind::Unbounce | Kind::Generic => {
                    "a source needs a secret (g2w makes one when none is given)".to_owned()
                }
            });
        }
        if self.kind != Kind::Generic
            && (self.settings.signature.is_some() || self.settings.id_field.is_some())
        {
            return Err(format!(
                "a {} source is signed and identified the {}'s way: --signature-header and \
                 --id-field are for generic sources",
                self.kind, self.kind
            ));
        }
        if let Some(sig) = &self.settings.signature
            && sig.header.trim().is_empty()
        {
            return Err("the signature header has no name".to_owned());
        }
        for entry in &self.settings.allow {
            entry.parse::<ProxyRange>()?;
        }
        for goto in self.settings.map.keys() {
            mapping::Rule::of(goto)?;
        }
        Ok(())
    }

    /// The addresses posts are taken from, when limited.
    fn allowed(&self) -> Vec<ProxyRange> {
        self.settings
            .allow
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }

    /// Its URL path on the gateway (with the secret, where the URL carries it).
    #[must_use]
    pub fn path(&self) -> String {
        use g2w_goto::ExposeSecret as _;
        match (&self.secret, self.kind.signs(&self.settings)) {
            (Some(secret), false) => format!("/in/{}/{}", self.name, secret.expose_secret()),
            _ => format!("/in/{}", self.name),
        }
    }

    /// The source a stored record holds.
    ///
    /// # Errors
    /// A record this g2w cannot read (a newer one's tool or settings).
    pub fn from_record(record: SourceRecord) -> Result<Self, String> {
        let seen = record
            .seen
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        Ok(Self {
            kind: record.kind.parse()?,
            target: record.target.parse()?,
            settings: serde_json::from_str(&record.settings).map_err(|e| {
                format!(
                    "the settings of source {} are not readable: {e}",
                    record.name
                )
            })?,
            secret: record.secret,
            seen,
            created_at: record.created_at,
            name: record.name,
        })
    }

    /// The record to store, changed `now`.
    #[must_use]
    pub fn to_record(&self, now: Timestamp) -> SourceRecord {
        SourceRecord {
            name: self.name.clone(),
            kind: self.kind.as_str().to_owned(),
            target: self.target.to_string(),
            secret: self.secret.clone(),
            settings: serde_json::to_string(&self.settings).unwrap_or_else(|_| "{}".to_owned()),
            seen: None,
            created_at: self.created_at,
            updated_at: now,
        }
    }
}

/// A new random secret for a URL: 32 characters of base64url (192 bits).
#[must_use]
pub fn new_secret() -> SecretString {
    use base64::Engine as _;
    let bytes: [u8; 24] = rand::random();
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
