//! The demo data `--seed-demo` starts with: two organizers in accounts of their own.
//! The first has two upcoming webinars and a weekly series of three; the second has
//! one webinar.

use crate::clock::Timestamp;
use crate::state::{FieldDef, NewWebinar, Organizer, QuestionKind, State};

const DAY: i64 = 24 * 3600;

/// Adds the demo webinars for the default organizer, starting a week and two weeks out,
/// and the second organizer (`(organizer key, account key)`) with theirs.
pub(crate) fn demo(state: &mut State, now: Timestamp, second: (u64, u64)) {
    let organizer = state.default_organizer;
    // Start on a whole hour so times read naturally.
    let first_start = (now + 7 * DAY) / 3600 * 3600;

    let mut intro = NewWebinar::basic(
        organizer,
        "Getting started with GoTo Webinar registrations",
        first_start,
        first_start + 3600,
    );
    intro.description =
        "A 60-minute tour: landing pages, custom questions and reliable delivery.".to_owned();
    intro.fields = vec![
        FieldDef {
            name: "organization".to_owned(),
            required: false,
            choices: Vec::new(),
        },
        FieldDef {
            name: "jobTitle".to_owned(),
            required: false,
            choices: Vec::new(),
        },
    ];
    intro.questions = vec![
        (
            "What would you like us to cover?".to_owned(),
            QuestionKind::ShortAnswer,
            true,
            256,
            Vec::new(),
        ),
        (
            "How did you hear about this webinar?".to_owned(),
            QuestionKind::MultipleChoice,
            false,
            128,
            vec![
                "Search engine".to_owned(),
                "A colleague".to_owned(),
                "Newsletter".to_owned(),
            ],
        ),
    ];
    state.insert_webinar(intro);

    let second_start = first_start + 7 * DAY;
    let mut advanced = NewWebinar::basic(
        organizer,
        "Bulk imports and the registration outbox",
        second_start,
        second_start + 5400,
    );
    advanced.description = "For teams moving lead lists into GoTo Webinar.".to_owned();
    advanced.time_zone = "Europe/Berlin".to_owned();
    state.insert_webinar(advanced);

    let mut office_hours = NewWebinar::basic(
        organizer,
        "Office hours: your registration questions",
        first_start + 3 * DAY,
        first_start + 3 * DAY + 1800,
    );
    office_hours.description = "Pick the week that suits you.".to_owned();
    office_hours.kind = "series".to_owned();
    office_hours.time_zone = "Europe/Berlin".to_owned();
    office_hours.times = (0..3)
        .map(|week| {
            let start = first_start + (3 + 7 * week) * DAY;
            (start, start + 1800)
        })
        .collect();
    state.insert_scheduled(office_hours);

    let (second_key, second_account) = second;
    state.organizers.insert(
        second_key,
        Organizer {
            key: second_key,
            account_key: second_account,
            email: "sam.second@example.com".to_owned(),
            first_name: "Sam".to_owned(),
            last_name: "Second".to_owned(),
        },
    );
    let mut partners = NewWebinar::basic(
        second_key,
        "Partner briefing: what is new this quarter",
        first_start + 2 * DAY,
        first_start + 2 * DAY + 2700,
    );
    partners.time_zone = "America/Los_Angeles".to_owned();
    state.insert_webinar(partners);
}
