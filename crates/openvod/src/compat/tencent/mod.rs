//! Tencent Cloud VOD compatibility: the API 3.0 surface (`POST /` with TC3-HMAC-SHA256), the preset
//! transcoding templates, v3 event notifications, and the event-notification receipt service.
//! Everything here translates to core calls (`processing`, `assets`, `events`).

pub mod api;
pub mod cos;
pub mod cos_sign;
pub mod events;
pub mod hotlink;
pub mod media;
pub mod receiver;
pub mod sign;
pub mod templates;
pub mod ugc;
pub mod upload;
