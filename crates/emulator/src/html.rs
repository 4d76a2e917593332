//! The few HTML pages the emulator shows a person: GoTo's consent page, an error page,
//! and stand-ins for GoTo's registration and join pages.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;\
padding:0 1rem;color:#1b1f24}h1{font-size:1.4rem}.box{border:1px solid #d0d7de;\
border-radius:8px;padding:1.25rem}button{font-size:1rem;padding:.5rem 1.25rem;\
margin-right:.5rem;border-radius:6px;border:1px solid #8c959f;cursor:pointer}\
button.allow{background:#0b6bcb;color:#fff;border-color:#0b6bcb}small{color:#57606a}";

/// Wraps already-escaped body HTML in a page.
fn page(title: &str, body_html: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body>{body_html}\
<p><small>GoTo emulator (g2w). Not affiliated with GoTo.</small></p></body></html>",
        title = escape(title),
    )
}

/// The consent page: Allow and Deny post the pending request's id back.
pub(crate) fn consent(request_id: &str, client_id: &str, organizers: &[(u64, String)]) -> Response {
    // With several organizers the person picks who signs in, as on GoTo's account chooser.
    let who = match organizers {
        [(_, only)] => format!("<p>Signed in as {}.</p>", escape(only)),
        _ => {
            let options: String = organizers
                .iter()
                .map(|(key, label)| format!("<option value=\"{key}\">{}</option>", escape(label)))
                .collect();
            format!(
                "<p><label for=\"organizer\">Sign in as</label> \
<select id=\"organizer\" name=\"organizer\">{options}</select></p>"
            )
        }
    };
    let body = format!(
        "<h1>Allow access to your GoTo account?</h1><div class=\"box\">\
<p>The application <strong>{client}</strong> asks to manage your GoTo Webinar \
webinars and registrants (scope <code>collab:</code>).</p>\
<form method=\"post\" action=\"/oauth/authorize/decision\">{who}\
<input type=\"hidden\" name=\"request_id\" value=\"{id}\">\
<button class=\"allow\" type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form></div>",
        client = escape(client_id),
        id = escape(request_id),
    );
    // A consent page that can be framed can be clickjacked into "Allow".
    (
        [
            (axum::http::header::X_FRAME_OPTIONS, "DENY"),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                "frame-ancestors 'none'",
            ),
        ],
        Html(page("Allow access", &body)),
    )
        .into_response()
}

/// An error page, used where redirecting would be unsafe (unknown client, bad redirect URI).
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Authorization failed</h1><div class=\"box\"><p>{}</p></div>",
        escape(message)
    );
    (status, Html(page("Authorization failed", &body))).into_response()
}

/// A plain information page (stand-ins for GoTo's registration and join pages).
pub(crate) fn info(title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><div class=\"box\"><p>{}</p></div>",
        escape(title),
        escape(message)
    );
    Html(page(title, &body)).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
