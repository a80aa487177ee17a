//! Media management through the VOD API: `DescribeMediaInfos` (with `Filters`), `SearchMedia`
//! and `ModifyMediaInfo`, over the core's assets.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::api::{err, int, string, TcError};
use super::events::{basic_info, metadata, transcode_item};
use crate::assets::model::{Asset, AssetChange, AssetFilter, AssetMeta};
use crate::http::AppState;
use crate::processing::OutputRequest;

/// The `MediaInfo` of an asset; with `filters` (`basicInfo`, `metaData`, `transcodeInfo`), only
/// those parts (Tencent's `Filters`).
async fn media_info(state: &AppState, asset: &Asset, filters: &[String]) -> Result<Value, TcError> {
    let wants = |part: &str| filters.is_empty() || filters.iter().any(|f| f == part);
    let mut info = json!({"FileId": asset.file_id});
    if wants("basicInfo") {
        info["BasicInfo"] = basic_info(&state.public_url, asset);
    }
    if wants("metaData") {
        info["MetaData"] = metadata(asset);
    }
    if !wants("transcodeInfo") {
        return Ok(info);
    }
    let tasks = state
        .processing
        .list_for_asset(&asset.id)
        .await
        .map_err(|e| err("InternalError", e.to_string()))?;
    let mut transcodes = Vec::new();
    if let Some(original) = &asset.original {
        let mut item = json!({"Url": super::events::source_url(&state.public_url, asset), "Definition": 0, "Size": original.size});
        if let Value::Object(meta) = metadata(asset) {
            for key in [
                "Container",
                "Bitrate",
                "Height",
                "Width",
                "Duration",
                "VideoStreamSet",
                "AudioStreamSet",
            ] {
                if let Some(v) = meta.get(key) {
                    item[key] = v.clone();
                }
            }
        }
        transcodes.push(item);
    }
    for task in &tasks {
        for r in task
            .results
            .iter()
            .filter(|r| r.ok && matches!(r.request, OutputRequest::Mp4 { .. }))
        {
            if let Some(f) = r.files.first() {
                transcodes.push(transcode_item(
                    &state.public_url,
                    &asset.file_id,
                    r.request.preset(),
                    f,
                ));
            }
        }
    }
    info["TranscodeInfo"] = json!({"TranscodeSet": transcodes});
    Ok(info)
}

fn list<'a>(params: &'a Value, name: &str) -> Result<&'a [Value], TcError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(err(
            "InvalidParameterValue",
            format!("{name} must be an array"),
        )),
    }
}

fn strings(params: &Value, name: &str) -> Result<Vec<String>, TcError> {
    list(params, name)?
        .iter()
        .map(|v| {
            v.as_str().map(str::to_owned).ok_or_else(|| {
                err(
                    &format!("InvalidParameterValue.{name}"),
                    format!("{name} must be an array of strings"),
                )
            })
        })
        .collect()
}

const FILTERS: &[&str] = &["basicInfo", "metaData", "transcodeInfo"];

pub(crate) fn filters(params: &Value) -> Result<Vec<String>, TcError> {
    let filters = strings(params, "Filters")?;
    if let Some(bad) = filters.iter().find(|f| !FILTERS.contains(&f.as_str())) {
        return Err(err(
            "InvalidParameterValue.Filters",
            format!("Filters takes {}; got {bad:?}", FILTERS.join(", ")),
        ));
    }
    Ok(filters)
}

pub async fn describe_media_infos(state: &AppState, params: &Value) -> Result<Value, TcError> {
    let ids = list(params, "FileIds")?;
    if ids.is_empty() || ids.len() > 20 {
        return Err(err(
            "InvalidParameterValue.FileIds",
            "FileIds takes 1 to 20 ids",
        ));
    }
    let filters = filters(params)?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in ids {
        let id = id
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| id.to_string());
        match state.assets.get_by_file_id(&id).await {
            Err(_) => missing.push(id),
            Ok(asset) => found.push(media_info(state, &asset, &filters).await?),
        }
    }
    Ok(json!({"MediaInfoSet": found, "NotExistFileIdSet": missing}))
}

/// An ISO 8601 time as Tencent writes them (`2024-01-02T03:04:05Z`, or with an offset), in Unix
/// seconds.
pub(super) fn iso_time(value: &str, name: &str) -> Result<i64, TcError> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            err(
                &format!("InvalidParameterValue.{name}"),
                format!(
                    "{name} must be an ISO 8601 time such as 2024-01-02T03:04:05Z, got {value:?}"
                ),
            )
        })
}

/// A media `ExpireTime`: `None` for Tencent's "never" (9999-12-31T23:59:59Z).
pub(crate) fn expire_time(value: &str) -> Result<Option<i64>, TcError> {
    const NEVER: i64 = 253_402_214_400;
    let at = iso_time(value, "ExpireTime")?;
    Ok((at < NEVER).then_some(at))
}

/// The most SearchMedia looks through (Tencent: `Offset + Limit` at most 5000).
const SEARCH_WINDOW: i64 = 5000;

pub async fn search_media(state: &AppState, params: &Value) -> Result<Value, TcError> {
    let offset = int(params, "Offset")?.unwrap_or(0);
    let limit = int(params, "Limit")?.unwrap_or(10);
    if offset < 0 || !(1..=5000).contains(&limit) || offset + limit > SEARCH_WINDOW {
        return Err(err(
            "InvalidParameterValue",
            "Offset >= 0, Limit 1 to 5000, and Offset + Limit at most 5000",
        ));
    }
    let mut filter = AssetFilter {
        title_contains: string(params, "Text")?.filter(|t| !t.is_empty()),
        ..AssetFilter::default()
    };
    // CreateTime {After, Before}, or the older StartTime / EndTime.
    let range = params.get("CreateTime").cloned().unwrap_or(Value::Null);
    let time_of = |value: Option<String>, name: &str| -> Result<Option<i64>, TcError> {
        value
            .filter(|v| !v.is_empty())
            .map(|v| iso_time(&v, name))
            .transpose()
    };
    filter.created_after = time_of(string(&range, "After")?, "CreateTime.After")?
        .or(time_of(string(params, "StartTime")?, "StartTime")?);
    filter.created_before = time_of(string(&range, "Before")?, "CreateTime.Before")?
        .or(time_of(string(params, "EndTime")?, "EndTime")?);
    let sort = params.get("Sort").cloned().unwrap_or(Value::Null);
    match string(&sort, "Field")?.as_deref() {
        None | Some("CreateTime") => {}
        Some(other) => {
            return Err(err(
                "InvalidParameterValue.Sort",
                format!("Sort.Field can only be CreateTime, got {other:?}"),
            ))
        }
    }
    filter.oldest_first = match string(&sort, "Order")?.as_deref() {
        None | Some("Desc") => false,
        Some("Asc") => true,
        Some(other) => {
            return Err(err(
                "InvalidParameterValue.Sort",
                format!("Sort.Order is Asc or Desc, got {other:?}"),
            ))
        }
    };
    let names: Vec<String> = strings(params, "Names")?
        .into_iter()
        .map(|n| n.to_lowercase())
        .collect();
    let prefixes = strings(params, "NamePrefixes")?;
    let file_ids = strings(params, "FileIds")?;
    let categories = strings(params, "Categories")?;
    let wanted = |asset: &Asset| {
        let name = super::events::media_name(asset);
        let category = if asset.source.as_ref().is_some_and(|s| s.video.is_none()) {
            "Audio"
        } else {
            "Video"
        };
        (names.is_empty() || names.iter().any(|n| name.to_lowercase().contains(n)))
            && (prefixes.is_empty() || prefixes.iter().any(|p| name.starts_with(p)))
            && (file_ids.is_empty() || file_ids.contains(&asset.file_id))
            && (categories.is_empty() || categories.iter().any(|c| c == category))
    };
    let filters = filters(params)?;
    // The store filters by text and time; the rest is checked here, over at most the window.
    let mut matched = Vec::new();
    let mut page = 1;
    loop {
        let (assets, _) = state
            .assets
            .list(100, page, &filter, None)
            .await
            .map_err(|e| err("InternalError", e.to_string()))?;
        let last = assets.len() < 100;
        matched.extend(assets.into_iter().filter(|a| wanted(a)));
        if last || matched.len() as i64 >= SEARCH_WINDOW {
            break;
        }
        page += 1;
    }
    let total = matched.len();
    let mut set = Vec::new();
    for asset in matched.iter().skip(offset as usize).take(limit as usize) {
        set.push(media_info(state, asset, &filters).await?);
    }
    Ok(json!({"TotalCount": total, "MediaInfoSet": set}))
}

pub async fn modify_media_info(state: &AppState, params: &Value) -> Result<Value, TcError> {
    let file_id = string(params, "FileId")?
        .filter(|f| !f.is_empty())
        .ok_or_else(|| err("MissingParameter", "FileId is required"))?;
    let asset = state.assets.get_by_file_id(&file_id).await.map_err(|_| {
        err(
            "ResourceNotFound.FileNotExist",
            format!("FileId {file_id} does not exist"),
        )
    })?;
    int(params, "ClassId")?;
    let mut change = AssetChange::default();
    let name = string(params, "Name")?;
    let description = string(params, "Description")?;
    if name.is_some() || description.is_some() {
        let meta = AssetMeta {
            title: name,
            description,
            ..AssetMeta::default()
        };
        meta.validate()
            .map_err(|e| err("InvalidParameterValue", e))?;
        change.meta = Some(meta);
    }
    if let Some(expire) = string(params, "ExpireTime")?.filter(|e| !e.is_empty()) {
        change.expire_at = Some(expire_time(&expire)?);
    }
    let updated = match string(params, "CoverData")?.filter(|c| !c.is_empty()) {
        Some(data) => {
            let image = STANDARD.decode(data.trim()).map_err(|_| {
                err(
                    "InvalidParameterValue.CoverData",
                    "CoverData must be base64",
                )
            })?;
            state.assets.set_cover(&asset.id, &image, change).await
        }
        None if change.is_empty() => Ok(Some(asset.clone())),
        None => state.assets.update(&asset.id, &change).await,
    }
    .map_err(|e| match e.kind() {
        crate::error::ErrorKind::Internal => err("InternalError", e.to_string()),
        _ => err("InvalidParameterValue", e.to_string()),
    })?
    .ok_or_else(|| err("ResourceNotFound.FileNotExist", "the file was deleted"))?;
    Ok(json!({
        "CoverUrl": super::events::cover_url(&state.public_url, &updated),
        "AddedSubtitleSet": [],
    }))
}
