//! A webinar's registrants: list, look up, register, remove.

use reqwest::Method;
use serde_json::Value;

use crate::client::{Call, GotoClient, ORGANIZER, decode, to_json};
use crate::error::Result;
use crate::keys::{RegistrantKey, WebinarKey};
use crate::models::{NewRegistrant, Registrant, RegistrantCreated, RegistrantDetail};

impl GotoClient {
    /// Every registrant of a webinar (GoTo's condensed list).
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn registrants(&self, webinar: WebinarKey) -> Result<Vec<Registrant>> {
        let path = format!("{}/webinars/{webinar}/registrants", ORGANIZER);
        let (_, body) = self
            .execute(Call {
                method: Method::GET,
                path,
                query: Vec::new(),
                body: None,
                registering: false,
                repeatable: true,
            })
            .await?;
        // Newer GoTo versions may wrap the list; accept both shapes.
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) if map.contains_key("data") => {
                let data = serde_json::to_vec(&map["data"]).unwrap_or_default();
                decode(&data, "registrants.data")
            }
            _ => decode(&body, "registrants"),
        }
    }

    /// One registrant with everything GoTo keeps.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn registrant(
        &self,
        webinar: WebinarKey,
        registrant: RegistrantKey,
    ) -> Result<RegistrantDetail> {
        let path = format!("{}/webinars/{webinar}/registrants/{registrant}", ORGANIZER);
        self.get(path, Vec::new(), "registrant").await
    }

    /// Every registrant of a webinar with everything GoTo keeps (answers included): one
    /// call for the list, then one per registrant.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn registrant_details(&self, webinar: WebinarKey) -> Result<Vec<RegistrantDetail>> {
        let list = self.registrants(webinar).await?;
        let mut details = Vec::with_capacity(list.len());
        for r in &list {
            details.push(self.registrant(webinar, r.registrant_key).await?);
        }
        Ok(details)
    }

    /// The registrant with this email (case-insensitive), if any.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn find_registrant(
        &self,
        webinar: WebinarKey,
        email: &str,
    ) -> Result<Option<Registrant>> {
        let all = self.registrants(webinar).await?;
        Ok(all
            .into_iter()
            .find(|r| r.email.eq_ignore_ascii_case(email.trim())))
    }

    /// Registers someone, always with `Accept: application/json` so that custom
    /// answers are kept. A 409 comes back as [`GotoError::AlreadyRegistered`].
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn create_registrant(
        &self,
        webinar: WebinarKey,
        registrant: &NewRegistrant,
        resend_confirmation: bool,
    ) -> Result<RegistrantCreated> {
        let path = format!("{}/webinars/{webinar}/registrants", ORGANIZER);
        let body = to_json(registrant)?;
        let query = vec![("resendConfirmation", resend_confirmation.to_string())];
        let (_, body) = self
            .execute(Call {
                method: Method::POST,
                path,
                query,
                body: Some(body),
                registering: true,
                repeatable: true,
            })
            .await?;
        decode(&body, "registrant")
    }

    /// Removes a registrant (only while the webinar is ahead).
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn delete_registrant(
        &self,
        webinar: WebinarKey,
        registrant: RegistrantKey,
    ) -> Result<()> {
        let path = format!("{}/webinars/{webinar}/registrants/{registrant}", ORGANIZER);
        self.execute(Call {
            method: Method::DELETE,
            path,
            query: Vec::new(),
            body: None,
            registering: false,
            repeatable: true,
        })
        .await
        .map(|_| ())
    }
}
