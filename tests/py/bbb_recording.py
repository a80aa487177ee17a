#!/usr/bin/env python3
"""Writes a synthetic BigBlueButton "presentation" recording, laid out as
/var/bigbluebutton/published/presentation/RECORD_ID/, plus expect.json describing what it shows.

Used by the test suite (small recordings whose frames are checked pixel by pixel) and by
bench/bbb-render (a 30-minute lecture). Only the standard library and ffmpeg are needed.

Slides are PNGs split into four solid-colour quadrants (so a zoom into one quadrant is visible),
annotations are solid squares, the cursor moves on a circle, the screenshare video is solid
yellow, webcams are testsrc2 with a sine tone.
"""

import argparse
import json
import os
import struct
import subprocess
import zlib

RECORD_ID = "183f0bf3a0982a127bdb8161e0c44eb696b3e75c-1531240585189"
PRES_ID = "d2d9a672040fbde2a47a10bf6c37b6a4b5ae187f-1530718721134"


def png(path, width, height, quadrants):
    """A PNG whose four quadrants (TL, TR, BL, BR) have the given RGB colours."""
    def row(left, right):
        half = width // 2
        return b"\x00" + bytes(left) * half + bytes(right) * (width - half)
    top, bottom = row(quadrants[0], quadrants[1]), row(quadrants[2], quadrants[3])
    raw = top * (height // 2) + bottom * (height - height // 2)
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 1))
    data += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def slide_colours(k):
    """Four distinct, saturated-enough colours per slide (never red, magenta, yellow or black)."""
    base = [(40, 90, 200), (40, 170, 90), (0, 160, 160), (120, 70, 170), (200, 120, 40), (90, 90, 90)]
    out = []
    for q in range(4):
        r, g, b = base[(k + q) % len(base)]
        shift = (k * 7 + q * 11) % 40
        out.append((min(255, r + shift), min(255, g + shift // 2), min(255, b + shift // 3)))
    return out


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--duration", type=float, default=24.0)
    p.add_argument("--slides", type=int, default=3)
    p.add_argument("--repeat-first", action="store_true", help="show slide 1 again at the end")
    p.add_argument("--annotations", type=int, default=3)
    p.add_argument("--cursor-every", type=float, default=0.0, help="seconds between cursor moves")
    p.add_argument("--deskshare", default="", help="periods, e.g. 4:6,13:15")
    p.add_argument("--media", choices=["webcams", "audio", "none"], default="webcams")
    p.add_argument("--webcam-fps", type=int, default=15)
    p.add_argument("--chat", type=int, default=0)
    p.add_argument("--captions", action="store_true")
    p.add_argument("--tldraw", action="store_true", help="annotations in tldraw.json (BBB 2.6+)")
    p.add_argument("--zoom", default="", help="START:END zoom of slide 2 into its bottom-right quadrant")
    p.add_argument("--slide-size", default="1600x900")
    a = p.parse_args()

    root = os.path.join(a.out, RECORD_ID) if not a.out.rstrip("/").endswith(RECORD_ID) else a.out
    pres = os.path.join(root, "presentation", PRES_ID)
    os.makedirs(pres, exist_ok=True)
    width, height = (int(v) for v in a.slide_size.split("x"))
    duration = a.duration
    expect = {"record_id": RECORD_ID, "duration": duration, "slide_size": [width, height],
              "slides": [], "annotations": [], "cursor": [], "deskshare": [], "chat": [], "zoom": None}

    # Slides: equal display intervals; slide 1 optionally again at the end (two `in` values).
    span = duration / a.slides
    images = []
    for k in range(a.slides):
        colours = slide_colours(k)
        png(os.path.join(pres, f"slide-{k + 1}.png"), width, height, colours)
        intervals = [[round(k * span, 1), round((k + 1) * span, 1)]]
        images.append({"id": f"image{k + 1}", "href": f"presentation/{PRES_ID}/slide-{k + 1}.png",
                       "intervals": intervals, "quadrants": colours})
    if a.repeat_first and a.slides > 1:
        last = images[-1]["intervals"][0]
        cut = round(last[0] + (last[1] - last[0]) / 2, 1)
        images[0]["intervals"].append([cut, last[1]])
        last[1] = cut
    expect["slides"] = images

    # Annotations: solid squares on the slide showing at their time; every third is undone 1.5 s
    # later, every fourth is moved (a newer version of the same shape) 1 s later.
    shapes = {img["id"]: [] for img in images}
    tl_pages = {}
    side = round(min(width, height) * 0.12)
    for j in range(a.annotations):
        img = images[j % a.slides]
        start, end = img["intervals"][0]
        slot = (j // a.slides) + 1
        per_slide = (a.annotations + a.slides - 1) // a.slides
        t = round(start + (end - start) * slot / (per_slide + 2), 1)
        x = round(width * (0.1 + 0.7 * ((j * 37) % 100) / 100))
        y = round(height * (0.1 + 0.6 * ((j * 53) % 100) / 100))
        undo = round(t + 1.5, 1) if j % 3 == 2 else -1
        versions = [(t, x, y)]
        if j % 4 == 3:
            versions.append((round(t + 1.0, 1), round(x + side * 1.5) % (width - side), y))
        for v, (vt, vx, vy) in enumerate(versions):
            shapes[img["id"]].append((j, v, vt, undo, vx, vy))
            expect["annotations"].append({"slide": img["id"], "shape": j, "start": vt, "undo": undo,
                                          "rect": [vx, vy, side, side], "colour": [255, 0, 255],
                                          "superseded_at": versions[v + 1][0] if v + 1 < len(versions) else None})
            tl_pages.setdefault(img["id"], []).append({
                "id": f"shape{j}", "timestamp": vt, "undo": undo,
                "shape_data": {"id": f"shape{j}", "type": "rectangle", "point": [vx, vy], "size": [side, side],
                               "rotation": 0, "style": {"color": "violet", "size": "small", "isFilled": True}}})

    svg = ['<?xml version="1.0"?>',
           f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
           f'version="1.1" id="svgfile" style="" viewBox="0 0 {width} {height}">']
    for img in images:
        ins = " ".join(f"{i[0]:.1f}" for i in img["intervals"])
        outs = " ".join(f"{i[1]:.1f}" for i in img["intervals"])
        svg.append(f'<image id="{img["id"]}" class="slide" in="{ins}" out="{outs}" '
                   f'xlink:href="{img["href"]}" width="{width}" height="{height}" x="0" y="0" '
                   f'style="visibility:hidden" text="presentation/{PRES_ID}/textfiles/slide-1.txt"/>')
        if a.tldraw:
            continue
        svg.append(f'<g class="canvas" id="canvas{img["id"][5:]}" image="{img["id"]}" display="none">')
        for (j, v, vt, undo, vx, vy) in shapes[img["id"]]:
            pts = f"{vx},{vy} {vx + side},{vy} {vx + side},{vy + side} {vx},{vy + side}"
            svg.append(f'<g id="{img["id"]}-draw{j}-{v}" class="shape" timestamp="{vt:.1f}" undo="{undo}" '
                       f'shape="{img["id"]}-poly{j}" style="stroke:#ff00ff;stroke-width:4;fill:#ff00ff;visibility:hidden">'
                       f'<polygon points="{pts}"/></g>')
        # A text annotation (foreignObject), as the text tool writes it.
        if img is images[0]:
            svg.append(f'<g id="{img["id"]}-text" class="shape" timestamp="0.5" undo="-1" shape="{img["id"]}-text1" '
                       f'style="visibility:hidden"><switch><foreignObject x="{width * 0.05}" y="{height * 0.05}" '
                       f'width="{width * 0.5}" height="{height * 0.2}"><p xmlns="http://www.w3.org/1999/xhtml" '
                       f'style="color:#000000;word-wrap:break-word;font-family:Arial;font-size:{height // 20}px">'
                       f'Lecture notes<br/>second line</p></foreignObject></switch></g>')
        svg.append("</g>")
    svg.append("</svg>")
    with open(os.path.join(root, "shapes.svg"), "w") as f:
        f.write("\n".join(svg))
    if a.tldraw:
        doc = {"bbb_version": "2.7.0"}
        for k, img in enumerate(images):
            doc[str(k + 1)] = {"timestamp": img["intervals"][0][0], "shapes": tl_pages.get(img["id"], [])}
        doc["1"]["shapes"].append({"id": "weird", "timestamp": 0.5, "undo": -1,
                                   "shape_data": {"type": "video", "point": [0, 0]}})
        with open(os.path.join(root, "tldraw.json"), "w") as f:
            json.dump(doc, f)

    # Panzooms: the whole slide, optionally a zoom into slide 2's bottom-right quadrant.
    events = [(0.0, (0, 0, width, height))]
    if a.zoom:
        z0, z1 = (float(v) for v in a.zoom.split(":"))
        events += [(z0, (width / 2, height / 2, width / 2, height / 2)), (z1, (0, 0, width, height))]
        expect["zoom"] = {"start": z0, "end": z1, "quadrant": 3}
    with open(os.path.join(root, "panzooms.xml"), "w") as f:
        f.write('<?xml version="1.0"?>\n<recording id="panzoom_events">\n')
        for t, vb in events:
            f.write(f'<event timestamp="{t:.1f}"><viewBox>{vb[0]:.1f} {vb[1]:.1f} {vb[2]:.1f} {vb[3]:.1f}</viewBox></event>\n')
        f.write("</recording>\n")

    # Cursor: on a circle around the slide centre; hidden during the last tenth.
    with open(os.path.join(root, "cursor.xml"), "w") as f:
        f.write('<?xml version="1.0"?>\n<recording id="cursor_events">\n')
        if a.cursor_every > 0:
            t, n = 0.0, 0
            import math
            while t < duration:
                if t >= duration * 0.9:
                    pos = (-1, -1)
                else:
                    pos = (round(0.5 + 0.3 * math.cos(n * 0.7), 3), round(0.5 + 0.3 * math.sin(n * 0.7), 3))
                f.write(f'<event timestamp="{t:.1f}"><cursor>{pos[0]} {pos[1]}</cursor></event>\n')
                expect["cursor"].append([round(t, 1), pos[0], pos[1]])
                t, n = round(t + a.cursor_every, 3), n + 1
        f.write("</recording>\n")

    periods = [tuple(float(v) for v in p.split(":")) for p in a.deskshare.split(",") if p]
    expect["deskshare"] = periods
    with open(os.path.join(root, "deskshare.xml"), "w") as f:
        f.write('<?xml version="1.0"?>\n<recording id="deskshare_events">\n')
        for s, e in periods:
            f.write(f'<event start_timestamp="{s:.1f}" stop_timestamp="{e:.1f}" video_width="1280" video_height="720"/>\n')
        f.write("</recording>\n")
    if periods:
        os.makedirs(os.path.join(root, "deskshare"), exist_ok=True)
        ffmpeg("-f", "lavfi", "-i", f"color=c=0xffff00:s=640x360:r=5:d={duration}",
               "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k",
               os.path.join(root, "deskshare", "deskshare.webm"))

    # Chat: evenly spread messages.
    with open(os.path.join(root, "slides_new.xml"), "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<popcorn>\n')
        for i in range(a.chat):
            t = int(duration * (i + 1) / (a.chat + 1))
            name, message = f"Student {i + 1}", f"Question number {i + 1} about slide &lt;b&gt;{i}&lt;/b&gt;"
            f.write(f'<chattimeline in="{t}" direction="down" name="{name}" message="{message}" target="chat"/>\n')
            expect["chat"].append({"at": t, "name": name})
        f.write("</popcorn>\n")

    if a.captions:
        with open(os.path.join(root, "captions.json"), "w") as f:
            json.dump([{"locale": "en-US", "localeName": "English (US)"}], f)
        with open(os.path.join(root, "caption_en-US.vtt"), "w") as f:
            f.write("WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nWelcome to the lecture\n\n"
                    "00:00:05.000 --> 00:00:08.000\nToday: synthetic recordings\n")

    if a.media == "webcams":
        os.makedirs(os.path.join(root, "video"), exist_ok=True)
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=320x240:r={a.webcam_fps}:d={duration}",
               "-f", "lavfi", "-i", f"sine=f=440:sample_rate=48000:d={duration}",
               "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k",
               "-c:a", "libopus", "-b:a", "32k", "-ac", "1", os.path.join(root, "video", "webcams.webm"))
    elif a.media == "audio":
        os.makedirs(os.path.join(root, "audio"), exist_ok=True)
        ffmpeg("-f", "lavfi", "-i", f"sine=f=440:sample_rate=48000:d={duration}",
               "-c:a", "libopus", "-b:a", "32k", "-ac", "1", os.path.join(root, "audio", "audio.webm"))

    start_ms = 1531240585189
    with open(os.path.join(root, "metadata.xml"), "w") as f:
        f.write(f"""<?xml version="1.0" encoding="UTF-8"?>
<recording>
  <id>{RECORD_ID}</id><state>published</state><published>true</published>
  <start_time>{start_ms}</start_time><end_time>{start_ms + int(duration * 1000)}</end_time>
  <participants>3</participants>
  <meeting id="{RECORD_ID}" externalId="physics-101" name="Physics 101" breakout="false"/>
  <meta><meetingId>physics-101</meetingId><meetingName>Physics 101</meetingName><isBreakout>false</isBreakout></meta>
  <playback>
    <format>presentation</format>
    <link>https://bbb.example/playback/presentation/2.3/{RECORD_ID}</link>
    <processing_time>7177</processing_time><duration>{int(duration * 1000)}</duration>
  </playback>
</recording>
""")
    with open(os.path.join(a.out if root != a.out else os.path.dirname(root), "expect.json"), "w") as f:
        json.dump(expect, f, indent=1)
    print(root)


if __name__ == "__main__":
    main()
