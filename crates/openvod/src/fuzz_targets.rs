//! Fuzz targets: one function per parser of outside input, fed arbitrary bytes by the cargo-fuzz
//! (libFuzzer) harness in `fuzz/` (`scripts/fuzz`), each a one-line binary calling into here.
//!
//! They live in the crate so that they reach parsers that are not public, and so that `cargo test`
//! on stable replays every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through
//! them (the tests at the bottom). A target must never panic: a panic is a bug of the parser it
//! feeds. Where it is cheap, a target also checks a property of what the parser accepts (a round
//! trip, or an invariant the callers rely on).

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::FutureExt;
use serde_json::Value;

/// A fuzz target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target: its name (of `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`) and function.
pub const TARGETS: &[(&str, Target)] = &[
    ("content_range", content_range),
    ("tus_headers", tus_headers),
    ("basic_auth", basic_auth),
    ("tc3_authorization", tc3_authorization),
    ("cos_authorization", cos_authorization),
    ("cos_part_list", cos_part_list),
    ("hotlink_query", hotlink_query),
    ("jwt_token", jwt_token),
    ("playback_grant", playback_grant),
    ("mux_bodies", mux_bodies),
    ("tencent_bodies", tencent_bodies),
    ("bbb_listing", bbb_listing),
    ("bbb_shapes", bbb_shapes),
    ("bbb_timeline", bbb_timeline),
    ("bbb_tldraw", bbb_tldraw),
    ("bbb_playback_url", bbb_playback_url),
    ("config_toml", config_toml),
    ("range_header", range_header),
    ("subtitles", subtitles),
    ("image_params", image_params),
];

/// The parsers of text take `&str`: other bytes never reach them (the callers check UTF-8 first).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `Content-Range` of UpChunk/GCS chunk uploads: an accepted range is well-formed and reads back.
pub fn content_range(data: &[u8]) {
    use crate::ingest::range::ContentRange;
    let Some(header) = text(data) else { return };
    let Ok(range) = ContentRange::parse(header) else {
        return;
    };
    let again = match range {
        ContentRange::Bytes { first, last, total } => {
            assert!(first <= last && last < total, "{header:?} gave {range:?}");
            format!("bytes {first}-{last}/{total}")
        }
        ContentRange::Probe { total } => format!("bytes */{total}"),
    };
    assert_eq!(ContentRange::parse(&again), Ok(range), "{header:?}");
}

/// tus `Upload-Metadata` (pairs, and the asset settings read from them) and `Upload-Checksum`.
pub fn tus_headers(data: &[u8]) {
    use crate::ingest::tus;
    let Some(header) = text(data) else { return };
    if let Ok(pairs) = tus::parse_metadata(header) {
        let again: Vec<String> = pairs
            .iter()
            .map(|(key, value)| match value {
                Some(value) => format!("{key} {}", STANDARD.encode(value)),
                None => key.clone(),
            })
            .collect();
        assert_eq!(
            tus::parse_metadata(&again.join(",")),
            Ok(pairs),
            "{header:?}"
        );
    }
    let _ = tus::settings_from_metadata(Some(header));
    if let Ok(value) = axum::http::HeaderValue::from_str(header) {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("upload-checksum", value);
        let _ = tus::parse_checksum(&headers);
    }
}

/// `Authorization: Basic` (API access tokens): what is accepted encodes back to the same pair.
pub fn basic_auth(data: &[u8]) {
    use crate::http::auth::parse_basic;
    let Some(header) = text(data) else { return };
    if let Some((id, secret)) = parse_basic(header) {
        let again = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        assert_eq!(parse_basic(&again), Some((id, secret)), "{header:?}");
    }
}

/// `Authorization: TC3-HMAC-SHA256 ...` (TencentCloud API 3.0): what is accepted writes back to the
/// same parts, and a signature can be computed over them.
pub fn tc3_authorization(data: &[u8]) {
    use crate::compat::tencent::sign::{signature, Authorization, Request, ALGORITHM};
    let Some(header) = text(data) else { return };
    let Some(auth) = Authorization::parse(header) else {
        return;
    };
    let again = format!(
        "{ALGORITHM} Credential={}/{}/{}/tc3_request, SignedHeaders={}, Signature={}",
        auth.secret_id,
        auth.date,
        auth.service,
        auth.signed_headers.join(";"),
        auth.signature
    );
    assert_eq!(
        Authorization::parse(&again).as_ref(),
        Some(&auth),
        "{header:?}"
    );
    let request = Request {
        method: "POST",
        canonical_query: "",
        headers: auth
            .signed_headers
            .iter()
            .map(|name| (name.clone(), auth.date.clone()))
            .collect(),
        payload: Some(data),
        timestamp: 1_700_000_000,
        service: &auth.service,
    };
    assert_eq!(signature("fuzz", &request).len(), 64);
}

/// COS request signatures (`q-sign-algorithm=sha1&q-ak=...`): what is accepted has an ordered
/// window, writes back to the same parts, and a signature can be computed over them.
pub fn cos_authorization(data: &[u8]) {
    use crate::compat::tencent::cos_sign::{cos_signature, CosAuthorization};
    let Some(header) = text(data) else { return };
    let Some(auth) = CosAuthorization::parse(header) else {
        return;
    };
    assert!(auth.sign_window.0 <= auth.sign_window.1, "{header:?}");
    let again = format!(
        "q-sign-algorithm=sha1&q-ak={}&q-sign-time={}&q-key-time={}&q-header-list={}\
         &q-url-param-list={}&q-signature={}",
        auth.secret_id,
        auth.sign_time,
        auth.key_time,
        auth.header_list.join(";"),
        auth.param_list.join(";"),
        auth.signature
    );
    assert_eq!(
        CosAuthorization::parse(&again).as_ref(),
        Some(&auth),
        "{header:?}"
    );
    let listed = |names: &[String]| -> Vec<(String, String)> {
        names.iter().map(|n| (n.clone(), n.clone())).collect()
    };
    let signed = cos_signature(
        "fuzz",
        "PUT",
        "/media.mp4",
        &listed(&auth.param_list),
        &listed(&auth.header_list),
        &auth.sign_time,
        &auth.key_time,
    );
    assert_eq!(signed.len(), 40);
}

/// The COS `CompleteMultipartUpload` part list (XML): an accepted list names at least one part.
pub fn cos_part_list(data: &[u8]) {
    if let Ok(parts) = crate::compat::tencent::cos::parse_complete(data) {
        assert!(!parts.is_empty());
    }
}

/// Tencent hotlink-protection queries (`t`, `exper`, `rlimit`, `us`, `sign`) on `/vod/...` URLs:
/// the input is `PATH\nQUERY`. A query signed by `sign` for the path always checks.
pub fn hotlink_query(data: &[u8]) {
    use crate::compat::tencent::hotlink::{check, sign};
    let Some(input) = text(data) else { return };
    let (path, query) = input.split_once('\n').unwrap_or(("/vod/1/src.mp4", input));
    let _ = check("fuzz-key", path, Some(query));
    let t = format!("{:x}", crate::id::now_unix() + 600);
    let signature = sign("fuzz-key", path, &t, "", query, query);
    let signed = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("t", &t)
        .append_pair("rlimit", query)
        .append_pair("us", query)
        .append_pair("sign", &signature)
        .finish();
    let grant = check("fuzz-key", path, Some(&signed));
    assert_eq!(
        grant.map(|g| g.rlimit),
        Ok(Some(query.to_owned())),
        "{input:?}"
    );
}

/// The signing keys `jwt_token` verifies with: an HS256 secret and an RS256 public key.
struct FuzzKeys;

pub const JWT_HS256_KID: &str = "fuzzhs256key";
pub const JWT_HS256_SECRET: &str = "fuzz-hs256-secret";
pub const JWT_RS256_KID: &str = "fuzzrs256key";
pub const JWT_PLAYBACK_ID: &str = "fuzzplaybackid";
const JWT_RS256_PUBLIC: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAzEaa6a2ET4DdqO0SBm7cezGbiVrGuCXkFaPEqJ3YmYRyoICzuamz
8hT+F5WPUhAonol8GOjmFTyCcb4SJIWwh42Zc+yJC5yRlEaof1qrtkTjfzaOImFh
ZZIGZwfbKTCV7GNjBjTAts8nzSJjwMQEFMmV//KoqaME8xHeqjF6QZXb9Ue4IWOP
dXjwbP6Io8A3e+4cwFxXA+P0utUhnqzVp5WAObgTw7i7TdJeIVm9dGNN7HHR7y7D
pxE4sxGs2HJW89pf2+Y2FMsR51ovspOzqvKLucms442Nscuig1Ofg8E3e1PX6ddT
tVcZCF+j2AqBjLkiGv/1rCK0JDdJVt6EcQIDAQAB
-----END RSA PUBLIC KEY-----
";

#[async_trait::async_trait]
impl crate::playback::repo::SigningKeyRepo for FuzzKeys {
    async fn create_signing_key(
        &self,
        _: &crate::playback::keys::SigningKey,
    ) -> Result<(), crate::error::DbError> {
        Ok(())
    }

    async fn get_signing_key(
        &self,
        id: &str,
    ) -> Result<Option<crate::playback::keys::SigningKey>, crate::error::DbError> {
        let (algorithm, verification_key) = match id {
            JWT_HS256_KID => ("HS256", JWT_HS256_SECRET),
            JWT_RS256_KID => ("RS256", JWT_RS256_PUBLIC),
            _ => return Ok(None),
        };
        Ok(Some(crate::playback::keys::SigningKey {
            id: id.to_owned(),
            algorithm: algorithm.to_owned(),
            verification_key: verification_key.to_owned(),
            created_at: 0,
        }))
    }

    async fn list_signing_keys(
        &self,
    ) -> Result<Vec<crate::playback::keys::SigningKey>, crate::error::DbError> {
        Ok(Vec::new())
    }

    async fn delete_signing_key(&self, _: &str) -> Result<bool, crate::error::DbError> {
        Ok(false)
    }
}

/// Playback tokens (JWTs, `?token=`): verified as the playback service does, with the keys above.
pub fn jwt_token(data: &[u8]) {
    let Some(token) = text(data) else { return };
    let keys = crate::playback::keys::SigningKeys::new(Arc::new(FuzzKeys));
    for aud in ["v", "t"] {
        let verified = keys
            .verify(token, aud, JWT_PLAYBACK_ID)
            .now_or_never()
            .expect("the in-memory key store never waits");
        if let Ok(claims) = verified {
            let _ = (claims.exp(), claims.restriction_id());
            for name in claims.0.keys() {
                let _ = claims.param(name);
            }
        }
    }
}

/// Rendition grants in child playlist URLs (`/{pid}/g/LO-HI[-RID]~TOKEN/...`): checked against a
/// fixed key; and any bounds and restriction id signed into a grant check back to themselves.
pub fn playback_grant(data: &[u8]) {
    use crate::ingest::capability::UrlSigner;
    use crate::playback::{check_grant, sign_grant};
    let Some(grant) = text(data) else { return };
    let signer = UrlSigner::new(b"fuzz-key".to_vec());
    let _ = check_grant(&signer, JWT_PLAYBACK_ID, grant, 0);
    let bounds = (
        data.len() as u32,
        u32::from(data.first().copied().unwrap_or(0)),
    );
    // Restriction ids come from `Claims::restriction_id`, which only takes valid ids.
    let rid = Some(grant).filter(|rid| crate::id::is_valid_id(rid));
    let signed = sign_grant(&signer, JWT_PLAYBACK_ID, bounds, rid, 100);
    assert_eq!(
        check_grant(&signer, JWT_PLAYBACK_ID, &signed, 99),
        Ok((bounds, rid)),
        "{signed:?}"
    );
    assert!(check_grant(&signer, "other", &signed, 99).is_err());
    assert!(check_grant(&signer, JWT_PLAYBACK_ID, &signed, 101).is_err());
}

/// A body as `http::json::JsonBody` reads it: a blank body is `{}`.
fn mux_json<T: serde::de::DeserializeOwned>(data: &[u8]) -> Option<T> {
    let data: &[u8] = if data.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        data
    };
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(data)).ok()
}

/// Mux API request bodies: every wire type `compat::mux` deserializes, then validated as its route
/// does.
pub fn mux_bodies(data: &[u8]) {
    use crate::compat::mux::wire::*;
    use crate::playback::restrictions::{valid_domain, ReferrerRule, UserAgentRule};
    if let Some(request) = mux_json::<CreateAssetRequest>(data) {
        if let Ok((settings, _input_url)) = request.into_settings("") {
            let passthrough = settings.passthrough.as_deref().unwrap_or_default();
            assert!(passthrough.chars().count() <= MAX_PASSTHROUGH_LEN);
        }
    }
    if let Some(request) = mux_json::<CreateUploadRequest>(data) {
        if let Some(settings) = request.new_asset_settings {
            let _ = settings.into_settings("new_asset_settings.");
        }
    }
    if let Some(request) = mux_json::<InputSettings>(data) {
        let _ = request.into_track("");
    }
    if let Some(request) = mux_json::<UpdateAssetRequest>(data) {
        let _ = check_passthrough(request.passthrough.as_deref());
        if let Some(meta) = request.meta {
            let _ = meta.into_update("meta.");
        }
    }
    if let Some(request) = mux_json::<CreatePlaybackIdRequest>(data) {
        let _ = parse_policy("policy", request.policy.as_deref().unwrap_or("public"));
    }
    if let Some(request) = mux_json::<CreateStaticRenditionRequest>(data) {
        let _ = request.resolution();
    }
    if let Some(request) = mux_json::<UpdateMp4SupportRequest>(data) {
        let _ = request.mp4_support();
    }
    let _ = mux_json::<CreateSigningKeyRequest>(data);
    let _ = mux_json::<UpdateMasterAccessRequest>(data);
    let referrer = |rule: ReferrerRule| {
        for domain in &rule.allowed_domains {
            let _ = valid_domain(domain);
        }
    };
    if let Some(request) = mux_json::<CreateRestrictionRequest>(data) {
        referrer(request.referrer.map(Into::into).unwrap_or_default());
        let _: UserAgentRule = request.user_agent.map(Into::into).unwrap_or_default();
    }
    if let Some(request) = mux_json::<ReferrerRequest>(data) {
        referrer(request.into());
    }
    if let Some(request) = mux_json::<UserAgentRequest>(data) {
        let _: UserAgentRule = request.into();
    }
}

/// TencentCloud API and UGC upload request bodies (JSON objects): the parameters read without a
/// database (file types, names, `ExpireTime`, `Filters`) and the UGC upload `signature`.
pub fn tencent_bodies(data: &[u8]) {
    use crate::compat::tencent::{media, ugc, upload};
    let Ok(params) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if !params.is_object() {
        return;
    }
    let _ = upload::file_type(&params, "MediaType");
    let _ = upload::file_type(&params, "CoverType");
    if let Ok(Some(name)) = upload::bounded(&params, "MediaName", 64) {
        assert!(name.chars().count() <= 64);
    }
    if let Some(expire) = params.get("ExpireTime").and_then(Value::as_str) {
        let _ = media::expire_time(expire);
    }
    let _ = media::filters(&params);
    if let Some(signature) = params.get("signature").and_then(Value::as_str) {
        let _ = ugc::decode_signature(signature);
    }
    for name in ["videoType", "coverType"] {
        if let Some(value) = params.get(name).and_then(Value::as_str) {
            let _ = ugc::file_type(value);
        }
    }
}

/// BBB `getRecordings` answers (XML, streamed), and what the migration reads from each recording.
pub fn bbb_listing(data: &[u8]) {
    let _ = crate::bbb::api::parse_listing(data, |recording| {
        let _ = (
            recording.presentation_url(true),
            recording.source_url(false),
            recording.start_date(),
            recording.meta("bbb-origin-server-name"),
        );
        Ok(())
    });
}

/// The SVG elements a sanitized whiteboard fragment may hold.
const SVG_ELEMENTS: [&str; 12] = [
    "svg", "g", "path", "line", "polyline", "polygon", "circle", "ellipse", "rect", "text",
    "tspan", "image",
];

/// Checks that a re-serialized annotation is well-formed SVG of known elements only, whose images
/// stay inside the recording.
fn check_annotation_svg(svg: &str) {
    let doc = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\">{svg}</svg>"
    );
    let parsed = roxmltree::Document::parse(&doc).unwrap_or_else(|e| panic!("{e}: {svg}"));
    for node in parsed.descendants().filter(roxmltree::Node::is_element) {
        let name = node.tag_name().name();
        assert!(SVG_ELEMENTS.contains(&name), "<{name}> in {svg}");
        if name == "image" {
            let href = node
                .attribute(("http://www.w3.org/1999/xlink", "href"))
                .unwrap_or_default();
            assert!(crate::bbb::recording_path("t", href).is_ok(), "{svg}");
        }
    }
}

/// A recording's `shapes.svg`: slides and whiteboard shapes, re-serialized by the sanitizer.
pub fn bbb_shapes(data: &[u8]) {
    let Some(svg) = text(data) else { return };
    let Ok(board) = crate::bbb::recording::parse_shapes(svg) else {
        return;
    };
    for image in &board.images {
        assert!(crate::bbb::recording_path("t", image).is_ok(), "{image:?}");
    }
    for annotation in &board.annotations {
        check_annotation_svg(&annotation.svg);
    }
}

/// A recording's other timeline files: `metadata.xml`, `panzooms.xml`, `cursor.xml`,
/// `deskshare.xml`, `slides_new.xml` (chat) and `captions.json`; each input goes to every parser.
pub fn bbb_timeline(data: &[u8]) {
    use crate::bbb::recording::*;
    let Some(file) = text(data) else { return };
    let _ = parse_metadata(file);
    let _ = parse_panzooms(file);
    let _ = parse_cursor(file);
    let _ = parse_deskshare(file);
    let _ = parse_chat(file);
    if let Ok(captions) = parse_captions(file) {
        for caption in captions {
            assert!(crate::bbb::recording_path("t", &caption.file).is_ok());
        }
    }
}

/// A recording's `tldraw.json` (BBB >= 2.6), drawn on one slide: every shape is sanitized SVG.
pub fn bbb_tldraw(data: &[u8]) {
    use crate::bbb::recording::{Slide, ViewBox};
    let Some(json) = text(data) else { return };
    let slides = [Slide {
        id: "image1".to_owned(),
        href: "presentation/p/slide-1.png".to_owned(),
        rect: ViewBox {
            x: 0.0,
            y: 0.0,
            w: 1600.0,
            h: 900.0,
        },
        intervals: vec![(0.0, 10.0)],
    }];
    if let Ok((annotations, _warnings)) = crate::bbb::tldraw::parse(json, &slides) {
        for annotation in &annotations {
            check_annotation_svg(&annotation.svg);
        }
    }
}

/// BBB playback URLs and pages (`openvod bbb render URL`, the migration's listed links): an
/// accepted URL names a published folder.
pub fn bbb_playback_url(data: &[u8]) {
    use crate::bbb::source::*;
    let Some(url) = text(data) else { return };
    if let Ok(Source::Http { base, record_id }) = Source::parse_url(url) {
        let folder = format!("/presentation/{record_id}/");
        assert!(base.path().ends_with(&folder), "{url:?}");
        assert!(matches!(base.scheme(), "http" | "https"), "{url:?}");
    }
    let _ = (is_video_playback(url), protected_playback(url));
    let _ = without_token(url);
    let _ = video_source_in_page(url);
}

/// The configuration file (TOML), loaded as `openvod` loads it (layered, then validated).
pub fn config_toml(data: &[u8]) {
    use std::io::Write;
    let Some(toml) = text(data) else { return };
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(toml.as_bytes()).expect("write the config");
    let overrides = crate::config::Overrides::default();
    let _ = crate::config::Config::load(Some(file.path()), &overrides);
}

/// `Range` headers of downloads: an accepted span is non-empty and inside the object.
pub fn range_header(data: &[u8]) {
    use crate::http::byte_range::parse_range;
    let Some(header) = text(data) else { return };
    for len in [0, 1, 100, u64::MAX] {
        if let Ok(Some((start, end))) = parse_range(header, len) {
            assert!(
                start < end && end <= len,
                "{header:?} of {len}: {start}..{end}"
            );
        }
    }
}

/// Text track files (WebVTT or SRT, fetched from a URL): the WebVTT file we store reads back to the
/// same cues, which is what playback serves from.
pub fn subtitles(data: &[u8]) {
    use crate::assets::subtitles::{parse, segment, to_vtt};
    let Ok(cues) = parse(data) else { return };
    let stored = to_vtt(&cues);
    assert_eq!(parse(stored.as_bytes()).as_ref(), Ok(&cues), "{stored:?}");
    let _ = segment(&cues, 0);
}

/// Thumbnail and animated GIF/WebP parameters (query string, or token claims): what is accepted
/// gives ffmpeg times that are never negative (so never taken for an option).
pub fn image_params(data: &[u8]) {
    use crate::playback::images::{Animated, ImageFormat, Thumbnail};
    let Some(query) = text(data) else { return };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (input, out) = (std::path::Path::new("in"), std::path::Path::new("out"));
    for duration in [0.0, 60.0] {
        if let Ok(thumbnail) = Thumbnail::parse(&get, duration) {
            assert!(
                thumbnail.time.is_finite() && thumbnail.time >= 0.0,
                "{query:?}"
            );
            let _ = thumbnail.args(input, ImageFormat::Jpg, out);
        }
        if let Ok(animated) = Animated::parse(&get, duration) {
            assert!(
                animated.start >= 0.0 && animated.end > animated.start,
                "{query:?}"
            );
            let _ = animated.args(input, ImageFormat::Gif, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::TARGETS;

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
            .collect();
        files.sort();
        files
    }

    /// The committed seed corpus and every saved crash input run through their targets on stable,
    /// without libFuzzer.
    #[test]
    fn corpus_and_regressions_replay() {
        let fuzz = fuzz_dir();
        for (name, target) in TARGETS {
            let seeds = files(&fuzz.join("corpus").join(name));
            assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ has no seed");
            for file in seeds
                .iter()
                .chain(&files(&fuzz.join("regressions").join(name)))
            {
                let data = std::fs::read(file).expect("a corpus file");
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name} panics on {}", file.display());
            }
        }
    }

    /// Every target has its harness binary and folders, and every folder names a target.
    #[test]
    fn harness_matches_the_targets() {
        let fuzz = fuzz_dir();
        let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
        for (name, _) in TARGETS {
            let harness = std::fs::read_to_string(fuzz.join(format!("fuzz_targets/{name}.rs")))
                .unwrap_or_else(|_| panic!("fuzz/fuzz_targets/{name}.rs is missing"));
            assert!(
                harness.contains(&format!("openvod::fuzz_targets::{name}(")),
                "fuzz/fuzz_targets/{name}.rs does not call its target"
            );
            assert!(
                manifest.contains(&format!("name = \"{name}\"")),
                "fuzz/Cargo.toml has no [[bin]] {name}"
            );
        }
        for folder in ["corpus", "regressions", "fuzz_targets"] {
            for entry in std::fs::read_dir(fuzz.join(folder)).expect("a fuzz folder") {
                let path = entry.expect("a directory entry").path();
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                if stem == "README" {
                    continue;
                }
                assert!(
                    TARGETS.iter().any(|(name, _)| *name == stem),
                    "fuzz/{folder}/{stem} is not a target of openvod::fuzz_targets::TARGETS"
                );
            }
        }
    }
}
