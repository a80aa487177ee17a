//! Tencent VOD's upload protocol: `ApplyUpload` hands out a storage target that openvod itself
//! serves (`cos`), with a temporary credential scoped to that upload; the SDK sends the media file
//! (and a cover) there; `CommitUpload` turns it into a media file. Underneath it is an ordinary
//! upload of the core (`ingest`): the credential lives as long as the upload waits, an upload
//! never committed times out and its bytes are removed, the commit finishes it as any other.
//!
//! Nothing is stored for the credential or the session: the temporary `SecretId` names the
//! upload and its expiry, its `SecretKey` and `Token` are derived from the server key, and the
//! `VodSessionKey` is a signed record of what `ApplyUpload` was asked.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::{err, int, string, TcError};
use crate::assets::model::{AssetMeta, AssetProcedure, AssetSettings, PlaybackPolicy};
use crate::http::AppState;
use crate::id::now_unix;
use crate::ingest::capability::UrlSigner;
use crate::ingest::{IngestError, NewUpload};
use crate::processing::OutputRequest;

/// What the storage target is called (labels only: openvod serves it).
pub const STORAGE_BUCKET: &str = "openvod-1250000000";
pub const STORAGE_REGION: &str = "ap-guangzhou";
/// How long a temporary credential (and its upload) lasts.
pub const CREDENTIAL_SECS: u64 = 3600;
/// Where the storage target's objects live: `/cos/<upload id>/<media|cover>.<type>`.
pub const PATH_PREFIX: &str = "/cos/";
const SECRET_ID_PREFIX: &str = "AKIDopenvod";

/// Named task flows (`Procedure`) and the key credentials are derived from.
pub struct VodUploads {
    signer: UrlSigner,
    procedures: BTreeMap<String, Vec<OutputRequest>>,
}

/// A temporary credential for one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempCredential {
    pub secret_id: String,
    pub secret_key: String,
    pub token: String,
    pub expires: i64,
}

/// What `ApplyUpload` was asked, carried (signed) by the `VodSessionKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "u")]
    pub upload_id: String,
    /// Object names: `media.<MediaType>`, `cover.<CoverType>`.
    #[serde(rename = "m")]
    pub media: String,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<String>,
}

impl VodUploads {
    pub fn new(
        signer: UrlSigner,
        procedures: &BTreeMap<String, Vec<u32>>,
    ) -> Result<VodUploads, String> {
        let procedures = procedures
            .iter()
            .map(|(name, ids)| {
                super::templates::procedure(ids)
                    .map(|outputs| (name.clone(), outputs))
                    .map_err(|e| format!("[tencent.procedures] {name}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(VodUploads { signer, procedures })
    }

    pub fn credential(&self, upload_id: &str, expires: i64) -> TempCredential {
        let secret_id = format!("{SECRET_ID_PREFIX}{upload_id}x{expires}");
        TempCredential {
            secret_key: self.signer.derive("cos-secret-key", &secret_id),
            token: self.signer.derive("cos-token", &secret_id),
            secret_id,
            expires,
        }
    }

    /// The credential a `SecretId` names (the upload id and expiry are in it), if it is one of ours.
    pub fn credential_of(&self, secret_id: &str) -> Option<(String, TempCredential)> {
        let (upload_id, expires) = secret_id.strip_prefix(SECRET_ID_PREFIX)?.rsplit_once('x')?;
        let expires: i64 = expires.parse().ok()?;
        if !crate::id::is_valid_id(upload_id) {
            return None;
        }
        let credential = self.credential(upload_id, expires);
        (credential.secret_id == secret_id).then(|| (upload_id.to_owned(), credential))
    }

    pub fn session_key(&self, session: &Session, expires: i64) -> String {
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(session).expect("sessions serialize"));
        let tag = self.signer.sign("vod-session", &payload, expires);
        format!("{payload}.{tag}")
    }

    /// The session a `VodSessionKey` carries, if we signed it and it has not expired.
    pub fn open_session_key(&self, key: &str) -> Option<Session> {
        let (payload, tag) = key.split_once('.')?;
        self.signer
            .verify("vod-session", payload, Some(tag), now_unix())
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

/// A file type as ApplyUpload takes it (`mp4`, `jpg`): the object's extension.
pub(crate) fn file_type(params: &Value, name: &str) -> Result<Option<String>, TcError> {
    let Some(value) = string(params, name)? else {
        return Ok(None);
    };
    let value = value.trim().to_ascii_lowercase();
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(err(
            &format!("InvalidParameterValue.{name}"),
            format!("{name} must be a file type such as mp4 or jpg, got {value:?}"),
        ));
    }
    Ok(Some(value))
}

pub(crate) fn bounded(params: &Value, name: &str, max: usize) -> Result<Option<String>, TcError> {
    let value = string(params, name)?.filter(|v| !v.is_empty());
    if value.as_ref().is_some_and(|v| v.chars().count() > max) {
        return Err(err(
            &format!("InvalidParameterValue.{name}"),
            format!("{name} takes at most {max} characters"),
        ));
    }
    Ok(value)
}

/// The settings of a new media file from the parameters ApplyUpload and PullUpload share:
/// `MediaName` (title), `SourceContext` (passthrough), `Procedure` with its `SessionContext`,
/// `ExpireTime` (the file is deleted then).
fn new_file_settings(state: &AppState, params: &Value) -> Result<AssetSettings, TcError> {
    let name = bounded(params, "MediaName", AssetMeta::MAX_TITLE_LEN)?;
    let source_context = bounded(params, "SourceContext", 250)?;
    let session_context = bounded(params, "SessionContext", 1000)?;
    int(params, "ClassId")?;
    let outputs = match string(params, "Procedure")?.filter(|p| !p.is_empty()) {
        None => Vec::new(),
        Some(name) => state
            .vod_uploads
            .procedures
            .get(&name)
            .cloned()
            .ok_or_else(|| {
                err(
                    "InvalidParameterValue.Procedure",
                    format!("no task flow named {name:?} ([tencent.procedures] in the config)"),
                )
            })?,
    };
    let session_id = string(params, "SessionId")?.filter(|s| !s.is_empty());
    // Without a Procedure the default task flow runs, with this upload's context.
    let procedure = (!outputs.is_empty() || session_context.is_some() || session_id.is_some())
        .then(|| AssetProcedure {
            outputs,
            context: json!({
                "SessionContext": session_context.unwrap_or_default(),
                "SessionId": session_id.unwrap_or_default(),
                "TasksNotifyMode": "Finish",
            }),
        });
    let expire_at = match string(params, "ExpireTime")?.filter(|e| !e.is_empty()) {
        Some(value) => super::media::expire_time(&value)?,
        None => None,
    };
    Ok(AssetSettings {
        playback_policies: vec![PlaybackPolicy::Public],
        passthrough: source_context,
        expire_at,
        meta: AssetMeta {
            title: name,
            ..AssetMeta::default()
        },
        procedure,
        ..AssetSettings::default()
    })
}

pub async fn apply_upload(state: &AppState, params: &Value) -> Result<Value, TcError> {
    let media_type = file_type(params, "MediaType")?.ok_or_else(|| {
        err(
            "MissingParameter",
            "MediaType is required (the file type, such as mp4)",
        )
    })?;
    let cover_type = file_type(params, "CoverType")?;
    let settings = new_file_settings(state, params)?;
    let upload = state
        .ingest
        .create_upload(NewUpload {
            timeout_secs: Some(CREDENTIAL_SECS),
            new_asset_settings: settings,
            ..NewUpload::default()
        })
        .await
        .map_err(|e| err("InternalError", e.to_string()))?;
    let session = Session {
        upload_id: upload.id.clone(),
        media: format!("media.{media_type}"),
        cover: cover_type.map(|t| format!("cover.{t}")),
    };
    let credential = state.vod_uploads.credential(&upload.id, upload.expires_at);
    Ok(json!({
        "StorageBucket": STORAGE_BUCKET,
        "StorageRegion": STORAGE_REGION,
        "VodSessionKey": state.vod_uploads.session_key(&session, upload.expires_at),
        "MediaStoragePath": format!("{PATH_PREFIX}{}/{}", upload.id, session.media),
        "CoverStoragePath": session.cover.as_ref().map(|c| format!("{PATH_PREFIX}{}/{c}", upload.id)).unwrap_or_default(),
        "TempCertificate": {
            "SecretId": credential.secret_id,
            "SecretKey": credential.secret_key,
            "Token": credential.token,
            "ExpiredTime": credential.expires,
        },
        "AppId": 1250000000u64,
        "Timestamp": now_unix(),
        "StorageRegionV5": STORAGE_REGION,
        "MediaStorageOutputPath": "",
    }))
}

/// The id of a pull task: the asset it makes is in it, so nothing else is stored.
const PULL_TASK_PREFIX: &str = "1500000001-PullUpload-";

/// `PullUpload`: openvod fetches `MediaUrl` (under the outbound address policy) into a new media
/// file; NewFileUpload follows as for every upload.
pub async fn pull_upload(state: &AppState, params: &Value) -> Result<Value, TcError> {
    let url = string(params, "MediaUrl")?
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| err("MissingParameter", "MediaUrl is required"))?;
    file_type(params, "MediaType")?;
    let settings = new_file_settings(state, params)?;
    let asset = state
        .assets
        .create_from_url(url.trim(), &settings)
        .await
        .map_err(|e| match e.kind() {
            crate::error::ErrorKind::Internal => err("InternalError", e.to_string()),
            _ => err("InvalidParameterValue.MediaUrl", e.to_string()),
        })?;
    Ok(json!({ "TaskId": format!("{PULL_TASK_PREFIX}{}", asset.id) }))
}

/// `DescribeTaskDetail` of a pull task, or `None` if `task_id` is not one.
pub async fn pull_task_detail(state: &AppState, task_id: &str) -> Option<Result<Value, TcError>> {
    let asset_id = task_id.strip_prefix(PULL_TASK_PREFIX)?;
    let asset = match state.assets.get(asset_id).await {
        Ok(asset) => asset,
        Err(_) => {
            return Some(Err(err(
                "InvalidParameterValue.TaskId",
                format!("task {task_id} does not exist"),
            )))
        }
    };
    use crate::assets::model::AssetStatus;
    let (status, code, message) = match (asset.status, &asset.source) {
        (AssetStatus::Errored, _) => (
            "FINISH",
            10000,
            asset
                .errors
                .as_ref()
                .map(|e| e.messages.join("; "))
                .unwrap_or_default(),
        ),
        (_, Some(_)) => ("FINISH", 0, "SUCCESS".to_owned()),
        (_, None) => ("PROCESSING", 0, "SUCCESS".to_owned()),
    };
    let created = super::events::iso_seconds(asset.created_at * 1000);
    let done = status == "FINISH";
    let context = asset.settings.procedure.as_ref().map(|p| &p.context);
    Some(Ok(json!({
        "TaskType": "PullUpload",
        "Status": status,
        "CreateTime": created,
        "BeginProcessTime": created,
        "FinishTime": if done { created } else { "0000-00-00T00:00:00Z".to_owned() },
        "PullUploadTask": {
            "TaskId": task_id,
            "Status": status,
            "ErrCode": code,
            "Message": message,
            "ErrCodeExt": "",
            "FileId": if asset.source.is_some() { asset.file_id.clone() } else { String::new() },
            "MediaBasicInfo": asset.source.as_ref().map(|_| super::events::basic_info(&state.public_url, &asset)),
            "MetaData": super::events::metadata(&asset),
            "FileUrl": asset.source.as_ref().map(|_| super::events::source_url(&state.public_url, &asset)).unwrap_or_default(),
            "ProcedureTaskId": "",
            "SessionContext": context.and_then(|c| c.get("SessionContext").cloned()).unwrap_or(json!("")),
            "SessionId": context.and_then(|c| c.get("SessionId").cloned()).unwrap_or(json!("")),
            "Progress": if done { 100 } else { 0 },
        },
    })))
}

pub async fn commit_upload(state: &AppState, params: &Value) -> Result<Value, TcError> {
    let key = string(params, "VodSessionKey")?
        .ok_or_else(|| err("MissingParameter", "VodSessionKey is required"))?;
    let bad_key = || {
        err(
            "InvalidParameterValue.VodSessionKey",
            "VodSessionKey is not one ApplyUpload gave, or it has expired",
        )
    };
    let session = state
        .vod_uploads
        .open_session_key(&key)
        .ok_or_else(bad_key)?;
    let asset_id = state
        .ingest
        .commit_objects(&session.upload_id, &session.media, session.cover.as_deref())
        .await
        .map_err(|e| match e {
            IngestError::NotWaiting { .. } | IngestError::NotFound(_) => bad_key(),
            IngestError::InvalidRequest(message) => err("FailedOperation", message),
            IngestError::TooLarge { .. } => err("FailedOperation.MediaSize", e.to_string()),
            other => err("InternalError", other.to_string()),
        })?;
    let asset = state
        .assets
        .get(&asset_id)
        .await
        .map_err(|e| err("InternalError", e.to_string()))?;
    let media_type = session.media.rsplit_once('.').map_or("mp4", |(_, ext)| ext);
    Ok(json!({
        "FileId": asset.file_id,
        "MediaUrl": super::events::media_url(&state.public_url, &asset.file_id, &format!("src.{media_type}")),
        "CoverUrl": super::events::cover_url(&state.public_url, &asset),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uploads() -> VodUploads {
        VodUploads::new(UrlSigner::new(b"key".to_vec()), &BTreeMap::new()).unwrap()
    }

    #[test]
    fn credentials_are_derived_and_name_their_upload() {
        let u = uploads();
        let c = u.credential("abc123", 2_000_000_000);
        let (id, again) = u.credential_of(&c.secret_id).unwrap();
        assert_eq!((id.as_str(), &again), ("abc123", &c));
        assert_ne!(c.secret_key, c.token);
        // Another expiry or upload in the id gives another secret: a SecretId cannot be edited.
        let other = u.credential("abc123", 2_000_000_001);
        assert_ne!(other.secret_key, c.secret_key);
        assert!(u.credential_of("AKIDsomethingelse").is_none());
        assert!(u.credential_of("AKIDopenvod../etcx1").is_none());
        let with_other_key =
            VodUploads::new(UrlSigner::new(b"other".to_vec()), &BTreeMap::new()).unwrap();
        assert_ne!(
            with_other_key
                .credential("abc123", 2_000_000_000)
                .secret_key,
            c.secret_key
        );
    }

    #[test]
    fn session_keys_are_signed() {
        let u = uploads();
        let session = Session {
            upload_id: "abc".into(),
            media: "media.mp4".into(),
            cover: Some("cover.jpg".into()),
        };
        let key = u.session_key(&session, now_unix() + 60);
        assert_eq!(u.open_session_key(&key), Some(session.clone()));
        let (payload, tag) = key.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"u":"zzz","m":"media.mp4"}"#);
        assert_eq!(u.open_session_key(&format!("{forged}.{tag}")), None);
        assert_eq!(u.open_session_key(payload), None);
        let expired = u.session_key(&session, now_unix() - 1);
        assert_eq!(u.open_session_key(&expired), None);
    }
}
