//! The service's wire protocol, version [`PROTOCOL_VERSION`].
//!
//! A connection carries frames both ways: a 4-byte big-endian length, then that many bytes of
//! one JSON object. The client sends [`Envelope`]s (a request with the protocol version); the
//! server answers each with [`Reply`] frames (a scan streams `output` frames, then `done`). A
//! descriptor passed with a `descriptor` request rides on its frame as `SCM_RIGHTS` ancillary
//! data. Requests are bounded by `service.max_message_size`; a larger length, bad JSON or an
//! unknown request gets an `error` reply (`too_large` closes the connection, since the rest of
//! the stream cannot be trusted) and is counted as a bad message.

use std::io::{self, Read, Write};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. A request for another version is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// One request, with the protocol version the client speaks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Must be [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// What is asked.
    #[serde(flatten)]
    pub request: Request,
}

/// What a client may ask.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who the service is and what the caller may do (anyone).
    Hello,
    /// A scan of paths the service opens itself (administrators only): quick, full or custom.
    Scan {
        /// `quick`, `full` or `custom`.
        kind: ScanTarget,
        /// The files and folders of a custom scan.
        #[serde(default)]
        paths: Vec<String>,
        /// How results are rendered.
        output: OutputOptions,
        /// Worker threads (default: the service's configuration).
        #[serde(default)]
        threads: Option<usize>,
    },
    /// Starts a scan of descriptors the client passes (anyone): `descriptor` requests follow,
    /// then `end_of_descriptors`.
    ScanDescriptors {
        /// How results are rendered.
        output: OutputOptions,
    },
    /// One file of a descriptor scan; its open descriptor rides on this frame, unless the
    /// client could not open it (`error` says why, and is reported as the scan's error).
    Descriptor {
        /// Where the client says the file is (for reports and plugin selection only: never
        /// opened).
        name: String,
        /// Why the client could not open it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Ends a descriptor scan: the server sends the summary and `done`.
    EndOfDescriptors,
    /// Loads the definitions, configuration and state again (administrators only).
    Reload,
    /// The health report (anyone).
    Health,
    /// The service's counters (anyone).
    Statistics,
    /// Changes a managed setting and applies it (administrators only).
    SetSetting {
        /// Which setting.
        key: SettingKey,
        /// Its new value.
        enabled: bool,
    },
}

/// The targets of a path scan.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScanTarget {
    /// The configured high-risk folders.
    Quick,
    /// The configured root.
    Full,
    /// The paths given.
    Custom,
}

/// How the server renders a scan's results (as `vigil scan` would).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutputOptions {
    /// `text`, `jsonl` or `sarif`.
    pub format: OutputFormat,
    /// `--verbose`.
    pub verbose: bool,
    /// `--print-strings`.
    pub print_strings: bool,
}

/// Output formats of a scan.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// Lines for people.
    Text,
    /// JSON Lines.
    Jsonl,
    /// One SARIF document.
    Sarif,
}

/// A managed setting.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SettingKey {
    /// `antivirus_engine.enable_real_time_protection`.
    RealTimeProtection,
    /// `antivirus_engine.passive_mode`.
    PassiveMode,
}

/// What the server answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Answer to `hello`.
    Hello {
        /// The protocol version the server speaks.
        protocol: u32,
        /// The server's Vigil version.
        version: String,
        /// The configuration file it uses (none: built-in defaults).
        config: Option<String>,
        /// Its state directory.
        state_dir: String,
        /// Whether the caller may use administrator requests.
        admin: bool,
        /// How many times definitions were loaded (1 at start).
        generation: u64,
    },
    /// Some of a scan's output, as `vigil scan` would print it.
    Output {
        /// Lines, each ending in a newline.
        text: String,
    },
    /// One file of a descriptor scan is done (its output came before): the next may be sent.
    FileDone,
    /// The end of a scan: the exit code `vigil scan` would give.
    Done {
        /// 0 nothing found, 1 threats found.
        exit: u8,
    },
    /// A request that succeeded with nothing else to say.
    Ok {
        /// What was done.
        message: String,
    },
    /// The health report.
    Health {
        /// Its fields.
        health: serde_json::Value,
    },
    /// The service's counters.
    Statistics {
        /// Their values.
        statistics: serde_json::Value,
    },
    /// The request failed.
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// For people.
        message: String,
    },
}

/// Kinds of failed requests.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not a request of this protocol (bad JSON, unknown op, missing field).
    BadRequest,
    /// Longer than `service.max_message_size`; the connection is closed.
    TooLarge,
    /// Another protocol version.
    UnsupportedVersion,
    /// The caller may not do this.
    Unauthorized,
    /// A request that was understood but failed (a path that does not exist, a bad setting).
    Failed,
    /// Too many clients.
    Busy,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// The announced length is over the limit.
    #[error("message of {size} bytes is over the limit of {limit}")]
    TooLarge {
        /// The announced length.
        size: u32,
        /// The limit.
        limit: u32,
    },
    /// A read failed or timed out, or the connection ended inside a frame.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Writes one frame holding `message`.
pub fn write_frame<T: Serialize>(stream: &mut impl Write, message: &T) -> io::Result<()> {
    let body = serde_json::to_vec(message).expect("protocol messages serialize");
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame)
}

/// Writes one frame holding `message` with `fd` attached (`SCM_RIGHTS`).
pub fn write_frame_with_fd<T: Serialize>(
    stream: &UnixStream,
    message: &T,
    fd: RawFd,
) -> io::Result<()> {
    let body = serde_json::to_vec(message).expect("protocol messages serialize");
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    let sent = crate::service::peer::send_with_fd(stream, &frame, fd)?;
    (&*stream).write_all(&frame[sent..])
}

/// Reads one frame of at most `limit` bytes, with any descriptor attached to it.
pub fn read_frame(
    stream: &UnixStream,
    limit: u32,
) -> Result<(Vec<u8>, Option<OwnedFd>), FrameError> {
    let mut header = [0u8; 4];
    let (first, fd) = crate::service::peer::recv_with_fd(stream, &mut header)?;
    if first == 0 {
        return Err(FrameError::Closed);
    }
    (&*stream).read_exact(&mut header[first..])?;
    let size = u32::from_be_bytes(header);
    if size > limit {
        return Err(FrameError::TooLarge { size, limit });
    }
    let mut body = vec![0u8; size as usize];
    (&*stream).read_exact(&mut body)?;
    Ok((body, fd))
}

/// Reads one reply of at most `limit` bytes (client side).
pub fn read_reply(stream: &UnixStream, limit: u32) -> Result<Reply, FrameError> {
    let (body, _) = read_frame(stream, limit)?;
    serde_json::from_slice(&body)
        .map_err(|err| FrameError::Io(io::Error::new(io::ErrorKind::InvalidData, err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_unknown_ops_are_refused() {
        let envelope = Envelope {
            protocol: PROTOCOL_VERSION,
            request: Request::Scan {
                kind: ScanTarget::Custom,
                paths: vec!["/tmp/x".into()],
                output: OutputOptions {
                    format: OutputFormat::Jsonl,
                    verbose: false,
                    print_strings: true,
                },
                threads: Some(2),
            },
        };
        let text = serde_json::to_string(&envelope).unwrap();
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.request, envelope.request);
        assert!(serde_json::from_str::<Envelope>(r#"{"protocol":1,"op":"format_disk"}"#).is_err());
    }

    #[test]
    fn frames_over_the_limit_are_refused_before_they_are_read() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&u32::MAX.to_be_bytes()).unwrap();
        match read_frame(&b, 1024) {
            Err(FrameError::TooLarge { size, limit }) => {
                assert_eq!((size, limit), (u32::MAX, 1024))
            }
            other => panic!("{other:?}"),
        }
        write_frame(&mut a, &Request::Hello).unwrap();
        let (body, fd) = read_frame(&b, 1024).unwrap();
        assert!(fd.is_none());
        assert_eq!(
            serde_json::from_slice::<Request>(&body).unwrap(),
            Request::Hello
        );
        drop(a);
        assert!(matches!(read_frame(&b, 1024), Err(FrameError::Closed)));
    }
}
