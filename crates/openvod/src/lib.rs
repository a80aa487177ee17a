//! openvod: a self-hosted video-on-demand server.
//!
//! # Layout
//! - `app`: wiring of everything below; `App::build` then `App::run`.
//! - `config`: layered configuration.
//! - `ingest`: uploads (UpChunk/GCS resumable, plain PUT, tus) up to asset creation.
//! - `assets`: assets, playback ids, master access, and the jobs that fill assets in.
//! - `pipeline`: probe → plan → one-pass ABR encode → publish.
//! - `playback`: HLS, static files, images, signing keys and playback tokens.
//! - `media`: the only module that runs ffmpeg/ffprobe.
//! - `jobs`: the durable job queue contract and the worker loop.
//! - `migration`: the BigBlueButton migration's state, claim queue and external recordings.
//! - `compat::mux`: the Mux Video API over the core.
//! - `db`, `storage`, `outbound`, `http`: ports and adapters at the edges.
//! - `tokens`: API access tokens.

pub mod accounts;
pub mod app;
pub mod assets;
pub mod bbb;
pub mod compat;
pub mod config;
pub mod console;
pub mod db;
pub mod error;
pub mod events;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod http;
pub mod id;
pub mod ingest;
pub mod jobs;
pub mod keyed_lock;
pub mod media;
pub mod metrics;
pub mod migration;
pub mod outbound;
pub mod pipeline;
pub mod playback;
pub mod processing;
pub mod remote;
pub mod storage;
pub mod tokens;
