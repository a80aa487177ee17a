//! Compatibility adapters: each translates one vendor's wire format to core calls and back.
//! Adapters never touch `db` or `storage` directly.

pub mod bbb;
pub mod mux;
pub mod tencent;

use crate::events::model::{Event, WebhookFormat};
use crate::events::RenderEvent;

/// Renders events for every webhook format, each in its vendor's shape.
pub struct EventRenderer {
    pub public_url: url::Url,
}

impl RenderEvent for EventRenderer {
    fn render(&self, format: WebhookFormat, event: &Event) -> serde_json::Value {
        match format {
            WebhookFormat::Mux | WebhookFormat::Standard => mux::events::envelope(event),
            WebhookFormat::TencentV3 => tencent::events::notification(&self.public_url, event),
        }
    }
}
