//! The demo data `--seed-demo` starts with: one organizer's two upcoming webinars.

use crate::clock::Timestamp;
use crate::state::{FieldDef, NewWebinar, QuestionKind, State};

const DAY: i64 = 24 * 3600;

/// Adds the demo webinars for the default organizer, starting a week and two weeks out.
pub(crate) fn demo(state: &mut State, now: Timestamp) {
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
}
