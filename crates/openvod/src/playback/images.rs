//! Image parameters (Mux's thumbnail, animated and storyboard options), validated, and the ffmpeg
//! arguments that render them. Pure: nothing here runs ffmpeg.

use std::ffi::OsString;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpg,
    Png,
    Webp,
    Gif,
}

impl ImageFormat {
    pub fn parse(ext: &str) -> Option<ImageFormat> {
        match ext {
            "jpg" | "jpeg" => Some(ImageFormat::Jpg),
            "png" => Some(ImageFormat::Png),
            "webp" => Some(ImageFormat::Webp),
            "gif" => Some(ImageFormat::Gif),
            _ => None,
        }
    }

    pub fn ext(self) -> &'static str {
        match self {
            ImageFormat::Jpg => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Jpg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitMode {
    Preserve,
    Stretch,
    Crop,
    Pad,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    pub time: f64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: FitMode,
    pub rotate: u32,
    pub flip_v: bool,
    pub flip_h: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Animated {
    pub start: f64,
    pub end: f64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: u32,
}

const MAX_THUMBNAIL_SIDE: u32 = 4096;
const MAX_ANIMATED_SIDE: u32 = 640;

fn number<T: std::str::FromStr>(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, String> {
    get(name)
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| format!("{name}: {v:?} is not a valid number"))
        })
        .transpose()
}

fn side(get: &dyn Fn(&str) -> Option<String>, name: &str, max: u32) -> Result<Option<u32>, String> {
    match number::<f64>(get, name)? {
        None => Ok(None),
        Some(v) if v >= 1.0 && v <= max as f64 => Ok(Some(v.round() as u32)),
        Some(v) => Err(format!("{name}: {v} is out of range 1..={max}")),
    }
}

fn flag(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<bool, String> {
    match get(name).as_deref() {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(format!("{name}: {other:?} is not true or false")),
    }
}

impl Thumbnail {
    /// Reads Mux's thumbnail parameters through `get` (token claims first, then the query).
    pub fn parse(get: &dyn Fn(&str) -> Option<String>, duration: f64) -> Result<Thumbnail, String> {
        let time = number::<f64>(get, "time")?.unwrap_or(duration / 2.0);
        if !time.is_finite() || time < 0.0 {
            return Err(format!("time: {time} must be zero or more"));
        }
        let fit = match get("fit_mode").as_deref() {
            None | Some("preserve") => FitMode::Preserve,
            Some("stretch") => FitMode::Stretch,
            Some("crop") | Some("smartcrop") => FitMode::Crop,
            Some("pad") => FitMode::Pad,
            Some(other) => {
                return Err(format!(
                    "fit_mode: unknown value {other:?}; expected preserve, stretch, crop, smartcrop or pad"
                ))
            }
        };
        let rotate = match number::<u32>(get, "rotate")?.unwrap_or(0) {
            r @ (0 | 90 | 180 | 270) => r,
            other => return Err(format!("rotate: {other} must be 90, 180 or 270")),
        };
        Ok(Thumbnail {
            // Past the end, show the last frame rather than nothing.
            time: time.min((duration - 0.05).max(0.0)),
            width: side(get, "width", MAX_THUMBNAIL_SIDE)?,
            height: side(get, "height", MAX_THUMBNAIL_SIDE)?,
            fit,
            rotate,
            flip_v: flag(get, "flip_v")?,
            flip_h: flag(get, "flip_h")?,
        })
    }

    /// A canonical description, hashed into the cache key.
    pub fn cache_name(&self, format: ImageFormat) -> String {
        format!(
            "thumb:{:.3}:{:?}:{:?}:{:?}:{}:{}:{}:{}",
            self.time,
            self.width,
            self.height,
            self.fit,
            self.rotate,
            self.flip_v,
            self.flip_h,
            format.ext()
        )
    }

    fn filters(&self) -> String {
        let mut filters = Vec::new();
        match (self.width, self.height, self.fit) {
            (None, None, _) => {}
            (Some(w), None, _) => filters.push(format!("scale={w}:-2")),
            (None, Some(h), _) => filters.push(format!("scale=-2:{h}")),
            (Some(w), Some(h), FitMode::Stretch) => filters.push(format!("scale={w}:{h}")),
            (Some(w), Some(h), FitMode::Preserve) => filters.push(format!(
                "scale={w}:{h}:force_original_aspect_ratio=decrease"
            )),
            (Some(w), Some(h), FitMode::Crop) => filters.push(format!(
                "scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h}"
            )),
            (Some(w), Some(h), FitMode::Pad) => filters.push(format!(
                "scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2"
            )),
        }
        match self.rotate {
            90 => filters.push("transpose=clock".to_owned()),
            180 => filters.push("hflip,vflip".to_owned()),
            270 => filters.push("transpose=cclock".to_owned()),
            _ => {}
        }
        if self.flip_v {
            filters.push("vflip".to_owned());
        }
        if self.flip_h {
            filters.push("hflip".to_owned());
        }
        filters.push("setsar=1".to_owned());
        filters.join(",")
    }

    pub fn args(&self, input: &Path, format: ImageFormat, out: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "-ss".into(),
            format!("{:.3}", self.time).into(),
            "-i".into(),
            input.into(),
        ];
        for a in ["-frames:v", "1", "-an", "-vf"] {
            args.push(a.into());
        }
        args.push(self.filters().into());
        let codec: &[&str] = match format {
            ImageFormat::Jpg => &["-c:v", "mjpeg", "-q:v", "3", "-f", "image2"],
            ImageFormat::Png => &["-c:v", "png", "-f", "image2"],
            ImageFormat::Webp | ImageFormat::Gif => &["-c:v", "libwebp", "-f", "webp"],
        };
        args.extend(codec.iter().map(OsString::from));
        args.push(out.into());
        args
    }
}

impl Animated {
    pub fn parse(get: &dyn Fn(&str) -> Option<String>, duration: f64) -> Result<Animated, String> {
        let start = number::<f64>(get, "start")?.unwrap_or(0.0);
        let end = number::<f64>(get, "end")?.unwrap_or(start + 5.0);
        if !(start.is_finite() && end.is_finite()) || start < 0.0 || start >= duration.max(0.25) {
            return Err(format!(
                "start: {start} must be within the asset's {duration:.2} s"
            ));
        }
        let span = end - start;
        if !(0.25..=10.0).contains(&span) {
            return Err(format!(
                "end: the span end - start = {span:.2} s must be between 0.25 and 10"
            ));
        }
        let fps = number::<u32>(get, "fps")?.unwrap_or(15);
        if !(1..=30).contains(&fps) {
            return Err(format!("fps: {fps} is out of range 1..=30"));
        }
        let width = side(get, "width", MAX_ANIMATED_SIDE)?;
        let height = side(get, "height", MAX_ANIMATED_SIDE)?;
        Ok(Animated {
            start,
            end,
            width: if width.is_none() && height.is_none() {
                Some(320)
            } else {
                width
            },
            height,
            fps,
        })
    }

    pub fn cache_name(&self, format: ImageFormat) -> String {
        format!(
            "anim:{:.3}:{:.3}:{:?}:{:?}:{}:{}",
            self.start,
            self.end,
            self.width,
            self.height,
            self.fps,
            format.ext()
        )
    }

    pub fn args(&self, input: &Path, format: ImageFormat, out: &Path) -> Vec<OsString> {
        let scale = match (self.width, self.height) {
            (Some(w), Some(h)) => format!("scale={w}:{h}:force_original_aspect_ratio=decrease"),
            (Some(w), None) => format!("scale={w}:-2"),
            (None, Some(h)) => format!("scale=-2:{h}"),
            (None, None) => "scale=320:-2".to_owned(),
        };
        let mut args: Vec<OsString> = vec![
            "-ss".into(),
            format!("{:.3}", self.start).into(),
            "-t".into(),
            format!("{:.3}", self.end - self.start).into(),
            "-i".into(),
            input.into(),
            "-an".into(),
        ];
        match format {
            ImageFormat::Gif => {
                args.push("-filter_complex".into());
                args.push(format!("fps={},{scale}:flags=lanczos,split[a][b];[a]palettegen[p];[b][p]paletteuse", self.fps).into());
                for a in ["-loop", "0", "-f", "gif"] {
                    args.push(a.into());
                }
            }
            _ => {
                args.push("-vf".into());
                args.push(format!("fps={},{scale}", self.fps).into());
                for a in [
                    "-c:v",
                    "libwebp_anim",
                    "-loop",
                    "0",
                    "-q:v",
                    "70",
                    "-f",
                    "webp",
                ] {
                    args.push(a.into());
                }
            }
        }
        args.push(out.into());
        args
    }
}

/// Storyboard layout: Mux uses 50 tiles under 15 minutes, 100 from there, in rows of 10.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Storyboard {
    pub tiles: u32,
    pub columns: u32,
    pub tile_width: u32,
    pub tile_height: u32,
    pub interval: f64,
}

impl Storyboard {
    pub fn plan(duration: f64, display_width: u32, display_height: u32) -> Storyboard {
        let tiles = if duration < 900.0 { 50 } else { 100 };
        let tile_width = 256;
        let tile_height =
            ((tile_width as f64 * display_height.max(1) as f64 / display_width.max(1) as f64 / 2.0)
                .round() as u32
                * 2)
            .max(2);
        Storyboard {
            tiles,
            columns: 10,
            tile_width,
            tile_height,
            interval: duration.max(0.001) / tiles as f64,
        }
    }

    pub fn args(&self, input: &Path, format: ImageFormat, out: &Path) -> Vec<OsString> {
        let rows = self.tiles.div_ceil(self.columns);
        let filter = format!(
            "fps=fps=1/{:.6},scale={}:{},setsar=1,tile={}x{}",
            self.interval, self.tile_width, self.tile_height, self.columns, rows
        );
        let codec: &[&str] = match format {
            ImageFormat::Png => &["-c:v", "png"],
            ImageFormat::Webp | ImageFormat::Gif => &["-c:v", "libwebp"],
            ImageFormat::Jpg => &["-c:v", "mjpeg", "-q:v", "4"],
        };
        let mut args: Vec<OsString> = vec![
            "-i".into(),
            input.into(),
            "-an".into(),
            "-vf".into(),
            filter.into(),
            "-frames:v".into(),
            "1".into(),
        ];
        args.extend(codec.iter().map(OsString::from));
        args.push("-f".into());
        args.push("image2".into());
        args.push(out.into());
        args
    }

    /// WebVTT cues pointing into the sprite at `sprite_url`.
    pub fn vtt(&self, sprite_url: &str, duration: f64) -> String {
        let mut vtt = String::from("WEBVTT\n\n");
        for i in 0..self.tiles {
            let start = i as f64 * self.interval;
            if start >= duration {
                break;
            }
            let end = ((i + 1) as f64 * self.interval).min(duration);
            let (x, y) = (
                (i % self.columns) * self.tile_width,
                (i / self.columns) * self.tile_height,
            );
            vtt.push_str(&format!(
                "{} --> {}\n{sprite_url}#xywh={x},{y},{},{}\n\n",
                vtt_time(start),
                vtt_time(end),
                self.tile_width,
                self.tile_height
            ));
        }
        vtt
    }
}

/// Any image we render.
pub enum Image {
    Thumbnail(Thumbnail),
    Animated(Animated),
    Storyboard(Storyboard),
}

impl Image {
    pub fn cache_name(&self, format: ImageFormat) -> String {
        match self {
            Image::Thumbnail(t) => t.cache_name(format),
            Image::Animated(a) => a.cache_name(format),
            Image::Storyboard(_) => format!("storyboard:{}", format.ext()),
        }
    }

    pub fn args(&self, input: &Path, format: ImageFormat, out: &Path) -> Vec<OsString> {
        match self {
            Image::Thumbnail(t) => t.args(input, format, out),
            Image::Animated(a) => a.args(input, format, out),
            Image::Storyboard(s) => s.args(input, format, out),
        }
    }
}

fn vtt_time(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn getter(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn thumbnail_defaults_and_validation() {
        let t = Thumbnail::parse(&getter(&[]), 10.0).unwrap();
        assert_eq!((t.time, t.fit, t.width), (5.0, FitMode::Preserve, None));
        let t = Thumbnail::parse(
            &getter(&[
                ("time", "99"),
                ("width", "320"),
                ("fit_mode", "smartcrop"),
                ("height", "180"),
            ]),
            10.0,
        )
        .unwrap();
        assert!(t.time < 10.0);
        assert!(t.filters().contains("crop=320:180"));
        for bad in [
            ("width", "0"),
            ("width", "99999"),
            ("rotate", "45"),
            ("fit_mode", "zoom"),
            ("time", "-1"),
            ("time", "abc"),
            ("flip_v", "maybe"),
        ] {
            assert!(Thumbnail::parse(&getter(&[bad]), 10.0).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn animated_limits() {
        let a = Animated::parse(&getter(&[]), 20.0).unwrap();
        assert_eq!((a.start, a.end, a.width, a.fps), (0.0, 5.0, Some(320), 15));
        assert!(Animated::parse(&getter(&[("end", "11")]), 20.0).is_err());
        assert!(Animated::parse(&getter(&[("end", "0.1")]), 20.0).is_err());
        assert!(Animated::parse(&getter(&[("width", "641")]), 20.0).is_err());
        assert!(Animated::parse(&getter(&[("fps", "60")]), 20.0).is_err());
    }

    #[test]
    fn storyboard_vtt_tiles() {
        let s = Storyboard::plan(100.0, 1920, 1080);
        assert_eq!((s.tiles, s.tile_width, s.tile_height), (50, 256, 144));
        let vtt = s.vtt("https://x/p/storyboard.jpg", 100.0);
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhttps://x/p/storyboard.jpg#xywh=0,0,256,144\n"));
        assert!(vtt.contains("#xywh=256,144,256,144"), "tile 11 is on row 2");
        assert_eq!(vtt.matches("-->").count(), 50);
    }
}
