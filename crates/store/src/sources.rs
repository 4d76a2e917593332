//! Form builders that post sign-ups (`sources`), and the posts of theirs g2w kept because
//! it could not turn them into a registration yet (`source_posts`). The store keeps a
//! source's settings as the gateway wrote them (JSON) and its shared secret sealed to the
//! source's name; what they mean is the gateway's business.

use g2w_goto::{ExposeSecret as _, SecretString, Timestamp};

use crate::db::{Row, Statement, args};
use crate::{Store, StoreError};

/// A source as stored.
#[derive(Clone)]
pub struct SourceRecord {
    /// Its name, the last segment of its URL.
    pub name: String,
    /// The tool (`typeform`, `webflow`, …).
    pub kind: String,
    /// What it registers for (`webinar:KEY` or `series:KEY`).
    pub target: String,
    /// The secret the tool signs with (or that its URL carries).
    pub secret: Option<SecretString>,
    /// The rest, as JSON.
    pub settings: String,
    /// The tool's fields as its latest post named them, as JSON.
    pub seen: Option<String>,
    /// When it was added.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for SourceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceRecord")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("target", &self.target)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Where a kept post stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostState {
    /// Waiting for its source's mapping (or its webinar) to be fixed, then a replay.
    NeedsMapping,
    /// Replayed into a registration.
    Registered,
}

impl PostState {
    fn as_str(self) -> &'static str {
        match self {
            Self::NeedsMapping => "needs_mapping",
            Self::Registered => "registered",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "needs_mapping" => Ok(Self::NeedsMapping),
            "registered" => Ok(Self::Registered),
            other => Err(StoreError::Data(format!("unknown post state {other:?}"))),
        }
    }
}

/// A post a source signed that g2w kept, as it came.
#[derive(Debug, Clone)]
pub struct KeptPost {
    /// Its id.
    pub id: String,
    /// The source that posted it.
    pub source: String,
    /// The tool's id for the submission (or a digest of the body when it had none).
    pub submission_id: String,
    /// When it came.
    pub received_at: Timestamp,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its body, byte for byte.
    pub body: Vec<u8>,
    /// Where it stands.
    pub state: PostState,
    /// Why it could not be registered (the latest reason).
    pub reason: Option<String>,
    /// The registration a replay made of it.
    pub registration_id: Option<String>,
}

const SOURCE_COLUMNS: &str = "name, kind, target, secret, settings, seen, created_at, updated_at";
const POST_COLUMNS: &str = "id, source, submission_id, received_at, content_type, body, state, \
     reason, registration_id";

fn secret_place(name: &str) -> String {
    format!("source:{name}:secret")
}

impl Store {
    fn seal_source(&self, source: &SourceRecord) -> Result<Option<Vec<u8>>, StoreError> {
        source
            .secret
            .as_ref()
            .map(|s| {
                self.cipher
                    .seal(&secret_place(&source.name), s.expose_secret().as_bytes())
            })
            .transpose()
    }

    fn read_source(&self, r: &Row) -> Result<SourceRecord, StoreError> {
        let name = r.text(0)?;
        let secret = r
            .opt_bytes(3)?
            .map(|b| {
                let plain = self.cipher.open(&secret_place(&name), &b)?;
                String::from_utf8(plain)
                    .map(SecretString::from)
                    .map_err(|_| StoreError::Crypto(format!("the secret of {name} is not text")))
            })
            .transpose()?;
        Ok(SourceRecord {
            kind: r.text(1)?,
            target: r.text(2)?,
            secret,
            settings: r.text(4)?,
            seen: r.opt_text(5)?,
            created_at: Timestamp::from_secs(r.int(6)?),
            updated_at: Timestamp::from_secs(r.int(7)?),
            name,
        })
    }

    /// Adds `source`; false (and nothing changed) when one of that name exists.
    ///
    /// # Errors
    /// Database or encryption failures.
    pub async fn add_source(&self, source: &SourceRecord) -> Result<bool, StoreError> {
        let sealed = self.seal_source(source)?;
        let added = self
            .db
            .execute(
                format!(
                    "INSERT INTO sources ({SOURCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (name) DO NOTHING"
                ),
                args![
                    &source.name,
                    &source.kind,
                    &source.target,
                    sealed,
                    &source.settings,
                    source.seen.clone(),
                    source.created_at.as_secs(),
                    source.updated_at.as_secs(),
                ],
            )
            .await?;
        Ok(added == 1)
    }

    /// Writes `source` over the one of its name (kind, target, secret, settings); false
    /// when there is none.
    ///
    /// # Errors
    /// Database or encryption failures.
    pub async fn update_source(&self, source: &SourceRecord) -> Result<bool, StoreError> {
        let sealed = self.seal_source(source)?;
        let changed = self
            .db
            .execute(
                "UPDATE sources SET kind = $2, target = $3, secret = $4, settings = $5,
                     updated_at = $6
                 WHERE name = $1",
                args![
                    &source.name,
                    &source.kind,
                    &source.target,
                    sealed,
                    &source.settings,
                    source.updated_at.as_secs(),
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    /// The source called `name`.
    ///
    /// # Errors
    /// Database or decryption failures.
    pub async fn source(&self, name: &str) -> Result<Option<SourceRecord>, StoreError> {
        let row = self
            .db
            .query_opt(
                format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE name = $1"),
                args![name],
            )
            .await?;
        row.map(|r| self.read_source(&r)).transpose()
    }

    /// Every source, by name.
    ///
    /// # Errors
    /// Database or decryption failures.
    pub async fn sources(&self) -> Result<Vec<SourceRecord>, StoreError> {
        let rows = self
            .db
            .query(
                format!("SELECT {SOURCE_COLUMNS} FROM sources ORDER BY name"),
                Vec::new(),
            )
            .await?;
        rows.iter().map(|r| self.read_source(r)).collect()
    }

    /// Removes the source called `name` and the posts kept for it; false when there is
    /// none.
    ///
    /// # Errors
    /// Database failures.
    pub async fn remove_source(&self, name: &str) -> Result<bool, StoreError> {
        let done = self
            .db
            .run(
                vec![
                    Statement::new("DELETE FROM source_posts WHERE source = $1", args![name]),
                    Statement::new("DELETE FROM sources WHERE name = $1", args![name]),
                ],
                crate::db::Durability::Durable,
            )
            .await?;
        Ok(done.last().is_some_and(|d| d.changed == 1))
    }

    /// Records the tool's fields as `name`'s latest post named them (JSON).
    ///
    /// # Errors
    /// Database failures.
    pub async fn saw_source_fields(&self, name: &str, seen: &str) -> Result<(), StoreError> {
        self.db
            .note(
                "UPDATE sources SET seen = $2 WHERE name = $1",
                args![name, seen],
            )
            .await?;
        Ok(())
    }

    /// Keeps `post` (state needs mapping); false when its source already kept a post
    /// with its submission id (a retry of the tool's: kept once).
    ///
    /// # Errors
    /// Database failures.
    pub async fn keep_post(&self, post: &KeptPost) -> Result<bool, StoreError> {
        let kept = self
            .db
            .execute(
                format!(
                    "INSERT INTO source_posts ({POST_COLUMNS}, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $4)
                     ON CONFLICT DO NOTHING"
                ),
                args![
                    &post.id,
                    &post.source,
                    &post.submission_id,
                    post.received_at.as_secs(),
                    &post.content_type,
                    post.body.clone(),
                    post.state.as_str(),
                    post.reason.clone(),
                    post.registration_id.clone(),
                ],
            )
            .await?;
        Ok(kept == 1)
    }

    /// The posts kept for `source`, oldest first: only those still waiting, or all.
    ///
    /// # Errors
    /// Database failures.
    pub async fn kept_posts(
        &self,
        source: &str,
        waiting_only: bool,
        limit: u32,
    ) -> Result<Vec<KeptPost>, StoreError> {
        let rows = self
            .db
            .query(
                format!(
                    "SELECT {POST_COLUMNS} FROM source_posts
                     WHERE source = $1 AND (state = 'needs_mapping' OR NOT $2)
                     ORDER BY received_at, id LIMIT $3"
                ),
                args![source, waiting_only, limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(KeptPost {
                    id: r.text(0)?,
                    source: r.text(1)?,
                    submission_id: r.text(2)?,
                    received_at: Timestamp::from_secs(r.int(3)?),
                    content_type: r.text(4)?,
                    body: r.bytes(5)?,
                    state: PostState::parse(&r.text(6)?)?,
                    reason: r.opt_text(7)?,
                    registration_id: r.opt_text(8)?,
                })
            })
            .collect()
    }

    /// How many posts wait for each source's mapping, by source.
    ///
    /// # Errors
    /// Database failures.
    pub async fn waiting_posts(
        &self,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT source, COUNT(*) FROM source_posts WHERE state = 'needs_mapping'
                 GROUP BY source",
                Vec::new(),
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.text(0)?, u64::try_from(r.int(1)?).unwrap_or(0))))
            .collect()
    }

    /// A replay made registration `registration_id` of kept post `id`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn post_registered(
        &self,
        id: &str,
        registration_id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE source_posts SET state = 'registered', registration_id = $2, reason = NULL,
                     updated_at = $3
                 WHERE id = $1",
                args![id, registration_id, now.as_secs()],
            )
            .await?;
        Ok(())
    }

    /// A replay of kept post `id` was refused again, for `reason`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn post_refused(
        &self,
        id: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE source_posts SET reason = $2, updated_at = $3 WHERE id = $1",
                args![id, reason, now.as_secs()],
            )
            .await?;
        Ok(())
    }
}
