//! Who came: a webinar's past sessions and their attendees, from GoTo's reporting
//! calls. GoTo reports a session only once it has ended.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Call, GotoClient, ORGANIZER, decode};
use crate::error::Result;
use crate::keys::{RegistrantKey, SessionKey, WebinarKey};

/// A session that has ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The session.
    pub session_key: SessionKey,
    /// Its webinar.
    pub webinar_key: WebinarKey,
    /// The webinar's title.
    #[serde(default)]
    pub webinar_name: Option<String>,
    /// When it started.
    pub start_time: DateTime<Utc>,
    /// When it ended.
    pub end_time: DateTime<Utc>,
    /// How many registrants attended.
    #[serde(default)]
    pub registrants_attended: u32,
    /// How many were registered.
    #[serde(default)]
    pub registrant_count: Option<u32>,
}

/// One stay in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendance {
    /// Joined.
    pub join_time: DateTime<Utc>,
    /// Left.
    pub leave_time: DateTime<Utc>,
}

/// Someone who attended a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    /// The registrant.
    pub registrant_key: RegistrantKey,
    /// The session.
    pub session_key: SessionKey,
    /// First name.
    #[serde(default)]
    pub first_name: String,
    /// Last name.
    #[serde(default)]
    pub last_name: String,
    /// Email.
    pub email: String,
    /// Time in the session, all stays together.
    #[serde(default)]
    pub attendance_time_in_seconds: u64,
    /// Each stay.
    #[serde(default)]
    pub attendance: Vec<Attendance>,
}

impl GotoClient {
    /// The webinar's sessions that have ended, every page.
    ///
    /// # Errors
    /// [`crate::GotoError`] as GoTo answered.
    pub async fn sessions(&self, webinar: WebinarKey) -> Result<Vec<Session>> {
        let path = format!("{ORGANIZER}/webinars/{webinar}/sessions");
        self.every_page(path, Vec::new(), "sessionInfoResources", 200)
            .await
    }

    /// Who attended one session.
    ///
    /// # Errors
    /// [`crate::GotoError::NotFound`] for an unknown (or still running) session.
    pub async fn session_attendees(
        &self,
        webinar: WebinarKey,
        session: SessionKey,
    ) -> Result<Vec<Attendee>> {
        let path = format!("{ORGANIZER}/webinars/{webinar}/sessions/{session}/attendees");
        let (_, body) = self.execute(Call::plain(Method::GET, path, None)).await?;
        decode(&body, "attendees")
    }

    /// Who attended any session of the webinar, every page.
    ///
    /// # Errors
    /// [`crate::GotoError`] as GoTo answered.
    pub async fn attendees(&self, webinar: WebinarKey) -> Result<Vec<Attendee>> {
        let path = format!("{ORGANIZER}/webinars/{webinar}/attendees");
        self.every_page(path, Vec::new(), "attendeeParticipationResponses", 200)
            .await
    }
}
