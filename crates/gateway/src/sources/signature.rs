//! Whether a post comes from the tool: checked on the raw bytes, before anything is parsed,
//! each tool its own way (the secret in the URL for Unbounce, which signs nothing).

use std::net::IpAddr;

use axum::http::HeaderMap;
use base64::Engine as _;
use g2w_goto::{ExposeSecret as _, Timestamp};

use super::{Encoding, GenericSignature, Kind, Source};
use crate::signing::{hmac_sha256, same};

/// How far a signed timestamp may be from now (Webflow's rule; generic sources' too).
pub(crate) const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// Why a post was refused before it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unsigned {
    /// No signature, or not the right one (or a wrong secret in the URL).
    Signature(&'static str),
    /// From an address the source does not take posts from.
    Address,
}

impl Unsigned {
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Signature(why) => why,
            Self::Address => "the post came from an address this source does not take posts from",
        }
    }
}

/// The request as signed: its headers, the secret segment of its URL, the address it
/// came from and its body.
pub(crate) struct Signed<'a> {
    pub headers: &'a HeaderMap,
    pub path_secret: Option<&'a str>,
    pub peer: IpAddr,
    pub body: &'a [u8],
    pub now: Timestamp,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Checks `post` against `source`'s rules.
///
/// # Errors
/// Why it is refused.
pub(crate) fn check(source: &Source, post: &Signed<'_>) -> Result<(), Unsigned> {
    let allowed = source.allowed();
    if !allowed.is_empty() && !allowed.iter().any(|r| r.contains(post.peer)) {
        return Err(Unsigned::Address);
    }
    let Some(secret) = &source.secret else {
        return Err(Unsigned::Signature("the source has no secret"));
    };
    let key = secret.expose_secret().as_bytes();
    let signs = source.kind.signs(&source.settings);
    if !signs {
        // The secret is the URL's last segment.
        return match post.path_secret {
            Some(given) if same(given.as_bytes(), key) => Ok(()),
            Some(_) => Err(Unsigned::Signature("the URL's secret is not this source's")),
            None => Err(Unsigned::Signature("the URL has no secret")),
        };
    }
    if post.path_secret.is_some() {
        return Err(Unsigned::Signature(
            "this source's URL has no secret segment",
        ));
    }
    match source.kind {
        Kind::Typeform => {
            let given = header(post.headers, "typeform-signature")
                .ok_or(Unsigned::Signature("no Typeform-Signature header"))?;
            let digest = given
                .strip_prefix("sha256=")
                .ok_or(Unsigned::Signature("Typeform-Signature is not sha256=…"))?;
            base64_matches(digest, &hmac_sha256(key, &[post.body]))
        }
        Kind::Tally => {
            let given = header(post.headers, "tally-signature")
                .ok_or(Unsigned::Signature("no Tally-Signature header"))?;
            base64_matches(given, &hmac_sha256(key, &[post.body]))
        }
        Kind::Webflow => {
            let stamp = header(post.headers, "x-webflow-timestamp")
                .ok_or(Unsigned::Signature("no x-webflow-timestamp header"))?;
            fresh(stamp, post.now)?;
            let given = header(post.headers, "x-webflow-signature")
                .ok_or(Unsigned::Signature("no x-webflow-signature header"))?;
            hex_matches(
                given,
                &hmac_sha256(key, &[stamp.as_bytes(), b":", post.body]),
            )
        }
        Kind::Generic => {
            let Some(sig) = &source.settings.signature else {
                unreachable!("a generic source that signs has a signature")
            };
            generic(sig, key, post)
        }
        Kind::Unbounce => unreachable!("Unbounce signs nothing"),
    }
}

fn generic(sig: &GenericSignature, key: &[u8], post: &Signed<'_>) -> Result<(), Unsigned> {
    let given =
        header(post.headers, &sig.header).ok_or(Unsigned::Signature("no signature header"))?;
    let digest = given
        .strip_prefix(sig.prefix.as_str())
        .ok_or(Unsigned::Signature(
            "the signature does not start as configured",
        ))?;
    let mac = match &sig.timestamp_header {
        Some(name) => {
            let stamp =
                header(post.headers, name).ok_or(Unsigned::Signature("no timestamp header"))?;
            fresh(stamp, post.now)?;
            hmac_sha256(
                key,
                &[stamp.as_bytes(), sig.separator.as_bytes(), post.body],
            )
        }
        None => hmac_sha256(key, &[post.body]),
    };
    match sig.encoding {
        Encoding::Hex => hex_matches(digest, &mac),
        Encoding::Base64 => base64_matches(digest, &mac),
    }
}

/// A signing time (Unix seconds, or milliseconds as Webflow writes it) within
/// [`TIMESTAMP_TOLERANCE_SECS`] of `now`, so a captured post cannot be played again later.
fn fresh(stamp: &str, now: Timestamp) -> Result<(), Unsigned> {
    let n: i64 = stamp
        .parse()
        .map_err(|_| Unsigned::Signature("the timestamp is not a number"))?;
    let secs = if n.abs() >= 100_000_000_000 {
        n / 1000
    } else {
        n
    };
    if (now.as_secs() - secs).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(Unsigned::Signature(
            "the timestamp is more than 5 minutes from now",
        ));
    }
    Ok(())
}

fn hex_matches(given: &str, mac: &[u8; 32]) -> Result<(), Unsigned> {
    let decoded = decode_hex(given).ok_or(Unsigned::Signature("the signature is not hex"))?;
    if same(&decoded, mac) {
        Ok(())
    } else {
        Err(Unsigned::Signature("the signature does not match"))
    }
}

fn base64_matches(given: &str, mac: &[u8; 32]) -> Result<(), Unsigned> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(given)
        .map_err(|_| Unsigned::Signature("the signature is not base64"))?;
    if same(&decoded, mac) {
        Ok(())
    } else {
        Err(Unsigned::Signature("the signature does not match"))
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decoding_refuses_what_is_not_hex() {
        assert_eq!(decode_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("0a1"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é1"), None);
    }

    #[test]
    fn a_timestamp_is_fresh_within_five_minutes_either_way_in_seconds_or_milliseconds() {
        let now = Timestamp::from_secs(1_800_000_000);
        assert!(fresh("1800000000", now).is_ok());
        assert!(fresh("1800000000000", now).is_ok());
        assert!(fresh("1799999701", now).is_ok());
        assert!(fresh("1799999699", now).is_err());
        assert!(fresh("1800000301000", now).is_err());
        assert!(fresh("soon", now).is_err());
    }
}
