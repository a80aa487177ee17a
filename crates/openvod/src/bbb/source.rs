//! What `openvod bbb render SOURCE` accepts: a 2.3 or 2.0 playback URL, the published folder URL,
//! or a local published folder.

use std::path::PathBuf;

use super::BbbError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The published folder `https://HOST/presentation/RECORD_ID/` (always ends with `/`).
    Http { base: url::Url, record_id: String },
    /// A local copy of `/var/bigbluebutton/published/presentation/RECORD_ID/`.
    Dir(PathBuf),
}

/// BBB record ids are `<sha1>-<ms timestamp>`; accept any short id of that alphabet.
fn valid_record_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Source {
    pub fn parse(raw: &str) -> Result<Source, BbbError> {
        let raw = raw.trim();
        if let Some((scheme, _)) = raw.split_once("://") {
            if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
                return Err(BbbError::InvalidSource(format!(
                    "{raw:?}: only http and https URLs, or a local folder, are accepted"
                )));
            }
            return Source::parse_url(raw);
        }
        let dir = PathBuf::from(raw);
        if !dir.is_dir() {
            return Err(BbbError::InvalidSource(format!(
                "{raw:?} is neither a BigBlueButton playback URL nor a folder"
            )));
        }
        if !dir.join("metadata.xml").is_file() {
            return Err(BbbError::InvalidSource(format!(
                "{raw:?} holds no metadata.xml: it is not a published presentation recording"
            )));
        }
        Ok(Source::Dir(dir))
    }

    /// Only the URL forms (an API caller may not name the server's folders).
    pub fn parse_url(raw: &str) -> Result<Source, BbbError> {
        let raw = raw.trim();
        let lower = raw.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(BbbError::InvalidSource(format!(
                "{raw:?}: the source must be an http or https URL of a BigBlueButton recording"
            )));
        }
        let unrecognized = || {
            BbbError::InvalidSource(format!(
                "{raw:?} is not a presentation recording URL; expected \
                 https://HOST/playback/presentation/2.3/RECORD_ID, \
                 https://HOST/playback/presentation/2.0/playback.html?meetingId=RECORD_ID \
                 or https://HOST/presentation/RECORD_ID/"
            ))
        };
        let url = url::Url::parse(raw).map_err(|_| unrecognized())?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(unrecognized());
        }
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        // The recording may live below a prefix (a reverse proxy); match the tail of the path.
        let (prefix_len, record_id) = match segments.as_slice() {
            [.., "playback", "presentation", "2.3", id] => (segments.len() - 4, id.to_string()),
            [.., "playback", "presentation", "2.0", page] if page.ends_with(".html") => {
                let id = url
                    .query_pairs()
                    .find(|(k, _)| k == "meetingId")
                    .map(|(_, v)| v.into_owned())
                    .ok_or_else(unrecognized)?;
                (segments.len() - 4, id)
            }
            [.., "presentation", id] => (segments.len() - 2, id.to_string()),
            _ => return Err(unrecognized()),
        };
        if !valid_record_id(&record_id) {
            return Err(BbbError::InvalidSource(format!(
                "{record_id:?} in {raw:?} is not a recording id"
            )));
        }
        let mut base = url.clone();
        base.set_query(None);
        base.set_fragment(None);
        let mut path = String::from("/");
        for segment in &segments[..prefix_len] {
            path.push_str(segment);
            path.push('/');
        }
        path.push_str("presentation/");
        path.push_str(&record_id);
        path.push('/');
        base.set_path(&path);
        Ok(Source::Http { base, record_id })
    }
}

/// Whether `url` is a BigBlueButton "video" playback page (`/playback/video/RECORD_ID/`, or
/// Scalelite's `/recording/RECORD_ID/video`): the recording is already a video file to download.
pub fn is_video_playback(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url.trim()) else {
        return false;
    };
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    segments.windows(2).any(|w| w == ["playback", "video"])
        || segments
            .windows(3)
            .any(|w| w[0] == "recording" && w[2] == "video")
}

/// A Scalelite protected playback, `…/recording/RECORD_ID/FORMAT?token=…`: the recording id and
/// the playback format (`presentation`, `video`, …), with or without its token.
pub fn protected_playback(url: &str) -> Option<(String, String)> {
    let url = url::Url::parse(url.trim()).ok()?;
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    match segments.as_slice() {
        [.., "recording", id, format]
            if valid_record_id(id) && format.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Some((id.to_string(), format.to_string()))
        }
        _ => None,
    }
}

/// `url` without its one-time `token`, which is useless once spent or expired (Scalelite's last
/// 60 min) and is a credential: what the migration stores and shows. Other URLs are unchanged.
pub fn without_token(url: &str) -> String {
    let Some(mut parsed) = url::Url::parse(url.trim())
        .ok()
        .filter(|_| protected_playback(url).is_some())
    else {
        return url.to_owned();
    };
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != "token")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    parsed.to_string()
}

/// Opens a playback for download. Other URLs come back as they are; a Scalelite protected one is
/// consumed in `session` (an `Outbound::session`, whose cookie jar then grants the recording's
/// files) and the URL it lands on is returned. A URL without its token gets a fresh one from the
/// old server (`server`), right before it is used.
pub async fn open_playback(
    session: &crate::outbound::Outbound,
    url: &str,
    server: Option<&super::api::Server>,
) -> Result<String, BbbError> {
    let Some((record_id, format)) = protected_playback(url) else {
        return Ok(url.to_owned());
    };
    let has_token = url::Url::parse(url.trim())
        .is_ok_and(|u| u.query_pairs().any(|(k, v)| k == "token" && !v.is_empty()));
    let token_url = if has_token {
        url.trim().to_owned()
    } else {
        let server = server.ok_or_else(|| {
            BbbError::InvalidSource(format!(
                "{url} is a protected recording: a fresh one-time token must be asked of the old \
                 server, and [bbb] server_url and secret are not configured"
            ))
        })?;
        super::api::current_playback_url(session, server, &record_id, &format).await?
    };
    session.check_url(&token_url).await?;
    let shown = without_token(&token_url);
    let response =
        session
            .client()
            .get(&token_url)
            .send()
            .await
            .map_err(|e| BbbError::Download {
                url: shown.clone(),
                reason: crate::assets::describe_reqwest(&e),
            })?;
    let status = response.status();
    if !status.is_success() {
        let reason = format!("HTTP {status} (an expired or already used token?)");
        return Err(if status.is_server_error() {
            BbbError::Download { url: shown, reason }
        } else {
            BbbError::DownloadPermanent { url: shown, reason }
        });
    }
    let mut landed = response.url().clone();
    drop(response);
    if protected_playback(landed.as_str()).is_none() {
        return Ok(landed.to_string());
    }
    // No redirect: the player answered at the token URL itself. Its files live where BBB puts
    // them on the same host.
    landed.set_query(None);
    if format == "presentation" {
        let path = landed.path().to_owned();
        let prefix = path.rfind("/recording/").map_or("", |at| &path[..at]);
        landed.set_path(&format!("{prefix}/playback/presentation/2.3/{record_id}"));
    }
    Ok(landed.to_string())
}

/// File types a video playback may point at (Pod's `VIDEO_ALLOWED_EXTENSIONS`, for BBB's).
const VIDEO_EXTENSIONS: [&str; 5] = ["m4v", "mp4", "webm", "mkv", "mov"];

/// The last `<source src=...>` of a video playback page, as Pod's `video_parser` takes it.
pub fn video_source_in_page(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = None;
    let mut from = 0;
    while let Some(at) = lower[from..].find("<source") {
        let start = from + at + "<source".len();
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let tag = &html[start..end];
        let tag_lower = &lower[start..end];
        let mut search = 0;
        while let Some(pos) = tag_lower[search..].find("src") {
            let name_start = search + pos;
            let before_ok =
                name_start == 0 || tag_lower.as_bytes()[name_start - 1].is_ascii_whitespace();
            let rest = tag[name_start + 3..].trim_start();
            search = name_start + 3;
            if !before_ok || !rest.starts_with('=') {
                continue;
            }
            let value = rest[1..].trim_start();
            let parsed = match value.chars().next() {
                Some(q @ ('"' | '\'')) => value[1..].split(q).next(),
                Some(_) => value.split(|c: char| c.is_whitespace() || c == '/').next(),
                None => None,
            };
            if let Some(v) = parsed.filter(|v| !v.is_empty()) {
                found = Some(v.to_owned());
            }
            break;
        }
        from = end.min(lower.len());
        if from >= lower.len() {
            break;
        }
    }
    found
}

/// The video file a video playback page plays, resolved against the page.
pub async fn video_file_url(
    outbound: &crate::outbound::Outbound,
    page: &str,
) -> Result<url::Url, BbbError> {
    let mut page_url = url::Url::parse(page.trim())
        .map_err(|e| BbbError::InvalidSource(format!("{page:?}: {e}")))?;
    outbound.check_url(page_url.as_str()).await?;
    let page_name = page_url.to_string();
    let download = |reason: String| BbbError::Download {
        url: page_name.clone(),
        reason,
    };
    let response = outbound
        .client()
        .get(page_url.clone())
        .send()
        .await
        .map_err(|e| download(e.to_string()))?;
    if !response.status().is_success() {
        let reason = format!("HTTP {}", response.status());
        return Err(if response.status().is_server_error() {
            download(reason)
        } else {
            BbbError::DownloadPermanent {
                url: page_name.clone(),
                reason,
            }
        });
    }
    // Relative sources are relative to the folder of the page.
    page_url = response.url().clone();
    if !page_url.path().ends_with('/') && !page_url.path().ends_with(".html") {
        let path = format!("{}/", page_url.path());
        page_url.set_path(&path);
    }
    let html = response.text().await.map_err(|e| download(e.to_string()))?;
    let src = video_source_in_page(&html).ok_or_else(|| {
        BbbError::Missing(format!(
            "<source src=...> in the video playback page {page_url}"
        ))
    })?;
    let file = page_url
        .join(&src)
        .map_err(|e| BbbError::InvalidSource(format!("video source {src:?}: {e}")))?;
    let extension = file
        .path()
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !VIDEO_EXTENSIONS.contains(&extension.as_str()) {
        return Err(BbbError::InvalidSource(format!(
            "the video playback plays {file}, which is not a video file ({})",
            VIDEO_EXTENSIONS.join(", ")
        )));
    }
    outbound.check_url(file.as_str()).await?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::{
        is_video_playback, protected_playback, video_source_in_page, without_token, Source,
    };

    #[test]
    fn protected_playbacks_lose_their_token() {
        let id = "183f0bf3a0982a127bdb8161e0c44eb696b3e75c-1531240585189";
        let url = format!("https://sl.example/recording/{id}/presentation?token=ab12&x=1");
        assert_eq!(
            protected_playback(&url),
            Some((id.to_owned(), "presentation".to_owned()))
        );
        assert_eq!(
            without_token(&url),
            format!("https://sl.example/recording/{id}/presentation?x=1")
        );
        assert_eq!(
            without_token(&format!(
                "https://sl.example/recording/{id}/video?token=ab12"
            )),
            format!("https://sl.example/recording/{id}/video")
        );
        let plain = format!("https://bbb.example/playback/presentation/2.3/{id}?token=keep");
        assert_eq!(protected_playback(&plain), None);
        assert_eq!(without_token(&plain), plain);
        assert_eq!(
            protected_playback("https://sl.example/recording/../video"),
            None
        );
        assert_eq!(protected_playback("not a url"), None);
    }

    #[test]
    fn video_playback_pages() {
        assert!(is_video_playback(
            "https://bbb.example/playback/video/abc-1/"
        ));
        assert!(is_video_playback(
            "https://sl.example/recording/abc-1/video?token=ff"
        ));
        assert!(!is_video_playback(
            "https://bbb.example/playback/presentation/2.3/abc-1"
        ));
        let page = r#"<html><video controls><SOURCE src="video-0.webm" type="video/webm">
            <source type='video/mp4' src='video-0.m4v'></video><source></html>"#;
        assert_eq!(video_source_in_page(page).as_deref(), Some("video-0.m4v"));
        assert_eq!(video_source_in_page("<source data-src=x>"), None);
        assert_eq!(
            video_source_in_page("<source src=v.mp4>"),
            Some("v.mp4".to_owned())
        );
        assert_eq!(video_source_in_page("<source src="), None);
        assert_eq!(video_source_in_page(""), None);
    }

    /// Property: arbitrary HTML never panics the page scanner.
    #[test]
    fn arbitrary_pages_are_safe() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pieces = [
            "<source", "<SOURCE", " src", "src", "=", "\"", "'", ">", " ", "é", "a.m4v", "/",
        ];
        for _ in 0..20_000 {
            let n = rng.gen_range(0..12);
            let html: String = (0..n)
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            let _ = video_source_in_page(&html);
        }
    }

    fn base(raw: &str) -> String {
        match Source::parse(raw).unwrap() {
            Source::Http { base, .. } => base.to_string(),
            Source::Dir(_) => panic!("not a URL"),
        }
    }

    #[test]
    fn playback_urls_map_to_the_published_folder() {
        let id = "183f0bf3a0982a127bdb8161e0c44eb696b3e75c-1531240585189";
        let folder = format!("https://bbb.example/presentation/{id}/");
        assert_eq!(
            base(&format!(
                "https://bbb.example/playback/presentation/2.3/{id}"
            )),
            folder
        );
        assert_eq!(
            base(&format!(
                "https://bbb.example/playback/presentation/2.3/{id}/?t=12"
            )),
            folder
        );
        assert_eq!(
            base(&format!(
                "https://bbb.example/playback/presentation/2.0/playback.html?meetingId={id}"
            )),
            folder
        );
        assert_eq!(
            base(&format!("https://bbb.example/presentation/{id}/")),
            folder
        );
        assert_eq!(
            base(&format!("https://bbb.example/presentation/{id}")),
            folder
        );
        assert_eq!(
            base(&format!("http://h:8080/bbb/playback/presentation/2.3/{id}")),
            format!("http://h:8080/bbb/presentation/{id}/")
        );
    }

    #[test]
    fn refuses_what_is_not_a_recording() {
        for bad in [
            "ftp://bbb.example/presentation/abc/",
            "file:///var/bigbluebutton/published/presentation/abc",
            "https://bbb.example/playback/presentation/2.0/playback.html",
            "https://bbb.example/playback/presentation/2.3/..",
            "https://bbb.example/other/abc",
            "https://bbb.example/presentation/a%2F..%2Fb/",
            "/nonexistent/folder",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }

    /// Property: arbitrary URLs never panic, and an accepted one always names a published folder.
    #[test]
    fn arbitrary_urls_are_safe() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(10);
        let pieces = [
            "https://",
            "http://",
            "h",
            "/",
            "..",
            "%2e",
            "?",
            "meetingId=",
            "&",
            "#",
            "playback",
            "presentation",
            "2.3",
            "2.0",
            "playback.html",
            "abc-123",
            ":",
            "@",
            "[::1]",
        ];
        for _ in 0..50_000 {
            let n = rng.gen_range(1..10);
            let raw: String = (0..n)
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            if let Ok(Source::Http { base, record_id }) = Source::parse_url(&raw) {
                assert!(
                    base.path()
                        .ends_with(&format!("/presentation/{record_id}/")),
                    "{raw}"
                );
                assert!(!record_id.contains(".."), "{raw}");
                assert!(matches!(base.scheme(), "http" | "https"));
            }
        }
    }
}
