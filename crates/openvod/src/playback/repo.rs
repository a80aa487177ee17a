//! Playback signing keys, as stored.

use async_trait::async_trait;

use crate::error::DbError;
use crate::playback::keys::SigningKey;

#[async_trait]
pub trait SigningKeyRepo: Send + Sync {
    async fn create_signing_key(&self, key: &SigningKey) -> Result<(), DbError>;
    async fn get_signing_key(&self, id: &str) -> Result<Option<SigningKey>, DbError>;
    async fn list_signing_keys(&self) -> Result<Vec<SigningKey>, DbError>;
    async fn delete_signing_key(&self, id: &str) -> Result<bool, DbError>;
}

/// What playback needs stored: the assets it serves and the keys signed URLs are checked with.
pub trait PlaybackStore: SigningKeyRepo + crate::assets::repo::AssetRepo {}
impl<T: SigningKeyRepo + crate::assets::repo::AssetRepo + ?Sized> PlaybackStore for T {}
