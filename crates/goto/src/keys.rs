//! GoTo's 64-bit keys. GoTo sends them as JSON numbers in some responses and strings
//! in others, and their values exceed 2^53, so a client that reads them through a
//! float (as JavaScript does) silently corrupts them. These newtypes accept a number
//! or a string of digits and never pass through `f64`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a text is not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a GoTo key (expected digits only)")]
pub struct KeyParseError(pub String);

fn parse_digits(text: &str) -> Result<u64, KeyParseError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(KeyParseError(text.to_owned()));
    }
    trimmed.parse().map_err(|_| KeyParseError(text.to_owned()))
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 64-bit key as a JSON integer or a string of digits")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("negative key {v}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        // A float key has already lost digits somewhere; refuse rather than guess.
        Err(E::custom(format!("key {v} is not an integer")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse_digits(v).map_err(E::custom)
    }
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw key.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }

            /// The raw value.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = KeyParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_digits(s).map(Self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(KeyVisitor).map(Self)
            }
        }

        /// Serialized as a string: every consumer, JavaScript included, reads it intact.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }
    };
}

key_type!(
    /// Identifies a webinar.
    WebinarKey
);
key_type!(
    /// Identifies a registrant of one webinar.
    RegistrantKey
);
key_type!(
    /// Identifies an organizer (GoTo's `organizerKey`, the same value as `userKey`).
    OrganizerKey
);
key_type!(
    /// Identifies a GoTo account, which may hold several organizers.
    AccountKey
);
key_type!(
    /// Identifies a series: the webinars of one series share it, each with its own key.
    RecurrenceKey
);
key_type!(
    /// Identifies a custom registration question.
    QuestionKey
);
key_type!(
    /// Identifies one answer of a multiple-choice question.
    AnswerKey
);
key_type!(
    /// Identifies one session (one run) of a webinar.
    SessionKey
);

#[cfg(test)]
mod tests {
    use super::*;

    const ABOVE_2_53: u64 = 9_007_199_254_740_993;

    #[test]
    fn numbers_and_strings_round_trip_exactly() {
        let from_number: WebinarKey = serde_json::from_str("9007199254740993").unwrap();
        let from_string: WebinarKey = serde_json::from_str("\"9007199254740993\"").unwrap();
        assert_eq!(from_number.get(), ABOVE_2_53);
        assert_eq!(from_number, from_string);
        assert_eq!(
            serde_json::to_string(&from_number).unwrap(),
            "\"9007199254740993\""
        );
        let max: RegistrantKey = serde_json::from_str(&u64::MAX.to_string()).unwrap();
        assert_eq!(max.get(), u64::MAX);
        assert_eq!(WebinarKey::new(ABOVE_2_53).to_string(), "9007199254740993");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "9.007199254740993e15",
            "-5",
            "\"12a\"",
            "\"\"",
            "null",
            "true",
            "\"-1\"",
            "18446744073709551616",
            "\" \"",
        ] {
            assert!(
                serde_json::from_str::<OrganizerKey>(bad).is_err(),
                "{bad} accepted"
            );
        }
        assert!("12 34".parse::<QuestionKey>().is_err());
        assert_eq!(" 42 ".parse::<AnswerKey>().unwrap().get(), 42);
    }
}
