//! Protocol 2 for the load's native clients, as `meshtalk` speaks it: the
//! client dials and sends `MESHTALK/2 XX`, waits for the hub's banner, then
//! runs the Noise XX handshake (message 2 carries the hub's hello, message 3
//! ours), after which every frame's body goes sealed.
//!
//! Every client has its own identity and ephemeral key, 32 bytes each from the
//! OS (getrandom): the hub sees as many distinct keys as a real room has, and
//! does the same handshake work per client.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use meshtalk_core::frame::{self, Decoded, FrameDecoder};
use meshtalk_core::noise::{KEY_LEN, Role, Session, Step, TAG};
use meshtalk_core::wire::{self, MAX_BANNER, Message};

/// The longest handshake message the client reads (message 2: keys, tags and a hello).
const MAX_HANDSHAKE: usize = 512;
/// Room for a hello's body (its name is at most [`wire::MAX_NAME`] bytes).
const HELLO_ROOM: usize = 64 + wire::MAX_NAME;

/// 32 bytes from the OS's random source: a key or a handshake's ephemeral seed.
pub fn random32() -> [u8; KEY_LEN] {
    let mut key = [0; KEY_LEN];
    // Without the OS's randomness a load tool cannot test key exchange honestly.
    getrandom::fill(&mut key).expect("the OS random source works");
    key
}

/// The banner a client dials with (no room key): the hub answers with the same line.
pub fn banner() -> Vec<u8> {
    let mut out = vec![0; MAX_BANNER];
    let n = wire::write_secure_banner(false, &mut out).unwrap_or(0);
    out.truncate(n);
    out
}

/// Why a handshake did not finish: the hub's refusal line, or what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The client's side of a handshake, sans-I/O: fed what the hub sent, it says
/// what to write back and when the link is ready.
pub struct Dialler {
    banner: Vec<u8>,
    /// The hub's banner line so far (until its newline).
    line: Vec<u8>,
    line_done: bool,
    session: Option<Session>,
    hello: Vec<u8>,
    decoder: FrameDecoder<MAX_HANDSHAKE>,
}

/// What [`Dialler::feed`] made of the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Fed {
    /// Write what was put out (maybe nothing) and read on.
    More,
    /// The handshake is done once what was put out is written: the first `used`
    /// bytes given were the handshake's, the rest are sealed frames.
    Done { used: usize },
}

impl Dialler {
    /// A client named `name` with node id `node`, a fresh identity and ephemeral key.
    pub fn new(name: &str, node: u64) -> Dialler {
        let banner = banner();
        let session = Session::new(Role::Initiator, &random32(), &random32(), None, &banner);
        let hello = Message::Hello {
            minor: wire::MINOR,
            node,
            name,
        };
        let mut frame = vec![0; HELLO_ROOM + frame::MAX_HEADER];
        let n = hello.encode_frame(&mut frame).unwrap_or(0);
        let hello = frame::body_of(&frame[..n]).unwrap_or_default().to_vec();
        Dialler {
            banner,
            line: Vec::new(),
            line_done: false,
            session: session.ok(),
            hello,
            decoder: FrameDecoder::new(),
        }
    }

    /// The banner line to write first.
    pub fn banner(&self) -> &[u8] {
        &self.banner
    }

    /// The session, once [`Fed::Done`] came.
    pub fn into_session(self) -> Option<Session> {
        self.session.filter(|s| s.step() == Step::Transport)
    }

    /// Takes bytes the hub sent; appends to `out` what to write back.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<Fed, Refused> {
        let mut used = 0;
        if !self.line_done {
            let nl = data.iter().position(|&b| b == b'\n');
            let take = nl.map_or(data.len(), |i| i + 1);
            self.line.extend_from_slice(&data[..take]);
            used = take;
            if self.line.len() > MAX_BANNER + 128 {
                return Err(self.refused("the hub's first line is too long to be a banner"));
            }
            if nl.is_none() {
                return Ok(Fed::More);
            }
            if self.line != self.banner {
                return Err(self.refused("the hub answered"));
            }
            self.line_done = true;
            self.write(&[], out)?;
        }
        while used < data.len() {
            let (n, found) = self.decoder.decode(&data[used..]);
            used += n;
            match found {
                Decoded::NeedMore => {}
                Decoded::Frame(message) => {
                    let session = self.session.as_mut().ok_or(Refused("no session".into()))?;
                    let mut payload = [0; MAX_HANDSHAKE];
                    let len = session
                        .read_handshake(message, &mut payload)
                        .map_err(|e| Refused(format!("handshake message 2: {e}")))?;
                    if !matches!(Message::decode(&payload[..len]), Ok(Message::Hello { .. })) {
                        return Err(Refused("the hub's handshake carried no hello".into()));
                    }
                    let hello = std::mem::take(&mut self.hello);
                    self.write(&hello, out)?;
                    return Ok(Fed::Done { used });
                }
                Decoded::Error(e) => return Err(Refused(format!("handshake framing: {e}"))),
            }
        }
        Ok(Fed::More)
    }

    /// Appends our next handshake message, carrying `payload`, to `out` as one frame.
    fn write(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Refused> {
        let session = self.session.as_mut().ok_or(Refused("no session".into()))?;
        let len = payload.len() + session.overhead();
        let at = out.len();
        out.resize(at + frame::MAX_HEADER + len, 0);
        let head = frame::write_header(len as u32, &mut out[at..]).unwrap_or(0);
        let n = session
            .write_handshake(payload, &mut out[at + head..])
            .map_err(|e| Refused(format!("writing a handshake message: {e}")))?;
        out.truncate(at + head + n);
        Ok(())
    }

    fn refused(&self, what: &str) -> Refused {
        let line = String::from_utf8_lossy(&self.line);
        Refused(format!("{what}: {:?}", line.trim_end()))
    }
}

/// Runs the whole handshake on a blocking `stream` (at most 10 s): the session.
pub fn dial(stream: &mut TcpStream, name: &str, node: u64) -> io::Result<Session> {
    let mut d = Dialler::new(name, node);
    let before = stream.read_timeout()?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(d.banner())?;
    let mut buf = [0; 1024];
    let mut out = Vec::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Err(io::Error::other("the hub closed during the handshake")),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.clear();
        let fed = d.feed(&buf[..n], &mut out).map_err(io::Error::other)?;
        stream.write_all(&out)?;
        if let Fed::Done { used } = fed {
            if used < n {
                // The hub writes nothing sealed before it has read message 3.
                return Err(io::Error::other("the hub sent data before message 3"));
            }
            break;
        }
    }
    stream.set_read_timeout(before)?;
    d.into_session()
        .ok_or_else(|| io::Error::other("the handshake did not finish"))
}

/// Appends `plain` (whole frames) sealed by `session` as one frame to `out`.
pub fn seal(session: &mut Session, plain: &[u8], out: &mut Vec<u8>) -> bool {
    let len = plain.len() + TAG;
    let at = out.len();
    out.resize(at + frame::header_len(len) + len, 0);
    let Ok(head) = frame::write_header(len as u32, &mut out[at..]) else {
        out.truncate(at);
        return false;
    };
    match session.encrypt(plain, &mut out[at + head..]) {
        Ok(n) => {
            out.truncate(at + head + n);
            true
        }
        Err(_) => {
            out.truncate(at);
            false
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The hub's side of a handshake with `d`, in memory: the client's session and the hub's.
    pub(crate) fn paired(mut d: Dialler) -> (Session, Session) {
        let mut hub =
            Session::new(Role::Responder, &random32(), &random32(), None, d.banner()).unwrap();
        let mut out = Vec::new();
        // The hub's banner: message 1 comes back.
        assert_eq!(d.feed(&banner(), &mut out), Ok(Fed::More));
        let mut dec = FrameDecoder::<MAX_HANDSHAKE>::new();
        let mut payload = [0; MAX_HANDSHAKE];
        let Decoded::Frame(m1) = dec.decode(&out).1 else {
            panic!("message 1 is one frame")
        };
        assert_eq!(hub.read_handshake(m1, &mut payload).unwrap(), 0);
        let hello = Message::Hello {
            minor: wire::MINOR,
            node: 7,
            name: "hub",
        };
        let mut plain = [0; 128];
        let n = hello.encode_frame(&mut plain).unwrap();
        let body = frame::body_of(&plain[..n]).unwrap();
        let mut m2 = [0; MAX_HANDSHAKE];
        let head = frame::write_header((body.len() + hub.overhead()) as u32, &mut m2).unwrap();
        let len = hub.write_handshake(body, &mut m2[head..]).unwrap();
        out.clear();
        // Message 2 cut in two: the first half asks for more.
        let (a, b) = m2[..head + len].split_at(10);
        assert_eq!(d.feed(a, &mut out), Ok(Fed::More));
        assert_eq!(d.feed(b, &mut out), Ok(Fed::Done { used: b.len() }));
        let Decoded::Frame(m3) = dec.decode(&out).1 else {
            panic!("message 3 is one frame")
        };
        let got = hub.read_handshake(m3, &mut payload).unwrap();
        assert!(matches!(
            Message::decode(&payload[..got]),
            Ok(Message::Hello { name: "c1", .. })
        ));
        (d.into_session().unwrap(), hub)
    }

    #[test]
    fn a_dialler_finishes_the_handshake_with_a_hub_session_and_sealed_frames_open_on_both_sides() {
        let (mut client, mut hub) = paired(Dialler::new("c1", 1));
        let mut sealed = Vec::new();
        assert!(seal(&mut client, b"to the hub", &mut sealed));
        let mut dec = FrameDecoder::<64>::new();
        let Decoded::Frame(body) = dec.decode(&sealed).1 else {
            panic!("one frame")
        };
        let mut plain = [0; 64];
        let n = hub.decrypt(body, &mut plain).unwrap();
        assert_eq!(&plain[..n], b"to the hub");
        sealed.clear();
        assert!(seal(&mut hub, b"to the client", &mut sealed));
        let body = frame::body_of(&sealed).unwrap();
        let n = client.decrypt(body, &mut plain).unwrap();
        assert_eq!(&plain[..n], b"to the client");
    }

    #[test]
    fn a_refusal_line_ends_the_handshake_and_is_quoted_whole() {
        let mut d = Dialler::new("c1", 1);
        let mut out = Vec::new();
        let line = b"MESHTALK/refused full: the room is full\n";
        let err = d.feed(line, &mut out).unwrap_err();
        assert!(err.0.contains("the room is full"), "{err}");
        assert!(out.is_empty(), "nothing is written to a hub that refused");
    }
}
