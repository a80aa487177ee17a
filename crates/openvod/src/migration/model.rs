//! The migration's state, as stored by `db` (`BbbRepo`). Core types, not wire types.

use serde::Serialize;

/// One recording of the old server, as last listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BbbRecording {
    pub record_id: String,
    pub meeting_id: String,
    pub name: String,
    pub start_time_ms: Option<i64>,
    pub origin_server: Option<String>,
    /// The presentation (rendered) or video (downloaded) playback the asset comes from.
    pub source_url: Option<String>,
    /// The `<recording>` element as the server listed it.
    pub raw_xml: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerOrigin {
    Moodle,
    Admin,
    Claim,
}

impl OwnerOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerOrigin::Moodle => "moodle",
            OwnerOrigin::Admin => "admin",
            OwnerOrigin::Claim => "claim",
        }
    }

    pub fn parse(s: &str) -> Option<OwnerOrigin> {
        match s {
            "moodle" => Some(OwnerOrigin::Moodle),
            "admin" => Some(OwnerOrigin::Admin),
            "claim" => Some(OwnerOrigin::Claim),
            _ => None,
        }
    }
}

/// Someone a recording belongs to (an openvod username, i.e. an asset's `meta.creator_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub username: String,
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub origin: OwnerOrigin,
}

impl Owner {
    /// Pod's `Moodle_owners` cell entry: `First Last (username)`.
    pub fn label(&self) -> String {
        match self.full_name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => format!("{name} ({})", self.username),
            None => self.username.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ManualClaim,
    ImportVideo,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ManualClaim => "manual_claim",
            Mode::ImportVideo => "import_video",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "manual_claim" => Some(Mode::ManualClaim),
            "import_video" => Some(Mode::ImportVideo),
            _ => None,
        }
    }
}

/// What a mode did with a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub record_id: String,
    pub mode: Mode,
    /// `done` or `failed`.
    pub state: String,
    pub asset_id: Option<String>,
    pub detail: Option<String>,
    pub error: Option<String>,
    pub updated_at: i64,
}

/// A recording of the old server with its owners and what each mode did (the admins' list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationEntry {
    pub record_id: String,
    pub name: String,
    pub start_time_ms: Option<i64>,
    pub origin_server: Option<String>,
    pub listed_at: i64,
    pub owners: Vec<Owner>,
    pub actions: Vec<Action>,
}

/// A recording an owner may import into openvod when they choose (Pod's `ExternalRecording`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalRecording {
    pub id: String,
    pub record_id: String,
    pub owner: String,
    pub name: String,
    pub start_at_ms: Option<i64>,
    pub source_url: String,
    /// Always `bigbluebutton` for now (Pod also knows peertube, video, youtube).
    pub kind: String,
    /// Set when the import started.
    pub asset_id: Option<String>,
    pub created_at: i64,
}

/// An asset of `--use-manual-claim` that no one owns yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub asset_id: String,
    pub record_id: String,
    pub name: String,
    pub start_time_ms: Option<i64>,
    pub origin_server: Option<String>,
}
