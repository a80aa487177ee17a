use super::*;

#[test]
fn parses_video_with_audio_and_rotation() {
    let json = br#"{"streams":[
        {"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"avg_frame_rate":"30000/1001",
         "r_frame_rate":"30000/1001","pix_fmt":"yuv420p","duration":"10.010000",
         "side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]},
        {"codec_type":"audio","codec_name":"aac","channels":6,"channel_layout":"5.1","sample_rate":"48000","duration":"10.000000"}],
        "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"10.010000"}}"#;
    let info = parse_ffprobe_json(json).unwrap();
    let video = info.video.clone().unwrap();
    assert_eq!(video.rotation, 90);
    assert_eq!(video.display_size(), (1080, 1920));
    assert!((video.frame_rate.unwrap() - 29.97).abs() < 0.01);
    assert_eq!(info.audio[0].channels, 6);
    assert_eq!(info.audio[0].sample_rate, Some(48000));
    assert_eq!(info.duration, Some(10.01));
}

#[test]
fn cover_art_is_not_video() {
    let json = br#"{"streams":[
        {"codec_type":"audio","codec_name":"mp3","channels":2,"duration":"3.0"},
        {"codec_type":"video","codec_name":"mjpeg","width":500,"height":500,"avg_frame_rate":"0/0","disposition":{"attached_pic":1}}],
        "format":{"format_name":"mp3"}}"#;
    let info = parse_ffprobe_json(json).unwrap();
    assert!(info.video.is_none());
    assert_eq!(info.duration, Some(3.0));
}

#[test]
fn no_streams_is_not_media() {
    assert_eq!(
        parse_ffprobe_json(br#"{"streams":[],"format":{"format_name":"tty"}}"#),
        Err(ParseError::NoStreams)
    );
}

#[test]
fn unknown_frame_rate_is_none() {
    let json = br#"{"streams":[{"codec_type":"video","codec_name":"vp9","width":64,"height":64,"avg_frame_rate":"0/0","r_frame_rate":"0/0"}]}"#;
    let info = parse_ffprobe_json(json).unwrap();
    assert_eq!(info.video.unwrap().frame_rate, None);
    assert_eq!(info.duration, None);
}

#[test]
fn garbage_is_a_json_error() {
    assert!(matches!(
        parse_ffprobe_json(b"not json"),
        Err(ParseError::Json(_))
    ));
}
