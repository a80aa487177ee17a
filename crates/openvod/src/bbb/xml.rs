//! XML from a recording is outside input: parsed without DTDs (so no entity expansion and no
//! external entities) and with a size bound.

use roxmltree::{Document, ParsingOptions};

use super::BbbError;

/// Larger XML files than this are refused (a 4-hour recording's shapes.svg is a few MiB).
pub const MAX_XML_BYTES: usize = 64 << 20;

pub fn parse<'a>(file: &str, text: &'a str) -> Result<Document<'a>, BbbError> {
    if text.len() > MAX_XML_BYTES {
        return Err(BbbError::TooLarge {
            file: file.to_owned(),
            limit: MAX_XML_BYTES as u64,
        });
    }
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: 20_000_000,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, options).map_err(|e| BbbError::Invalid {
        file: file.to_owned(),
        reason: e.to_string(),
    })
}

/// A number attribute, as BBB writes them ("12.3"); `None` when absent or not a finite number.
pub fn attr_f64(node: roxmltree::Node<'_, '_>, name: &str) -> Option<f64> {
    node.attribute(name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn refuses_dtds_and_entity_bombs() {
        let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<recording>&lol2;</recording>"#;
        assert!(parse("metadata.xml", bomb).is_err());
        let external = r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert!(parse("metadata.xml", external).is_err());
        assert!(parse("metadata.xml", "<r><a/></r>").is_ok());
    }
}
