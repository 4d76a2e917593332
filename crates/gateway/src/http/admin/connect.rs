//! "Connect GoTo": the OAuth client's id and secret, and the authorization-code flow
//! through GoTo's consent page back to the console.

use super::*;

/// `POST /admin/connect`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ClientFields {
    #[serde(default)]
    organizer: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

/// `GET /admin/oauth/callback`: what GoTo sends back.
#[derive(serde::Deserialize)]
pub(crate) struct Callback {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_connect.html")]
struct ConnectPage {
    layout: Layout,
    /// The organizer (profile) being connected, and every one served to pick from.
    organizer: String,
    profiles: Vec<String>,
    redirect_uri: String,
    client_id: String,
    has_secret: bool,
}

fn redirect_uri(origin: &str) -> String {
    format!("{origin}/admin/oauth/callback")
}

async fn connect_page(
    organizers: &Organizers,
    o: &Organizer,
    origin: &str,
    csrf: String,
    notice: Option<String>,
) -> Response {
    let record = o.client.tokens().record().await.ok();
    let configured = o.client.tokens().oauth().credentials().clone();
    let (client_id, has_secret) = match &record {
        Some(r) if !r.client_id.is_empty() => (r.client_id.clone(), r.client_secret.is_some()),
        _ => (
            configured.client_id.clone(),
            !configured.client_id.is_empty()
                && !configured.client_secret.expose_secret().is_empty(),
        ),
    };
    render(&ConnectPage {
        layout: Layout {
            signed_in: true,
            active: "connect",
            csrf,
            notice,
        },
        organizer: o.profile.clone(),
        profiles: if organizers.several() {
            organizers.all().iter().map(|o| o.profile.clone()).collect()
        } else {
            Vec::new()
        },
        redirect_uri: redirect_uri(origin),
        client_id,
        has_secret,
    })
}

/// `GET /admin/connect?organizer=PROFILE`.
pub(crate) async fn connect(
    State(organizers): State<Organizers>,
    State(console): State<Arc<Console>>,
    ConsoleOrigin(origin): ConsoleOrigin,
    Query(which): Query<OrganizerField>,
    admin: Admin,
) -> Response {
    let shown = notice(&console, &admin.csrf);
    let o = organizers.named_or_first(&which.organizer);
    connect_page(&organizers, o, &origin, admin.csrf, shown).await
}

/// Where the console goes back to after a step of connecting `o`.
fn connect_url(o: &Organizer) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("organizer", &o.profile);
    format!("/admin/connect?{}", q.finish())
}

/// The OAuth client to connect with: the stored one, else the configured one.
async fn credentials(o: &Organizer) -> Option<ClientCredentials> {
    if let Ok(r) = o.client.tokens().record().await
        && let Some(secret) = r.client_secret
        && !r.client_id.is_empty()
    {
        return Some(ClientCredentials {
            client_id: r.client_id,
            client_secret: secret,
        });
    }
    let configured = o.client.tokens().oauth().credentials().clone();
    (!configured.client_id.is_empty() && !configured.client_secret.expose_secret().is_empty())
        .then_some(configured)
}

/// `POST /admin/connect`: saves the OAuth client (id and secret, encrypted).
pub(crate) async fn save_client(
    State(organizers): State<Organizers>,
    State(console): State<Arc<Console>>,
    AdminForm { csrf, fields }: AdminForm<ClientFields>,
) -> Response {
    let o = organizers.named_or_first(&fields.organizer);
    let back = connect_url(o);
    let id = fields.client_id.trim().to_owned();
    let secret = fields.client_secret.trim().to_owned();
    if id.is_empty() || id.len() > 200 || secret.len() > 500 {
        return done(
            &console,
            &csrf,
            &back,
            "Enter the client id (and its secret).".into(),
        );
    }
    let tokens = o.client.tokens();
    let mut record = tokens.record().await.unwrap_or_default();
    if record.client_id != id {
        // Another client: the old tokens are not its tokens.
        record = TokenRecord::default();
    }
    record.client_id = id;
    if !secret.is_empty() {
        record.client_secret = Some(SecretString::from(secret));
    }
    let notice = match (record.client_secret.is_some(), tokens.save(&record).await) {
        (_, Err(e)) => format!("Could not save: {e}"),
        (false, Ok(())) => "Saved the client id; enter its secret too.".to_owned(),
        (true, Ok(())) => "Saved. Now connect the GoTo account.".to_owned(),
    };
    done(&console, &csrf, &back, notice)
}

/// `POST /admin/connect/start`: off to GoTo's authorize page, with state and PKCE.
pub(crate) async fn start_connect(
    State(organizers): State<Organizers>,
    State(console): State<Arc<Console>>,
    ConsoleOrigin(origin): ConsoleOrigin,
    AdminForm { csrf, fields }: AdminForm<OrganizerField>,
) -> Response {
    let o = organizers.named_or_first(&fields.organizer);
    let Some(credentials) = credentials(o).await else {
        return done(
            &console,
            &csrf,
            &connect_url(o),
            "Save the client id and secret first.".into(),
        );
    };
    let oauth = o.client.tokens().oauth().with_credentials(credentials);
    let redirect = redirect_uri(&origin);
    let request = oauth.authorize(&redirect, true);
    let mut connects = lock(&console.connects);
    connects.retain(|_, p| p.expires > Instant::now());
    connects.insert(
        request.state.clone(),
        PendingConnect {
            profile: o.profile.clone(),
            verifier: request.pkce_verifier,
            redirect_uri: redirect,
            expires: Instant::now() + Duration::from_secs(600),
        },
    );
    Redirect::to(request.url.as_str()).into_response()
}

#[derive(Template)]
#[template(path = "admin_callback.html")]
struct CallbackPage {
    layout: Layout,
    heading: String,
    message: String,
}

fn callback_page(status: StatusCode, heading: &str, message: String) -> Response {
    let mut page = render(&CallbackPage {
        layout: Layout {
            signed_in: false,
            active: "",
            csrf: String::new(),
            notice: None,
        },
        heading: heading.to_owned(),
        message,
    });
    *page.status_mut() = status;
    page
}

/// `GET /admin/oauth/callback`: GoTo sends the browser back here. The SameSite=Strict
/// cookie does not come along on this cross-site return, so the single-use `state` is
/// what identifies the flow an admin started.
pub(crate) async fn oauth_callback(
    State(organizers): State<Organizers>,
    State(console): State<Arc<Console>>,
    Query(q): Query<Callback>,
) -> Response {
    let pending = q
        .state
        .as_deref()
        .and_then(|s| lock(&console.connects).remove(s));
    let Some(pending) = pending.filter(|p| p.expires > Instant::now()) else {
        return callback_page(
            StatusCode::BAD_REQUEST,
            "This link is not valid",
            "Start again from the console's Connect page.".into(),
        );
    };
    if let Some(error) = &q.error {
        return callback_page(
            StatusCode::OK,
            "Not connected",
            format!(
                "GoTo did not authorize g2w ({}).",
                error.chars().take(60).collect::<String>()
            ),
        );
    }
    let Some(code) = &q.code else {
        return callback_page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "GoTo sent no code.".into(),
        );
    };
    let o = organizers.named_or_first(&pending.profile);
    let Some(credentials) = credentials(o).await else {
        return callback_page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "The OAuth client is not saved.".into(),
        );
    };
    let oauth = o
        .client
        .tokens()
        .oauth()
        .with_credentials(credentials.clone());
    let answer = match oauth
        .exchange_code(code, &pending.redirect_uri, pending.verifier.as_ref())
        .await
    {
        Ok(a) => a,
        Err(e) => {
            return callback_page(
                StatusCode::BAD_GATEWAY,
                "Not connected",
                format!("GoTo refused the code: {e}"),
            );
        }
    };
    let record = TokenRecord::new_login(&credentials, answer, o.client.tokens().now());
    let record = match o.client.save_login(record).await {
        Ok(r) => r,
        Err(e) => {
            return callback_page(
                StatusCode::BAD_GATEWAY,
                "Not connected",
                format!("Could not complete the login: {e}"),
            );
        }
    };
    o.worker.wake();
    callback_page(
        StatusCode::OK,
        "Connected",
        format!(
            "Connected as {}, organizer key {}. Queued registrations are being delivered.",
            record.principal.unwrap_or_default(),
            record
                .organizer_key
                .map(|k| k.to_string())
                .unwrap_or_default()
        ),
    )
}
