//! The Mux Video API (`/video/v1/...`), exactly as Mux's SDKs expect it: status codes, `{"data": …}`
//! envelopes and enum values (mux-python returns `None` for any status it does not expect).

pub mod events;
pub(crate) mod routes;
pub mod wire;

pub use routes::routes;
