//! `Range` request headers for downloads (one range; multipart ranges are answered with the whole body).

/// The range starts past the end of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// The half-open byte span `[start, end)` a `Range: bytes=…` header asks for within `len` bytes.
/// `Ok(None)`: no usable single range, serve everything. `Err(Unsatisfiable)`: answer 416.
pub fn parse_range(header: &str, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    let span = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, false) => {
            let Some(suffix) = parse(last) else {
                return Ok(None);
            };
            if suffix == 0 || len == 0 {
                return Err(Unsatisfiable);
            }
            (len.saturating_sub(suffix), len)
        }
        (false, _) => {
            let Some(start) = parse(first) else {
                return Ok(None);
            };
            let end = if last.trim().is_empty() {
                len
            } else {
                match parse(last) {
                    Some(last) if last >= start => last.saturating_add(1).min(len),
                    _ => return Ok(None),
                }
            };
            if start >= len {
                return Err(Unsatisfiable);
            }
            (start, end)
        }
        (true, true) => return Ok(None),
    };
    Ok(Some(span))
}

#[cfg(test)]
mod tests {
    use super::{parse_range, Unsatisfiable};

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 100))));
        assert_eq!(parse_range("bytes=-5", 100), Ok(Some((95, 100))));
        assert_eq!(parse_range("bytes=50-1000", 100), Ok(Some((50, 100))));
        assert_eq!(parse_range("bytes=100-", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=5-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=0-1,3-4", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(
            parse_range("bytes=0-18446744073709551615", 100),
            Ok(Some((0, 100)))
        );
        assert_eq!(parse_range("bytes=-5", 0), Err(Unsatisfiable));
    }
}
