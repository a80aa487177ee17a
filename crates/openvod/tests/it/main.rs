//! One integration-test binary (one link step). Each module drives a real server over HTTP.

mod assets;
mod bbb;
mod bbb_migrate;
mod bbb_modes;
mod browser;
mod cli;
mod clips;
mod console;
mod crash;
mod moodle_db;
mod mux_api;
mod overlays;
mod pipeline;
mod playback;
mod python_clients;
mod s3;
mod scale_out;
mod support;
mod tencent;
mod tencent_upload;
mod text_tracks;
mod tus;
mod uploads;
mod webhooks;
