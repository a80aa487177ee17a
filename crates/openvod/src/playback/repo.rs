//! Playback signing keys, as stored.

use async_trait::async_trait;

use crate::error::DbError;
use crate::playback::keys::SigningKey;
use crate::playback::restrictions::PlaybackRestriction;

#[async_trait]
pub trait SigningKeyRepo: Send + Sync {
    async fn create_signing_key(&self, key: &SigningKey) -> Result<(), DbError>;
    async fn get_signing_key(&self, id: &str) -> Result<Option<SigningKey>, DbError>;
    async fn list_signing_keys(&self) -> Result<Vec<SigningKey>, DbError>;
    async fn delete_signing_key(&self, id: &str) -> Result<bool, DbError>;
}

#[async_trait]
pub trait RestrictionRepo: Send + Sync {
    async fn create_restriction(&self, restriction: &PlaybackRestriction) -> Result<(), DbError>;
    async fn get_restriction(&self, id: &str) -> Result<Option<PlaybackRestriction>, DbError>;
    async fn list_restrictions(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<PlaybackRestriction>, DbError>;
    /// Replaces the rules; `false` if there is no such restriction.
    async fn update_restriction(&self, restriction: &PlaybackRestriction) -> Result<bool, DbError>;
    async fn delete_restriction(&self, id: &str) -> Result<bool, DbError>;
}

/// What playback needs stored: the assets it serves, the keys signed URLs are checked with and
/// the restrictions tokens name.
pub trait PlaybackStore: SigningKeyRepo + RestrictionRepo + crate::assets::repo::AssetRepo {}
impl<T: SigningKeyRepo + RestrictionRepo + crate::assets::repo::AssetRepo + ?Sized> PlaybackStore
    for T
{
}
