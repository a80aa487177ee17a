//! Named objects staged for an upload, written the way object stores take them: whole (`PUT`) or
//! in numbered parts sent in any order and joined on completion (multipart upload). Tencent VOD's
//! upload SDKs send the media file and its cover this way (`compat::tencent::cos`).
//!
//! Everything lives under `<staging>/<upload_id>.objects/`: the finished objects by name, and one
//! folder per multipart upload with its parts. Whole objects are written under a temporary name,
//! fsync'd and renamed into place (and their folder fsync'd) before the call returns, so an
//! acknowledged object survives a crash, and a crash mid-write leaves only a temporary file that
//! the next write of the same object replaces.
//!
//! Parts are written in place when they can be: the SDKs cut a file into equal parts (all but the
//! last the size of part 1), so part `n` goes at `(n - 1) × stride` of one `data` file, and
//! completing the upload is a rename instead of a copy of the whole file. `parts.log` holds the
//! layout's state: a header with the stride (fixed by part 1) and one claim byte per part number
//! (each slot is taken once, under an exclusive `flock` on the log), then one record line per part
//! written (number, size, MD5). A part is acknowledged after its bytes and then its record are
//! fdatasync'd; the record's fdatasync also makes the stride and the slot's claim durable, so a
//! recorded slot is never taken again, even after a power loss. Whatever does not fit — a part sent
//! before part 1, larger than the stride, without a length, or a retry of a slot already taken — is
//! written as a file of its own (`part-NNNNN-<md5>`, the same durable write as a whole object) and
//! copied into place on completion. Part writers hold a shared `flock` on `data`, completion an
//! exclusive one, so no part lands in a file that completion already renamed.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use md5::{Digest, Md5};

use crate::storage::fs::sync_dir;

/// Parts are numbered 1 to 10,000, as in S3 and COS.
pub const MAX_PART_NUMBER: u32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("no such multipart upload {0}")]
    NoSuchUpload(String),
    #[error("part {0} was not uploaded, or its ETag differs")]
    InvalidPart(u32),
    #[error("parts must be listed in ascending order of part number")]
    InvalidPartOrder,
    #[error("part numbers go from 1 to {MAX_PART_NUMBER}, got {0}")]
    InvalidPartNumber(u32),
    #[error("the object is larger than the maximum of {0} bytes")]
    TooLarge(u64),
    #[error("the body does not match Content-MD5")]
    BadDigest,
    #[error("request body ended early: {0}")]
    BodyInterrupted(String),
    #[error("a part of this upload is still being received; try again")]
    PartInProgress,
    #[error("staging I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A stored object or part: its size and MD5 (hex; an S3/COS ETag is this in quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    pub md5_hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    pub size: u64,
    pub md5_hex: String,
    pub modified_unix: i64,
}

/// An unfinished multipart upload of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    pub id: String,
    pub object: String,
    pub initiated_unix: i64,
}

pub struct ObjectStaging {
    dir: PathBuf,
    complete_wait: Duration,
}

/// The in-place layout's files in a multipart folder (see the module's comment).
const DATA: &str = "data";
const LOG: &str = "parts.log";
/// `parts.log` starts with the stride (8 bytes, little-endian, 0 until part 1 fixes it) and one
/// claim byte per part number; the records follow.
const LOG_HEADER: u64 = 8 + MAX_PART_NUMBER as u64;

/// How long completion waits for part writes still in progress, by default.
const COMPLETE_WAIT: Duration = Duration::from_secs(30);

/// A slot of the in-place layout taken for one part: the `data` file (shared-locked) and where the
/// part goes in it.
struct Slot {
    dir: PathBuf,
    data: std::fs::File,
    number: u32,
    stride: u64,
    offset: u64,
    len: u64,
}

/// What `ObjectStaging::receive` writes: a whole object (its folder made if need be) or a part
/// stored as a file of its own (into its multipart upload's folder, which must exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receiving {
    Object,
    Part,
}

/// Where a listed part's bytes are when completing.
enum PartBytes {
    Slot { offset: u64 },
    File(PathBuf),
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn is_md5_hex(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The part records of `parts.log`, by number: `N SIZE MD5 UNIX` lines, a later line for the same
/// number replacing an earlier one, `N dead` removing it. A torn last line (a crash mid-append) is
/// not a record.
fn parse_log(text: &str) -> HashMap<u32, Part> {
    let mut parts = HashMap::new();
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(number) = fields.first().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        match fields[1..] {
            ["dead"] => {
                parts.remove(&number);
            }
            [size, md5, modified] if is_md5_hex(md5) => {
                if let (Ok(size), Ok(modified_unix)) = (size.parse(), modified.parse()) {
                    parts.insert(
                        number,
                        Part {
                            number,
                            size,
                            md5_hex: md5.to_ascii_lowercase(),
                            modified_unix,
                        },
                    );
                }
            }
            _ => {}
        }
    }
    parts
}

fn read_log(dir: &Path) -> Result<HashMap<u32, Part>, ObjectError> {
    match std::fs::read(dir.join(LOG)) {
        Ok(bytes) => Ok(parse_log(&String::from_utf8_lossy(
            bytes.get(LOG_HEADER as usize..).unwrap_or_default(),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(e.into()),
    }
}

/// Appends `lines` to `parts.log` and makes them durable (with the header's changes before
/// them). They start on a line of their own: a record torn by a crash is never glued to the next.
fn append_log(dir: &Path, lines: &str) -> Result<(), ObjectError> {
    let mut log = match std::fs::OpenOptions::new().append(true).open(dir.join(LOG)) {
        Ok(log) => log,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ObjectError::NoSuchUpload(String::new()))
        }
        Err(e) => return Err(e.into()),
    };
    log.write_all(format!("\n{lines}").as_bytes())?;
    log.sync_data()?;
    Ok(())
}

/// The stride in the header of `parts.log`, once part 1 fixed it.
fn read_stride(dir: &Path) -> Result<Option<u64>, ObjectError> {
    let log = match std::fs::File::open(dir.join(LOG)) {
        Ok(log) => log,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut stride = [0u8; 8];
    log.read_exact_at(&mut stride, 0)?;
    Ok(Some(u64::from_le_bytes(stride)).filter(|s| *s > 0))
}

/// Takes slot `number` of the in-place layout for a part of `len` bytes, or answers `None` when
/// the part must be a file of its own (see the module's comment, and a slot ending past `max`,
/// the largest object: a high part number would otherwise make `data` a huge sparse file).
fn claim_slot(dir: &Path, number: u32, len: u64, max: u64) -> Result<Option<Slot>, ObjectError> {
    let data = match std::fs::OpenOptions::new().write(true).open(dir.join(DATA)) {
        Ok(data) => data,
        // A multipart upload begun before the in-place layout existed.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let log = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(LOG))
    {
        Ok(log) => log,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ObjectError::NoSuchUpload(String::new()))
        }
        Err(e) => return Err(e.into()),
    };
    let stride = {
        rustix::fs::flock(&log, rustix::fs::FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)?;
        let claim_at = 8 + u64::from(number - 1);
        let mut header = [0u8; 8];
        log.read_exact_at(&mut header, 0)?;
        let mut claim = [0u8; 1];
        log.read_exact_at(&mut claim, claim_at)?;
        let stride = match u64::from_le_bytes(header) {
            _ if claim[0] != 0 => None,
            0 if number == 1 && len > 0 => {
                log.write_all_at(&len.to_le_bytes(), 0)?;
                Some(len)
            }
            0 => None,
            stride => Some(stride).filter(|stride| {
                len <= *stride
                    && u64::from(number - 1)
                        .checked_mul(*stride)
                        .and_then(|offset| offset.checked_add(len))
                        .is_some_and(|end| end <= max)
            }),
        };
        if stride.is_some() {
            log.write_all_at(&[1], claim_at)?;
        }
        rustix::fs::flock(&log, rustix::fs::FlockOperation::Unlock)
            .map_err(std::io::Error::from)?;
        stride
    };
    let Some((stride, offset)) = stride.and_then(|stride| {
        u64::from(number - 1)
            .checked_mul(stride)
            .map(|offset| (stride, offset))
    }) else {
        return Ok(None);
    };
    rustix::fs::flock(&data, rustix::fs::FlockOperation::LockShared)
        .map_err(std::io::Error::from)?;
    // Completion renames `data` away under its exclusive lock: a writer that opened it before
    // must not write into the finished object.
    let current = std::fs::metadata(dir.join(DATA)).ok().map(|m| m.ino());
    if current != Some(data.metadata()?.ino()) {
        return Err(ObjectError::NoSuchUpload(String::new()));
    }
    Ok(Some(Slot {
        dir: dir.to_owned(),
        data,
        number,
        stride,
        offset,
        len,
    }))
}

/// Takes `data`'s exclusive lock, waiting at most `wait` for part writers to finish.
fn lock_exclusive(data: &std::fs::File, wait: Duration) -> Result<(), ObjectError> {
    let deadline = Instant::now() + wait;
    loop {
        match rustix::fs::flock(data, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(ObjectError::PartInProgress),
            Err(e) => return Err(std::io::Error::from(e).into()),
        }
    }
}

/// Copies `len` bytes of `from` (from `from_offset`) to `to` at `to_offset`.
fn copy_range(
    from: &std::fs::File,
    from_offset: u64,
    to: &std::fs::File,
    to_offset: u64,
    len: u64,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; (1 << 20).min(len as usize).max(1)];
    let mut done = 0u64;
    while done < len {
        let n = buf.len().min((len - done) as usize);
        from.read_exact_at(&mut buf[..n], from_offset + done)?;
        to.write_all_at(&buf[..n], to_offset + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Object names and multipart ids are ours (`media.mp4`, `cover.jpg`, random ids); anything else
/// never reaches the file system.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn modified_unix(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// Writes `source` to `dir/name` durably: a temporary file, fsync, rename, fsync of the folder.
fn write_durably(
    dir: &Path,
    name: &str,
    source: impl FnOnce(&mut std::fs::File) -> Result<u64, ObjectError>,
) -> Result<u64, ObjectError> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    let size = match source(&mut file) {
        Ok(size) => size,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)?;
    Ok(size)
}

/// How direct writes are aligned (offsets, lengths and memory): a multiple of every Linux
/// filesystem's logical block size.
const DIRECT_ALIGN: usize = 4096;
/// The size of a direct write; a part is written in writes of this size and one for its tail.
const DIRECT_CHUNK: usize = 1 << 20;

thread_local! {
    /// A blocking thread's buffer for direct writes, kept between parts (a fresh megabyte per part
    /// is a megabyte of page faults).
    static DIRECT_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Asks for `file`'s writes to bypass the page cache (`O_DIRECT`) when the layout's `stride` is
/// aligned (so are the slots, and a part's padded tail stays in its own slot); whether they will.
/// A part written in place is not read again until its upload completes, and on a virtual
/// machine the copy into the page cache can cost more than the disk write itself (2 GiB: 0.4 s of
/// CPU written directly, 2 to 6 s through the cache, measured on this project's CI machine). A
/// filesystem without direct I/O (tmpfs on older kernels) refuses the flag.
fn try_direct(file: &std::fs::File, stride: u64) -> bool {
    if stride % DIRECT_ALIGN as u64 != 0 {
        return false;
    }
    rustix::fs::fcntl_getfl(file)
        .and_then(|flags| rustix::fs::fcntl_setfl(file, flags | rustix::fs::OFlags::DIRECT))
        .is_ok()
}

/// Writes what `rx` brings to `file` (opened for direct I/O) from the aligned `offset`, through
/// an aligned buffer, in writes of [`DIRECT_CHUNK`]; the tail is padded with zeros to the next
/// aligned size. The padding stays inside the part's slot (strides are aligned when this is used),
/// is never listed (records hold each part's size) and past the object's end is cut when the
/// upload completes. A filesystem that takes the flag but wants a larger alignment (64 KiB
/// pages, some ZFS and btrfs setups) refuses the first write with `EINVAL`: the flag is then
/// dropped and the same bytes written through the cache.
fn write_direct(
    rx: std::sync::mpsc::Receiver<Bytes>,
    file: &std::fs::File,
    offset: u64,
    md5: &mut Md5,
) -> std::io::Result<()> {
    DIRECT_BUFFER.with_borrow_mut(|buffer| {
        if buffer.len() < DIRECT_CHUNK + DIRECT_ALIGN {
            *buffer = vec![0; DIRECT_CHUNK + DIRECT_ALIGN];
        }
        let skip = buffer.as_ptr().align_offset(DIRECT_ALIGN);
        let chunk = &mut buffer[skip..skip + DIRECT_CHUNK];
        let (mut filled, mut at) = (0usize, offset);
        let write = |bytes: &[u8], at: u64| match file.write_all_at(bytes, at) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                let flags = rustix::fs::fcntl_getfl(file)?;
                rustix::fs::fcntl_setfl(file, flags - rustix::fs::OFlags::DIRECT)?;
                file.write_all_at(bytes, at)
            }
            other => other,
        };
        for data in rx {
            md5.update(&data);
            let mut rest = &data[..];
            while !rest.is_empty() {
                let n = rest.len().min(DIRECT_CHUNK - filled);
                chunk[filled..filled + n].copy_from_slice(&rest[..n]);
                (filled, rest) = (filled + n, &rest[n..]);
                if filled == DIRECT_CHUNK {
                    write(chunk, at)?;
                    (filled, at) = (0, at + DIRECT_CHUNK as u64);
                }
            }
        }
        if filled > 0 {
            let padded = filled.next_multiple_of(DIRECT_ALIGN);
            chunk[filled..padded].fill(0);
            write(&chunk[..padded], at)?;
        }
        Ok(())
    })
}

/// Streams `body` into `file` from `offset` while computing its MD5 (`direct`: `file` is open
/// for direct I/O, see [`write_direct`]); returns the file, the size and the MD5 (hex), or the
/// first failure (the body's, the bound `max`'s, or the disk's).
async fn stream_to_file<S, E>(
    body: S,
    max: u64,
    file: std::fs::File,
    offset: u64,
    direct: bool,
) -> Result<(std::fs::File, u64, String), ObjectError>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    // One blocking thread writes and hashes what a bounded channel feeds it (as
    // `Staging::append` does): network and disk work in parallel, memory stays bounded, and
    // the async threads do neither the hashing nor a blocking-pool hop per frame.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(32);
    let writer =
        tokio::task::spawn_blocking(move || -> Result<(std::fs::File, String), ObjectError> {
            let mut md5 = Md5::new();
            if direct {
                write_direct(rx, &file, offset, &mut md5)?;
            } else {
                let mut at = offset;
                for data in rx {
                    md5.update(&data);
                    file.write_all_at(&data, at)?;
                    at += data.len() as u64;
                }
            }
            Ok((file, hex::encode(md5.finalize())))
        });
    let mut size = 0u64;
    let mut failure = None;
    futures_util::pin_mut!(body);
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                failure = Some(ObjectError::BodyInterrupted(e.to_string()));
                break;
            }
        };
        size += chunk.len() as u64;
        if size > max {
            failure = Some(ObjectError::TooLarge(max));
            break;
        }
        if tx.send(chunk).is_err() {
            break;
        }
    }
    drop(tx);
    let written = writer.await.expect("staging writer does not panic");
    match (failure, written) {
        (Some(e), _) | (None, Err(e)) => Err(e),
        (None, Ok((file, digest))) => Ok((file, size, digest)),
    }
}

/// Refuses a body whose MD5 is not the `Content-MD5` it was sent with (raw digest).
fn check_md5(content_md5: Option<&[u8]>, digest_hex: &str) -> Result<(), ObjectError> {
    match content_md5 {
        Some(expected) if hex::encode(expected) != digest_hex => Err(ObjectError::BadDigest),
        _ => Ok(()),
    }
}

impl ObjectStaging {
    pub fn new(staging_dir: PathBuf) -> ObjectStaging {
        ObjectStaging {
            dir: staging_dir,
            complete_wait: COMPLETE_WAIT,
        }
    }

    /// How long completion and abort wait for part writes still in progress before refusing.
    pub fn with_complete_wait(mut self, wait: Duration) -> ObjectStaging {
        self.complete_wait = wait;
        self
    }

    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.dir.join(format!("{upload_id}.objects"))
    }

    fn multipart_dir(&self, upload_id: &str, multipart_id: &str) -> PathBuf {
        self.upload_dir(upload_id)
            .join(format!("mp-{multipart_id}"))
    }

    /// The finished object's file, if there is one.
    pub async fn path(&self, upload_id: &str, object: &str) -> Option<PathBuf> {
        let path = self.upload_dir(upload_id).join(object);
        (valid_name(object) && tokio::fs::metadata(&path).await.is_ok()).then_some(path)
    }

    /// Receives a body into `dir/<name(its MD5 in hex)>`: written once to a temporary file while its MD5 is
    /// computed, checked against `content_md5`, fsync'd, then renamed into place (and the folder
    /// fsync'd). Bounded by `max`; the temporary file is removed on any failure.
    async fn receive<S, E>(
        &self,
        kind: Receiving,
        dir: PathBuf,
        name: impl FnOnce(&str) -> String,
        body: S,
        max: u64,
        content_md5: Option<Vec<u8>>,
    ) -> Result<Written, ObjectError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        match kind {
            Receiving::Object => tokio::fs::create_dir_all(&dir).await?,
            // A part's folder is its multipart upload: gone means completed or aborted meanwhile,
            // and must not be made again.
            Receiving::Part => {}
        }
        let incoming = match tempfile::Builder::new()
            .prefix(".incoming-")
            .tempfile_in(&dir)
        {
            Ok(incoming) => incoming,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && kind == Receiving::Part => {
                return Err(ObjectError::NoSuchUpload(String::new()))
            }
            Err(e) => return Err(e.into()),
        };
        let (file, incoming) = incoming.into_parts();
        // Dropping `incoming` on failure removes the temporary file.
        let (file, size, digest) = stream_to_file(body, max, file, 0, false).await?;
        check_md5(content_md5.as_deref(), &digest)?;
        let target = dir.join(name(&digest));
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            file.sync_all()?;
            drop(file);
            incoming.persist(&target).map_err(|e| e.error)?;
            sync_dir(&dir)
        })
        .await
        .expect("staging does not panic")?;
        Ok(Written {
            size,
            md5_hex: digest,
        })
    }

    /// Receives a part into its slot of the in-place layout: its bytes, then (once they are
    /// durable) its record.
    async fn receive_in_place<S, E>(
        &self,
        slot: Slot,
        body: S,
        content_md5: Option<Vec<u8>>,
    ) -> Result<Written, ObjectError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let Slot {
            dir,
            data,
            number,
            stride,
            offset,
            len,
        } = slot;
        // The slot stays taken whatever happens: a retry is written as a file of its own.
        let direct = try_direct(&data, stride);
        let (data, size, digest) = stream_to_file(body, len, data, offset, direct).await?;
        if size != len {
            return Err(ObjectError::BodyInterrupted(format!(
                "{size} of {len} bytes received"
            )));
        }
        check_md5(content_md5.as_deref(), &digest)?;
        let md5_hex = digest.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ObjectError> {
            data.sync_data()?;
            append_log(&dir, &format!("{number} {len} {digest} {}\n", now_unix()))?;
            // The shared lock goes with `data`, after the record is written.
            drop(data);
            Ok(())
        })
        .await
        .expect("staging does not panic")?;
        Ok(Written { size, md5_hex })
    }

    /// Stores a whole object (replacing one of the same name); `content_md5` is the request's
    /// `Content-MD5` (raw digest), checked before anything is kept.
    pub async fn put<S, E>(
        &self,
        upload_id: &str,
        object: &str,
        body: S,
        max: u64,
        content_md5: Option<Vec<u8>>,
    ) -> Result<Written, ObjectError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        assert!(valid_name(object), "object names are ours");
        self.receive(
            Receiving::Object,
            self.upload_dir(upload_id),
            |_| object.to_owned(),
            body,
            max,
            content_md5,
        )
        .await
    }

    /// Starts a multipart upload of `object`; returns its id.
    pub async fn create_multipart(
        &self,
        upload_id: &str,
        object: &str,
    ) -> Result<String, ObjectError> {
        assert!(valid_name(object), "object names are ours");
        let id = crate::id::random_id();
        let dir = self.multipart_dir(upload_id, &id);
        let object = object.to_owned();
        tokio::task::spawn_blocking(move || -> Result<(), ObjectError> {
            std::fs::create_dir_all(&dir)?;
            // Empty until parts come; kept by the folder's fsync in `write_durably`.
            std::fs::File::create(dir.join(DATA))?;
            std::fs::File::create(dir.join(LOG))?.set_len(LOG_HEADER)?;
            write_durably(&dir, "object", |file| {
                file.write_all(object.as_bytes())?;
                Ok(object.len() as u64)
            })?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        })
        .await
        .expect("staging does not panic")?;
        Ok(id)
    }

    fn read_multipart(dir: &Path, id: &str) -> Option<Multipart> {
        let object = std::fs::read_to_string(dir.join("object")).ok()?;
        let meta = std::fs::metadata(dir.join("object")).ok()?;
        Some(Multipart {
            id: id.to_owned(),
            object,
            initiated_unix: modified_unix(&meta),
        })
    }

    /// The multipart upload `multipart_id` of this upload, if it is unfinished.
    pub async fn multipart(
        &self,
        upload_id: &str,
        multipart_id: &str,
    ) -> Result<Multipart, ObjectError> {
        let missing = || ObjectError::NoSuchUpload(multipart_id.to_owned());
        if !valid_name(multipart_id) {
            return Err(missing());
        }
        let dir = self.multipart_dir(upload_id, multipart_id);
        let id = multipart_id.to_owned();
        tokio::task::spawn_blocking(move || Self::read_multipart(&dir, &id))
            .await
            .expect("staging does not panic")
            .ok_or_else(missing)
    }

    /// Every unfinished multipart upload of this upload, oldest first.
    pub async fn list_multiparts(&self, upload_id: &str) -> Result<Vec<Multipart>, ObjectError> {
        let dir = self.upload_dir(upload_id);
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e.into()),
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(id) = name.strip_prefix("mp-") {
                    if let Some(m) = Self::read_multipart(&entry.path(), id) {
                        out.push(m);
                    }
                }
            }
            out.sort_by(|a, b| (a.initiated_unix, &a.id).cmp(&(b.initiated_unix, &b.id)));
            Ok(out)
        })
        .await
        .expect("staging does not panic")
    }

    /// Stores one part of `length` bytes (the request's `Content-Length`, if it had one). An
    /// earlier version of the same part (a retry) stays until the upload completes or is
    /// aborted: listing shows the newest, completing takes the one whose ETag is named.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_part<S, E>(
        &self,
        upload_id: &str,
        multipart_id: &str,
        number: u32,
        length: Option<u64>,
        body: S,
        max: u64,
        content_md5: Option<Vec<u8>>,
    ) -> Result<Written, ObjectError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(ObjectError::InvalidPartNumber(number));
        }
        self.multipart(upload_id, multipart_id).await?;
        let dir = self.multipart_dir(upload_id, multipart_id);
        let named = |e| match e {
            ObjectError::NoSuchUpload(_) => ObjectError::NoSuchUpload(multipart_id.to_owned()),
            e => e,
        };
        if let Some(len) = length.filter(|len| *len <= max) {
            let slot_dir = dir.clone();
            let slot = tokio::task::spawn_blocking(move || claim_slot(&slot_dir, number, len, max))
                .await
                .expect("staging does not panic")
                .map_err(named)?;
            if let Some(slot) = slot {
                return self
                    .receive_in_place(slot, body, content_md5)
                    .await
                    .map_err(named);
            }
        }
        // The part's MD5 is in its name, so listing parts reads no data.
        self.receive(
            Receiving::Part,
            dir,
            |md5| format!("part-{number:05}-{md5}"),
            body,
            max,
            content_md5,
        )
        .await
        .map_err(named)
    }

    /// The parts received so far, by number (the newest version of a part sent twice).
    pub async fn list_parts(
        &self,
        upload_id: &str,
        multipart_id: &str,
    ) -> Result<Vec<Part>, ObjectError> {
        self.multipart(upload_id, multipart_id).await?;
        let dir = self.multipart_dir(upload_id, multipart_id);
        let (files, slots) = tokio::task::spawn_blocking(move || {
            Ok::<_, ObjectError>((part_files(&dir)?, read_log(&dir)?))
        })
        .await
        .expect("staging does not panic")?;
        // Files first: a retry of a taken slot is a file, newer than the slot on a tie.
        let mut parts: Vec<Part> = files
            .into_iter()
            .map(|(part, _)| part)
            .chain(slots.into_values())
            .collect();
        parts.sort_by_key(|p| (p.number, std::cmp::Reverse(p.modified_unix)));
        parts.dedup_by_key(|p| p.number);
        Ok(parts)
    }

    /// Joins the listed parts (ascending numbers, each with the ETag it was answered with) into
    /// the object, then forgets the multipart upload. Returns the object's size and the
    /// multipart ETag (`md5(part digests)-count`, as S3 and COS compute it).
    pub async fn complete_multipart(
        &self,
        upload_id: &str,
        multipart_id: &str,
        listed: &[(u32, String)],
    ) -> Result<(u64, String), ObjectError> {
        let multipart = self.multipart(upload_id, multipart_id).await?;
        if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(ObjectError::InvalidPartOrder);
        }
        let listed: Vec<(u32, String)> = listed
            .iter()
            .map(|(n, etag)| (*n, etag.trim_matches('"').to_ascii_lowercase()))
            .collect();
        let mut digests = Md5::new();
        for (number, etag) in &listed {
            digests.update(hex::decode(etag).map_err(|_| ObjectError::InvalidPart(*number))?);
        }
        let etag = format!("{}-{}", hex::encode(digests.finalize()), listed.len());
        let dir = self.upload_dir(upload_id);
        let mp_dir = self.multipart_dir(upload_id, multipart_id);
        let wait = self.complete_wait;
        let size = tokio::task::spawn_blocking(move || {
            join_parts(&dir, &mp_dir, &multipart.object, &listed, wait)
        })
        .await
        .expect("staging does not panic")
        .map_err(|e| match e {
            ObjectError::NoSuchUpload(_) => ObjectError::NoSuchUpload(multipart_id.to_owned()),
            e => e,
        })?;
        Ok((size, etag))
    }

    pub async fn abort_multipart(
        &self,
        upload_id: &str,
        multipart_id: &str,
    ) -> Result<(), ObjectError> {
        self.multipart(upload_id, multipart_id).await?;
        let dir = self.multipart_dir(upload_id, multipart_id);
        let wait = self.complete_wait;
        tokio::task::spawn_blocking(move || -> Result<(), ObjectError> {
            // As completion does: after the part writes in progress, and the upload gone (its
            // `object` file first) before its files, so a completion waiting meanwhile finds none.
            let data = std::fs::File::open(dir.join(DATA)).ok();
            if let Some(data) = &data {
                lock_exclusive(data, wait)?;
            }
            match std::fs::remove_file(dir.join("object")) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ObjectError::NoSuchUpload(String::new()))
                }
                other => other?,
            }
            std::fs::remove_dir_all(&dir)?;
            Ok(())
        })
        .await
        .expect("staging does not panic")
        .map_err(|e| match e {
            ObjectError::NoSuchUpload(_) => ObjectError::NoSuchUpload(multipart_id.to_owned()),
            e => e,
        })
    }

    /// Removes everything staged for the upload.
    pub async fn remove(&self, upload_id: &str) -> std::io::Result<()> {
        match tokio::fs::remove_dir_all(self.upload_dir(upload_id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The parts stored as files of their own, with their paths.
fn part_files(dir: &Path) -> Result<Vec<(Part, PathBuf)>, ObjectError> {
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((number, md5)) = name
            .strip_prefix("part-")
            .and_then(|rest| rest.split_once('-'))
            .filter(|(_, md5)| is_md5_hex(md5))
            .and_then(|(n, md5)| Some((n.parse::<u32>().ok()?, md5.to_owned())))
        else {
            continue;
        };
        let meta = entry.metadata()?;
        parts.push((
            Part {
                number,
                size: meta.len(),
                md5_hex: md5,
                modified_unix: modified_unix(&meta),
            },
            entry.path(),
        ));
    }
    Ok(parts)
}

/// Completes the multipart upload in `mp_dir` as `dir/object` from the `listed` parts (numbers
/// ascending, ETags bare and lowercase); returns the object's size. When the parts fill the
/// in-place layout from part 1 on, `data` becomes the object by a rename (parts stored as files
/// are first copied into their slots); otherwise the object is written by concatenating them.
fn join_parts(
    dir: &Path,
    mp_dir: &Path,
    object: &str,
    listed: &[(u32, String)],
    wait: Duration,
) -> Result<u64, ObjectError> {
    let data = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(mp_dir.join(DATA))
    {
        Ok(data) => Some(data),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(data) = &data {
        lock_exclusive(data, wait)?;
    }
    if !mp_dir.join("object").exists() {
        // Completed (or aborted) by another call while this one waited.
        return Err(ObjectError::NoSuchUpload(String::new()));
    }
    let stride = read_stride(mp_dir)?;
    if data.is_none() && stride.is_some() {
        // A completion that renamed `data` into place crashed before forgetting the folder.
        let size = match std::fs::metadata(dir.join(object)) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ObjectError::NoSuchUpload(String::new()))
            }
            Err(e) => return Err(e.into()),
        };
        std::fs::remove_dir_all(mp_dir)?;
        sync_dir(dir)?;
        return Ok(size);
    }
    let slots = read_log(mp_dir)?;
    let files = part_files(mp_dir)?;
    let mut sources = Vec::with_capacity(listed.len());
    for (number, etag) in listed {
        let in_slot = slots
            .get(number)
            .filter(|p| &p.md5_hex == etag)
            .zip(stride.filter(|_| data.is_some()));
        sources.push(match in_slot {
            Some((part, stride)) => (
                part.size,
                PartBytes::Slot {
                    offset: u64::from(number - 1) * stride,
                },
            ),
            None => files
                .iter()
                .find(|(p, _)| p.number == *number && &p.md5_hex == etag)
                .map(|(p, path)| (p.size, PartBytes::File(path.clone())))
                .ok_or(ObjectError::InvalidPart(*number))?,
        });
    }
    let fills_layout = |stride: u64| {
        sources.iter().enumerate().all(|(i, (size, _))| {
            listed[i].0 as usize == i + 1
                && if i + 1 == listed.len() {
                    *size <= stride
                } else {
                    *size == stride
                }
        })
    };
    let (Some(data), Some(stride)) = (&data, stride.filter(|s| fills_layout(*s))) else {
        let size = concatenate(dir, object, data.as_ref(), &sources)?;
        std::fs::remove_dir_all(mp_dir)?;
        sync_dir(dir)?;
        return Ok(size);
    };
    // Slots past the last listed part are cut off below: not listed again if this stops half-way.
    let last = listed.last().map_or(0, |(n, _)| *n);
    let beyond: String = slots
        .keys()
        .filter(|n| **n > last)
        .map(|n| format!("{n} dead\n"))
        .collect();
    if !beyond.is_empty() {
        append_log(mp_dir, &beyond)?;
    }
    let mut total = 0u64;
    for ((number, _), (size, bytes)) in listed.iter().zip(&sources) {
        let offset = u64::from(number - 1) * stride;
        if let PartBytes::File(path) = bytes {
            if slots.contains_key(number) {
                // The slot's own version is overwritten: it must not be listed afterwards if this
                // completion stops half-way.
                append_log(mp_dir, &format!("{number} dead\n"))?;
            }
            copy_range(&std::fs::File::open(path)?, 0, data, offset, *size)?;
        }
        total = offset + size;
    }
    data.set_len(total)?;
    data.sync_all()?;
    std::fs::rename(mp_dir.join(DATA), dir.join(object))?;
    sync_dir(dir)?;
    std::fs::remove_dir_all(mp_dir)?;
    sync_dir(dir)?;
    Ok(total)
}

/// Writes `dir/object` durably as the concatenation of `sources` (each part's size and where its
/// bytes are: a slot of `data` or a file of its own); returns its size.
fn concatenate(
    dir: &Path,
    object: &str,
    data: Option<&std::fs::File>,
    sources: &[(u64, PartBytes)],
) -> Result<u64, ObjectError> {
    write_durably(dir, object, |out| {
        let mut size = 0;
        for (len, bytes) in sources {
            match bytes {
                PartBytes::Slot { offset } => {
                    let mut range = data.expect("slots come with their file").try_clone()?;
                    range.seek(std::io::SeekFrom::Start(*offset))?;
                    let copied = std::io::copy(&mut range.take(*len), out)?;
                    if copied != *len {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("a part's slot holds {copied} of its {len} bytes"),
                        )
                        .into());
                    }
                    size += copied;
                }
                // The kernel copies: `io::copy` between files uses `copy_file_range` on Linux.
                PartBytes::File(path) => {
                    size += std::io::copy(&mut std::fs::File::open(path)?, out)?
                }
            }
        }
        Ok(size)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    fn md5_of(bytes: &[u8]) -> String {
        hex::encode(Md5::digest(bytes))
    }

    async fn put_sized(
        staging: &ObjectStaging,
        mp: &str,
        number: u32,
        bytes: &'static [u8],
    ) -> Written {
        staging
            .put_part(
                "u1",
                mp,
                number,
                Some(bytes.len() as u64),
                body(&[bytes]),
                100,
                None,
            )
            .await
            .unwrap()
    }

    fn listing(parts: &[(u32, &[u8])]) -> Vec<(u32, String)> {
        parts.iter().map(|(n, b)| (*n, md5_of(b))).collect()
    }

    #[tokio::test]
    async fn equal_parts_are_written_in_place_and_completion_renames_them() {
        let dir = tempfile::tempdir().unwrap();
        let staging = ObjectStaging::new(dir.path().to_owned());
        let mp = staging.create_multipart("u1", "media.mp4").await.unwrap();
        // Part 1 fixes the stride; the others land in their slots whatever their order.
        for (n, bytes) in [(1, &b"abcd"[..]), (3, b"ij"), (2, b"efgh")] {
            let written = staging
                .put_part(
                    "u1",
                    &mp,
                    n,
                    Some(bytes.len() as u64),
                    body(&[&bytes[..2], &bytes[2..]]),
                    100,
                    None,
                )
                .await
                .unwrap();
            assert_eq!(written.md5_hex, md5_of(bytes));
        }
        let mp_dir = staging.multipart_dir("u1", &mp);
        assert!(
            part_files(&mp_dir).unwrap().is_empty(),
            "no part was a file of its own"
        );
        let parts = staging.list_parts("u1", &mp).await.unwrap();
        assert_eq!(
            parts
                .iter()
                .map(|p| (p.number, p.size, p.md5_hex.clone()))
                .collect::<Vec<_>>(),
            vec![
                (1, 4, md5_of(b"abcd")),
                (2, 4, md5_of(b"efgh")),
                (3, 2, md5_of(b"ij"))
            ]
        );
        let data_inode = std::fs::metadata(mp_dir.join(DATA)).unwrap().ino();
        let listed = listing(&[(1, b"abcd"), (2, b"efgh"), (3, b"ij")]);
        let (size, _) = staging
            .complete_multipart("u1", &mp, &listed)
            .await
            .unwrap();
        assert_eq!(size, 10);
        let object = staging.path("u1", "media.mp4").await.unwrap();
        assert_eq!(std::fs::read(&object).unwrap(), b"abcdefghij");
        assert_eq!(
            std::fs::metadata(&object).unwrap().ino(),
            data_inode,
            "renamed, not copied"
        );
        assert!(!mp_dir.exists());
    }

    #[tokio::test]
    async fn parts_that_miss_their_slot_are_files_copied_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let staging = ObjectStaging::new(dir.path().to_owned());
        let mp = staging.create_multipart("u1", "media.mp4").await.unwrap();
        // Before part 1 there is no stride: part 2 is a file.
        put_sized(&staging, &mp, 2, b"efgh").await;
        put_sized(&staging, &mp, 1, b"abcd").await;
        put_sized(&staging, &mp, 3, b"ijkl").await;
        // A retry of a taken slot is a file too, and is the version listed.
        put_sized(&staging, &mp, 3, b"IJKL").await;
        let mp_dir = staging.multipart_dir("u1", &mp);
        assert_eq!(part_files(&mp_dir).unwrap().len(), 2);
        let parts = staging.list_parts("u1", &mp).await.unwrap();
        assert_eq!(parts[2].md5_hex, md5_of(b"IJKL"));
        let data_inode = std::fs::metadata(mp_dir.join(DATA)).unwrap().ino();
        let listed = listing(&[(1, b"abcd"), (2, b"efgh"), (3, b"IJKL")]);
        let (size, _) = staging
            .complete_multipart("u1", &mp, &listed)
            .await
            .unwrap();
        assert_eq!(size, 12);
        let object = staging.path("u1", "media.mp4").await.unwrap();
        assert_eq!(std::fs::metadata(&object).unwrap().ino(), data_inode);
        assert_eq!(std::fs::read(object).unwrap(), b"abcdefghIJKL");
    }

    #[tokio::test]
    async fn uneven_or_gapped_parts_are_concatenated() {
        let dir = tempfile::tempdir().unwrap();
        let staging = ObjectStaging::new(dir.path().to_owned());
        let mp = staging.create_multipart("u1", "media.mp4").await.unwrap();
        put_sized(&staging, &mp, 1, b"abcd").await;
        put_sized(&staging, &mp, 2, b"ef").await;
        put_sized(&staging, &mp, 3, b"ghij").await;
        put_sized(&staging, &mp, 5, b"kl").await;
        put_sized(&staging, &mp, 6, b"mnopq").await;
        // Its slot would end past the largest object (100 bytes here).
        put_sized(&staging, &mp, 30, b"xy").await;
        assert_eq!(
            part_files(&staging.multipart_dir("u1", &mp)).unwrap().len(),
            2,
            "larger than the stride, or past the largest object: files of their own"
        );
        // Part 2 is short but not last; part 4 is missing: the layout is not the object.
        let listed = listing(&[
            (1, b"abcd"),
            (2, b"ef"),
            (3, b"ghij"),
            (5, b"kl"),
            (6, b"mnopq"),
        ]);
        let (size, _) = staging
            .complete_multipart("u1", &mp, &listed)
            .await
            .unwrap();
        assert_eq!(size, 17);
        let object = staging.path("u1", "media.mp4").await.unwrap();
        assert_eq!(std::fs::read(object).unwrap(), b"abcdefghijklmnopq");
    }

    /// A multipart upload with part 1 stored and part 2 half-written: "ef" of its 4 bytes sent,
    /// its slot (and the shared lock on `data`) taken. Sending "gh" on the channel and dropping it
    /// ends the part.
    async fn part_2_half_written(
        staging: &std::sync::Arc<ObjectStaging>,
    ) -> (
        String,
        tokio::sync::mpsc::UnboundedSender<Bytes>,
        tokio::task::JoinHandle<Result<Written, ObjectError>>,
    ) {
        let mp = staging.create_multipart("u1", "media.mp4").await.unwrap();
        put_sized(staging, &mp, 1, b"abcd").await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let rx = futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx).map(|b| b.map(Ok::<_, std::io::Error>))
        });
        let writing = {
            let (staging, mp) = (staging.clone(), mp.clone());
            tokio::spawn(
                async move { staging.put_part("u1", &mp, 2, Some(4), rx, 100, None).await },
            )
        };
        tx.send(Bytes::from_static(b"ef")).unwrap();
        let log = staging.multipart_dir("u1", &mp).join(LOG);
        while std::fs::read(&log).unwrap()[8 + 1] == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        (mp, tx, writing)
    }

    /// Parts of an aligned stride are written directly (through the aligned buffer, tails padded),
    /// arriving in frames of any size: the object holds exactly their bytes, whether completion
    /// renames `data` (equal parts) or concatenates (a short part in the middle).
    #[tokio::test]
    async fn aligned_parts_written_directly_make_exactly_their_object() {
        let dir = tempfile::tempdir().unwrap();
        let staging = ObjectStaging::new(dir.path().to_owned());
        let stride = 3 * DIRECT_ALIGN;
        let bytes = |seed: u8, len: usize| -> Vec<u8> {
            (0..len)
                .map(|i| seed.wrapping_add((i * 7 % 251) as u8))
                .collect()
        };
        for (sizes, renamed) in [
            ([stride, stride, 5000], true),
            ([stride, 5000, stride], false),
        ] {
            let mp = staging.create_multipart("u1", "media.mp4").await.unwrap();
            let parts: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, len)| bytes(i as u8 * 50, *len))
                .collect();
            for n in [1u32, 3, 2] {
                let part = &parts[n as usize - 1];
                let frames: Vec<Result<Bytes, std::io::Error>> = part
                    .chunks(1000 + 333 * n as usize)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect();
                let written = staging
                    .put_part(
                        "u1",
                        &mp,
                        n,
                        Some(part.len() as u64),
                        futures_util::stream::iter(frames),
                        1 << 20,
                        None,
                    )
                    .await
                    .unwrap();
                assert_eq!(written.md5_hex, md5_of(part));
            }
            let data = staging.multipart_dir("u1", &mp).join(DATA);
            let inode = std::fs::metadata(&data).unwrap().ino();
            let listed: Vec<(u32, String)> = (1..=3)
                .map(|n| (n, md5_of(&parts[n as usize - 1])))
                .collect();
            let parts_listed = staging.list_parts("u1", &mp).await.unwrap();
            let listed_sizes: Vec<u64> = parts_listed.iter().map(|p| p.size).collect();
            assert_eq!(listed_sizes, sizes.map(|s| s as u64));
            let (size, _) = staging
                .complete_multipart("u1", &mp, &listed)
                .await
                .unwrap();
            assert_eq!(size as usize, sizes.iter().sum::<usize>());
            let object = staging.path("u1", "media.mp4").await.unwrap();
            assert_eq!(std::fs::read(&object).unwrap(), parts.concat());
            let same_file = std::fs::metadata(&object).unwrap().ino() == inode;
            assert_eq!(same_file, renamed, "{sizes:?}");
        }
    }

    #[tokio::test]
    async fn completion_waits_for_a_part_still_being_written() {
        let dir = tempfile::tempdir().unwrap();
        let staging = std::sync::Arc::new(ObjectStaging::new(dir.path().to_owned()));
        let (mp, tx, writing) = part_2_half_written(&staging).await;
        let completing = {
            let (staging, mp) = (staging.clone(), mp.clone());
            let listed = listing(&[(1, b"abcd"), (2, b"efgh")]);
            tokio::spawn(async move { staging.complete_multipart("u1", &mp, &listed).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!completing.is_finished(), "completion waits for the part");
        tx.send(Bytes::from_static(b"gh")).unwrap();
        drop(tx);
        assert_eq!(writing.await.unwrap().unwrap().md5_hex, md5_of(b"efgh"));
        assert_eq!(completing.await.unwrap().unwrap().0, 8);
        let object = staging.path("u1", "media.mp4").await.unwrap();
        assert_eq!(std::fs::read(object).unwrap(), b"abcdefgh");
    }

    #[tokio::test]
    async fn completion_and_abort_refuse_after_waiting_and_leave_the_upload_whole() {
        let dir = tempfile::tempdir().unwrap();
        let staging = std::sync::Arc::new(
            ObjectStaging::new(dir.path().to_owned())
                .with_complete_wait(Duration::from_millis(200)),
        );
        let (mp, tx, writing) = part_2_half_written(&staging).await;
        // The part is still being written: both refuse once the wait is over, and change nothing.
        let listed = listing(&[(1, b"abcd"), (2, b"efgh")]);
        let refused = staging.complete_multipart("u1", &mp, &listed).await;
        assert!(
            matches!(refused, Err(ObjectError::PartInProgress)),
            "{refused:?}"
        );
        let refused = staging.abort_multipart("u1", &mp).await;
        assert!(
            matches!(refused, Err(ObjectError::PartInProgress)),
            "{refused:?}"
        );
        tx.send(Bytes::from_static(b"gh")).unwrap();
        drop(tx);
        assert_eq!(writing.await.unwrap().unwrap().md5_hex, md5_of(b"efgh"));
        let parts = staging.list_parts("u1", &mp).await.unwrap();
        assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(
            staging
                .complete_multipart("u1", &mp, &listed)
                .await
                .unwrap()
                .0,
            8
        );
        let object = staging.path("u1", "media.mp4").await.unwrap();
        assert_eq!(std::fs::read(object).unwrap(), b"abcdefgh");
    }

    #[tokio::test]
    async fn a_torn_record_is_not_glued_to_the_next_and_unlisted_slots_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let staging = ObjectStaging::new(dir.path().to_owned());
        let mp = staging.create_multipart("u1", "media.mp4").await.unwrap();
        put_sized(&staging, &mp, 1, b"abcd").await;
        // A crash mid-append left the start of a record for part 5.
        let log = staging.multipart_dir("u1", &mp).join(LOG);
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(b"\n5").unwrap();
        put_sized(&staging, &mp, 6, b"efgh").await;
        put_sized(&staging, &mp, 2, b"ijkl").await;
        let parts = staging.list_parts("u1", &mp).await.unwrap();
        assert_eq!(
            parts
                .iter()
                .map(|p| (p.number, p.md5_hex.clone()))
                .collect::<Vec<_>>(),
            vec![
                (1, md5_of(b"abcd")),
                (2, md5_of(b"ijkl")),
                (6, md5_of(b"efgh"))
            ],
            "no part 56, part 6 listed"
        );
        // Completing with parts 1 and 2 leaves part 6 out of the object.
        let listed = listing(&[(1, b"abcd"), (2, b"ijkl")]);
        let (size, _) = staging
            .complete_multipart("u1", &mp, &listed)
            .await
            .unwrap();
        assert_eq!(size, 8);
        let object = staging.path("u1", "media.mp4").await.unwrap();
        assert_eq!(std::fs::read(object).unwrap(), b"abcdijkl");
    }

    #[test]
    fn the_part_log_keeps_whole_lines_and_the_latest_record() {
        let a = "a".repeat(32);
        let b = "B".repeat(32);
        let text =
            format!("1 4 {a} 10\n2 4 {a} 11\n2 4 {b} 12\n3 4 {a} 13\n3 dead\nx y\n4 4 {a} 1");
        let parts = parse_log(&text);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[&1].modified_unix, 10);
        assert_eq!(parts[&2].md5_hex, "b".repeat(32));
        assert!(!parts.contains_key(&3), "dead");
        assert!(!parts.contains_key(&4), "torn last line");
    }

    #[tokio::test]
    async fn whole_objects_and_parts_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let staging = ObjectStaging::new(dir.path().to_owned());
        let w = staging
            .put("u1", "cover.jpg", body(&[b"ab", b"c"]), 10, None)
            .await
            .unwrap();
        assert_eq!(w.size, 3);
        assert_eq!(w.md5_hex, "900150983cd24fb0d6963f7d28e17f72");
        assert!(matches!(
            staging
                .put("u1", "cover.jpg", body(&[b"abc"]), 10, Some(vec![0; 16]))
                .await,
            Err(ObjectError::BadDigest)
        ));
        assert!(matches!(
            staging
                .put("u1", "big.bin", body(&[b"0123456789ab"]), 10, None)
                .await,
            Err(ObjectError::TooLarge(10))
        ));
        assert!(staging.path("u1", "big.bin").await.is_none());
        let kept = std::fs::read(staging.path("u1", "cover.jpg").await.unwrap()).unwrap();
        assert_eq!(kept, b"abc", "a refused write leaves the stored object");

        let mp = staging.create_multipart("u1", "media.mp4").await.unwrap();
        let second = staging
            .put_part("u1", &mp, 2, None, body(&[b"world"]), 100, None)
            .await
            .unwrap();
        let first = staging
            .put_part("u1", &mp, 1, None, body(&[b"hello "]), 100, None)
            .await
            .unwrap();
        // A part sent again with other bytes: listed once (the newest), either version completes.
        let retried = staging
            .put_part("u1", &mp, 2, None, body(&[b"WORLD"]), 100, None)
            .await
            .unwrap();
        assert_ne!(retried.md5_hex, second.md5_hex);
        let parts = staging.list_parts("u1", &mp).await.unwrap();
        assert_eq!(
            parts.iter().map(|p| (p.number, p.size)).collect::<Vec<_>>(),
            vec![(1, 6), (2, 5)]
        );
        assert_eq!(
            staging.list_multiparts("u1").await.unwrap()[0].object,
            "media.mp4"
        );
        let wrong = vec![(1, first.md5_hex.clone()), (2, "0".repeat(32))];
        assert!(matches!(
            staging.complete_multipart("u1", &mp, &wrong).await,
            Err(ObjectError::InvalidPart(2))
        ));
        let backwards = vec![(2, second.md5_hex.clone()), (1, first.md5_hex.clone())];
        assert!(matches!(
            staging.complete_multipart("u1", &mp, &backwards).await,
            Err(ObjectError::InvalidPartOrder)
        ));
        let listed = vec![
            (1, format!("\"{}\"", first.md5_hex)),
            (2, second.md5_hex.clone()),
        ];
        let (size, etag) = staging
            .complete_multipart("u1", &mp, &listed)
            .await
            .unwrap();
        assert_eq!(size, 11);
        assert!(etag.ends_with("-2"));
        let media = std::fs::read(staging.path("u1", "media.mp4").await.unwrap()).unwrap();
        assert_eq!(media, b"hello world");
        assert!(matches!(
            staging.list_parts("u1", &mp).await,
            Err(ObjectError::NoSuchUpload(_))
        ));
        assert!(staging.list_multiparts("u1").await.unwrap().is_empty());
        assert!(matches!(
            staging
                .put_part("u1", "../x", 1, Some(1), body(&[b"x"]), 10, None)
                .await,
            Err(ObjectError::NoSuchUpload(_))
        ));

        staging.remove("u1").await.unwrap();
        assert!(staging.path("u1", "media.mp4").await.is_none());
    }
}
