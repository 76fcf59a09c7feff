//! Operating a pyindex: the jobs an operator runs beside (or instead of) the server.
//!
//! Everything here goes through the [`pyindex_registry::Registry`] for the rules (what may be
//! published, who did it, what to invalidate) and through the catalog and blob store traits for
//! the data, so it works on every engine the server does.

pub mod backup;
pub mod import;
pub mod migrate;
pub mod verify;
