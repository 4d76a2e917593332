//! Text as intake accepts it: trimmed, normalised, free of control and invisible
//! formatting characters; and emails held to what mail servers take.

use unicode_normalization::UnicodeNormalization as _;

/// Characters that change how text around them reads without showing themselves:
/// bidirectional embeddings, overrides and isolates (which can make `moc.elpmaxe`
/// read as `example.com`), zero-width characters and joiners, invisible operators,
/// the byte-order mark, and the tag characters (which can smuggle hidden text).
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
}

/// Trimmed, NFC-normalised text; control and invisible formatting characters are
/// refused, naming the first.
pub(super) fn clean(text: &str) -> Result<String, String> {
    // Line breaks from forms and spreadsheets arrive as CRLF or CR: keep them as LF.
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let normalised: String = unified.trim().nfc().collect();
    if normalised
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("contains control characters".to_owned());
    }
    if let Some(c) = normalised.chars().find(|c| invisible(*c)) {
        return Err(format!(
            "contains an invisible formatting character (U+{:04X})",
            u32::from(c)
        ));
    }
    Ok(normalised)
}

/// Whether `email` is an address GoTo and mail servers will take: RFC 5322's
/// `local@domain` as the `email_address` crate parses it (no display name, no quoted
/// local part, no address literal), and a domain of at least two labels made of letters,
/// digits and inner hyphens (the host-name rules DNS needs; `_` belongs to other records).
pub fn valid_email(email: &str) -> bool {
    let options = email_address::Options::default()
        .without_display_text()
        .without_domain_literal()
        .with_required_tld();
    let Ok(parsed) = email_address::EmailAddress::parse_with_options(email, options) else {
        return false;
    };
    let (local, domain) = (parsed.local_part(), parsed.domain());
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let labels: Vec<&str> = domain.split('.').collect();
    !local.starts_with('"')
        && labels.len() >= 2
        && labels.iter().all(|l| label_ok(l))
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}
