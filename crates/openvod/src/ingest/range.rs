//! `Content-Range` request headers as sent by UpChunk and GCS resumable clients.

/// A parsed `Content-Range: bytes first-last/total` or `bytes */total` (status probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// Bytes `first..=last` of a `total`-byte file.
    Bytes { first: u64, last: u64, total: u64 },
    /// No bytes; the client asks how much the server has.
    Probe { total: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Content-Range {0:?}: expected \"bytes FIRST-LAST/TOTAL\" or \"bytes */TOTAL\" with FIRST <= LAST < TOTAL")]
pub struct ContentRangeError(pub String);

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl ContentRange {
    pub fn parse(header: &str) -> Result<ContentRange, ContentRangeError> {
        let err = || ContentRangeError(header.to_owned());
        let rest = header.trim().strip_prefix("bytes").ok_or_else(err)?;
        let rest = rest.strip_prefix([' ', '=']).ok_or_else(err)?.trim_start();
        let (range, total) = rest.split_once('/').ok_or_else(err)?;
        let total = number(total.trim()).ok_or_else(err)?;
        if range.trim() == "*" {
            return Ok(ContentRange::Probe { total });
        }
        let (first, last) = range.split_once('-').ok_or_else(err)?;
        let first = number(first.trim()).ok_or_else(err)?;
        let last = number(last.trim()).ok_or_else(err)?;
        if first > last || last >= total {
            return Err(err());
        }
        Ok(ContentRange::Bytes { first, last, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunks_and_probes() {
        assert_eq!(
            ContentRange::parse("bytes 0-262143/1000000"),
            Ok(ContentRange::Bytes {
                first: 0,
                last: 262_143,
                total: 1_000_000
            })
        );
        assert_eq!(
            ContentRange::parse("bytes */42"),
            Ok(ContentRange::Probe { total: 42 })
        );
        assert_eq!(
            ContentRange::parse("bytes=5-5/6"),
            Ok(ContentRange::Bytes {
                first: 5,
                last: 5,
                total: 6
            })
        );
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "bytes",
            "bytes 0-1",
            "bytes 1-0/5",
            "bytes 0-5/5",
            "bytes -1-2/5",
            "items 0-1/5",
            "bytes 0-1/*",
            "bytes +0-1/5",
            "bytes 0-99999999999999999999/5",
            "bytes a-b/c",
        ] {
            assert!(ContentRange::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// Property: parsing arbitrary input never panics, and every accepted range is well-formed.
    #[test]
    fn arbitrary_input_is_safe() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"bytes */-=0123456789 ,\t";
        for _ in 0..200_000 {
            let len = rng.gen_range(0..24);
            let s: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
                .collect();
            if let Ok(ContentRange::Bytes { first, last, total }) = ContentRange::parse(&s) {
                assert!(first <= last && last < total, "{s:?}");
            }
        }
    }
}
