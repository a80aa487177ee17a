//! Playback: thumbnails, images, caching, and signed access.
