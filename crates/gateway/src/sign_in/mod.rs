//! Signing in to the admin console: the password ([`password`]) and who may try it when
//! ([`throttle`]). Nothing here knows about HTTP; the console's pages use it.

mod password;
mod throttle;

pub use password::AdminPassword;
pub(crate) use password::{Verdict, same};
pub(crate) use throttle::{NotChecked, SignIns};
