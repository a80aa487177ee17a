//! Compatibility adapters: each translates one vendor's wire format to core calls and back.
//! Adapters never touch `db` or `storage` directly.

pub mod mux;
