//! The banner line that opens a native connection, and the refusal line sent
//! in its place to a connection the node cannot take.

use core::fmt;

use super::{BANNER_PREFIX, MAX_BANNER, MAX_NAME, Refusal, SECURE_VERSION, VERSION};
use crate::alias::validate_alias;
use crate::frame::BufferTooSmall;

/// A parsed banner line: `MESHTALK/1[.<minor>] <name>` (plaintext), or
/// `MESHTALK/2 XX` / `MESHTALK/2 XXpsk0` (a Noise handshake follows; the name
/// travels inside it, encrypted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Banner<'a> {
    /// The protocol's major version.
    pub major: u16,
    /// The name the peer announces (protocol 1 only; empty in 2).
    pub name: &'a str,
    /// Protocol 2: the handshake is `XXpsk0`, keyed by a room key.
    pub room: bool,
}

/// Why a banner line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BannerError {
    /// No newline within [`MAX_BANNER`] bytes.
    TooLong,
    /// Not of the form `MESHTALK/<version> <name>`.
    Malformed,
    /// The name breaks the alias rule ([`crate::alias::validate_alias`]).
    BadName,
    /// A protocol version this node does not speak.
    Version {
        /// The version the peer speaks.
        major: u16,
        /// The version this node speaks.
        ours: u16,
    },
}

impl fmt::Display for BannerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BannerError::TooLong => write!(f, "banner longer than {MAX_BANNER} bytes"),
            BannerError::Malformed => {
                f.write_str("malformed banner (want MESHTALK/2 XX, or MESHTALK/1 <name>)")
            }
            BannerError::BadName => {
                write!(
                    f,
                    "banner name must be 1-{MAX_NAME} letters, digits, '_', '.' or '-'"
                )
            }
            BannerError::Version { major, ours } => write!(
                f,
                "peer speaks MESHTALK/{major}, this node speaks MESHTALK/{ours}; upgrade the older one"
            ),
        }
    }
}

/// How a refusal line begins: a node that cannot take a connection at all (its
/// table is full) writes one line, before any banner, that a person at netcat
/// reads and a meshtalk that dialled recognises as a [`Sniff::Refused`].
pub const REFUSAL_PREFIX: &[u8] = b"MESHTALK/refused ";

/// Writes the refusal line `MESHTALK/refused <word> [<count>]: <why>\n` into
/// `out`, at most [`MAX_BANNER`] bytes long (the reason shortened to fit) so a
/// dialler reads it whole as it would a banner.
pub fn write_refusal_line(why: Refusal, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut line: heapless::String<MAX_BANNER> = heapless::String::new();
    let head = match why {
        Refusal::PerIp { max: n } | Refusal::Full { limit: n } => {
            fmt::write(&mut line, format_args!("{} {n}: ", why.word()))
        }
        _ => fmt::write(&mut line, format_args!("{}: ", why.word())),
    };
    let mut full: heapless::String<160> = heapless::String::new();
    let _ = fmt::write(&mut full, format_args!("{why}\n"));
    let prefix = REFUSAL_PREFIX.len();
    let fits = |text: &str| head.is_ok() && prefix + line.len() + text.len() <= MAX_BANNER;
    let Some(tail) = [full.as_str(), why.short(), "try again later\n"]
        .into_iter()
        .find(|text| fits(text))
    else {
        return Err(BufferTooSmall { needed: usize::MAX });
    };
    let parts: [&[u8]; 3] = [REFUSAL_PREFIX, line.as_bytes(), tail.as_bytes()];
    put_parts(&parts, out)
}

/// The refusal a complete refusal line (without its prefix) names.
fn parse_refusal(rest: &[u8]) -> Refusal {
    let head = rest.split(|&b| b == b':').next().unwrap_or_default();
    let mut words = head.split(|&b| b == b' ');
    let word = words.next().unwrap_or_default();
    let count = words
        .next()
        .and_then(|n| core::str::from_utf8(n).ok())
        .and_then(|n| n.parse::<u32>().ok());
    match (word, count) {
        (b"busy", _) => Refusal::Busy,
        (b"serving", _) => Refusal::Serving,
        (b"per-ip", Some(n)) => Refusal::from_code(3, n),
        (b"full", Some(n)) => Refusal::from_code(4, n),
        (b"private", _) => Refusal::Private,
        _ => Refusal::Unknown,
    }
}

/// What the first bytes of a connection say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff<'a> {
    /// Still a prefix of a banner: wait for more bytes.
    Partial,
    /// These bytes can never begin a banner: the peer speaks plain text.
    Text,
    /// A complete banner line of `len` bytes (newline included).
    Banner {
        /// The banner read.
        banner: Banner<'a>,
        /// The line's length, newline included.
        len: usize,
    },
    /// A banner that is wrong.
    Error(BannerError),
    /// A refusal line ([`write_refusal_line`]): the node will not take us.
    Refused(Refusal),
}

/// Looks at the first bytes received on a connection.
pub fn sniff(bytes: &[u8]) -> Sniff<'_> {
    let common = bytes.len().min(BANNER_PREFIX.len());
    if bytes.get(..common) != BANNER_PREFIX.get(..common) {
        return Sniff::Text;
    }
    let Some(newline) = bytes.iter().position(|&b| b == b'\n') else {
        return if bytes.len() >= MAX_BANNER {
            Sniff::Error(BannerError::TooLong)
        } else {
            Sniff::Partial
        };
    };
    if newline >= MAX_BANNER {
        return Sniff::Error(BannerError::TooLong);
    }
    let line = bytes.get(..newline).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(rest) = line.strip_prefix(REFUSAL_PREFIX) {
        return Sniff::Refused(parse_refusal(rest));
    }
    match parse_banner(line) {
        Ok(banner) => Sniff::Banner {
            banner,
            len: newline + 1,
        },
        Err(e) => Sniff::Error(e),
    }
}

fn parse_banner(line: &[u8]) -> Result<Banner<'_>, BannerError> {
    let rest = line
        .strip_prefix(BANNER_PREFIX)
        .ok_or(BannerError::Malformed)?;
    let rest = core::str::from_utf8(rest).map_err(|_| BannerError::Malformed)?;
    let (version, name) = rest.split_once(' ').ok_or(BannerError::Malformed)?;
    let major = version.split_once('.').map_or(version, |(major, _)| major);
    if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BannerError::Malformed);
    }
    let major: u16 = major.parse().map_err(|_| BannerError::Malformed)?;
    match major {
        VERSION => {
            validate_alias(name).map_err(|_| BannerError::BadName)?;
            Ok(Banner {
                major,
                name,
                room: false,
            })
        }
        SECURE_VERSION => {
            let room = match name.as_bytes() {
                PATTERN_XX => false,
                PATTERN_XX_PSK0 => true,
                _ => return Err(BannerError::Malformed),
            };
            Ok(Banner {
                major,
                name: "",
                room,
            })
        }
        _ => Err(BannerError::Version {
            major,
            ours: SECURE_VERSION,
        }),
    }
}

/// The handshake word of a protocol 2 banner without a room key.
const PATTERN_XX: &[u8] = b"XX";
/// The handshake word of a protocol 2 banner with a room key.
const PATTERN_XX_PSK0: &[u8] = b"XXpsk0";

/// Writes a protocol 1 banner line, `MESHTALK/1 <name>\n`, into `out`.
pub fn write_banner(name: &str, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let parts: [&[u8]; 4] = [BANNER_PREFIX, b"1 ", name.as_bytes(), b"\n"];
    put_parts(&parts, out)
}

/// Writes a protocol 2 banner line, `MESHTALK/2 XX\n` (or `XXpsk0` with a room
/// key), into `out`: no name, which the handshake carries encrypted.
pub fn write_secure_banner(room: bool, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let pattern = if room { PATTERN_XX_PSK0 } else { PATTERN_XX };
    let parts: [&[u8]; 4] = [BANNER_PREFIX, b"2 ", pattern, b"\n"];
    put_parts(&parts, out)
}

/// Writes `parts` one after another at the start of `out`; their length.
fn put_parts(parts: &[&[u8]], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let needed = parts.iter().map(|p| p.len()).sum();
    let Some(out) = out.get_mut(..needed) else {
        return Err(BufferTooSmall { needed });
    };
    let mut at = 0;
    for part in parts {
        // In bounds: `out` is exactly as long as the parts together.
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok(needed)
}
