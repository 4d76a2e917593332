//! Durable work: registrations stored by intake (group commit, [`batcher`]) and delivered
//! to GoTo by the [`engine`] over the [`registrations`] queue, with visitors waiting
//! ([`waiters`]) only as long as the [`pace`] of delivery makes worthwhile. The engine
//! also runs the forwarding of GoTo's events (`crate::webhooks`).

pub(crate) mod batcher;
pub(crate) mod breaker;
pub(crate) mod engine;
pub(crate) mod group;
pub(crate) mod pace;
pub(crate) mod payload;
pub(crate) mod registrations;
pub(crate) mod waiters;
