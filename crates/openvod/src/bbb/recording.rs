//! The published files of a presentation recording, parsed into one timeline model.
//!
//! Times are seconds on the recording's own clock (paused parts already cut by BBB). Every path
//! taken from a file is validated by `recording_path`; whiteboard shapes are re-serialized from a
//! short list of SVG elements and attributes, so nothing a recording says reaches the rasteriser
//! unchecked.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use roxmltree::Node;

use super::xml::{self, attr_f64};
use super::{recording_path, tldraw, BbbError};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewBox {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl ViewBox {
    fn parse(text: &str) -> Option<ViewBox> {
        let v: Vec<f64> = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect::<Option<Vec<f64>>>()?;
        match v.as_slice() {
            [x, y, w, h] if *w > 0.0 && *h > 0.0 => Some(ViewBox {
                x: *x,
                y: *y,
                w: *w,
                h: *h,
            }),
            _ => None,
        }
    }
}

/// One `<image class="slide">`: a slide (or the deskshare/logo placeholder) and when it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Slide {
    pub id: String,
    /// Relative path of the bitmap inside the recording.
    pub href: String,
    pub rect: ViewBox,
    /// `[in, out)` display intervals.
    pub intervals: Vec<(f64, f64)>,
}

/// One version of a whiteboard shape: shown from `start` on its slide until a newer version of the
/// same `shape` appears or `undo` is reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub image_id: String,
    pub shape: String,
    pub start: f64,
    pub undo: Option<f64>,
    /// A sanitized SVG fragment in the slide's coordinates.
    pub svg: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatLine {
    pub at: f64,
    pub until: Option<f64>,
    pub name: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Caption {
    pub locale: String,
    pub name: String,
    /// Relative path of the WebVTT file.
    pub file: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    pub id: String,
    pub name: Option<String>,
    /// `playback/duration`, in seconds.
    pub duration: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Whiteboard {
    /// The root `viewBox` of shapes.svg: the coordinate space of slides and shapes.
    pub canvas: ViewBox,
    pub slides: Vec<Slide>,
    pub annotations: Vec<Annotation>,
    /// Every bitmap the slides and shapes reference.
    pub images: BTreeSet<String>,
}

/// Everything a render needs, on one clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub meta: Metadata,
    pub board: Whiteboard,
    pub panzooms: Vec<(f64, ViewBox)>,
    /// `None` hides the cursor (`-1 -1`).
    pub cursor: CursorEvents,
    /// BBB >= 2.6 (`tldraw="true"`): cursor positions are slide coordinates, not fractions.
    pub cursor_absolute: bool,
    pub deskshare: Vec<(f64, f64)>,
    pub chat: Vec<ChatLine>,
    pub captions: Vec<Caption>,
    /// `video/webcams.*` or `audio/audio.*`.
    pub media: Option<String>,
    pub deskshare_video: Option<String>,
    /// What was skipped and why (unknown shapes, missing optional files).
    pub warnings: Vec<String>,
}

/// Media files the player looks for, in its order of preference.
pub const MEDIA_FILES: [&str; 4] = [
    "video/webcams.webm",
    "video/webcams.mp4",
    "audio/audio.webm",
    "audio/audio.ogg",
];
pub const DESKSHARE_FILES: [&str; 2] = ["deskshare/deskshare.webm", "deskshare/deskshare.mp4"];
/// Optional timeline files; a recording renders without any of them.
pub const OPTIONAL_FILES: [&str; 6] = [
    "panzooms.xml",
    "cursor.xml",
    "deskshare.xml",
    "slides_new.xml",
    "captions.json",
    "tldraw.json",
];

fn read_required(dir: &Path, name: &str) -> Result<String, BbbError> {
    match read_optional(dir, name)? {
        Some(text) => Ok(text),
        None => Err(BbbError::Missing(name.to_owned())),
    }
}

fn read_optional(dir: &Path, name: &str) -> Result<Option<String>, BbbError> {
    let path = dir.join(name);
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BbbError::io(&path, e)),
        Ok(m) if m.len() > xml::MAX_XML_BYTES as u64 => {
            return Err(BbbError::TooLarge {
                file: name.to_owned(),
                limit: xml::MAX_XML_BYTES as u64,
            })
        }
        Ok(_) => {}
    }
    let bytes = std::fs::read(&path).map_err(|e| BbbError::io(&path, e))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| BbbError::Invalid {
            file: name.to_owned(),
            reason: "not UTF-8 text".to_owned(),
        })
}

/// The first of `names` present in `dir`.
pub fn first_present(dir: &Path, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find(|n| dir.join(n).is_file())
        .map(|n| (*n).to_owned())
}

impl Recording {
    /// Parses a published recording folder. Missing metadata.xml or shapes.svg, or no audio at all,
    /// is an error naming the file; missing optional files are warnings.
    pub fn load(dir: &Path) -> Result<Recording, BbbError> {
        let meta = parse_metadata(&read_required(dir, "metadata.xml")?)?;
        let mut board = parse_shapes(&read_required(dir, "shapes.svg")?)?;
        let mut warnings = Vec::new();
        for image in &board.images {
            if !dir.join(image).is_file() {
                return Err(BbbError::Missing(image.clone()));
            }
        }
        let (panzooms, _) = match read_optional(dir, "panzooms.xml")? {
            Some(text) => parse_panzooms(&text)?,
            None => (Vec::new(), false),
        };
        let (cursor, cursor_absolute) = match read_optional(dir, "cursor.xml")? {
            Some(text) => parse_cursor(&text)?,
            None => (Vec::new(), false),
        };
        let deskshare = match read_optional(dir, "deskshare.xml")? {
            Some(text) => parse_deskshare(&text)?,
            None => Vec::new(),
        };
        let chat = match read_optional(dir, "slides_new.xml")? {
            Some(text) => parse_chat(&text)?,
            None => Vec::new(),
        };
        let mut captions = match read_optional(dir, "captions.json")? {
            Some(text) => parse_captions(&text)?,
            None => Vec::new(),
        };
        captions.retain(|c| {
            let present = dir.join(&c.file).is_file();
            if !present {
                warnings.push(format!("caption file {} is missing; skipped", c.file));
            }
            present
        });
        if let Some(text) = read_optional(dir, "tldraw.json")? {
            let (shapes, skipped) = tldraw::parse(&text, &board.slides)?;
            board.annotations.extend(shapes);
            warnings.extend(skipped);
        }
        let media = first_present(dir, &MEDIA_FILES);
        if media.is_none() {
            return Err(BbbError::Missing(format!(
                "audio ({})",
                MEDIA_FILES.join(", ")
            )));
        }
        let deskshare_video = if deskshare.is_empty() {
            None
        } else {
            let found = first_present(dir, &DESKSHARE_FILES);
            if found.is_none() {
                warnings.push(
                    "deskshare.xml lists screenshare periods but there is no deskshare video; \
                     rendered without screenshare"
                        .to_owned(),
                );
            }
            found
        };
        Ok(Recording {
            meta,
            board,
            panzooms,
            cursor,
            cursor_absolute,
            deskshare: if deskshare_video.is_some() {
                deskshare
            } else {
                Vec::new()
            },
            chat,
            captions,
            media,
            deskshare_video,
            warnings,
        })
    }
}

fn invalid(file: &str, reason: impl Into<String>) -> BbbError {
    BbbError::Invalid {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

fn child_text<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .and_then(|c| c.text())
        .map(str::trim)
}

pub fn parse_metadata(text: &str) -> Result<Metadata, BbbError> {
    const FILE: &str = "metadata.xml";
    let doc = xml::parse(FILE, text)?;
    let root = doc.root_element();
    if !root.has_tag_name("recording") {
        return Err(invalid(FILE, "the root element is not <recording>"));
    }
    let playback = root
        .children()
        .find(|c| c.has_tag_name("playback"))
        .ok_or_else(|| invalid(FILE, "no <playback> element"))?;
    let duration_ms = child_text(playback, "duration")
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| invalid(FILE, "no positive playback/duration"))?;
    let name = root
        .children()
        .find(|c| c.has_tag_name("meta"))
        .and_then(|m| child_text(m, "meetingName"))
        .or_else(|| {
            root.children()
                .find(|c| c.has_tag_name("meeting"))
                .and_then(|m| m.attribute("name"))
        })
        .map(str::to_owned);
    Ok(Metadata {
        id: child_text(root, "id").unwrap_or_default().to_owned(),
        name,
        duration: duration_ms / 1000.0,
    })
}

/// `in`/`out` may each hold several space-separated times (a slide shown more than once).
fn intervals(node: Node<'_, '_>) -> Vec<(f64, f64)> {
    let times = |name: &str| -> Vec<f64> {
        node.attribute(name)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect()
    };
    let ins = times("in");
    let outs = times("out");
    ins.iter()
        .enumerate()
        .map(|(i, start)| {
            let end = outs
                .get(i)
                .or(outs.last())
                .copied()
                .unwrap_or(f64::INFINITY);
            (*start, end)
        })
        .filter(|(s, e)| e > s)
        .collect()
}

fn href<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    node.attribute(("http://www.w3.org/1999/xlink", "href"))
        .or_else(|| node.attribute("href"))
}

pub fn parse_shapes(text: &str) -> Result<Whiteboard, BbbError> {
    const FILE: &str = "shapes.svg";
    let doc = xml::parse(FILE, text)?;
    let root = doc.root_element();
    if !root.has_tag_name("svg") {
        return Err(invalid(FILE, "the root element is not <svg>"));
    }
    let mut images = BTreeSet::new();
    let mut slides = Vec::new();
    for node in root.descendants().filter(|n| {
        n.has_tag_name("image") && n.attribute("class").is_some_and(|c| c.contains("slide"))
    }) {
        let Some(raw_href) = href(node) else {
            continue;
        };
        let href = recording_path(FILE, raw_href)?;
        let rect = ViewBox {
            x: attr_f64(node, "x").unwrap_or(0.0),
            y: attr_f64(node, "y").unwrap_or(0.0),
            w: attr_f64(node, "width").filter(|w| *w > 0.0).unwrap_or(0.0),
            h: attr_f64(node, "height").filter(|h| *h > 0.0).unwrap_or(0.0),
        };
        if rect.w <= 0.0 || rect.h <= 0.0 {
            return Err(invalid(FILE, format!("slide {raw_href} has no size")));
        }
        images.insert(href.clone());
        slides.push(Slide {
            id: node.attribute("id").unwrap_or_default().to_owned(),
            href,
            rect,
            intervals: intervals(node),
        });
    }
    let canvas = root
        .attribute("viewBox")
        .and_then(ViewBox::parse)
        .or_else(|| {
            // No root viewBox: the union of the slides.
            let w = slides
                .iter()
                .map(|s| s.rect.x + s.rect.w)
                .fold(0.0, f64::max);
            let h = slides
                .iter()
                .map(|s| s.rect.y + s.rect.h)
                .fold(0.0, f64::max);
            (w > 0.0 && h > 0.0).then_some(ViewBox {
                x: 0.0,
                y: 0.0,
                w,
                h,
            })
        })
        .ok_or_else(|| invalid(FILE, "no viewBox and no slides"))?;
    let mut annotations = Vec::new();
    for canvas_node in root
        .descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("canvas"))
    {
        let image_id = canvas_node
            .attribute("image")
            .unwrap_or_default()
            .to_owned();
        for shape in canvas_node
            .children()
            .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("shape"))
        {
            let Some(start) = attr_f64(shape, "timestamp") else {
                continue;
            };
            let undo = attr_f64(shape, "undo").filter(|u| *u >= 0.0);
            let mut svg = String::new();
            write_element(FILE, shape, &mut svg, &mut images)?;
            annotations.push(Annotation {
                image_id: image_id.clone(),
                shape: shape
                    .attribute("shape")
                    .or(shape.attribute("id"))
                    .unwrap_or_default()
                    .to_owned(),
                start,
                undo,
                svg,
            });
        }
    }
    Ok(Whiteboard {
        canvas,
        slides,
        annotations,
        images,
    })
}

const SHAPE_ELEMENTS: [&str; 10] = [
    "g", "path", "line", "polyline", "polygon", "circle", "ellipse", "rect", "text", "tspan",
];
const SHAPE_ATTRIBUTES: [&str; 30] = [
    "d",
    "points",
    "x",
    "y",
    "x1",
    "y1",
    "x2",
    "y2",
    "cx",
    "cy",
    "r",
    "rx",
    "ry",
    "width",
    "height",
    "dx",
    "dy",
    "transform",
    "fill",
    "stroke",
    "stroke-width",
    "stroke-linecap",
    "stroke-linejoin",
    "stroke-dasharray",
    "opacity",
    "fill-opacity",
    "stroke-opacity",
    "font-size",
    "font-weight",
    "text-anchor",
];

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The declarations of a `style` attribute that draw: the player hides shapes with
/// `visibility:hidden`/`display:none` until their time, and nothing may reference other resources.
fn drawing_style(style: &str) -> String {
    style
        .split(';')
        .filter_map(|decl| {
            let (name, value) = decl.split_once(':')?;
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            let refused = matches!(name.as_str(), "visibility" | "display")
                || value.to_ascii_lowercase().contains("url(")
                || value.contains('\\');
            (!refused).then(|| format!("{name}:{value}"))
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Writes `node` as a sanitized SVG element (known elements and attributes only).
fn write_element(
    file: &str,
    node: Node<'_, '_>,
    out: &mut String,
    images: &mut BTreeSet<String>,
) -> Result<(), BbbError> {
    let name = node.tag_name().name();
    match name {
        "switch" => {
            // SVG renders the first child it supports; ours are all supported.
            if let Some(child) = node.children().find(Node::is_element) {
                write_element(file, child, out, images)?;
            }
            return Ok(());
        }
        "foreignObject" => {
            write_foreign_text(node, out);
            return Ok(());
        }
        "image" => {
            if let Some(raw) = href(node) {
                let rel = recording_path(file, raw)?;
                let _ = write!(out, "<image xlink:href=\"{}\"", escape(&rel));
                for attr in ["x", "y", "width", "height", "transform", "opacity"] {
                    if let Some(v) = node.attribute(attr) {
                        let _ = write!(out, " {attr}=\"{}\"", escape(v));
                    }
                }
                out.push_str("/>");
                images.insert(rel);
            }
            return Ok(());
        }
        _ if !SHAPE_ELEMENTS.contains(&name) => return Ok(()),
        _ => {}
    }
    out.push('<');
    out.push_str(name);
    for attr in node.attributes() {
        if attr.namespace().is_some() {
            continue;
        }
        let key = attr.name();
        if key == "style" {
            let style = drawing_style(attr.value());
            if !style.is_empty() {
                let _ = write!(out, " style=\"{}\"", escape(&style));
            }
        } else if SHAPE_ATTRIBUTES.contains(&key) {
            let _ = write!(out, " {key}=\"{}\"", escape(attr.value()));
        }
    }
    if matches!(name, "text" | "tspan") {
        out.push_str(" font-family=\"DejaVu Sans, sans-serif\"");
    }
    out.push('>');
    for child in node.children() {
        if child.is_text() {
            if matches!(name, "text" | "tspan") {
                out.push_str(&escape(child.text().unwrap_or_default()));
            }
        } else if child.is_element() {
            write_element(file, child, out, images)?;
        }
    }
    let _ = write!(out, "</{name}>");
    Ok(())
}

/// A CSS declaration's value from an inline style (`color:#ff0000;font-size:24px`).
fn style_value<'a>(style: &'a str, property: &str) -> Option<&'a str> {
    style.split(';').find_map(|decl| {
        let (name, value) = decl.split_once(':')?;
        (name.trim().eq_ignore_ascii_case(property)).then_some(value.trim())
    })
}

/// Text tool annotations are XHTML inside `<foreignObject>`, which rasterisers do not draw:
/// they become SVG text, wrapped to the box width.
fn write_foreign_text(node: Node<'_, '_>, out: &mut String) {
    let x = attr_f64(node, "x").unwrap_or(0.0);
    let y = attr_f64(node, "y").unwrap_or(0.0);
    let width = attr_f64(node, "width").unwrap_or(f64::INFINITY);
    let mut text = String::new();
    let mut style = String::new();
    for d in node.descendants().skip(1) {
        if d.is_text() {
            text.push_str(d.text().unwrap_or_default());
        } else if d.has_tag_name("br") {
            text.push('\n');
        } else if let Some(s) = d.attribute("style") {
            style.push(';');
            style.push_str(s);
        }
    }
    let font_size = style_value(&style, "font-size")
        .and_then(|v| v.trim_end_matches("px").trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(20.0);
    let color = style_value(&style, "color")
        .filter(|c| c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '#'))
        .unwrap_or("#000000");
    let lines = wrap_text(&text, width, font_size);
    if lines.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<text font-family=\"DejaVu Sans, sans-serif\" font-size=\"{font_size}\" fill=\"{}\">",
        escape(color)
    );
    for (i, line) in lines.iter().enumerate() {
        let baseline = y + font_size * (1.0 + 1.2 * i as f64);
        let _ = write!(
            out,
            "<tspan x=\"{x}\" y=\"{baseline}\">{}</tspan>",
            escape(line)
        );
    }
    out.push_str("</text>");
}

/// Greedy word wrap assuming an average glyph of 0.55 em (DejaVu Sans is close to it).
pub(crate) fn wrap_text(text: &str, width: f64, font_size: f64) -> Vec<String> {
    let max_chars = ((width / (font_size * 0.55)).floor() as usize).max(1);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let mut word = word;
            loop {
                let needed = if line.is_empty() {
                    0
                } else {
                    line.chars().count() + 1
                };
                if needed + word.chars().count() <= max_chars {
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    line.push_str(word);
                    break;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    continue;
                }
                // A single word longer than the line: cut it.
                let cut = word
                    .char_indices()
                    .nth(max_chars)
                    .map_or(word.len(), |(i, _)| i);
                lines.push(word[..cut].to_owned());
                word = &word[cut..];
                if word.is_empty() {
                    break;
                }
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

fn events<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    doc.root_element()
        .children()
        .filter(|n| n.has_tag_name("event"))
}

fn sorted<T>(mut v: Vec<(f64, T)>) -> Vec<(f64, T)> {
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// Returns the viewBox changes and whether the file is in BBB >= 2.6's tldraw convention.
pub fn parse_panzooms(text: &str) -> Result<(Vec<(f64, ViewBox)>, bool), BbbError> {
    let doc = xml::parse("panzooms.xml", text)?;
    let tldraw = doc.root_element().attribute("tldraw") == Some("true");
    let list = events(&doc)
        .filter_map(|e| {
            let t = attr_f64(e, "timestamp")?;
            let vb = child_text(e, "viewBox").and_then(ViewBox::parse)?;
            Some((t, vb))
        })
        .collect();
    Ok((sorted(list), tldraw))
}

/// Cursor events: when, and where (`None` hides the cursor).
pub type CursorEvents = Vec<(f64, Option<(f64, f64)>)>;

pub fn parse_cursor(text: &str) -> Result<(CursorEvents, bool), BbbError> {
    let doc = xml::parse("cursor.xml", text)?;
    let absolute = doc.root_element().attribute("tldraw") == Some("true");
    let list = events(&doc)
        .filter_map(|e| {
            let t = attr_f64(e, "timestamp")?;
            let values: Vec<f64> = child_text(e, "cursor")?
                .split_whitespace()
                .filter_map(|v| v.parse::<f64>().ok().filter(|v| v.is_finite()))
                .collect();
            let position = match values.as_slice() {
                [x, y] if *x >= 0.0 && *y >= 0.0 => Some((*x, *y)),
                [_, _] => None,
                _ => return None,
            };
            Some((t, position))
        })
        .collect();
    Ok((sorted(list), absolute))
}

pub fn parse_deskshare(text: &str) -> Result<Vec<(f64, f64)>, BbbError> {
    let doc = xml::parse("deskshare.xml", text)?;
    let mut list: Vec<(f64, f64)> = events(&doc)
        .filter_map(|e| {
            let start = attr_f64(e, "start_timestamp")?;
            let stop = attr_f64(e, "stop_timestamp")?;
            (stop > start).then_some((start, stop))
        })
        .collect();
    list.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(list)
}

/// Chat messages may carry HTML (links, emphasis): keep the text.
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

pub fn parse_chat(text: &str) -> Result<Vec<ChatLine>, BbbError> {
    let doc = xml::parse("slides_new.xml", text)?;
    let mut lines: Vec<ChatLine> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("chattimeline"))
        .filter(|n| n.attribute("target").is_none_or(|t| t == "chat"))
        .filter_map(|n| {
            Some(ChatLine {
                at: attr_f64(n, "in")?,
                until: attr_f64(n, "out"),
                name: strip_tags(n.attribute("name").unwrap_or_default()),
                message: strip_tags(n.attribute("message").unwrap_or_default()),
            })
        })
        .collect();
    lines.sort_by(|a, b| a.at.total_cmp(&b.at));
    Ok(lines)
}

pub fn parse_captions(text: &str) -> Result<Vec<Caption>, BbbError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        locale: String,
        #[serde(rename = "localeName", default)]
        locale_name: Option<String>,
    }
    let entries: Vec<Entry> = serde_json::from_str(text).map_err(|e| BbbError::Invalid {
        file: "captions.json".to_owned(),
        reason: e.to_string(),
    })?;
    entries
        .into_iter()
        .map(|e| {
            let file = recording_path("captions.json", &format!("caption_{}.vtt", e.locale))?;
            Ok(Caption {
                name: e.locale_name.unwrap_or_else(|| e.locale.clone()),
                locale: e.locale,
                file,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const SHAPES: &str = r##"<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" id="svgfile" viewBox="0 0 1600 900">
 <image id="image0" class="slide" in="0.0" out="10.0" xlink:href="presentation/logo.png" width="1600" height="900" x="0" y="0" style="visibility:hidden"/>
 <image id="image1" class="slide" in="10.0 40.0" out="20.0 50.0" xlink:href="presentation/p1/slide-1.png" width="1600" height="900" x="0" y="0"/>
 <g class="canvas" id="canvas1" image="image1" display="none">
  <g id="image1-draw1" class="shape" timestamp="12.0" undo="15.5" shape="image1-pencil1" style="stroke:#ff0000;stroke-width:8;visibility:hidden;fill:none">
   <path d="M10 10 L100 100"/>
  </g>
  <g id="image1-draw2" class="shape" timestamp="13.0" undo="-1" shape="image1-text1" style="visibility:hidden">
   <switch><foreignObject x="100" y="100" width="400" height="100"><p xmlns="http://www.w3.org/1999/xhtml" style="color:#0000ff;font-size:32px">Hello<br/>world &amp; all</p></foreignObject></switch>
  </g>
  <g id="image1-draw3" class="shape" timestamp="14.0" undo="-1" shape="image1-poll1"><image xlink:href="presentation/p1/poll.png" x="0" y="0" width="10" height="10"/><script>alert(1)</script></g>
 </g>
</svg>"##;

    #[test]
    fn parses_slides_intervals_and_shapes() {
        let board = parse_shapes(SHAPES).unwrap();
        assert_eq!(board.canvas.w, 1600.0);
        assert_eq!(board.slides.len(), 2);
        assert_eq!(board.slides[1].intervals, vec![(10.0, 20.0), (40.0, 50.0)]);
        assert_eq!(board.annotations.len(), 3);
        let pencil = &board.annotations[0];
        assert_eq!(pencil.undo, Some(15.5));
        assert!(!pencil.svg.contains("visibility"), "{}", pencil.svg);
        assert!(pencil.svg.contains("stroke:#ff0000"));
        let text = &board.annotations[1];
        assert_eq!(text.undo, None);
        assert!(text.svg.contains("<tspan"), "{}", text.svg);
        assert!(text.svg.contains("world &amp; all"), "{}", text.svg);
        assert!(!board.annotations[2].svg.contains("script"));
        assert!(board.images.contains("presentation/p1/poll.png"));
    }

    #[test]
    fn refuses_traversal_in_hrefs() {
        let bad = SHAPES.replace("presentation/p1/poll.png", "../../../etc/passwd");
        assert!(matches!(
            parse_shapes(&bad),
            Err(BbbError::UnsafePath { .. })
        ));
        let absolute = SHAPES.replace("presentation/logo.png", "/etc/passwd");
        assert!(parse_shapes(&absolute).is_err());
    }

    #[test]
    fn parses_the_other_timeline_files() {
        let meta = parse_metadata(
            "<recording><id>r1</id><meta><meetingName>Physics</meetingName></meta>\
             <playback><format>presentation</format><duration>89332</duration></playback></recording>",
        )
        .unwrap();
        assert_eq!(meta.duration, 89.332);
        assert_eq!(meta.name.as_deref(), Some("Physics"));
        assert!(parse_metadata("<recording><playback/></recording>").is_err());

        let (pz, _) = parse_panzooms(
            "<recording id=\"panzoom_events\"><event timestamp=\"5.0\"><viewBox>800 0 800 450</viewBox></event>\
             <event timestamp=\"1.0\"><viewBox>0 0 1600 900</viewBox></event></recording>",
        )
        .unwrap();
        assert_eq!(pz[0].0, 1.0);
        assert_eq!(pz[1].1.x, 800.0);

        let (cursor, absolute) = parse_cursor(
            "<recording id=\"cursor_events\"><event timestamp=\"1\"><cursor>0.5 0.25</cursor></event>\
             <event timestamp=\"2\"><cursor>-1 -1</cursor></event><event timestamp=\"3\"><cursor>x</cursor></event></recording>",
        )
        .unwrap();
        assert!(!absolute);
        assert_eq!(cursor, vec![(1.0, Some((0.5, 0.25))), (2.0, None)]);

        let desk = parse_deskshare(
            "<recording id=\"deskshare_events\"><event start_timestamp=\"20\" stop_timestamp=\"30\" video_width=\"1280\" video_height=\"720\"/></recording>",
        )
        .unwrap();
        assert_eq!(desk, vec![(20.0, 30.0)]);

        let chat = parse_chat(
            "<popcorn><chattimeline in=\"7\" direction=\"down\" name=\"Ada\" message=\"see &lt;a href=&quot;x&quot;&gt;this&lt;/a&gt;\" target=\"chat\"/></popcorn>",
        )
        .unwrap();
        assert_eq!(chat[0].message, "see this");
        assert_eq!(chat[0].name, "Ada");

        let captions = parse_captions(r#"[{"locale":"fr-FR","localeName":"Français"}]"#).unwrap();
        assert_eq!(captions[0].file, "caption_fr-FR.vtt");
        assert!(parse_captions(r#"[{"locale":"../../x"}]"#).is_err());
    }

    #[test]
    fn wraps_text() {
        assert_eq!(wrap_text("aa bb cc", 55.0, 20.0), vec!["aa bb", "cc"]);
        assert_eq!(
            wrap_text("abcdefghijkl", 55.0, 20.0),
            vec!["abcde", "fghij", "kl"]
        );
        assert_eq!(wrap_text("a\nb", 1000.0, 20.0), vec!["a", "b"]);
    }
}

/// Property tests: mutated published files never make a parser panic, every path the parsers
/// accept stays inside the recording, and every shape they re-serialize is well-formed XML.
#[cfg(test)]
mod property_tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn mutate(rng: &mut rand::rngs::StdRng, seed: &str) -> String {
        const PIECES: [&str; 14] = [
            "<",
            ">",
            "/",
            "\"",
            "=",
            "&",
            "&amp;",
            "..",
            " ",
            "-1",
            "1e309",
            "<g class=\"shape\">",
            "xlink:href=\"../x\"",
            "<!DOCTYPE x [<!ENTITY a \"b\">]>",
        ];
        let mut s = seed.to_owned();
        for _ in 0..rng.gen_range(1..6) {
            let mut at = rng.gen_range(0..=s.len());
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            match rng.gen_range(0..3) {
                0 => s.insert_str(at, PIECES[rng.gen_range(0..PIECES.len())]),
                1 => {
                    let mut end = (at + rng.gen_range(1..20)).min(s.len());
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    s.replace_range(at..end, "");
                }
                _ => {
                    let mut end = (at + rng.gen_range(1..8)).min(s.len());
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    let piece = PIECES[rng.gen_range(0..PIECES.len())];
                    s.replace_range(at..end, piece);
                }
            }
        }
        s
    }

    #[test]
    fn mutated_files_are_parsed_safely() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let shapes_seed = tests::SHAPES;
        let others = [
            "<recording><id>r</id><playback><duration>5000</duration></playback></recording>",
            "<recording><event timestamp=\"1\"><viewBox>0 0 10 10</viewBox></event></recording>",
            "<recording><event timestamp=\"1\"><cursor>0.5 0.5</cursor></event></recording>",
            "<recording><event start_timestamp=\"1\" stop_timestamp=\"2\"/></recording>",
            "<popcorn><chattimeline in=\"1\" name=\"a\" message=\"b\" target=\"chat\"/></popcorn>",
        ];
        for _ in 0..3000 {
            let text = mutate(&mut rng, shapes_seed);
            if let Ok(board) = parse_shapes(&text) {
                for image in &board.images {
                    assert!(recording_path("t", image).is_ok(), "{image:?} from {text}");
                    assert!(!image.contains(".."));
                }
                for a in &board.annotations {
                    let doc = format!(
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\">{}</svg>",
                        a.svg
                    );
                    assert!(roxmltree::Document::parse(&doc).is_ok(), "{}", a.svg);
                }
            }
            for seed in others {
                let text = mutate(&mut rng, seed);
                let _ = parse_metadata(&text);
                let _ = parse_panzooms(&text);
                let _ = parse_cursor(&text);
                let _ = parse_deskshare(&text);
                let _ = parse_chat(&text);
            }
            let json = mutate(&mut rng, r#"[{"locale":"en-US","localeName":"English"}]"#);
            if let Ok(captions) = parse_captions(&json) {
                assert!(captions
                    .iter()
                    .all(|c| recording_path("t", &c.file).is_ok()));
            }
        }
    }
}
