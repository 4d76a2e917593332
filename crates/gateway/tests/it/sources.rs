//! Form builders' posts (`/in/{source}`), from each tool's own example: signed as the tool
//! signs, read as the tool writes, registered once, kept when they cannot be mapped.

use g2w_gateway::sources::fake::{self, someone};
use g2w_gateway::sources::{
    Encoding, GenericSignature, Kind, Source, SourceSettings, SourceTarget,
};
use g2w_goto::{SecretString, Timestamp};
use g2w_store::PostState;
use hmac::Mac as _;
use serde_json::{Value, json};

use crate::{Reply, TestApp};

const SECRET: &str = "whsec-spring-launch-7d1f";

/// Each tool with its fixture, as its posts come.
const TOOLS: [(Kind, &str, &str); 5] = fake::EXAMPLES;

/// How the tests' generic tool signs: a hex HMAC of the body in `X-Signature`; its id in
/// `submission.id`.
fn settings_for(kind: Kind) -> SourceSettings {
    match kind {
        Kind::Generic => SourceSettings {
            signature: Some(GenericSignature {
                header: "X-Signature".to_owned(),
                encoding: Encoding::Hex,
                prefix: String::new(),
                timestamp_header: None,
                separator: ".".to_owned(),
            }),
            id_field: Some("submission.id".to_owned()),
            ..SourceSettings::default()
        },
        _ => SourceSettings::default(),
    }
}

/// A source of `kind` for `webinar`, set up as the tool's fixture needs.
pub async fn add_tool(app: &TestApp, name: &str, kind: Kind, webinar: &str) -> Source {
    add_source_with(app, name, kind, webinar, settings_for(kind)).await
}

pub fn fixture(file: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/sources/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The webinar the fixtures were made for: its questions are the forms' last two.
fn spring_launch() -> Value {
    json!({"subject": "Spring launch",
        "fields": [{"field": "organization"}],
        "questions": [
            {"question": "What would you like to learn?", "type": "shortAnswer", "required": true},
            {"question": "Team size", "type": "multipleChoice", "answers": ["1-10", "11-50", "51+"]}]})
}

pub async fn add_source(app: &TestApp, name: &str, kind: Kind, webinar: &str) -> Source {
    add_source_with(app, name, kind, webinar, SourceSettings::default()).await
}

pub async fn add_source_with(
    app: &TestApp,
    name: &str,
    kind: Kind,
    webinar: &str,
    settings: SourceSettings,
) -> Source {
    let source = Source {
        name: name.to_owned(),
        kind,
        target: SourceTarget::Webinar(webinar.parse().unwrap()),
        secret: Some(SecretString::from(SECRET)),
        settings,
        seen: Vec::new(),
        created_at: app.now(),
    };
    source.check().unwrap();
    assert!(
        app.store
            .add_source(&source.to_record(app.now()))
            .await
            .unwrap()
    );
    source
}

fn mac(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The request the tool makes for `body`, signed with `secret` at `at`.
pub fn request(
    app: &TestApp,
    source: &Source,
    body: &[u8],
    secret: &str,
    at: Timestamp,
) -> reqwest::RequestBuilder {
    let content_type = TOOLS
        .iter()
        .find(|t| t.0 == source.kind)
        .map_or("application/json", |t| t.2);
    let mut r = app
        .http
        .post(format!("{}{}", app.base, fake::path_with(source, secret)))
        .header("content-type", content_type)
        .body(body.to_vec());
    for (name, value) in fake::signed_headers(source, secret, body, at) {
        r = r.header(name, value);
    }
    r
}

pub async fn send(r: reqwest::RequestBuilder) -> Reply {
    TestApp::reply(r.send().await.unwrap()).await
}

/// A tool's post as it signs it now.
pub async fn post(app: &TestApp, source: &Source, body: &[u8]) -> Reply {
    send(request(app, source, body, SECRET, app.now())).await
}

/// The registrants GoTo holds for `webinar`, each with its answers.
pub async fn registrants(app: &TestApp, webinar: &str) -> Vec<Value> {
    let token = app.tokens.access_token().await.unwrap();
    let base = format!(
        "{}/G2W/rest/v2/organizers/{}/webinars/{webinar}/registrants",
        app.emu.base_url(),
        app.emu.default_organizer_key()
    );
    let get = |url: String| {
        let token = token.clone();
        let http = app.http.clone();
        async move {
            http.get(url)
                .bearer_auth(g2w_goto::ExposeSecret::expose_secret(&token))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let listed = get(base.clone()).await;
    let mut all = Vec::new();
    for r in listed.as_array().unwrap() {
        all.push(get(format!("{base}/{}", r["registrantKey"])).await);
    }
    all
}

#[tokio::test]
async fn each_tools_signed_post_becomes_one_registrant_with_its_answers() {
    let app = TestApp::start().await;
    for (kind, file, _) in TOOLS {
        let (webinar, _) = app.webinar(spring_launch()).await;
        let source = add_tool(&app, &format!("spring-{kind}"), kind, &webinar).await;
        let reply = post(&app, &source, &fixture(file)).await;
        assert_eq!(reply.status, 200, "{kind}: {}", reply.text);
        assert_eq!(reply.json["status"], "accepted", "{kind}");
        app.deliver_due().await;
        let people = registrants(&app, &webinar).await;
        assert_eq!(people.len(), 1, "{kind}: {people:?}");
        let ada = &people[0];
        assert_eq!(ada["firstName"], "Ada", "{kind}");
        assert_eq!(ada["lastName"], "Lovelace", "{kind}");
        assert_eq!(ada["email"], "ada@example.com", "{kind}");
        assert_eq!(ada["organization"], "Analytical Engines", "{kind}");
        assert_eq!(ada["source"], format!("spring-{kind}"), "{kind}");
        let answers = ada["responses"].as_array().unwrap();
        assert!(
            answers
                .iter()
                .any(|r| r["answer"] == "How to never lose a sign-up"),
            "{kind}: {answers:?}"
        );
        assert!(
            answers.iter().any(|r| r["answer"] == "11-50"),
            "{kind}: {answers:?}"
        );
    }
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains(r#"g2w_source_posts_total{source="spring-tally",outcome="registered"} 1"#),
        "{metrics}"
    );
    // What the tool's fields were is kept for `g2w sources show`.
    let tally = app.store.source("spring-tally").await.unwrap().unwrap();
    let seen = Source::from_record(tally).unwrap().seen;
    assert!(seen.iter().any(|f| f.label == "Team size"), "{seen:?}");
}

#[tokio::test]
async fn a_wrong_signature_an_old_timestamp_or_a_changed_body_is_refused_and_nothing_is_kept() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(spring_launch()).await;
    for (kind, file, _) in TOOLS {
        let source = add_tool(&app, &format!("s-{kind}"), kind, &webinar).await;
        let body = fixture(file);
        // The wrong secret.
        let wrong = send(request(&app, &source, &body, "not-the-secret", app.now())).await;
        assert_eq!(wrong.status, 401, "{kind}: {}", wrong.text);
        // Signed, then changed on the way.
        let mut changed = body.clone();
        let at = changed.iter().position(|b| *b == b'A').unwrap();
        changed[at] = b'E';
        let signed = request(&app, &source, &body, SECRET, app.now())
            .body(changed)
            .send()
            .await
            .unwrap();
        if kind == Kind::Unbounce {
            // Unbounce signs nothing: the URL's secret is all there is.
            assert_eq!(signed.status(), 200, "{kind}");
        } else {
            assert_eq!(signed.status(), 401, "{kind}");
        }
        // No signature at all.
        let bare = send(
            app.http
                .post(format!("{}/in/{}", app.base, source.name))
                .header("content-type", "application/json")
                .body(body.clone()),
        )
        .await;
        assert_eq!(bare.status, 401, "{kind}: {}", bare.text);
    }
    // Webflow's timestamp older than five minutes, and one from the future.
    let webflow = app.store.source("s-webflow").await.unwrap().unwrap();
    let webflow = Source::from_record(webflow).unwrap();
    for skew in [-301_i64, 301] {
        let at = Timestamp::from_secs(app.now().as_secs() + skew);
        let old = send(request(
            &app,
            &webflow,
            &fixture("webflow.json"),
            SECRET,
            at,
        ))
        .await;
        assert_eq!(old.status, 401, "{}", old.text);
        assert!(old.text.contains("5 minutes"), "{}", old.text);
    }
    // Only the Unbounce post (its secret right) was taken.
    assert_eq!(app.total().await, 1);
    for (kind, _, _) in TOOLS {
        let kept = app
            .store
            .kept_posts(&format!("s-{kind}"), false, 100)
            .await
            .unwrap();
        assert!(kept.is_empty(), "{kind}: {kept:?}");
    }
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains(
            r#"g2w_source_posts_total{source="s-webflow",outcome="refused_signature"} 5"#
        ),
        "{metrics}"
    );
    // A source nobody configured is not found, whatever is posted.
    let nobody = send(app.http.post(format!("{}/in/nobody", app.base)).body("{}")).await;
    assert_eq!(nobody.status, 404);
}

#[tokio::test]
async fn unbounces_allow_list_refuses_other_addresses() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(spring_launch()).await;
    let settings = SourceSettings {
        allow: vec!["54.241.34.25".to_owned(), "50.19.99.184".to_owned()],
        ..SourceSettings::default()
    };
    let source = add_source_with(&app, "ub", Kind::Unbounce, &webinar, settings).await;
    let reply = post(&app, &source, &fixture("unbounce.form")).await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    assert_eq!(app.total().await, 0);
}

#[tokio::test]
async fn the_same_submission_posted_three_times_is_one_registrant() {
    let app = TestApp::start().await;
    for (kind, file, _) in TOOLS {
        let (webinar, _) = app.webinar(spring_launch()).await;
        let source = add_tool(&app, &format!("again-{kind}"), kind, &webinar).await;
        let body = fixture(file);
        let mut ids = Vec::new();
        for _ in 0..3 {
            let reply = post(&app, &source, &body).await;
            assert_eq!(reply.status, 200, "{kind}: {}", reply.text);
            ids.push(reply.json["registrationId"].clone());
            // The tool retries after its first try was delivered, too.
            app.deliver_due().await;
        }
        assert!(ids.iter().all(|id| *id == ids[0]), "{kind}: {ids:?}");
        assert_eq!(registrants(&app, &webinar).await.len(), 1, "{kind}");
        // Another submission (another id, another person) is another registrant.
        let other = post(&app, &source, &someone(kind, &body, 1)).await;
        assert_eq!(other.status, 200, "{kind}: {}", other.text);
        assert_ne!(other.json["registrationId"], ids[0]);
        app.deliver_due().await;
        assert_eq!(registrants(&app, &webinar).await.len(), 2, "{kind}");
    }
    assert_eq!(app.total().await, 10);
    assert_eq!(app.emu.stats().registrants_created, 10);
}

/// What each tool's example calls its email field once a form renames it to something
/// nobody would guess (and no longer says it is an email field).
const HIDDEN_EMAIL: &str = "Where do we write to you";

fn email_renamed(kind: Kind, body: &[u8]) -> Vec<u8> {
    if kind == Kind::Unbounce {
        let text = String::from_utf8(body.to_vec()).unwrap();
        return text
            .replace(
                "%22email%22",
                &format!("%22{}%22", HIDDEN_EMAIL.replace(' ', "+")),
            )
            .into_bytes();
    }
    let mut v: Value = serde_json::from_slice(body).unwrap();
    match kind {
        Kind::Typeform => {
            v["form_response"]["definition"]["fields"][2]["title"] = json!(HIDDEN_EMAIL);
            v["form_response"]["answers"][2] = json!({"type": "text", "text": "ada@example.com",
                "field": v["form_response"]["answers"][2]["field"].clone()});
        }
        Kind::Webflow => {
            let email = v["payload"]["data"]
                .as_object_mut()
                .unwrap()
                .remove("Email")
                .unwrap();
            v["payload"]["data"][HIDDEN_EMAIL] = email;
            v["payload"]["schema"][2] =
                json!({"fieldName": HIDDEN_EMAIL, "fieldType": "FormTextInput"});
        }
        Kind::Tally => {
            v["data"]["fields"][2]["label"] = json!(HIDDEN_EMAIL);
            v["data"]["fields"][2]["type"] = json!("INPUT_TEXT");
        }
        Kind::Generic => {
            let email = v.as_object_mut().unwrap().remove("email").unwrap();
            v[HIDDEN_EMAIL] = email;
        }
        Kind::Unbounce => unreachable!(),
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn a_post_that_cannot_be_mapped_is_kept_listed_and_registered_once_after_the_fix() {
    let app = TestApp::start().await;
    for (done, (kind, file, _)) in TOOLS.into_iter().enumerate() {
        let (webinar, _) = app.webinar(spring_launch()).await;
        let name = format!("unmapped-{kind}");
        let source = add_tool(&app, &name, kind, &webinar).await;
        let body = email_renamed(kind, &fixture(file));
        for _ in 0..3 {
            let reply = post(&app, &source, &body).await;
            assert_eq!(reply.status, 202, "{kind}: {}", reply.text);
            assert_eq!(reply.json["status"], "needs_mapping");
            assert!(
                reply.json["reason"]
                    .as_str()
                    .unwrap()
                    .contains("email is required"),
                "{kind}: {}",
                reply.text
            );
        }
        let before = u64::try_from(done).unwrap();
        assert_eq!(app.total().await, before, "{kind}: nothing registered");
        let kept = app.store.kept_posts(&name, true, 10).await.unwrap();
        assert_eq!(kept.len(), 1, "{kind}: the tool's retries are kept once");
        assert_eq!(kept[0].body, body, "{kind}: kept byte for byte");

        // A replay before the fix changes nothing and says why.
        let replayed = app.gateway.replay_source(&name).await.unwrap();
        assert!(replayed.registered.is_empty(), "{kind}");
        assert_eq!(replayed.refused.len(), 1, "{kind}");

        let mut fixed =
            Source::from_record(app.store.source(&name).await.unwrap().unwrap()).unwrap();
        let label = if kind == Kind::Unbounce {
            // Unbounce writes names in lower case with underscores.
            HIDDEN_EMAIL.to_lowercase().replace(' ', "_")
        } else {
            HIDDEN_EMAIL.to_owned()
        };
        fixed.settings.map.insert("email".to_owned(), label);
        assert!(
            app.store
                .update_source(&fixed.to_record(app.now()))
                .await
                .unwrap()
        );
        let replayed = app.gateway.replay_source(&name).await.unwrap();
        assert_eq!(replayed.registered.len(), 1, "{kind}: {replayed:?}");
        app.deliver_due().await;
        // Replayed again, and posted again by the tool: still one registrant.
        assert!(
            app.gateway
                .replay_source(&name)
                .await
                .unwrap()
                .registered
                .is_empty()
        );
        let again = post(&app, &source, &body).await;
        assert_eq!(again.status, 200, "{kind}: {}", again.text);
        app.deliver_due().await;
        let people = registrants(&app, &webinar).await;
        assert_eq!(people.len(), 1, "{kind}");
        assert_eq!(people[0]["email"], "ada@example.com", "{kind}");
        let kept = app.store.kept_posts(&name, false, 10).await.unwrap();
        assert_eq!(kept[0].state, PostState::Registered, "{kind}");
        assert!(
            app.store
                .kept_posts(&name, true, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_post_for_a_webinar_that_is_over_is_kept_with_the_reason() {
    let app = TestApp::start().await;
    let start = (app.now() + std::time::Duration::from_secs(3600)).to_rfc3339();
    let (webinar, _) = app
        .webinar(json!({"subject": "Soon", "startTime": start, "durationMinutes": 60}))
        .await;
    app.advance(2 * 3600 * 1000 + 1000);
    let source = add_source(&app, "late", Kind::Typeform, &webinar).await;
    let reply = post(&app, &source, &fixture("typeform.json")).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert!(
        reply.json["reason"].as_str().unwrap().contains("over"),
        "{}",
        reply.text
    );
    assert_eq!(
        app.store.kept_posts("late", true, 10).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_post_while_goto_is_down_is_answered_and_delivered_with_its_answers_when_goto_is_back() {
    let app = TestApp::start().await;
    let mut webinars = Vec::new();
    // GoTo is down before the gateway ever saw the webinars' forms.
    app.fault(json!({"pathPrefix": "/G2W", "status": 503}))
        .await;
    for (kind, file, _) in TOOLS {
        app.clear_faults().await;
        let (webinar, _) = app.webinar(spring_launch()).await;
        app.fault(json!({"pathPrefix": "/G2W", "status": 503}))
            .await;
        let source = add_tool(&app, &format!("outage-{kind}"), kind, &webinar).await;
        let reply = post(&app, &source, &fixture(file)).await;
        assert_eq!(reply.status, 200, "{kind}: {}", reply.text);
        webinars.push((kind, webinar));
    }
    app.deliver_due().await;
    assert_eq!(app.emu.stats().registrants_created, 0);
    app.clear_faults().await;
    app.deliver_all(5).await;
    for (kind, webinar) in webinars {
        let people = registrants(&app, &webinar).await;
        assert_eq!(people.len(), 1, "{kind}");
        let answers = people[0]["responses"].as_array().unwrap();
        assert!(
            answers
                .iter()
                .any(|r| r["answer"] == "How to never lose a sign-up"),
            "{kind}: the answers waited for GoTo too: {answers:?}"
        );
        assert!(
            answers.iter().any(|r| r["answer"] == "11-50"),
            "{kind}: {answers:?}"
        );
    }
}

#[tokio::test]
async fn a_generic_source_checks_the_header_it_names_and_finds_its_submission_id() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(spring_launch()).await;
    let settings = SourceSettings {
        signature: Some(GenericSignature {
            header: "X-Signature".to_owned(),
            encoding: Encoding::Hex,
            prefix: "v1=".to_owned(),
            timestamp_header: Some("X-Timestamp".to_owned()),
            separator: ".".to_owned(),
        }),
        id_field: Some("submission.id".to_owned()),
        ..SourceSettings::default()
    };
    add_source_with(&app, "my-form", Kind::Generic, &webinar, settings).await;
    let body = json!({"submission": {"id": 77, "first_name": "Ada", "last_name": "Lovelace",
        "email": "ada@example.com", "What would you like to learn?": "Everything"}})
    .to_string();
    let sign = |ts: i64, secret: &str| {
        let sig = hex(&mac(
            secret,
            &[ts.to_string().as_bytes(), b".", body.as_bytes()],
        ));
        app.http
            .post(format!("{}/in/my-form", app.base))
            .header("content-type", "application/json")
            .header("X-Timestamp", ts.to_string())
            .header("X-Signature", format!("v1={sig}"))
            .body(body.clone())
    };
    let now = app.now().as_secs();
    assert_eq!(send(sign(now, "wrong")).await.status, 401);
    assert_eq!(send(sign(now - 600, SECRET)).await.status, 401);
    let first = send(sign(now, SECRET)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = send(sign(now + 1, SECRET)).await;
    assert_eq!(again.json["registrationId"], first.json["registrationId"]);
    let reg = app
        .store
        .registration(first.json["registrationId"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reg.source.as_deref(), Some("source:my-form"));

    // Without a signature header, the secret is the URL's last segment; a form works too.
    let plain = add_source(&app, "plain-form", Kind::Generic, &webinar).await;
    assert_eq!(plain.path(), format!("/in/plain-form/{SECRET}"));
    let form = "first_name=Grace&last_name=Hopper&email=grace%40example.com&What+would+you+like+to+learn%3F=COBOL";
    let wrong = send(
        app.http
            .post(format!("{}/in/plain-form/guess", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let right = send(
        app.http
            .post(format!("{}/in/plain-form/{SECRET}", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form),
    )
    .await;
    assert_eq!(right.status, 200, "{}", right.text);
}

#[tokio::test]
async fn other_events_of_a_tool_are_answered_and_register_nobody() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(spring_launch()).await;
    let source = add_source(&app, "wf", Kind::Webflow, &webinar).await;
    let body = json!({"triggerType": "site_publish", "payload": {"domains": ["example.com"]}});
    let reply = post(&app, &source, body.to_string().as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["status"], "ignored");
    assert_eq!(app.total().await, 0);
    assert!(
        app.store
            .kept_posts("wf", false, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn test_shows_the_registration_a_payload_would_make_or_why_not_and_sends_nothing() {
    let app = TestApp::start().await;
    let (webinar, _) = app.webinar(spring_launch()).await;
    add_source(&app, "tf", Kind::Typeform, &webinar).await;
    let tested = app
        .gateway
        .test_source("tf", "application/json", &fixture("typeform.json"))
        .await
        .unwrap();
    let preview = tested.outcome.as_ref().unwrap();
    assert_eq!(preview.registrant.email, "ada@example.com");
    assert_eq!(preview.registrant.responses.len(), 2);
    assert!(preview.validated);
    assert_eq!(
        tested.submission_id.as_deref(),
        Some("a3a12ec67a1365927098a606107fac15")
    );
    assert!(
        tested
            .mapping
            .iter()
            .any(|l| l.goto == "lastName"
                && l.from.as_deref().is_some_and(|f| f.contains("last name"))),
        "{:?}",
        tested.mapping
    );
    let mut body: Value = serde_json::from_slice(&fixture("typeform.json")).unwrap();
    body["form_response"]["answers"]
        .as_array_mut()
        .unwrap()
        .remove(4);
    let tested = app
        .gateway
        .test_source(
            "tf",
            "application/json",
            &serde_json::to_vec(&body).unwrap(),
        )
        .await
        .unwrap();
    let why = tested.outcome.unwrap_err();
    assert!(
        why.contains("\"What would you like to learn?\" an answer is required"),
        "{why}"
    );
    assert_eq!(app.total().await, 0);
    assert_eq!(app.emu.stats().registrants_created, 0);
}

/// A small deterministic generator, so a failing mutation can be found again.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap()
    }
}

/// `body` damaged the ways the internet damages posts: bytes flipped, cut short, glued
/// to garbage, fields repeated, nested deep, made huge.
fn mutate(dice: &mut Dice, body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    for _ in 0..=dice.below(3) {
        match dice.below(9) {
            0 if !out.is_empty() => {
                let at = dice.below(out.len());
                out[at] = u8::try_from(dice.below(256)).unwrap();
            }
            1 => out.truncate(dice.below(out.len())),
            2 => {
                let at = dice.below(out.len());
                let junk: Vec<u8> = (0..dice.below(40))
                    .map(|_| u8::try_from(dice.below(256)).unwrap())
                    .collect();
                out.splice(at..at, junk);
            }
            3 => {
                out = format!(
                    "{}{}",
                    "[".repeat(dice.below(5000)),
                    String::from_utf8_lossy(&out)
                )
                .into_bytes()
            }
            4 => {
                let at = dice.below(out.len());
                let copy = out[at..].to_vec();
                out.extend_from_slice(&copy);
            }
            5 => {
                let text = String::from_utf8_lossy(&out)
                    .replace("Ada", &"\u{202e}A\u{0}".repeat(dice.below(3000)));
                out = text.into_bytes();
            }
            6 => {
                let text = String::from_utf8_lossy(&out)
                    .replace("ada@example.com", "ada@\u{430}xample.com\r\nBcc: x");
                out = text.into_bytes();
            }
            7 => out = Vec::new(),
            _ => {
                let text = String::from_utf8_lossy(&out)
                    .replace(": \"", ": {\"x\": \"")
                    .replace("\":[\"", "\":[[\"");
                out = text.into_bytes();
            }
        }
    }
    out
}

#[tokio::test]
async fn two_thousand_mutated_bodies_per_tool_never_get_a_5xx_and_unsigned_ones_store_nothing() {
    let app = std::sync::Arc::new(TestApp::start().await);
    let (webinar, _) = app.webinar(spring_launch()).await;
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let mut sources = Vec::new();
    for (kind, file, _) in TOOLS {
        let source = add_tool(&app, &format!("m-{kind}"), kind, &webinar).await;
        let bodies: Vec<Vec<u8>> = (0..2000)
            .map(|_| mutate(&mut dice, &fixture(file)))
            .collect();
        sources.push((source, bodies));
    }
    // Signed with another secret (or under the original body's signature): refused,
    // whatever the body, and nothing kept.
    for round in 0..2 {
        let mut tasks = tokio::task::JoinSet::new();
        for (source, bodies) in &sources {
            for chunk in bodies.chunks(250) {
                let (app, source, chunk, original) = (
                    app.clone(),
                    source.clone(),
                    chunk.to_vec(),
                    fixture(TOOLS.iter().find(|t| t.0 == source.kind).unwrap().1),
                );
                tasks.spawn(async move {
                    for body in chunk {
                        let r = if round == 0 {
                            request(&app, &source, &body, "a-guess", app.now())
                        } else {
                            // The original's signature on a changed body.
                            request(&app, &source, &original, SECRET, app.now()).body(body.clone())
                        };
                        let status = r.send().await.unwrap().status().as_u16();
                        let unsigned_kind = !source.kind.signs(&source.settings);
                        if round == 0 || !unsigned_kind {
                            assert!(
                                status == 401
                                    || (status == 413 && body.len() > 64 * 1024)
                                    || (body == original && status < 300),
                                "{}: {status} for an unsigned body",
                                source.kind
                            );
                        }
                    }
                });
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        if round == 0 {
            assert_eq!(app.total().await, 0);
            for (source, _) in &sources {
                assert!(
                    app.store
                        .kept_posts(&source.name, false, 1)
                        .await
                        .unwrap()
                        .is_empty()
                );
            }
        }
    }
    // Signed right: a registration, a kept post, or a clear 4xx; never a 5xx.
    let mut tasks = tokio::task::JoinSet::new();
    for (source, bodies) in sources {
        let app = app.clone();
        tasks.spawn(async move {
            let mut taken = 0;
            for body in bodies {
                let reply = send(request(&app, &source, &body, SECRET, app.now())).await;
                assert!(
                    reply.status < 500,
                    "{}: {} {}",
                    source.kind,
                    reply.status,
                    reply.text
                );
                if reply.status < 300 && reply.json["status"] != "ignored" {
                    taken += 1;
                }
            }
            taken
        });
    }
    let mut taken = 0;
    while let Some(done) = tasks.join_next().await {
        taken += done.unwrap();
    }
    assert!(taken > 0);
    assert!(app.get("/healthz").await.status == 200);
}

#[tokio::test]
async fn the_console_shows_what_waits_and_replays_it_after_the_fix() {
    let app = crate::admin::app().await;
    let (cookie, csrf) = crate::admin::sign_in(&app).await;
    let (webinar, _) = app.webinar(spring_launch()).await;
    let source = add_source(&app, "unbounce-launch", Kind::Unbounce, &webinar).await;
    // The page calls the email field "contact".
    let body = String::from_utf8(fixture("unbounce.form"))
        .unwrap()
        .replace("%22email%22", "%22contact%22");
    let reply = post(&app, &source, body.as_bytes()).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let page = crate::admin::get_with(&app, "/admin/sources", &cookie).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("unbounce-launch"), "{}", page.text);
    assert!(page.text.contains("email is required"), "{}", page.text);
    assert!(page.text.contains("not found"), "{}", page.text);
    assert!(!page.text.contains(SECRET), "the URL's secret is not shown");

    let mut fixed =
        Source::from_record(app.store.source("unbounce-launch").await.unwrap().unwrap()).unwrap();
    fixed
        .settings
        .map
        .insert("email".to_owned(), "contact".to_owned());
    app.store
        .update_source(&fixed.to_record(app.now()))
        .await
        .unwrap();
    let done = crate::admin::act(
        &app,
        "/admin/sources/unbounce-launch/replay",
        &format!("csrf={csrf}"),
        &cookie,
    )
    .await;
    assert!(done.text.contains("1 post(s) registered"), "{}", done.text);
    assert!(done.text.contains("Needs mapping: 0"), "{}", done.text);
    app.deliver_due().await;
    assert_eq!(registrants(&app, &webinar).await.len(), 1);
}
