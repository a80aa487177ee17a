//! BBB >= 2.6 keeps the whiteboard in `tldraw.json` instead of shapes.svg: tldraw v1 shapes up to
//! 2.7, v2 shapes from 3.0 (branch on `bbb_version`). Known shapes become SVG fragments in the
//! slide's coordinates; unknown ones are skipped with one warning per type, and nothing in the
//! file can make the parse panic.
//!
//! Accepted layouts: an object `{"bbb_version": "...", "<slide>": {"shapes": [...]}}` or an array
//! of `{"bbb_version", "id": <slide>, "shapes": [...]}`; a slide key is an image id of shapes.svg
//! (`image3`) or a slide number (`3`, matching `slide-3.png`). Each shape entry is
//! `{"id", "timestamp", "undo", "shape_data"}`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

use super::recording::{escape, wrap_text, Annotation, Slide};
use super::BbbError;

fn color(name: &str) -> &'static str {
    match name {
        "black" => "#1d1d1d",
        "grey" | "gray" => "#9fa8b2",
        "light-violet" => "#e085f4",
        "violet" => "#ae3ec9",
        "blue" => "#4465e9",
        "light-blue" => "#4ba1f1",
        "yellow" => "#f1ac4b",
        "orange" => "#e16919",
        "green" => "#099268",
        "light-green" => "#4cb05e",
        "light-red" => "#f87777",
        "red" => "#e03131",
        "white" => "#ffffff",
        _ => "#1d1d1d",
    }
}

fn stroke_width(size: &str) -> f64 {
    match size {
        "small" | "s" => 2.0,
        "medium" | "m" => 3.5,
        "large" | "l" => 5.0,
        "xl" => 10.0,
        _ => 3.5,
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite())
}

fn pair(v: &Value) -> Option<(f64, f64)> {
    let a = v.as_array()?;
    Some((num(a.first()?)?, num(a.get(1)?)?))
}

struct Style {
    color: &'static str,
    width: f64,
    filled: bool,
}

fn polyline_path(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        let _ = write!(d, "{}{x:.2} {y:.2} ", if i == 0 { "M" } else { "L" });
    }
    if points.len() == 1 {
        let (x, y) = points[0];
        let _ = write!(d, "L{:.2} {y:.2}", x + 0.01);
    }
    d
}

fn stroke_attrs(style: &Style) -> String {
    format!(
        "fill=\"{}\" stroke=\"{}\" stroke-width=\"{}\" stroke-linecap=\"round\" stroke-linejoin=\"round\"",
        if style.filled { style.color } else { "none" },
        style.color,
        style.width
    )
}

fn geo_svg(kind: &str, w: f64, h: f64, style: &Style) -> Option<String> {
    let attrs = stroke_attrs(style);
    Some(match kind {
        "rectangle" | "rect" => {
            format!("<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" {attrs}/>")
        }
        "ellipse" | "oval" => format!(
            "<ellipse cx=\"{}\" cy=\"{}\" rx=\"{}\" ry=\"{}\" {attrs}/>",
            w / 2.0,
            h / 2.0,
            w / 2.0,
            h / 2.0
        ),
        "triangle" => format!("<polygon points=\"{},0 {w},{h} 0,{h}\" {attrs}/>", w / 2.0),
        _ => return None,
    })
}

fn text_svg(text: &str, width: f64, size: f64, color: &str) -> String {
    let font_size = size * 8.0;
    let mut out = format!(
        "<text font-family=\"DejaVu Sans, sans-serif\" font-size=\"{font_size}\" fill=\"{color}\">"
    );
    for (i, line) in wrap_text(text, width, font_size).iter().enumerate() {
        let _ = write!(
            out,
            "<tspan x=\"0\" y=\"{}\">{}</tspan>",
            font_size * (1.0 + 1.2 * i as f64),
            escape(line)
        );
    }
    out.push_str("</text>");
    out
}

/// One v1 shape (BBB 2.6–2.7) as SVG, or `Err(type)` for a type we do not draw.
fn v1_shape(data: &Value) -> Result<String, String> {
    let kind = data["type"].as_str().unwrap_or("?");
    let style = &data["style"];
    let st = Style {
        color: color(style["color"].as_str().unwrap_or("black")),
        width: stroke_width(style["size"].as_str().unwrap_or("medium")),
        filled: style["isFilled"].as_bool().unwrap_or(false),
    };
    let (px, py) = pair(&data["point"]).unwrap_or((0.0, 0.0));
    let (w, h) = pair(&data["size"]).unwrap_or((0.0, 0.0));
    let rotation = num(&data["rotation"]).unwrap_or(0.0).to_degrees();
    let body = match kind {
        "draw" => {
            let points: Vec<(f64, f64)> = data["points"]
                .as_array()
                .map(|a| a.iter().filter_map(pair).collect())
                .unwrap_or_default();
            if points.is_empty() {
                return Ok(String::new());
            }
            format!(
                "<path d=\"{}\" {}/>",
                polyline_path(&points),
                stroke_attrs(&st)
            )
        }
        "rectangle" | "ellipse" | "triangle" => geo_svg(kind, w, h, &st).unwrap_or_default(),
        "text" | "sticky" => text_svg(
            data["text"].as_str().unwrap_or_default(),
            if w > 0.0 { w } else { f64::INFINITY },
            st.width,
            st.color,
        ),
        other => return Err(other.to_owned()),
    };
    Ok(format!(
        "<g transform=\"translate({px} {py}) rotate({rotation} {} {})\">{body}</g>",
        w / 2.0,
        h / 2.0
    ))
}

/// One v2 shape (BBB 3.0) as SVG, or `Err(type)` for a type we do not draw.
fn v2_shape(data: &Value) -> Result<String, String> {
    let kind = data["type"].as_str().unwrap_or("?");
    let props = &data["props"];
    let st = Style {
        color: color(props["color"].as_str().unwrap_or("black")),
        width: stroke_width(props["size"].as_str().unwrap_or("m")),
        filled: props["fill"]
            .as_str()
            .is_some_and(|f| matches!(f, "solid" | "semi" | "fill")),
    };
    let x = num(&data["x"]).unwrap_or(0.0);
    let y = num(&data["y"]).unwrap_or(0.0);
    let rotation = num(&data["rotation"]).unwrap_or(0.0).to_degrees();
    let w = num(&props["w"]).unwrap_or(0.0);
    let h = num(&props["h"]).unwrap_or(0.0);
    let point = |p: &Value| Some((num(&p["x"])?, num(&p["y"])?));
    let body = match kind {
        "draw" | "highlight" => {
            let mut out = String::new();
            for segment in props["segments"].as_array().into_iter().flatten() {
                let points: Vec<(f64, f64)> = segment["points"]
                    .as_array()
                    .map(|a| a.iter().filter_map(point).collect())
                    .unwrap_or_default();
                if !points.is_empty() {
                    let _ = write!(
                        out,
                        "<path d=\"{}\" {}/>",
                        polyline_path(&points),
                        stroke_attrs(&st)
                    );
                }
            }
            out
        }
        "line" => {
            let mut points: Vec<(String, (f64, f64))> = props["points"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, p)| {
                            Some((p["index"].as_str().unwrap_or(k).to_owned(), point(p)?))
                        })
                        .collect()
                })
                .unwrap_or_default();
            points.sort_by(|a, b| a.0.cmp(&b.0));
            let points: Vec<(f64, f64)> = points.into_iter().map(|(_, p)| p).collect();
            if points.is_empty() {
                String::new()
            } else {
                format!(
                    "<path d=\"{}\" {}/>",
                    polyline_path(&points),
                    stroke_attrs(&st)
                )
            }
        }
        "geo" => {
            let geo = props["geo"].as_str().unwrap_or("rectangle");
            match geo_svg(geo, w, h, &st) {
                Some(svg) => svg,
                None => return Err(format!("geo/{geo}")),
            }
        }
        "text" | "note" => text_svg(
            props["text"].as_str().unwrap_or_default(),
            if w > 0.0 { w } else { f64::INFINITY },
            st.width,
            st.color,
        ),
        other => return Err(other.to_owned()),
    };
    Ok(format!(
        "<g transform=\"translate({x} {y}) rotate({rotation})\">{body}</g>"
    ))
}

/// The slides (image ids) a tldraw key refers to.
fn slides_for<'a>(key: &str, slides: &'a [Slide]) -> Vec<&'a Slide> {
    let by_id: Vec<&Slide> = slides.iter().filter(|s| s.id == key).collect();
    if !by_id.is_empty() {
        return by_id;
    }
    let suffix = format!("/slide-{key}.png");
    slides
        .iter()
        .filter(|s| s.href.ends_with(&suffix))
        .collect()
}

/// Parses tldraw.json into annotations on `slides`; also returns the warnings (one per skipped
/// shape type).
pub fn parse(text: &str, slides: &[Slide]) -> Result<(Vec<Annotation>, Vec<String>), BbbError> {
    let root: Value = serde_json::from_str(text).map_err(|e| BbbError::Invalid {
        file: "tldraw.json".to_owned(),
        reason: e.to_string(),
    })?;
    let mut pages: Vec<(String, Option<&str>, &Value)> = Vec::new();
    let top_version = root["bbb_version"].as_str();
    match &root {
        Value::Object(map) => {
            for (key, page) in map.iter().filter(|(k, _)| *k != "bbb_version") {
                pages.push((key.clone(), top_version, page));
            }
        }
        Value::Array(list) => {
            for page in list {
                let key = match &page["id"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => continue,
                };
                pages.push((key, page["bbb_version"].as_str().or(top_version), page));
            }
        }
        _ => {
            return Err(BbbError::Invalid {
                file: "tldraw.json".to_owned(),
                reason: "neither an object nor an array".to_owned(),
            })
        }
    }
    let mut annotations = Vec::new();
    let mut skipped = BTreeSet::new();
    for (key, version, page) in pages {
        let v2 = version
            .and_then(|v| v.split('.').next())
            .and_then(|major| major.trim().parse::<u32>().ok())
            .is_some_and(|major| major >= 3);
        let targets = slides_for(&key, slides);
        for entry in page["shapes"].as_array().into_iter().flatten() {
            let Some(start) = num(&entry["timestamp"]) else {
                continue;
            };
            let data = &entry["shape_data"];
            let drawn = if v2 { v2_shape(data) } else { v1_shape(data) };
            let svg = match drawn {
                Ok(svg) if !svg.is_empty() => svg,
                Ok(_) => continue,
                Err(kind) => {
                    skipped.insert(kind);
                    continue;
                }
            };
            let id = entry["id"]
                .as_str()
                .or(data["id"].as_str())
                .unwrap_or_default();
            for slide in &targets {
                annotations.push(Annotation {
                    image_id: slide.id.clone(),
                    shape: format!("tldraw-{id}"),
                    start,
                    undo: num(&entry["undo"]).filter(|u| *u >= 0.0),
                    // Shapes are relative to the slide's top-left corner.
                    svg: format!(
                        "<g transform=\"translate({} {})\">{svg}</g>",
                        slide.rect.x, slide.rect.y
                    ),
                });
            }
        }
    }
    let warnings = skipped
        .into_iter()
        .map(|kind| format!("tldraw shape type {kind:?} is not drawn; skipped"))
        .collect();
    Ok((annotations, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bbb::recording::ViewBox;

    fn slide() -> Vec<Slide> {
        vec![Slide {
            id: "image1".to_owned(),
            href: "presentation/p/slide-1.png".to_owned(),
            rect: ViewBox {
                x: 0.0,
                y: 0.0,
                w: 1600.0,
                h: 900.0,
            },
            intervals: vec![(0.0, 10.0)],
        }]
    }

    #[test]
    fn v1_and_v2_shapes() {
        let v1 = r#"{"bbb_version":"2.7.2","1":{"timestamp":0,"shapes":[
            {"id":"a","timestamp":1.5,"undo":-1,"shape_data":{"type":"rectangle","point":[10,20],"size":[100,50],"style":{"color":"red","size":"small"}}},
            {"id":"b","timestamp":2,"undo":4,"shape_data":{"type":"draw","point":[0,0],"points":[[0,0],[5,5]],"style":{}}},
            {"id":"c","timestamp":2,"undo":-1,"shape_data":{"type":"video"}},
            {"id":"d","timestamp":2,"undo":-1,"shape_data":{"type":"video"}}]}}"#;
        let (shapes, warnings) = parse(v1, &slide()).unwrap();
        assert_eq!(shapes.len(), 2);
        assert!(shapes[0].svg.contains("<rect") && shapes[0].svg.contains("#e03131"));
        assert_eq!(shapes[1].undo, Some(4.0));
        assert_eq!(warnings.len(), 1, "{warnings:?}");

        let v2 = r#"[{"bbb_version":"3.0.0","id":"image1","shapes":[
            {"id":"shape:x","timestamp":3,"undo":-1,"shape_data":{"type":"geo","x":5,"y":5,"props":{"geo":"ellipse","w":40,"h":20,"color":"blue"}}},
            {"id":"shape:y","timestamp":3,"shape_data":{"type":"draw","x":0,"y":0,"props":{"segments":[{"type":"free","points":[{"x":0,"y":0},{"x":9,"y":9}]}]}}},
            {"id":"shape:z","timestamp":3,"shape_data":{"type":"bookmark"}},
            {"id":"shape:w","timestamp":"bad","shape_data":null}]}]"#;
        let (shapes, warnings) = parse(v2, &slide()).unwrap();
        assert_eq!(shapes.len(), 2);
        assert!(shapes[0].svg.contains("<ellipse"));
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "[]",
            "{}",
            "[1,2]",
            r#"{"1":5}"#,
            r#"{"1":{"shapes":[null,1,{"timestamp":1,"shape_data":{"type":"draw","points":"x"}}]}}"#,
        ] {
            let _ = parse(text, &slide()).unwrap();
        }
        assert!(parse("nope", &slide()).is_err());
        assert!(parse("7", &slide()).is_err());
    }

    /// Property: random edits of a valid file never panic the parser.
    #[test]
    fn mutated_json_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let seed = r#"{"bbb_version":"3.0.0","1":{"shapes":[{"id":"a","timestamp":1,"undo":-1,"shape_data":{"type":"geo","x":1,"y":2,"rotation":0.5,"props":{"geo":"ellipse","w":3,"h":4,"text":"x","segments":[{"points":[{"x":1,"y":1}]}],"points":{"a":{"x":1,"y":2}}}}}]}}"#;
        let pieces = [
            "{", "}", "[", "]", ",", ":", "\"", "null", "-1", "1e400", "\"draw\"", "\"line\"",
        ];
        for _ in 0..20_000 {
            let mut text = seed.to_owned();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..=text.len());
                let end = (at + rng.gen_range(0..6)).min(text.len());
                text.replace_range(at..end, pieces[rng.gen_range(0..pieces.len())]);
            }
            let _ = parse(&text, &slide());
        }
    }
}
