//! The hosted form and the pages around it (the browser suite in `e2e/` drives them in
//! Chromium; these check what the server sends).

use serde_json::json;

use crate::{TestApp, person};

#[tokio::test]
async fn the_hosted_form_is_built_from_the_webinars_own_fields_and_questions() {
    let app = TestApp::start().await;
    let (webinar, spec) = app
        .webinar(json!({"subject": "Launch <script>alert(1)</script>", "description": "Tom & Jerry",
            "fields": [{"field": "organization", "required": true}, {"field": "industry", "answers": ["Retail", "Health"]}],
            "questions": [{"question": "Why?", "type": "shortAnswer", "required": true, "maxSize": 300},
                          {"question": "Team size?", "type": "multipleChoice", "answers": ["Small", "Large"]}]}))
        .await;
    let page = app.get(&format!("/r/{webinar}")).await;
    assert_eq!(page.status, 200);
    let html = page.text;
    assert!(
        html.contains("Launch &#60;script&#62;") || html.contains("Launch &lt;script&gt;"),
        "escaped subject"
    );
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("Tom &#38; Jerry") || html.contains("Tom &amp; Jerry"));
    for needle in [
        "name=\"firstName\"",
        "name=\"email\"",
        "type=\"email\"",
        "name=\"organization\"",
        "<option value=\"Health\"",
        "maxlength=\"300\"",
        "name=\"website\"",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    let q_choice = spec["questions"][1]["questionKey"].as_str().unwrap();
    let large = spec["questions"][1]["answers"][1]["answerKey"]
        .as_str()
        .unwrap();
    assert!(
        html.contains(&format!(
            "type=\"radio\" name=\"q_{q_choice}\" value=\"{large}\""
        )),
        "answer keys carried"
    );
    assert!(
        html.contains(&format!("action=\"/r/{webinar}\"")),
        "without script the form posts to its own address"
    );
    assert!(html.contains(&format!(
        "data-api=\"/api/v1/webinars/{webinar}/registrations\""
    )));
    assert!(
        html.contains("<label for=\"firstName\">"),
        "labels tied to inputs"
    );
    assert!(!html.contains("src=\"http"), "no external assets");
    assert!(
        html.contains("(America/New_York)</time>")
            && (html.contains(" EST (") || html.contains(" EDT (")),
        "times in the webinar's own zone, named: {html}"
    );

    let unknown = app.get("/r/123").await;
    assert_eq!(unknown.status, 404);
    assert!(
        !unknown.text.contains("Back to the form") && !unknown.text.contains("javascript:"),
        "no link that leads nowhere: {}",
        unknown.text
    );
    assert_eq!(app.get("/r/nonsense").await.status, 404);
    let (past, _) = app
        .webinar(json!({"subject": "Old", "startTime": "2020-01-01T10:00:00Z"}))
        .await;
    assert_eq!(app.get(&format!("/r/{past}")).await.status, 410);
    let embed = app.get("/embed.js").await;
    assert_eq!(embed.status, 200);
    assert!(
        embed.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(embed.text.contains("data-g2w-webinar"));
}

#[tokio::test]
async fn a_refused_form_post_comes_back_with_errors_beside_fields_and_values_kept() {
    let app = TestApp::start().await;
    let (webinar, spec) = app
        .webinar(json!({"subject": "Errors", "questions": [{"question": "Why?", "type": "shortAnswer", "required": true}]}))
        .await;
    let q = spec["questions"][0]["questionKey"].as_str().unwrap();
    let reply = TestApp::reply(
        app.http
            .post(format!(
                "{}/api/v1/webinars/{webinar}/registrations",
                app.base
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html")
            .body("firstName=%3Cb%3EAda&lastName=&email=not-an-email")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 400);
    let html = reply.text;
    assert!(
        html.contains("id=\"lastName-error\">Last name is required.</p>"),
        "an error beside its field, as a sentence"
    );
    assert!(html.contains("id=\"email-error\">Email is not a valid email address.</p>"));
    assert!(
        html.contains(&format!("id=\"q_{q}-error\">“"))
            && html.contains("”: an answer is required.</p>"),
        "{html}"
    );
    assert!(html.contains("aria-invalid=\"true\" aria-describedby=\"email-error\""));
    assert!(
        html.contains("value=\"&#60;b&#62;Ada\"") || html.contains("value=\"&lt;b&gt;Ada\""),
        "value kept, escaped"
    );
    assert!(
        html.contains("href=\"#lastName\">Last name is required.</a>"),
        "a summary linking to the fields"
    );
    assert_eq!(app.total().await, 0);
}

#[tokio::test]
async fn the_confirmation_page_shows_the_join_url_once_delivered() {
    let app = TestApp::start_with(|c| {
        c.brand.accent = "#aa3300".into();
        c.brand.title = Some("Acme <Events>".into());
    })
    .await;
    let (webinar, _) = app.webinar(json!({"subject": "Done"})).await;
    let reply = app
        .post_json(&webinar, &crate::person("c@example.com"))
        .await;
    let id = reply.json["registrationId"].as_str().unwrap().to_owned();
    let queued = app.get(&format!("/confirmation/{id}")).await;
    assert!(queued.text.contains("Thank you!") && !queued.text.contains("/join/"));
    assert!(
        queued.text.contains("--accent: #aa3300"),
        "branding applied"
    );
    app.deliver_due().await;
    let done = app.get(&format!("/confirmation/{id}")).await;
    assert!(
        done.text
            .contains("id=\"join-url\" href=\"http://127.0.0.1:"),
        "{}",
        done.text
    );
}

#[tokio::test]
async fn a_join_url_that_is_not_a_web_link_is_never_rendered_as_one() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Hostile upstream"})).await;
    app.fault(
        json!({"method": "POST", "pathPrefix": "/G2W", "status": 201, "count": 1,
        "body": {"registrantKey": 1, "joinUrl": "javascript:alert(document.cookie)"}}),
    )
    .await;
    let posted = app.post_json(&webinar, &person("js@example.com")).await;
    app.deliver_due().await;
    let id = posted.json["registrationId"].as_str().unwrap();
    let page = app.get(&format!("/confirmation/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("re registered</h1>"), "{}", page.text);
    assert!(!page.text.contains("javascript:"), "{}", page.text);
    assert!(page.text.contains("confirmation email has the link"));
    assert!(
        page.text.contains("<strong>Hostile upstream</strong>")
            && page.text.contains("(America/New_York)</time>"),
        "the page names the webinar and when it is: {}",
        page.text
    );
}

#[tokio::test]
async fn each_kind_of_page_says_how_it_may_be_framed_cached_and_scripted() {
    let app = TestApp::start_with(|c| {
        c.allowed_origins = vec!["https://landing.example".into()];
        c.admin_password = Some(g2w_gateway::AdminPassword::Hashed(
            g2w_gateway::AdminPassword::hash("pw"),
        ));
    })
    .await;
    let (webinar, _) = app.webinar(json!({"subject": "Headers"})).await;
    let header = |r: &crate::Reply, name: &str| {
        r.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };

    let form = app.get(&format!("/r/{webinar}")).await;
    let csp = header(&form, "content-security-policy");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!csp.contains("script-src 'unsafe-inline"), "{csp}");
    assert!(
        csp.contains("frame-ancestors 'self' https://landing.example"),
        "only the embedding site may frame it: {csp}"
    );
    assert_eq!(header(&form, "cache-control"), "public, max-age=60");
    assert_eq!(header(&form, "x-content-type-options"), "nosniff");
    assert_eq!(header(&form, "referrer-policy"), "no-referrer");
    // The inline script is the one the policy's hash allows.
    let script = form
        .text
        .split("<script>")
        .nth(1)
        .unwrap()
        .split("</script>")
        .next()
        .unwrap();
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
    assert!(csp.contains(&format!("'sha256-{digest}'")));

    let missing = app.get("/r/123").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        header(&missing, "cache-control"),
        "no-store",
        "errors are not kept"
    );

    let admin = app.get("/admin/login").await;
    assert_eq!(header(&admin, "x-frame-options"), "DENY");
    assert!(header(&admin, "content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header(&admin, "cache-control"), "no-store");

    let posted = app.post_json(&webinar, &person("h@example.com")).await;
    let id = posted.json["registrationId"].as_str().unwrap();
    let confirmation = app.get(&format!("/confirmation/{id}")).await;
    assert_eq!(header(&confirmation, "cache-control"), "private, no-store");

    assert_eq!(app.get("/favicon.ico").await.status, 204);
    let made = header(&form, "x-request-id");
    assert_eq!(
        made.len(),
        36,
        "every answer names its request (a UUID): {made:?}"
    );
    let given = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "lb-4242")
        .send()
        .await
        .unwrap();
    assert_eq!(
        given.headers()["x-request-id"],
        "lb-4242",
        "a proxy's id is kept"
    );
    let zipped = app
        .http
        .get(format!("{}/r/{webinar}", app.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn the_form_is_compressed_once_and_served_the_same_to_every_visitor() {
    use std::io::Read as _;
    let app = TestApp::start().await;
    let (webinar, _) = app
        .webinar(json!({"subject": "Gzipped", "description": "x".repeat(2000)}))
        .await;
    let get = |encoding: &'static str| {
        let request = app
            .http
            .get(format!("{}/r/{webinar}", app.base))
            .header("accept-encoding", encoding);
        async move { request.send().await.unwrap() }
    };
    let plain = get("identity").await;
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.headers()["vary"], "accept-encoding");
    assert!(
        plain.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src")
    );
    let plain = plain.bytes().await.unwrap();

    let first = get("gzip, deflate, br").await;
    assert_eq!(first.headers()["content-encoding"], "gzip");
    assert_eq!(first.headers()["cache-control"], "public, max-age=60");
    let first = first.bytes().await.unwrap();
    assert!(
        first.len() < plain.len() / 2,
        "{} vs {}",
        first.len(),
        plain.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&first[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain, "the same page");
    let second = get("gzip").await.bytes().await.unwrap();
    assert_eq!(second, first, "the same bytes to every visitor");
    let refused = get("gzip;q=0, identity").await;
    assert!(refused.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn a_refused_post_of_the_hosted_form_stays_at_the_forms_address() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(json!({"subject": "Where am I"})).await;
    let refused = TestApp::reply(
        app.http
            .post(format!("{}/r/{webinar}", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("firstName=Ada&lastName=&email=ada%40example.com")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.text.contains("Last name is required."),
        "the form again, with its error: {}",
        refused.text
    );
    assert!(
        !refused.headers.contains_key("cache-control")
            || !refused.headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("public"),
        "a visitor's answers are never cached"
    );
    let accepted = app
        .http
        .post(format!("{}/r/{webinar}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("firstName=Ada&lastName=Lovelace&email=ada%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 303);
    assert!(
        accepted.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/confirmation/")
    );
    // A page the form cannot show (a JSON body, say) is a page with a link back.
    let odd = TestApp::reply(
        app.http
            .post(format!("{}/r/{webinar}", app.base))
            .header("content-type", "text/plain")
            .body("hello")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(odd.status, 415);
    assert!(
        odd.text.contains(&format!("href=\"/r/{webinar}\"")),
        "{}",
        odd.text
    );
}
