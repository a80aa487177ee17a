//! The `openvod bbb migrate` loop: every recording of the saved listing, in listing order,
//! selected by range or recordID, its owners looked up in Moodle, then one action per mode.
//!
//! The listing is parsed on a blocking thread and handed over one recording at a time through a
//! bounded channel, so memory does not grow with the number of recordings.

use std::io::Write;
use std::path::Path;

use super::model::{Mode, Owner, OwnerOrigin};
use super::{state_of, MigrationError, MigrationService, Outcome};
use crate::bbb::api::{self, ListedRecording};
use crate::bbb::migrate::{csv_row, csv_writer, Selection, CSV_HEADER};
use crate::bbb::moodle::{Activity, Moodle, Moodles};
use crate::bbb::BbbError;

/// What the run does with each recording.
pub enum Action<W: Write> {
    /// Pod's CSV, to this writer.
    ExportCsv(W),
    ManualClaim,
    ImportVideo,
}

pub struct RunOptions {
    pub selection: Selection,
    pub dry: bool,
    pub playback_url_23: bool,
    /// Owner of recordings without a Moodle moderator (`--use-import-video`).
    pub admin_owner: Option<String>,
    /// Appended once to the Moodle activity's intro when its recordings are imported.
    pub inform_message: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Bbb(#[from] BbbError),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error("writing the CSV failed: {0}")]
    Csv(String),
}

/// The closing summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub listed: u64,
    pub in_range: u64,
    pub done: u64,
    pub skipped: u64,
    pub failed: u64,
    pub presentations: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "listed {}, in range {}, done {}, skipped as already done {}, failed {}, presentations to render {}",
            self.listed, self.in_range, self.done, self.skipped, self.failed, self.presentations
        )
    }
}

/// Python's `repr()` of a list of strings, as Pod writes `Moodle_owners`.
pub fn python_list_repr(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::with_capacity(s.len() + 2);
            out.push(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                        out.push_str(&format!("\\x{:02x}", c as u32))
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        })
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// Recordings parsed ahead of the loop, and looked up in Moodle together.
const PREFETCH: usize = 200;

/// The recording's moderators from its site's Moodle database, with the activity they came
/// from. No database for its origin (or an ignored origin): no one.
async fn moodle_owners<'m>(
    moodles: &'m Moodles,
    rec: &ListedRecording,
) -> Result<(Vec<Owner>, Option<(&'m Moodle, Activity)>), BbbError> {
    let Some(db) = moodles.for_server(rec.meta("bbb-origin-server-name")) else {
        return Ok((Vec::new(), None));
    };
    let Some(activity) = db.find_activity(&rec.record_id, &rec.meeting_id).await? else {
        return Ok((Vec::new(), None));
    };
    let owners = db
        .moderators(&activity)
        .await?
        .into_iter()
        .filter(|u| crate::accounts::valid_username(&u.username))
        .map(|u| Owner {
            full_name: Some(u.full_name()),
            email: Some(u.email.clone()).filter(|e| !e.is_empty()),
            username: u.username,
            origin: OwnerOrigin::Moodle,
        })
        .collect();
    Ok((owners, Some((db, activity))))
}

/// Runs the migration over the saved listing. `service` is `None` only for a dry run without
/// a database yet; `on_line` gets a line per recording and `on_progress` the counts after each.
pub async fn run<W: Write>(
    cache: &Path,
    mut action: Action<W>,
    opts: &RunOptions,
    moodles: Option<&Moodles>,
    service: Option<&MigrationService>,
    mut on_line: impl FnMut(String),
    mut on_progress: impl FnMut(&Summary),
) -> Result<Summary, RunError> {
    let mode = match &action {
        Action::ExportCsv(_) => None,
        Action::ManualClaim => Some(Mode::ManualClaim),
        Action::ImportVideo => Some(Mode::ImportVideo),
    };
    let mut csv = match &mut action {
        Action::ExportCsv(out) => {
            let mut w = csv_writer(out);
            let mut header: Vec<&str> = CSV_HEADER.to_vec();
            if moodles.is_some() {
                header.push("Moodle_owners");
            }
            w.write_record(header)
                .map_err(|e| RunError::Csv(e.to_string()))?;
            Some(w)
        }
        _ => None,
    };

    let (tx, mut rx) = tokio::sync::mpsc::channel::<ListedRecording>(PREFETCH);
    let path = cache.to_path_buf();
    let parser = tokio::task::spawn_blocking(move || {
        api::read_listing(&path, |rec| {
            // A closed channel means the loop stopped on an error; stop parsing too.
            tx.blocking_send(rec)
                .map_err(|_| BbbError::Render("migration stopped".to_owned()))
        })
    });

    let mut summary = Summary::default();
    let mut failure: Option<RunError> = None;
    let mut batch = std::collections::VecDeque::with_capacity(PREFETCH);
    loop {
        if batch.is_empty() {
            let Some(first) = rx.recv().await else { break };
            batch.push_back(first);
            while batch.len() < PREFETCH {
                match rx.try_recv() {
                    Ok(rec) => batch.push_back(rec),
                    Err(_) => break,
                }
            }
            if let Some(m) = moodles {
                let keys: Vec<(&str, Option<&str>)> = batch
                    .iter()
                    .map(|r| (r.record_id.as_str(), r.meta("bbb-origin-server-name")))
                    .collect();
                m.prefetch(&keys).await;
            }
        }
        let Some(rec) = batch.pop_front() else { break };
        summary.listed += 1;
        if !opts.selection.includes(summary.listed, &rec) {
            continue;
        }
        summary.in_range += 1;
        let head = format!(
            "{:>5} {} {} {:?}",
            summary.listed,
            rec.record_id,
            rec.start_date(),
            rec.name.trim()
        );
        let is_presentation = rec.video_url().is_none() && rec.presentation_url(false).is_some();
        let result = handle(
            &rec,
            mode,
            csv.as_mut(),
            opts,
            moodles,
            service,
            is_presentation,
        )
        .await;
        match result {
            Ok((owners, Step::Done(what))) => {
                summary.done += 1;
                if is_presentation && mode == Some(Mode::ManualClaim) {
                    summary.presentations += 1;
                }
                on_line(format!("{head} owners: {owners} → {what}"));
            }
            Ok((owners, Step::Skipped(what))) => {
                summary.skipped += 1;
                on_line(format!("{head} owners: {owners} → {what}"));
            }
            Err(RunError::Csv(e)) => {
                failure = Some(RunError::Csv(e));
                break;
            }
            Err(e) => {
                summary.failed += 1;
                let message = e.to_string();
                if let (Some(mode), Some(service), false) = (mode, service, opts.dry) {
                    if let Err(e) = service.fail(&rec.record_id, mode, &message).await {
                        failure = Some(e.into());
                        break;
                    }
                }
                on_line(format!("{head} → FAILED: {message}"));
            }
        }
        on_progress(&summary);
    }
    drop(rx);
    let parsed = parser
        .await
        .map_err(|e| BbbError::Render(format!("listing parser: {e}")))?;
    if let Some(e) = failure {
        return Err(e);
    }
    parsed?;
    if let Some(mut w) = csv {
        w.flush().map_err(|e| RunError::Csv(e.to_string()))?;
    }
    Ok(summary)
}

enum Step {
    Done(String),
    Skipped(String),
}

fn owner_labels(owners: &[Owner]) -> String {
    if owners.is_empty() {
        return "-".to_owned();
    }
    owners
        .iter()
        .map(|o| format!("{} ({})", o.label(), o.origin.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn handle<W: Write>(
    rec: &ListedRecording,
    mode: Option<Mode>,
    csv: Option<&mut csv::Writer<&mut W>>,
    opts: &RunOptions,
    moodles: Option<&Moodles>,
    service: Option<&MigrationService>,
    is_presentation: bool,
) -> Result<(String, Step), RunError> {
    let (mut owners, activity) = match moodles {
        Some(m) => moodle_owners(m, rec).await?,
        None => (Vec::new(), None),
    };
    if let Some(csv) = csv {
        let mut row = csv_row(rec, opts.playback_url_23);
        if moodles.is_some() {
            let labels: Vec<String> = owners.iter().map(Owner::label).collect();
            row.push(python_list_repr(&labels));
        }
        csv.write_record(&row)
            .map_err(|e| RunError::Csv(e.to_string()))?;
        let what = if opts.dry { "printed" } else { "exported" };
        return Ok((owner_labels(&owners), Step::Done(what.to_owned())));
    }
    let mode = mode.expect("a mode other than CSV");
    if mode == Mode::ImportVideo && owners.is_empty() {
        if let Some(admin) = &opts.admin_owner {
            owners.push(Owner {
                username: admin.clone(),
                full_name: None,
                email: None,
                origin: OwnerOrigin::Admin,
            });
        }
    }
    let labels = owner_labels(&owners);
    let state = state_of(rec, opts.playback_url_23);
    let kind = if is_presentation {
        "render the presentation"
    } else {
        "download the video"
    };
    super::source_of(&state)?;
    let already = match service {
        Some(s) => s.done(&rec.record_id, mode).await?,
        None => None,
    };
    if opts.dry {
        let what = match (mode, &already) {
            (_, Some(_)) => Step::Skipped("already done; would do nothing".to_owned()),
            (Mode::ManualClaim, None) => Step::Done(format!(
                "would create an asset ({kind}){}",
                if owners.is_empty() {
                    " waiting in the claim queue"
                } else {
                    ""
                }
            )),
            (Mode::ImportVideo, None) => Step::Done(format!(
                "would create {} external recording(s)",
                owners.len()
            )),
        };
        return Ok((labels, what));
    }
    let Some(service) = service else {
        return Err(MigrationError::Invalid(
            "only a dry run may go without openvod's database".to_owned(),
        )
        .into());
    };
    service.save(&state, &owners).await?;
    let step = match mode {
        Mode::ManualClaim => match service.create_claim_asset(&state, &owners).await? {
            Outcome::Created { asset_id, .. } => Step::Done(format!(
                "asset {} created ({kind} in a job){}",
                asset_id.unwrap_or_default(),
                if owners.is_empty() {
                    ", waiting in the claim queue"
                } else {
                    ""
                }
            )),
            Outcome::AlreadyDone { asset_id } => Step::Skipped(format!(
                "already done: asset {}",
                asset_id.unwrap_or_default()
            )),
        },
        Mode::ImportVideo => {
            if owners.is_empty() {
                return Err(MigrationError::Invalid(
                    "no owner: no Moodle moderator and no [bbb] admin_owner".to_owned(),
                )
                .into());
            }
            let outcome = service.create_external(&state, &owners).await?;
            if let (Some((db, activity)), Some(message)) = (&activity, &opts.inform_message) {
                db.inform(activity.id, message).await?;
            }
            match outcome {
                Outcome::Created { count, .. } => {
                    Step::Done(format!("{count} external recording(s) created"))
                }
                Outcome::AlreadyDone { .. } => {
                    Step::Skipped("already done: external recordings exist".to_owned())
                }
            }
        }
    };
    Ok((labels, step))
}

#[cfg(test)]
mod tests {
    use super::python_list_repr;

    #[test]
    fn owners_cell_is_python_repr() {
        let items = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(python_list_repr(&[]), "[]");
        assert_eq!(
            python_list_repr(&items(&["Jean Dupont (jdupont)", "Léa Leroy (lleroy)"])),
            "['Jean Dupont (jdupont)', 'Léa Leroy (lleroy)']"
        );
        assert_eq!(
            python_list_repr(&items(&["O'Brien (ob)", "a\"b'c", "back\\slash"])),
            "[\"O'Brien (ob)\", 'a\"b\\'c', 'back\\\\slash']"
        );
    }
}
