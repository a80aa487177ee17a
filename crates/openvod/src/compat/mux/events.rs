//! Events in Mux's webhook envelope: `type`, `id`, `created_at` (ISO-8601, microseconds), `object`,
//! `environment`, `data` (the object, with `created_at` as an integer as in Mux's webhooks), `attempts`.

use serde_json::{json, Value};

use super::wire::{
    static_file_name, static_rendition_files, AssetResponse, TrackResponse, UploadResponse,
};
use crate::events::model::{Event, Snapshot, StaticRenditionSnapshot};
use crate::id::iso8601_micros;

/// The Mux envelope of an event (also the body of Standard Webhooks deliveries).
pub fn envelope(event: &Event) -> Value {
    let data = match &event.snapshot {
        // Webhook copies of an upload carry no URL.
        Snapshot::Upload(upload) => serde_json::to_value(UploadResponse::from_upload(upload, None)),
        Snapshot::Asset(asset) => {
            serde_json::to_value(AssetResponse::from_asset(asset, None)).map(|mut v| {
                v["created_at"] = json!(asset.created_at);
                v
            })
        }
        // Tasks belong to the VOD family, which Mux-format endpoints never carry.
        Snapshot::Task(t) => Ok(json!({"task_id": t.task.id, "asset_id": t.asset.id})),
        Snapshot::StaticRendition(r) => serde_json::to_value(static_rendition_data(r)),
        Snapshot::Track(t) => {
            let mut track = TrackResponse::from_track(&t.track);
            track.asset_id = Some(t.asset.id.clone());
            serde_json::to_value(track)
        }
    }
    .expect("wire types serialize");
    // Ordering is by asset, but Mux names the track itself as the object of a track event.
    let object_id = match &event.snapshot {
        Snapshot::Track(t) => t.track.id.clone(),
        Snapshot::StaticRendition(r) => static_rendition_data(r)["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        other => other.object_id().to_owned(),
    };
    json!({
        "type": event.kind,
        "id": event.id,
        "created_at": iso8601_micros(event.created_at_ms),
        "object": {"type": event.snapshot.object_type(), "id": object_id},
        "environment": {"name": "openvod", "id": "default"},
        "data": data,
        "attempts": [],
        "request_id": null,
        "accessor": null,
        "accessor_source": null,
    })
}

/// The file a static rendition event is about, in Mux's shape, with its `asset_id`.
fn static_rendition_data(r: &StaticRenditionSnapshot) -> Value {
    let name = r
        .name
        .clone()
        .or_else(|| r.resolution.as_deref().map(static_file_name))
        .unwrap_or_default();
    let file = static_rendition_files(&r.asset)
        .into_iter()
        .find(|f| f.name == name);
    let mut data = match file {
        Some(file) => serde_json::to_value(file).expect("wire types serialize"),
        // A file of the older mp4_support, not listed by resolution.
        None => {
            json!({"id": name.rsplit_once('.').map_or(name.as_str(), |(stem, _)| stem), "name": name})
        }
    };
    data["asset_id"] = json!(r.asset.id);
    data
}
