//! Length-prefixed framing for a byte stream: a LEB128 varint body length (a
//! `u32`, at most [`MAX_HEADER`] bytes), then that many body bytes.
//!
//! [`encode`] writes a frame into the caller's buffer; [`FrameDecoder`] turns a
//! stream, cut into any chunks, back into frames. The decoder's output is a pure
//! function of the byte stream: the same bytes give the same frames and errors
//! however they are chunked (one byte at a time included).
//!
//! Non-minimal varints (e.g. `0x80 0x00` for 0) are accepted: rejecting them buys
//! nothing for framing and costs a branch per header byte. Anything that is not a
//! `u32` in at most 5 bytes is [`FrameError::BadHeader`].

use core::fmt;

/// Longest possible length prefix (a u32 in LEB128).
pub const MAX_HEADER: usize = 5;

/// Low 7 bits of a varint byte carry the value.
const PAYLOAD: u8 = 0x7f;
/// High bit of a varint byte says another byte follows.
const CONTINUE: u8 = 0x80;
/// The 5th header byte may only carry bits 28..=31 of a `u32`.
const LAST_BYTE_MAX: u8 = 0x0f;

/// Why the decoder could not hand back a frame. Both are the peer's fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The header announced a body longer than this decoder accepts. Not fatal: the
    /// decoder skips exactly `len` body bytes and then decodes the next frame.
    Oversized {
        /// The length the header announced.
        len: u32,
        /// The longest body this decoder takes.
        max: usize,
    },
    /// The length prefix is not a valid varint (more than 5 bytes, or above u32::MAX).
    /// Fatal: the stream cannot be resynchronised; the decoder stays failed (sticky) and the peer must be closed.
    BadHeader,
}

impl FrameError {
    /// True when the stream is lost and the peer must be closed.
    pub fn is_fatal(&self) -> bool {
        matches!(self, FrameError::BadHeader)
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Oversized { len, max } => write!(
                f,
                "frame of {len} bytes is over the limit of {max} bytes; it was skipped"
            ),
            FrameError::BadHeader => f.write_str(
                "frame length prefix is not a valid varint (over 5 bytes or above u32::MAX); \
                 the stream cannot be resynchronised, close the peer",
            ),
        }
    }
}

/// What one call to [`FrameDecoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Every byte given was consumed and no frame is complete yet.
    NeedMore,
    /// A complete frame body (may be empty).
    Frame(&'a [u8]),
    /// A framing error; see FrameError for what the decoder does next.
    Error(FrameError),
}

/// Where the decoder is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading the length prefix: `count` bytes seen so far (0 = at a frame
    /// boundary), their payload bits accumulated in `value`. `count < MAX_HEADER`.
    Header { value: u32, count: u8 },
    /// Copying a body that straddles calls into the buffer.
    /// `0 <= filled < len <= N`.
    Body { len: usize, filled: usize },
    /// Dropping the body of an oversized frame; `remaining > 0`.
    Skip { remaining: u32 },
    /// A fatal error was reported; only `reset` leaves this state.
    Failed,
}

/// The state at a frame boundary.
const BOUNDARY: State = State::Header { value: 0, count: 0 };

/// Per-peer stream decoder with a fixed buffer of N bytes: N is the largest body accepted.
///
/// Feed it whatever the socket gave; it returns one item per call together with
/// how many input bytes it used, so loop until [`Decoded::NeedMore`]:
///
/// ```
/// use meshtalk_core::frame::{Decoded, FrameDecoder};
///
/// let mut decoder = FrameDecoder::<64>::new();
/// let mut input: &[u8] = &[2, b'h', b'i', 0];
/// let mut frames = 0;
/// loop {
///     let (used, found) = decoder.decode(input);
///     match found {
///         Decoded::NeedMore => break,
///         Decoded::Frame(_body) => frames += 1,
///         Decoded::Error(e) if e.is_fatal() => break, // close the peer
///         Decoded::Error(_) => {}                     // count it, carry on
///     }
///     input = &input[used..];
/// }
/// assert_eq!(frames, 2);
/// ```
///
/// A body that arrives whole in one `input` is handed back as a slice of that
/// input (no copy); only a body split across calls is copied into the buffer.
#[derive(Clone, Debug)]
pub struct FrameDecoder<const N: usize> {
    buf: [u8; N],
    state: State,
}

impl<const N: usize> FrameDecoder<N> {
    /// A decoder at the start of a stream.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            state: BOUNDARY,
        }
    }

    /// Decodes from `input`, returning how many bytes of `input` were consumed and what was found.
    /// Call again with the rest of the input after a Frame or Error.
    ///
    /// The count never exceeds `input.len()`, and equals it for `NeedMore`.
    /// After a fatal error every call returns `(0, Error(BadHeader))` until [`reset`](Self::reset).
    #[inline]
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> (usize, Decoded<'a>) {
        // Fast paths; anything else goes the general way, which gives the same result.
        match &mut self.state {
            // At a boundary (`count == 0` holds only there; `value` is then 0).
            State::Header { count: 0, .. } => {
                if let Some(found) = Self::whole_frame(input) {
                    return found;
                }
                // Nothing, or a lone 1-byte header (the body's first byte comes
                // next call): no trip through the general state machine.
                match *input {
                    [] => return (0, Decoded::NeedMore),
                    [b0] if b0 & CONTINUE == 0 && usize::from(b0) <= N => {
                        // `b0 > 0`: an empty frame is a whole frame, handed back above.
                        self.state = State::Body {
                            len: usize::from(b0),
                            filled: 0,
                        };
                        return (1, Decoded::NeedMore);
                    }
                    _ => {}
                }
            }
            // One byte into a body, as a byte-at-a-time reader feeds it: stored
            // in place, with no memcpy call and no other state touched.
            State::Body { len, filled } => {
                if let &[byte] = input {
                    // Cannot panic: `filled < len <= N`.
                    self.buf[*filled] = byte;
                    *filled += 1;
                    if *filled < *len {
                        return (1, Decoded::NeedMore);
                    }
                    let len = *len;
                    self.state = BOUNDARY;
                    // Cannot panic: `len <= N`.
                    return (1, Decoded::Frame(&self.buf[..len]));
                }
            }
            _ => {}
        }
        self.decode_slow(input)
    }

    /// At a boundary, a frame with a 1- or 2-byte header whose whole body is in
    /// `input`, as a slice of `input`; None for anything else (an oversized length too).
    #[inline]
    fn whole_frame(input: &[u8]) -> Option<(usize, Decoded<'_>)> {
        if let Some(&b0) = input.first() {
            if b0 & CONTINUE == 0 {
                let len = usize::from(b0);
                if len <= N
                    && let Some(body) = input.get(1..1 + len)
                {
                    return Some((1 + len, Decoded::Frame(body)));
                }
            } else if let Some(&b1) = input.get(1)
                && b1 & CONTINUE == 0
            {
                let len = usize::from(b0 & PAYLOAD) | usize::from(b1) << 7;
                if len <= N
                    && let Some(body) = input.get(2..2 + len)
                {
                    return Some((2 + len, Decoded::Frame(body)));
                }
            }
        }
        None
    }

    /// The general state machine: partial headers, bodies split across calls,
    /// skipping oversized bodies, errors.
    fn decode_slow<'a>(&'a mut self, input: &'a [u8]) -> (usize, Decoded<'a>) {
        let mut pos = 0;
        loop {
            // Cannot panic: `pos` only grows by counts of bytes taken from `rest`.
            let rest = &input[pos..];
            match self.state {
                State::Failed => {
                    // Only reachable on entry: the call that fails returns at once.
                    return (pos, Decoded::Error(FrameError::BadHeader));
                }
                State::Header { value, count } => {
                    let Some(&b) = rest.first() else {
                        return (pos, Decoded::NeedMore);
                    };
                    pos += 1;
                    let bits = b & PAYLOAD;
                    if usize::from(count) == MAX_HEADER - 1
                        && (b & CONTINUE != 0 || bits > LAST_BYTE_MAX)
                    {
                        self.state = State::Failed;
                        return (pos, Decoded::Error(FrameError::BadHeader));
                    }
                    // `count <= 4`, so the shift is at most 28, and at 28 `bits`
                    // fits in the 4 bits left (checked above): nothing is lost.
                    let value = value | u32::from(bits) << (7 * u32::from(count));
                    if b & CONTINUE != 0 {
                        self.state = State::Header {
                            value,
                            count: count + 1,
                        };
                        continue;
                    }
                    match usize::try_from(value) {
                        Ok(0) => {
                            self.state = BOUNDARY;
                            return (pos, Decoded::Frame(&[]));
                        }
                        Ok(len) if len <= N => {
                            self.state = State::Body { len, filled: 0 };
                            if pos == input.len() {
                                return (pos, Decoded::NeedMore);
                            }
                        }
                        // Over N, or too big for usize (16-bit targets) and so over N too.
                        _ => {
                            self.state = State::Skip { remaining: value };
                            return (
                                pos,
                                Decoded::Error(FrameError::Oversized { len: value, max: N }),
                            );
                        }
                    }
                }
                State::Body { len, filled } => {
                    if filled == 0
                        && let Some(body) = rest.get(..len)
                    {
                        // The header straddled calls but the body did not: no copy.
                        self.state = BOUNDARY;
                        return (pos + len, Decoded::Frame(body));
                    }
                    let take = (len - filled).min(rest.len());
                    // Cannot panic: `filled + take <= len <= N` and `take <= rest.len()`.
                    self.buf[filled..filled + take].copy_from_slice(&rest[..take]);
                    pos += take;
                    if filled + take == len {
                        self.state = BOUNDARY;
                        // Cannot panic: `len <= N`.
                        return (pos, Decoded::Frame(&self.buf[..len]));
                    }
                    self.state = State::Body {
                        len,
                        filled: filled + take,
                    };
                    return (pos, Decoded::NeedMore);
                }
                State::Skip { remaining } => {
                    let take = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    pos += take;
                    // `take <= remaining`, a u32, so the cast is lossless.
                    let remaining = remaining - take as u32;
                    if remaining == 0 {
                        self.state = BOUNDARY;
                        continue;
                    }
                    self.state = State::Skip { remaining };
                    return (pos, Decoded::NeedMore);
                }
            }
        }
    }

    /// True when no partial frame (header or body, or skip in progress) is held: the stream is at a frame boundary.
    pub fn is_at_boundary(&self) -> bool {
        self.state == BOUNDARY
    }

    /// True after a fatal error.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Forgets everything, as new.
    pub fn reset(&mut self) {
        self.state = BOUNDARY;
    }
}

impl<const N: usize> Default for FrameDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The caller's buffer cannot hold what was to be written into it.
///
/// `needed == usize::MAX` means no buffer can: the body is longer than a frame
/// can announce (`u32::MAX` bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// Bytes of room the encoding needs.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.needed == usize::MAX {
            write!(f, "body is too long to frame: over {} bytes", u32::MAX)
        } else {
            write!(f, "buffer is too small: {} bytes needed", self.needed)
        }
    }
}

/// The length of the header for a body of `len` bytes.
///
/// At most [`MAX_HEADER`] for any `len` up to `u32::MAX`; longer bodies cannot
/// be framed (and get the length their varint would have).
pub const fn header_len(len: usize) -> usize {
    // Significant bits, counting 0 as one bit; 7 of them per header byte.
    // `usize` is at most 64 bits wide, so the `u64` cast is lossless.
    let bits = u64::BITS - (len as u64 | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Writes the varint header for `len` into `out`, returning its length. Err(needed) if out is too short (out untouched).
pub fn write_header(len: u32, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    // `u32` fits in `u64`: lossless; the header of a `u32` is at most 5 bytes.
    let needed = header_len_u32(len);
    let Some(header) = out.get_mut(..needed) else {
        return Err(BufferTooSmall { needed });
    };
    let mut value = len;
    for (i, byte) in header.iter_mut().enumerate() {
        let more = if i + 1 < needed { CONTINUE } else { 0 };
        // Keeps the low 7 bits, so the truncating cast is what we want.
        *byte = (value as u8 & PAYLOAD) | more;
        value >>= 7;
    }
    Ok(needed)
}

/// [`header_len`] for a `u32`, with no cast through `usize` (which may be 16 bits).
const fn header_len_u32(len: u32) -> usize {
    let bits = u32::BITS - (len | 1).leading_zeros();
    // At most 5, so the cast is lossless on any target.
    bits.div_ceil(7) as usize
}

/// The body of `frame`, one whole frame as [`encode`] writes it; `None` when
/// `frame` is not exactly one frame (a header that is no varint, or a length
/// other than what is left).
pub fn body_of(frame: &[u8]) -> Option<&[u8]> {
    match first(frame) {
        Some((head, len)) if head + len == frame.len() => frame.get(head..),
        _ => None,
    }
}

/// The header's and the body's lengths of the whole frame at the start of
/// `bytes` (more may follow it); `None` when the header is no varint or the
/// body runs past the end.
pub fn first(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut len: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(MAX_HEADER) {
        len |= u64::from(b & PAYLOAD) << (7 * i);
        if b & CONTINUE == 0 {
            let body = usize::try_from(len).ok()?;
            return (body <= bytes.len() - (i + 1)).then_some((i + 1, body));
        }
    }
    None
}

/// Writes `body` framed (header + body) at the start of `out`; returns the frame length. If `out` is too
/// small, returns the size needed and leaves `out` untouched.
///
/// A body over `u32::MAX` bytes cannot be framed: `Err(BufferTooSmall { needed: usize::MAX })`.
pub fn encode(body: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let Ok(len) = u32::try_from(body.len()) else {
        return Err(BufferTooSmall { needed: usize::MAX });
    };
    let head = header_len_u32(len);
    let needed = head.saturating_add(body.len());
    if out.len() < needed {
        return Err(BufferTooSmall { needed });
    }
    // Cannot fail: `out` holds `head + body.len()` bytes (checked above).
    write_header(len, out)?;
    // Cannot panic: `head + body.len() == needed <= out.len()`.
    out[head..needed].copy_from_slice(body);
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One decoded item: a frame as (length, first byte), or an error.
    type Item = Result<(usize, Option<u8>), FrameError>;

    /// Decodes all of `input` in one go, collecting up to 8 items.
    fn items<const N: usize>(
        decoder: &mut FrameDecoder<N>,
        mut input: &[u8],
    ) -> ([Option<Item>; 8], usize) {
        let mut out = [None; 8];
        let mut n = 0;
        while n < out.len() {
            let (used, found) = decoder.decode(input);
            assert!(used <= input.len());
            match found {
                Decoded::NeedMore => {
                    assert_eq!(used, input.len());
                    break;
                }
                Decoded::Frame(body) => out[n] = Some(Ok((body.len(), body.first().copied()))),
                Decoded::Error(e) => {
                    out[n] = Some(Err(e));
                    if e.is_fatal() {
                        n += 1;
                        break;
                    }
                }
            }
            n += 1;
            input = &input[used..];
        }
        (out, n)
    }

    #[test]
    fn a_whole_frame_in_the_input_is_returned_without_copying() {
        let input = [3, 1, 2, 3, 9];
        let mut decoder = FrameDecoder::<8>::new();
        let (used, found) = decoder.decode(&input);
        assert_eq!(used, 4);
        let Decoded::Frame(body) = found else {
            panic!("expected a frame, got {found:?}");
        };
        assert_eq!(body, &[1, 2, 3]);
        assert!(core::ptr::eq(body.as_ptr(), &input[1]));
    }

    #[test]
    fn a_frame_split_across_calls_is_reassembled() {
        let mut decoder = FrameDecoder::<300>::new();
        let mut stream = [7u8; 202];
        assert_eq!(write_header(200, &mut stream), Ok(2));
        assert_eq!(decoder.decode(&stream[..1]), (1, Decoded::NeedMore));
        assert!(!decoder.is_at_boundary());
        assert_eq!(decoder.decode(&stream[1..50]), (49, Decoded::NeedMore));
        assert_eq!(
            decoder.decode(&stream[50..]),
            (152, Decoded::Frame(&[7; 200]))
        );
        assert!(decoder.is_at_boundary());
    }

    #[test]
    fn a_zero_length_frame_is_an_empty_frame() {
        let mut decoder = FrameDecoder::<0>::new();
        assert_eq!(decoder.decode(&[0, 0]), (1, Decoded::Frame(&[])));
        // Non-minimal encoding of 0 is accepted too.
        assert_eq!(decoder.decode(&[0x80, 0x00]), (2, Decoded::Frame(&[])));
    }

    #[test]
    fn oversized_frame_is_skipped_and_next_frame_decodes() {
        // Header says 5 bytes, the limit is 4; the body looks like empty frames.
        let stream = [5, 0, 0, 0, 0, 0, 1, 42];
        let mut decoder = FrameDecoder::<4>::new();
        let (out, n) = items(&mut decoder, &stream);
        assert_eq!(n, 2);
        assert_eq!(out[0], Some(Err(FrameError::Oversized { len: 5, max: 4 })));
        assert_eq!(out[1], Some(Ok((1, Some(42)))));

        // Fed one byte at a time, the same items come out.
        let mut decoder = FrameDecoder::<4>::new();
        let mut seen = [None; 8];
        let mut n = 0;
        for byte in stream.chunks(1) {
            let (o, k) = items(&mut decoder, byte);
            seen[n..n + k].copy_from_slice(&o[..k]);
            n += k;
        }
        assert_eq!((seen, n), (out, 2));
    }

    #[test]
    fn oversized_error_is_reported_before_the_body_arrives() {
        let mut decoder = FrameDecoder::<4>::new();
        assert_eq!(
            decoder.decode(&[0x80, 0x01]),
            (
                2,
                Decoded::Error(FrameError::Oversized { len: 128, max: 4 })
            )
        );
        assert!(!decoder.is_at_boundary());
    }

    #[test]
    fn a_sixth_header_byte_is_a_sticky_fatal_error() {
        let mut decoder = FrameDecoder::<4>::new();
        let (used, found) = decoder.decode(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0]);
        assert_eq!((used, found), (5, Decoded::Error(FrameError::BadHeader)));
        assert!(decoder.is_failed());
        assert_eq!(
            decoder.decode(&[0]),
            (0, Decoded::Error(FrameError::BadHeader))
        );
        assert_eq!(
            decoder.decode(&[]),
            (0, Decoded::Error(FrameError::BadHeader))
        );
        decoder.reset();
        assert_eq!(decoder.decode(&[0]), (1, Decoded::Frame(&[])));
    }

    #[test]
    fn a_header_above_u32_max_is_fatal_but_u32_max_is_only_oversized() {
        let mut decoder = FrameDecoder::<4>::new();
        assert_eq!(
            decoder.decode(&[0xff, 0xff, 0xff, 0xff, 0x10]),
            (5, Decoded::Error(FrameError::BadHeader))
        );
        decoder.reset();
        assert_eq!(
            decoder.decode(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            (
                5,
                Decoded::Error(FrameError::Oversized {
                    len: u32::MAX,
                    max: 4
                })
            )
        );
    }

    #[test]
    fn header_len_matches_what_write_header_writes() {
        let mut out = [0u8; MAX_HEADER];
        for len in [
            0,
            1,
            127,
            128,
            16383,
            16384,
            (1 << 21) - 1,
            1 << 21,
            (1 << 28) - 1,
            1 << 28,
            u32::MAX,
        ] {
            let written = write_header(len, &mut out).unwrap();
            assert_eq!(written, header_len(len as usize), "len {len}");
            assert_eq!(written, header_len_u32(len), "len {len}");
        }
        assert_eq!(header_len(u32::MAX as usize), MAX_HEADER);
    }

    #[test]
    fn encode_into_a_short_buffer_says_how_much_is_needed() {
        let mut out = [0xaa; 3];
        assert_eq!(
            encode(&[1, 2, 3], &mut out),
            Err(BufferTooSmall { needed: 4 })
        );
        assert_eq!(out, [0xaa; 3]);
        let mut out = [0xaa; 4];
        assert_eq!(encode(&[1, 2, 3], &mut out), Ok(4));
        assert_eq!(out, [3, 1, 2, 3]);
    }
}
