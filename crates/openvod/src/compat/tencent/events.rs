//! Event notifications v3: `NewFileUpload`, `ProcedureStateChanged` and `FileDeleted` bodies.

use serde_json::{json, Value};

use crate::assets::model::Asset;
use crate::events::model::{Event, Snapshot};
use crate::id::iso8601_micros;
use crate::processing::{OutputFile, OutputRequest, OutputResult, ProcessingTask};

/// `2024-05-01T08:00:00Z`: Tencent's times, UTC to the second.
pub fn iso_seconds(unix_ms: i64) -> String {
    let micros = iso8601_micros(unix_ms);
    format!("{}Z", &micros[..19])
}

/// Public URL of a stored output or original, `<public>/vod/<file_id>/<name>`.
pub fn media_url(public_url: &url::Url, file_id: &str, name: &str) -> String {
    let mut url = public_url.clone();
    url.set_path(&format!(
        "{}vod/{file_id}/{name}",
        crate::ingest::base_path(public_url)
    ));
    url.to_string()
}

fn extension(asset: &Asset) -> &'static str {
    let format = asset
        .source
        .as_ref()
        .map(|s| s.format_name.as_str())
        .unwrap_or("");
    if format.contains("mp4") {
        "mp4"
    } else if format.contains("matroska") {
        "mkv"
    } else if format.contains("mpegts") {
        "ts"
    } else {
        "bin"
    }
}

pub fn source_url(public_url: &url::Url, asset: &Asset) -> String {
    media_url(
        public_url,
        &asset.file_id,
        &format!("src.{}", extension(asset)),
    )
}

/// `MetaData` of the source, as ffprobe saw it.
pub fn metadata(asset: &Asset) -> Value {
    let Some(info) = &asset.source else {
        return Value::Null;
    };
    let size = asset.original.as_ref().map_or(0, |o| o.size);
    let duration = info.duration.unwrap_or(0.0);
    let (w, h) = info.video.as_ref().map_or((0, 0), |v| v.display_size());
    json!({
        "Size": size,
        "Container": info.format_name,
        "Bitrate": if duration > 0.0 { (size as f64 * 8.0 / duration) as u64 } else { 0 },
        "Height": h,
        "Width": w,
        "Duration": duration,
        "Rotate": info.video.as_ref().map_or(0, |v| v.rotation),
        "VideoStreamSet": info.video.iter().map(|v| json!({"Bitrate": v.bit_rate.unwrap_or(0), "Height": v.height, "Width": v.width, "Codec": v.codec, "Fps": v.frame_rate.unwrap_or(0.0).round() as i64})).collect::<Vec<_>>(),
        "AudioStreamSet": info.audio.iter().map(|a| json!({"Bitrate": 0, "SamplingRate": a.sample_rate.unwrap_or(0), "Codec": a.codec})).collect::<Vec<_>>(),
        "VideoDuration": info.video.as_ref().and_then(|v| v.duration).unwrap_or(duration),
        "AudioDuration": info.audio.first().and_then(|a| a.duration).unwrap_or(0.0),
    })
}

/// A media file's name: its title (`MediaName` at upload), else its passthrough, else its FileId.
pub fn media_name(asset: &Asset) -> String {
    asset
        .settings
        .meta
        .title
        .clone()
        .or_else(|| asset.passthrough.clone())
        .unwrap_or_else(|| asset.file_id.clone())
}

/// The URL of the cover uploaded with the media, or `""`.
pub fn cover_url(public_url: &url::Url, asset: &Asset) -> String {
    asset
        .settings
        .cover_key
        .as_deref()
        .and_then(|key| key.rsplit_once('.'))
        .map(|(_, ext)| media_url(public_url, &asset.file_id, &format!("cover.{ext}")))
        .unwrap_or_default()
}

pub fn basic_info(public_url: &url::Url, asset: &Asset) -> Value {
    let created = iso_seconds(asset.created_at * 1000);
    json!({
        "Name": media_name(asset),
        "Description": asset.settings.meta.description.clone().unwrap_or_default(),
        "CreateTime": created,
        "UpdateTime": created,
        "ExpireTime": asset.settings.expire_at.map_or("9999-12-31T23:59:59Z".to_owned(), |t| iso_seconds(t * 1000)),
        "ClassId": 0,
        "ClassName": "其他",
        "ClassPath": "其他",
        "CoverUrl": cover_url(public_url, asset),
        "Type": extension(asset),
        "MediaUrl": source_url(public_url, asset),
        "TagSet": [],
        "StorageRegion": "ap-guangzhou",
        "SourceInfo": {"SourceType": "Upload", "SourceContext": asset.passthrough.clone().unwrap_or_default()},
        "Vid": "",
        "Category": if asset.source.as_ref().is_some_and(|s| s.video.is_none()) { "Audio" } else { "Video" },
        "Status": "Normal",
        "StorageClass": "STANDARD",
    })
}

/// A transcode output as `MediaTranscodeItem`.
pub fn transcode_item(
    public_url: &url::Url,
    file_id: &str,
    definition: u32,
    f: &OutputFile,
) -> Value {
    json!({
        "Url": media_url(public_url, file_id, &f.name),
        "Definition": definition,
        "Bitrate": f.bitrate,
        "Height": f.height,
        "Width": f.width,
        "Size": f.size,
        "Duration": f.duration,
        "Md5": f.md5,
        "Container": f.container,
        "VideoStreamSet": f.video_codec.iter().map(|c| json!({"Bitrate": f.video_bitrate, "Height": f.height, "Width": f.width, "Codec": c, "Fps": f.fps.round() as i64})).collect::<Vec<_>>(),
        "AudioStreamSet": f.audio_codec.iter().map(|c| json!({"Bitrate": f.audio_bitrate, "SamplingRate": f.sample_rate, "Codec": c})).collect::<Vec<_>>(),
    })
}

fn task_status(r: &OutputResult) -> Value {
    json!({
        "Status": if r.ok { "SUCCESS" } else { "FAIL" },
        "ErrCode": if r.ok { 0 } else { 20000 },
        "ErrCodeExt": if r.ok { "" } else { "InternalError" },
        "Message": r.error.clone().unwrap_or_else(|| "SUCCESS".to_owned()),
        "Progress": 100,
        "BeginProcessTime": iso_seconds(r.begin_ms),
        "FinishTime": iso_seconds(r.finish_ms),
    })
}

/// One `MediaProcessResultSet` item, with every task key present (null but one), as production sends.
pub fn media_process_result(public_url: &url::Url, file_id: &str, r: &OutputResult) -> Value {
    let definition = r.request.preset();
    let mut item = json!({
        "Type": "", "TranscodeTask": null, "AnimatedGraphicTask": null, "SnapshotByTimeOffsetTask": null,
        "SampleSnapshotTask": null, "ImageSpriteTask": null, "CoverBySnapshotTask": null,
        "AdaptiveDynamicStreamingTask": null,
    });
    let mut task = task_status(r);
    match &r.request {
        OutputRequest::Mp4 { .. } => {
            item["Type"] = json!("Transcode");
            task["Input"] = json!({"Definition": definition, "WatermarkSet": []});
            task["Output"] = r.files.first().map_or(Value::Null, |f| {
                transcode_item(public_url, file_id, definition, f)
            });
            item["TranscodeTask"] = task;
        }
        OutputRequest::Snapshots { .. } => {
            item["Type"] = json!("SnapshotByTimeOffset");
            task["Input"] = json!({"Definition": definition, "WatermarkSet": []});
            task["Output"] = json!({
                "Definition": definition,
                "PicInfoSet": r.files.iter().map(|f| json!({"TimeOffset": f.time_offset_ms.unwrap_or(0), "Url": media_url(public_url, file_id, &f.name), "WaterMarkDefinition": []})).collect::<Vec<_>>(),
            });
            item["SnapshotByTimeOffsetTask"] = task;
        }
        OutputRequest::Cover { .. } => {
            item["Type"] = json!("CoverBySnapshot");
            task["Input"] = json!({"Definition": definition, "WatermarkSet": []});
            task["Output"] = json!({"CoverUrl": r.files.first().map(|f| media_url(public_url, file_id, &f.name)).unwrap_or_default()});
            item["CoverBySnapshotTask"] = task;
        }
    }
    item
}

/// The `ProcedureTask` structure (event body and DescribeTaskDetail).
pub fn procedure_task(public_url: &url::Url, task: &ProcessingTask, asset: &Asset) -> Value {
    let ctx = &task.context;
    json!({
        "TaskId": task.id,
        "Status": task.status.as_str(),
        "ErrCode": if task.error.is_some() { 10000 } else { 0 },
        "Message": task.error.clone().unwrap_or_else(|| "SUCCESS".to_owned()),
        "FileId": asset.file_id,
        "FileName": media_name(asset),
        "FileUrl": source_url(public_url, asset),
        "MetaData": metadata(asset),
        "AiAnalysisResultSet": [],
        "AiRecognitionResultSet": [],
        "AiContentReviewResultSet": [],
        "MediaProcessResultSet": task.results.iter().map(|r| media_process_result(public_url, &asset.file_id, r)).collect::<Vec<_>>(),
        "SessionContext": ctx.get("SessionContext").cloned().unwrap_or(json!("")),
        "SessionId": ctx.get("SessionId").cloned().unwrap_or(json!("")),
        "TasksPriority": ctx.get("TasksPriority").cloned().unwrap_or(json!(0)),
        "TasksNotifyMode": ctx.get("TasksNotifyMode").cloned().unwrap_or(json!("Finish")),
        "Operator": "System",
        "OperationType": "TSC",
    })
}

/// The v3 notification body of an event of the VOD family.
pub fn notification(public_url: &url::Url, event: &Event) -> Value {
    let mut body = json!({
        "EventType": "",
        "FileUploadEvent": null,
        "ProcedureStateChangeEvent": null,
        "FileDeleteEvent": null,
    });
    match (event.kind.as_str(), &event.snapshot) {
        ("vod.file.uploaded", Snapshot::Asset(asset)) => {
            body["EventType"] = json!("NewFileUpload");
            body["FileUploadEvent"] = json!({
                "FileId": asset.file_id,
                "MediaBasicInfo": basic_info(public_url, asset),
                "ProcedureTaskId": "",
                "ReviewAudioVideoTaskId": "",
                "MetaData": metadata(asset),
            });
        }
        ("vod.procedure.changed", Snapshot::Task(t)) => {
            body["EventType"] = json!("ProcedureStateChanged");
            body["ProcedureStateChangeEvent"] = procedure_task(public_url, &t.task, &t.asset);
        }
        ("vod.file.deleted", Snapshot::Asset(asset)) => {
            body["EventType"] = json!("FileDeleted");
            body["FileDeleteEvent"] = json!({
                "FileIdSet": [asset.file_id],
                "FileDeleteResultInfo": [{"FileId": asset.file_id, "DeleteParts": [{"Type": "OriginalFiles", "Definition": 0}, {"Type": "TranscodeFiles", "Definition": 0}]}],
            });
        }
        (other, _) => body["EventType"] = json!(other),
    }
    body
}
