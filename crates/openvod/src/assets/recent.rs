//! Playback ids resolved in the last `RECENT_TTL`, for media playlists and segments: a player asks
//! for a file every few seconds per playback id, and each would otherwise cost two database reads.
//!
//! An entry is only trusted for renditions it lists (a newer one is looked up again). Deleting an
//! asset or a playback id through `AssetService` forgets it here at once; another `serve` process
//! sharing the database may keep serving it for up to `RECENT_TTL`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::model::{Asset, PlaybackPolicy};

const RECENT_TTL: Duration = Duration::from_secs(2);
const RECENT_MAX: usize = 10_000;

#[derive(Default)]
pub struct RecentPlaybackIds {
    entries: Mutex<HashMap<String, RecentPlaybackId>>,
}

/// When it was looked up, and what was found.
type RecentPlaybackId = (Instant, PlaybackPolicy, Arc<Asset>);

impl RecentPlaybackIds {
    /// The asset behind `playback_id`, if looked up lately and it has `rendition`.
    pub fn get(&self, playback_id: &str, rendition: &str) -> Option<(PlaybackPolicy, Arc<Asset>)> {
        let entries = self.entries.lock().expect("not poisoned");
        let (at, policy, asset) = entries.get(playback_id)?;
        (at.elapsed() < RECENT_TTL && asset.renditions.iter().any(|r| r.name == rendition))
            .then(|| (*policy, asset.clone()))
    }

    pub fn put(&self, playback_id: &str, policy: PlaybackPolicy, asset: Arc<Asset>) {
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.len() >= RECENT_MAX {
            entries.retain(|_, (at, _, _)| at.elapsed() < RECENT_TTL);
            if entries.len() >= RECENT_MAX {
                entries.clear();
            }
        }
        entries.insert(playback_id.to_owned(), (Instant::now(), policy, asset));
    }

    pub fn forget_playback_id(&self, playback_id: &str) {
        self.entries
            .lock()
            .expect("not poisoned")
            .remove(playback_id);
    }

    pub fn forget_asset(&self, asset_id: &str) {
        self.entries
            .lock()
            .expect("not poisoned")
            .retain(|_, (_, _, asset)| asset.id != asset_id);
    }
}
