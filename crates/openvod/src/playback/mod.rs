//! Playback: the master playlist, rendition playlists and segments, static files, images, and who may
//! see them (public ids, or signed ids with a JWT from one of our signing keys).
//!
//! Players drop `?token=` on the URIs inside a playlist, so the master playlist's child URIs carry a
//! short capability in their path (`/{pid}/g/{grant}/{rendition}/...`), and the segment URIs, relative
//! to the child playlist, inherit it. The JWT is checked once, on the master playlist.

pub mod http;
pub mod images;
pub mod keys;
pub mod repo;
pub mod restrictions;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::Digest;

use crate::assets::model::{Asset, AssetStatus, PlaybackPolicy, TrackKind, TrackStatus};
use crate::assets::recent::RecentPlaybackIds;
use crate::assets::subtitles;
use crate::config::MediaConfig;
use crate::error::DbError;
use crate::error::ErrorKind;
use crate::id::{is_valid_id, now_unix};
use crate::ingest::capability::{CapabilityError, UrlSigner};
use crate::keyed_lock::KeyedLocks;
use crate::media::MediaError;
use crate::storage::{ArcStore, StorageError, StoreKey, StoredObject};
use images::{Animated, Image, ImageFormat, Storyboard, Thumbnail};
use keys::{Claims, SigningKeys};

/// The longest a rendition grant lives, whatever the token's `exp` says.
const MAX_GRANT_SECS: i64 = 7 * 24 * 3600;
/// The grant of public playback ids.
const PUBLIC_GRANT: &str = "public";

/// The grant of a signed playback id's child URLs: `LO-HI[-RID]~TOKEN`, the resolution bounds and
/// the playback restriction (if any) in force, signed for `playback_id` until `exp`.
pub(crate) fn sign_grant(
    signer: &UrlSigner,
    playback_id: &str,
    (lo, hi): (u32, u32),
    rid: Option<&str>,
    exp: i64,
) -> String {
    match rid {
        None => {
            let token = signer.sign(&format!("hls:{lo}:{hi}"), playback_id, exp);
            format!("{lo}-{hi}~{token}")
        }
        Some(rid) => {
            let token = signer.sign(&format!("hls:{lo}:{hi}:{rid}"), playback_id, exp);
            format!("{lo}-{hi}-{rid}~{token}")
        }
    }
}

/// Checks a grant from a child URL (outside input) made by `sign_grant`: its resolution bounds and
/// playback restriction id, once its token is verified for `playback_id` at `now`.
pub(crate) fn check_grant<'g>(
    signer: &UrlSigner,
    playback_id: &str,
    grant: &'g str,
    now: i64,
) -> Result<((u32, u32), Option<&'g str>), CapabilityError> {
    let (range, token) = grant.split_once('~').ok_or(CapabilityError::Malformed)?;
    let mut parts = range.splitn(3, '-');
    let (lo, hi, rid) = (parts.next(), parts.next(), parts.next());
    let number = |v: Option<&str>| {
        v.and_then(|v| v.parse::<u32>().ok())
            .ok_or(CapabilityError::Malformed)
    };
    let bounds = (number(lo)?, number(hi)?);
    let signed = match rid {
        None => format!("hls:{}:{}", bounds.0, bounds.1),
        Some(rid) => format!("hls:{}:{}:{rid}", bounds.0, bounds.1),
    };
    signer.verify(&signed, playback_id, Some(token), now)?;
    Ok((bounds, rid))
}

#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    #[error("playback id {0} not found")]
    NotFound(String),
    #[error("{0} not found")]
    FileNotFound(String),
    #[error("the asset is {0}; there is nothing to play yet")]
    NotReady(&'static str),
    /// A planned segment the encoder has not produced within the wait: retry shortly.
    #[error("{0} is still being encoded; retry in a moment")]
    SegmentPending(String),
    #[error("this playback id is signed: add ?token=<JWT> signed with one of your signing keys")]
    TokenRequired,
    #[error("playback token refused: {0}")]
    TokenRefused(String),
    #[error("playback URL refused: {0}")]
    Grant(#[from] CapabilityError),
    #[error("signing key {0} not found")]
    KeyNotFound(String),
    #[error("signing key could not be made or read: {0}")]
    KeyGeneration(String),
    #[error("{0}")]
    Invalid(String),
    #[error("playback refused: {0}")]
    Restricted(String),
    #[error("rendering failed: {0}")]
    Media(#[from] MediaError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Lock(#[from] crate::keyed_lock::LockError),
}

impl PlaybackError {
    pub fn kind(&self) -> ErrorKind {
        use PlaybackError::*;
        match self {
            NotFound(_) | FileNotFound(_) | KeyNotFound(_) => ErrorKind::NotFound,
            NotReady(_) => ErrorKind::NotReady,
            SegmentPending(_) => ErrorKind::RetryLater,
            TokenRequired | TokenRefused(_) | Grant(_) | Restricted(_) => ErrorKind::Forbidden,
            Invalid(_) => ErrorKind::Invalid,
            Db(e) => e.kind(),
            Storage(e) => e.kind(),
            Lock(e) => e.kind(),
            KeyGeneration(_) | Media(_) | Io(_) => ErrorKind::Internal,
        }
    }
}

/// Which token audience a resource needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Video,
    Thumbnail,
    Animated,
    Storyboard,
}

impl Audience {
    fn claim(self) -> &'static str {
        match self {
            Audience::Video => "v",
            Audience::Thumbnail => "t",
            Audience::Animated => "g",
            Audience::Storyboard => "s",
        }
    }
}

/// A playback id that may be served, with its asset and the token's claims (empty when public).
pub struct Authorized {
    pub playback_id: String,
    pub policy: PlaybackPolicy,
    pub asset: Asset,
    pub claims: Claims,
}

/// A servable object: where it is in the store and how to label it.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub key: StoreKey,
    pub content_type: &'static str,
    /// Public objects may be cached by shared caches.
    pub public: bool,
    /// A segment of a rendition still being encoded: when missing, wait for the encoder.
    pub pending_segment: bool,
}

impl Resolved {
    /// A file of a rendition (media playlist or segment): immutable once published, so
    /// cacheable in memory.
    fn is_rendition_file(&self) -> bool {
        matches!(
            self.content_type,
            "application/vnd.apple.mpegurl" | "video/mp2t"
        )
    }
}

/// An opened object: its total length, the requested bytes, and its entity tag.
pub struct Served {
    pub object: StoredObject,
    pub etag: String,
}

pub struct PlaybackService {
    db: std::sync::Arc<dyn repo::PlaybackStore>,
    store: ArcStore,
    signer: UrlSigner,
    public_url: url::Url,
    media: MediaConfig,
    scratch_dir: PathBuf,
    pub keys: SigningKeys,
    pub restrictions: restrictions::Restrictions,
    image_locks: KeyedLocks,
    /// Bounds concurrent image renders, whatever parameters callers invent.
    image_renders: tokio::sync::Semaphore,
    recent: Arc<RecentPlaybackIds>,
    /// Recently served rendition files (segments, media playlists) by store key. Published
    /// rendition files never change (playlists are planned before their segments exist), and a request
    /// reaches this only after its playback id and grant were checked, so a deleted asset's
    /// segments, still here until evicted, are never served.
    segments: Option<quick_cache::sync::Cache<String, bytes::Bytes, SegmentWeight>>,
}

#[derive(Clone)]
struct SegmentWeight;

impl quick_cache::Weighter<String, bytes::Bytes> for SegmentWeight {
    fn weight(&self, key: &String, bytes: &bytes::Bytes) -> u64 {
        (key.len() + bytes.len()) as u64
    }
}

/// Rendition files larger than this are streamed from the store, never cached.
const CACHED_SEGMENT_MAX: u64 = 8 * 1024 * 1024;

fn etag_for(key: &str, len: u64) -> String {
    let digest = sha2::Sha256::digest(format!("{key}:{len}").as_bytes());
    format!("\"{}\"", hex::encode(&digest[..12]))
}

impl PlaybackService {
    pub fn new(
        db: std::sync::Arc<dyn repo::PlaybackStore>,
        store: ArcStore,
        signer: UrlSigner,
        public_url: url::Url,
        media: MediaConfig,
        scratch_dir: PathBuf,
        recent: Arc<RecentPlaybackIds>,
    ) -> PlaybackService {
        let segments = (media.segment_cache_mib > 0).then(|| {
            let bytes = media.segment_cache_mib * 1024 * 1024;
            quick_cache::sync::Cache::with_weighter(
                (bytes / (512 * 1024)) as usize,
                bytes,
                SegmentWeight,
            )
        });
        PlaybackService {
            keys: SigningKeys::new(db.clone()),
            restrictions: restrictions::Restrictions::new(db.clone()),
            db,
            store,
            signer,
            public_url,
            media,
            scratch_dir,
            image_locks: KeyedLocks::default(),
            image_renders: tokio::sync::Semaphore::new(2),
            recent,
            segments,
        }
    }

    /// Renders each image once across every process that takes turns with `locks`.
    pub fn with_image_locks(mut self, locks: KeyedLocks) -> PlaybackService {
        self.image_locks = locks;
        self
    }

    async fn lookup(&self, playback_id: &str) -> Result<(PlaybackPolicy, Asset), PlaybackError> {
        let not_found = || PlaybackError::NotFound(playback_id.to_owned());
        if !is_valid_id(playback_id) {
            return Err(not_found());
        }
        let (asset_id, policy) = self
            .db
            .find_playback_id(playback_id)
            .await?
            .ok_or_else(not_found)?;
        let asset = self.db.get_asset(&asset_id).await?.ok_or_else(not_found)?;
        Ok((policy, asset))
    }

    /// Checks that `playback_id` may be played with `token` for resources of `audience`.
    pub async fn authorize(
        &self,
        playback_id: &str,
        token: Option<&str>,
        audience: Audience,
        viewer: &restrictions::Viewer,
    ) -> Result<Authorized, PlaybackError> {
        let (policy, asset) = self.lookup(playback_id).await?;
        let claims = match policy {
            PlaybackPolicy::Public => Claims::default(),
            PlaybackPolicy::Signed => {
                let token = token
                    .filter(|t| !t.is_empty())
                    .ok_or(PlaybackError::TokenRequired)?;
                self.keys
                    .verify(token, audience.claim(), playback_id)
                    .await?
            }
        };
        if let Some(id) = claims.restriction_id() {
            self.restrictions.check(&id, viewer).await?;
        }
        Ok(Authorized {
            playback_id: playback_id.to_owned(),
            policy,
            asset,
            claims,
        })
    }

    fn require_playable(asset: &Asset) -> Result<(), PlaybackError> {
        match asset.status {
            AssetStatus::Errored => Err(PlaybackError::NotReady("errored")),
            _ if asset.renditions.is_empty() => Err(PlaybackError::NotReady("preparing")),
            _ => Ok(()),
        }
    }

    /// The multivariant playlist. `max_resolution`/`min_resolution` filter rungs by their shorter
    /// side; the rung nearest 720p is listed first (players start with the first).
    pub fn master_playlist(
        &self,
        auth: &Authorized,
        param: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<String, PlaybackError> {
        Self::require_playable(&auth.asset)?;
        let bound = |name: &str| -> Result<Option<u32>, PlaybackError> {
            param(name)
                .map(|v| {
                    v.strip_suffix('p')
                        .and_then(|n| n.parse::<u32>().ok())
                        .filter(|n| [270, 360, 480, 540, 720, 1080, 1440, 2160].contains(n))
                        .ok_or_else(|| PlaybackError::Invalid(format!("{name}: {v:?} must be one of 270p, 360p, 480p, 540p, 720p, 1080p, 1440p, 2160p")))
                })
                .transpose()
        };
        let (max, min) = (bound("max_resolution")?, bound("min_resolution")?);
        let grant = match auth.policy {
            PlaybackPolicy::Public => PUBLIC_GRANT.to_owned(),
            PlaybackPolicy::Signed => {
                let exp = auth
                    .claims
                    .exp()
                    .unwrap_or(0)
                    .min(now_unix() + MAX_GRANT_SECS);
                // The resolution bounds in force are signed into the grant, so child URLs cannot
                // reach renditions the token excluded.
                let bounds = (min.unwrap_or(0), max.unwrap_or(0));
                // So is the token's playback restriction: every segment request is checked too.
                let rid = auth.claims.restriction_id();
                sign_grant(&self.signer, &auth.playback_id, bounds, rid.as_deref(), exp)
            }
        };
        let mut renditions: Vec<_> = auth
            .asset
            .renditions
            .iter()
            .filter(|r| {
                let side = r.width.min(r.height);
                r.height == 0 || (max.is_none_or(|m| side <= m) && min.is_none_or(|m| side >= m))
            })
            .collect();
        if renditions.is_empty() {
            return Err(PlaybackError::Invalid(
                "no rendition within min_resolution..max_resolution".to_owned(),
            ));
        }
        if param("rendition_order").as_deref() != Some("desc") {
            if let Some(pos) = renditions
                .iter()
                .position(|r| r.height > 0 && r.width.min(r.height) <= 720)
            {
                let start = renditions.remove(pos);
                renditions.insert(0, start);
            }
        }
        let mut m3u8 = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
        // Subtitles: one group of every ready text track (names and language tags were checked
        // when the track was added: no quotes or line breaks).
        let ready = |kind: TrackKind| {
            auth.asset
                .tracks
                .iter()
                .filter(move |t| t.input.kind == kind && t.status == TrackStatus::Ready)
        };
        let texts: Vec<_> = ready(TrackKind::Text).collect();
        for t in &texts {
            m3u8.push_str(&format!(
                "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"{}\",LANGUAGE=\"{}\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO",
                t.input.name, t.input.language_code
            ));
            if t.input.closed_captions {
                m3u8.push_str(",CHARACTERISTICS=\"public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound\"");
            }
            m3u8.push_str(&format!(
                ",URI=\"{}/g/{grant}/text/{}.m3u8\"\n",
                auth.playback_id, t.id
            ));
        }
        // Added audio tracks: alternates in one AUDIO group with the variants' own sound (no URI:
        // it is in the variant streams), which stays the default.
        let audios: Vec<_> = ready(TrackKind::Audio).collect();
        let own_audio = auth
            .asset
            .source
            .as_ref()
            .is_some_and(|s| !s.audio.is_empty());
        if !audios.is_empty() && own_audio {
            m3u8.push_str("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Default\",DEFAULT=YES,AUTOSELECT=YES\n");
        }
        for (i, t) in audios.iter().enumerate() {
            let default = if i == 0 && !own_audio { "YES" } else { "NO" };
            m3u8.push_str(&format!(
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"{}\",LANGUAGE=\"{}\",DEFAULT={default},AUTOSELECT=YES,URI=\"{}/g/{grant}/audio/{}/index.m3u8\"\n",
                t.input.name, t.input.language_code, auth.playback_id, t.id
            ));
        }
        for r in renditions {
            // Variants without sound of their own name the codec of the alternates they play with.
            let codecs = if !audios.is_empty() && !r.codecs.contains("mp4a") {
                format!("{},mp4a.40.2", r.codecs)
            } else {
                r.codecs.clone()
            };
            m3u8.push_str(&format!(
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{codecs}\"",
                r.bandwidth, r.average_bandwidth
            ));
            if r.height > 0 {
                m3u8.push_str(&format!(",RESOLUTION={}x{}", r.width, r.height));
            }
            if let Some(fps) = r.frame_rate {
                m3u8.push_str(&format!(",FRAME-RATE={fps:.3}"));
            }
            if !audios.is_empty() {
                m3u8.push_str(",AUDIO=\"audio\"");
            }
            if !texts.is_empty() {
                m3u8.push_str(",SUBTITLES=\"subs\"");
            }
            m3u8.push_str(&format!(
                ",CLOSED-CAPTIONS=NONE\n{}/g/{grant}/{}/index.m3u8\n",
                auth.playback_id, r.name
            ));
        }
        Ok(m3u8)
    }

    /// The asset behind a playback id and the resolution bounds of a grant from its master
    /// playlist, once the grant (and the playback restriction signed into it) is checked.
    async fn granted(
        &self,
        playback_id: &str,
        grant: &str,
        rendition: &str,
        viewer: &restrictions::Viewer,
    ) -> Result<(PlaybackPolicy, Arc<Asset>, (u32, u32)), PlaybackError> {
        let (policy, asset) = match self.recent.get(playback_id, rendition) {
            Some(found) => found,
            None => {
                let (policy, asset) = self.lookup(playback_id).await?;
                let asset = Arc::new(asset);
                self.recent.put(playback_id, policy, asset.clone());
                (policy, asset)
            }
        };
        let mut bounds = (0, 0);
        if policy == PlaybackPolicy::Signed || grant != PUBLIC_GRANT {
            let (checked, rid) = check_grant(&self.signer, playback_id, grant, now_unix())?;
            bounds = checked;
            if let Some(rid) = rid {
                self.restrictions.check(rid, viewer).await?;
            }
        }
        Ok((policy, asset, bounds))
    }

    /// A text track's HLS media playlist (`{track}.m3u8`) or one of its WebVTT segments
    /// (`{track}-{n}.vtt`), for a holder of the grant from the master playlist; made from the
    /// stored WebVTT file.
    pub async fn text_file(
        &self,
        playback_id: &str,
        grant: &str,
        file: &str,
        viewer: &restrictions::Viewer,
    ) -> Result<(&'static str, String), PlaybackError> {
        let not_found = || PlaybackError::FileNotFound(file.to_owned());
        let (_, asset, _) = self.granted(playback_id, grant, "text", viewer).await?;
        let (track_id, segment) = if let Some(stem) = file.strip_suffix(".m3u8") {
            (stem, None)
        } else {
            let (stem, n) = file
                .strip_suffix(".vtt")
                .and_then(|f| f.rsplit_once('-'))
                .ok_or_else(not_found)?;
            (stem, Some(n.parse::<u64>().map_err(|_| not_found())?))
        };
        let track = Self::ready_text_track(&asset, track_id)?;
        let duration_ms = Self::text_duration_ms(&asset);
        match segment {
            None => Ok((
                "application/vnd.apple.mpegurl",
                subtitles::media_playlist(&track.id, duration_ms),
            )),
            Some(n) if n < subtitles::segment_count(duration_ms) => {
                let cues = self.text_cues(&asset, &track.id).await?;
                Ok(("text/vtt", subtitles::segment(&cues, n)))
            }
            Some(_) => Err(not_found()),
        }
    }

    /// A text track's whole WebVTT file (Mux's `/{playback_id}/text/{track_id}.vtt`).
    pub async fn text_track_vtt(
        &self,
        auth: &Authorized,
        track_id: &str,
    ) -> Result<Resolved, PlaybackError> {
        let track = Self::ready_text_track(&auth.asset, track_id)?;
        Ok(Resolved {
            key: StoreKey::parse(&Asset::text_key(&auth.asset.id, &track.id))?,
            content_type: "text/vtt",
            public: auth.policy == PlaybackPolicy::Public,
            pending_segment: false,
        })
    }

    fn ready_text_track<'a>(
        asset: &'a Asset,
        track_id: &str,
    ) -> Result<&'a crate::assets::model::Track, PlaybackError> {
        asset
            .tracks
            .iter()
            .find(|t| {
                t.id == track_id
                    && t.input.kind == TrackKind::Text
                    && t.status == TrackStatus::Ready
            })
            .ok_or_else(|| PlaybackError::FileNotFound(format!("text track {track_id}")))
    }

    /// How long a text track's playlist runs: the media's duration.
    fn text_duration_ms(asset: &Asset) -> u64 {
        let secs = asset
            .source
            .as_ref()
            .and_then(|s| s.duration)
            .unwrap_or(0.0);
        (secs.max(0.0) * 1000.0).round() as u64
    }

    async fn text_cues(
        &self,
        asset: &Asset,
        track_id: &str,
    ) -> Result<Vec<subtitles::Cue>, PlaybackError> {
        let key = StoreKey::parse(&Asset::text_key(&asset.id, track_id))?;
        let bytes = match self.store.get(&key, 0, None).await {
            Ok(object) => object.into_bytes().await?,
            Err(StorageError::NotFound(_)) => {
                return Err(PlaybackError::FileNotFound(format!(
                    "text track {track_id}"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        // Stored by the track's job as WebVTT it wrote itself: a parse failure is corruption.
        subtitles::parse(&bytes)
            .map_err(|e| PlaybackError::Invalid(format!("stored subtitles: {e}")))
    }

    /// A rendition playlist or segment, for a holder of the grant from the master playlist.
    pub async fn rendition_file(
        &self,
        playback_id: &str,
        grant: &str,
        rendition: &str,
        file: &str,
        viewer: &restrictions::Viewer,
    ) -> Result<Resolved, PlaybackError> {
        let (policy, asset, bounds) = self.granted(playback_id, grant, rendition, viewer).await?;
        let content_type = if file == "index.m3u8" {
            "application/vnd.apple.mpegurl"
        } else if file.starts_with("seg_") && file.ends_with(".ts") {
            "video/mp2t"
        } else {
            return Err(PlaybackError::FileNotFound(file.to_owned()));
        };
        let allowed = |r: &crate::assets::model::Rendition| {
            let side = r.width.min(r.height);
            r.height == 0
                || ((bounds.0 == 0 || side >= bounds.0) && (bounds.1 == 0 || side <= bounds.1))
        };
        if !asset
            .renditions
            .iter()
            .any(|r| r.name == rendition && allowed(r))
        {
            return Err(PlaybackError::FileNotFound(format!(
                "rendition {rendition}"
            )));
        }
        let key = StoreKey::parse(&Asset::hls_key(&asset.id, rendition, file))
            .map_err(|_| PlaybackError::FileNotFound(file.to_owned()))?;
        Ok(Resolved {
            key,
            content_type,
            public: policy == PlaybackPolicy::Public,
            pending_segment: content_type == "video/mp2t"
                && asset
                    .renditions
                    .iter()
                    .any(|r| r.name == rendition && r.pending),
        })
    }

    /// A file of an added audio track's rendition (`index.m3u8`, `seg_NNNNN.ts`), for a holder
    /// of the grant from the master playlist.
    pub async fn audio_track_file(
        &self,
        playback_id: &str,
        grant: &str,
        track_id: &str,
        file: &str,
        viewer: &restrictions::Viewer,
    ) -> Result<Resolved, PlaybackError> {
        let (policy, asset, _) = self.granted(playback_id, grant, "audio", viewer).await?;
        let content_type = match file {
            "index.m3u8" => "application/vnd.apple.mpegurl",
            f if f.starts_with("seg_")
                && f.ends_with(".ts")
                && f[4..f.len() - 3].bytes().all(|b| b.is_ascii_digit()) =>
            {
                "video/mp2t"
            }
            _ => return Err(PlaybackError::FileNotFound(file.to_owned())),
        };
        if !asset.tracks.iter().any(|t| {
            t.id == track_id && t.input.kind == TrackKind::Audio && t.status == TrackStatus::Ready
        }) {
            return Err(PlaybackError::FileNotFound(format!(
                "audio track {track_id}"
            )));
        }
        Ok(Resolved {
            key: StoreKey::parse(&Asset::audio_track_key(&asset.id, track_id, file))
                .map_err(|_| PlaybackError::FileNotFound(file.to_owned()))?,
            content_type,
            public: policy == PlaybackPolicy::Public,
            pending_segment: false,
        })
    }

    /// A static MP4/M4A rendition.
    pub fn static_file(&self, auth: &Authorized, name: &str) -> Result<Resolved, PlaybackError> {
        if !auth.asset.static_files.iter().any(|f| f.name == name) {
            return Err(PlaybackError::FileNotFound(name.to_owned()));
        }
        let content_type = if name.ends_with(".m4a") {
            "audio/mp4"
        } else {
            "video/mp4"
        };
        let key = StoreKey::parse(&Asset::static_key(&auth.asset.id, name))
            .map_err(|_| PlaybackError::FileNotFound(name.to_owned()))?;
        Ok(Resolved {
            key,
            content_type,
            public: auth.policy == PlaybackPolicy::Public,
            pending_segment: false,
        })
    }

    /// Where a client may fetch a resolved object straight from the store (a presigned URL),
    /// for large files when the store redirects reads; playlists and segments never go there.
    pub async fn redirect(&self, resolved: &Resolved) -> Result<Option<String>, PlaybackError> {
        if resolved.is_rendition_file() {
            return Ok(None);
        }
        Ok(self
            .store
            .presigned_get(&resolved.key, crate::storage::PRESIGNED_SECS)
            .await?)
    }

    /// Opens bytes `[start, end)` of a resolved object.
    pub async fn open(
        &self,
        resolved: &Resolved,
        start: u64,
        end: Option<u64>,
    ) -> Result<Served, PlaybackError> {
        let key = &resolved.key;
        let whole = start == 0 && end.is_none();
        let cache = self
            .segments
            .as_ref()
            .filter(|_| whole && resolved.is_rendition_file());
        if let Some(bytes) = cache.and_then(|c| c.get(key.as_str())) {
            return Ok(Served {
                etag: etag_for(key.as_str(), bytes.len() as u64),
                object: StoredObject::from_bytes(bytes),
            });
        }
        let object = match self.store.get(key, start, end).await {
            Ok(object) => object,
            Err(StorageError::NotFound(_)) if resolved.pending_segment => {
                self.wait_for_segment(key).await?;
                self.store.get(key, start, end).await?
            }
            Err(StorageError::NotFound(_)) => {
                return Err(PlaybackError::FileNotFound(key.as_str().to_owned()))
            }
            Err(e) => return Err(e.into()),
        };
        let object = match cache {
            Some(cache) if object.len <= CACHED_SEGMENT_MAX => {
                let bytes = object.into_bytes().await?;
                cache.insert(key.as_str().to_owned(), bytes.clone());
                StoredObject::from_bytes(bytes)
            }
            _ => object,
        };
        Ok(Served {
            etag: etag_for(key.as_str(), object.len),
            object,
        })
    }

    /// Waits (bounded by `[media] segment_wait_secs`) for a segment that its rendition's
    /// playlist lists but the encoder has not published yet. A file the playlist does not list
    /// is not waited for.
    async fn wait_for_segment(&self, key: &StoreKey) -> Result<(), PlaybackError> {
        let not_found = || PlaybackError::FileNotFound(key.as_str().to_owned());
        let (dir, file) = key.as_str().rsplit_once('/').ok_or_else(not_found)?;
        let playlist_key =
            StoreKey::parse(&format!("{dir}/index.m3u8")).map_err(|_| not_found())?;
        let playlist = match self.store.local_file(&playlist_key).await {
            Ok(local) => tokio::fs::read_to_string(local.path()).await?,
            Err(StorageError::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        if !playlist.lines().any(|line| line.trim() == file) {
            return Err(not_found());
        }
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_secs(self.media.segment_wait_secs);
        loop {
            if self.store.size(key).await?.is_some() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PlaybackError::SegmentPending(file.to_owned()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    fn video_size(asset: &Asset) -> Result<(f64, u32, u32), PlaybackError> {
        let source = asset
            .source
            .as_ref()
            .ok_or(PlaybackError::NotReady("preparing"))?;
        let video = source.video.as_ref().ok_or_else(|| {
            PlaybackError::Invalid("the asset has no video to make images from".to_owned())
        })?;
        let (w, h) = video.display_size();
        Ok((source.duration.unwrap_or(0.0), w, h))
    }

    /// Renders (once, then from the store) an image of the asset: `kind` is `thumbnail`, `animated`
    /// or `storyboard`. Concurrent requests for the same image run ffmpeg once.
    pub async fn image(
        &self,
        auth: &Authorized,
        kind: &str,
        format: ImageFormat,
        param: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Resolved, PlaybackError> {
        if auth.asset.status == AssetStatus::Errored {
            return Err(PlaybackError::Invalid(
                "the asset is errored; it has no images".to_owned(),
            ));
        }
        let (duration, w, h) = Self::video_size(&auth.asset)?;
        let image = match kind {
            "thumbnail" => {
                Image::Thumbnail(Thumbnail::parse(param, duration).map_err(PlaybackError::Invalid)?)
            }
            "animated" => {
                Image::Animated(Animated::parse(param, duration).map_err(PlaybackError::Invalid)?)
            }
            _ => Image::Storyboard(Storyboard::plan(duration, w, h)),
        };
        let cache_name = image.cache_name(format);
        let digest = hex::encode(&sha2::Sha256::digest(cache_name.as_bytes())[..16]);
        let key = StoreKey::parse(&format!(
            "assets/{}/images/{digest}.{}",
            auth.asset.id,
            format.ext()
        ))?;
        // One render per image, across processes sharing the lock folder.
        let _guard = self.image_locks.lock(key.as_str()).await?;
        if self.store.size(&key).await?.is_none() {
            let _render = self.image_renders.acquire().await.expect("never closed");
            let original = auth
                .asset
                .original
                .as_ref()
                .ok_or(PlaybackError::NotReady("preparing"))?;
            let timeout = Duration::from_secs(self.media.probe_timeout_secs.max(60));
            let input = self
                .store
                .media_input(
                    &StoreKey::parse(&original.key)?,
                    timeout.as_secs().try_into().unwrap_or(u32::MAX),
                )
                .await?;
            let out = tempfile::Builder::new()
                .suffix(&format!(".{}", format.ext()))
                .tempfile_in(&self.scratch_dir)?
                .into_temp_path();
            crate::media::ffmpeg::run(
                &self.media.ffmpeg_path,
                image.args(input.location(), format, &out),
                timeout,
                |_| {},
            )
            .await?;
            self.store.put_file(&key, &out).await?;
        }
        Ok(Resolved {
            key,
            content_type: format.content_type(),
            public: auth.policy == PlaybackPolicy::Public,
            pending_segment: false,
        })
    }

    /// The storyboard's WebVTT, pointing at its sprite (with the request's token, if any).
    pub fn storyboard_vtt(
        &self,
        auth: &Authorized,
        token: Option<&str>,
    ) -> Result<String, PlaybackError> {
        let (duration, w, h) = Self::video_size(&auth.asset)?;
        let mut url = self.public_url.clone();
        url.set_path(&format!(
            "{}{}/storyboard.jpg",
            crate::ingest::base_path(&self.public_url),
            auth.playback_id
        ));
        if let Some(token) = token {
            url.set_query(Some(&format!("token={token}")));
        }
        Ok(Storyboard::plan(duration, w, h).vtt(url.as_str(), duration))
    }
}
