//! The storage engines. Each domain owns its model and its repository trait (`assets::repo`,
//! `events::repo`, ...); an engine (`sqlite`) implements them all, so engines depend on the
//! domains and domain code never imports `db`. `Db` is every repository at once: what the binary
//! wires in. Every method that changes state is atomic and durable when it returns: callers
//! acknowledge clients only after it returns `Ok`.

pub mod postgres;
pub mod schema;
pub mod sqlite;

use std::sync::Arc;

pub use crate::accounts::repo::AccountRepo;
pub use crate::assets::repo::AssetRepo;
pub use crate::error::DbError;
pub use crate::events::repo::EventRepo;
pub use crate::ingest::repo::{FinalizeOutcome, UploadRepo};
pub use crate::jobs::repo::JobRepo;
pub use crate::migration::repo::{BbbRepo, MigrationStore};
pub use crate::playback::repo::{PlaybackStore, RestrictionRepo, SigningKeyRepo};
pub use crate::processing::repo::{TaskRepo, TaskRunStore};
pub use crate::tokens::{ApiToken, SecretRepo, TokenRepo, TokenStore};

pub trait Db:
    TokenStore
    + AccountRepo
    + UploadRepo
    + AssetRepo
    + JobRepo
    + PlaybackStore
    + EventRepo
    + TaskRunStore
    + MigrationStore
{
}

impl<T> Db for T where
    T: TokenStore
        + AccountRepo
        + UploadRepo
        + AssetRepo
        + JobRepo
        + PlaybackStore
        + EventRepo
        + TaskRunStore
        + MigrationStore
{
}

pub type ArcDb = Arc<dyn Db>;
