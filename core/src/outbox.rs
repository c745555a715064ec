//! The node's outputs waiting to be polled: a queue of jobs whose bytes live in
//! one arena, emptied by each drain. One room broadcast is stored once however
//! many peers it goes to.

use core::fmt::{self, Write};

use heapless::Deque;

use crate::display::SafeStr;
use crate::event::Event;
use crate::frame::BufferTooSmall;
use crate::peers::PeerId;
use crate::wire::Message;

/// How many outputs may wait at once.
pub(crate) const JOBS: usize = 64;

/// A byte range in the arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// The span as one number, equal for equal spans: what [`Node`](crate::node::Node)
    /// compares to mark a transmit of the same bytes as the one before.
    #[inline]
    pub(crate) fn key(self) -> u64 {
        (u64::from(self.start) << 32) | u64::from(self.len)
    }

    /// How many bytes it spans.
    pub(crate) fn len(self) -> usize {
        self.len as usize
    }

    /// The same span without its last `n` bytes.
    pub(crate) fn shorter(self, n: usize) -> Span {
        Span {
            start: self.start,
            len: self.len.saturating_sub(n as u32),
        }
    }
}

/// One pending output.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Job {
    /// A frame or a text peer's line for one peer (a frame is sealed as it
    /// goes out on a secure link).
    Send {
        peer: PeerId,
        data: Span,
    },
    /// Bytes for one peer that go as they are: banners, handshake messages,
    /// refusal lines, and frames sealed already.
    Raw {
        peer: PeerId,
        data: Span,
    },
    /// The same message for many peers: `native` (a frame) to native peers,
    /// `line` (text ending in a newline) to text peers, skipping `except`;
    /// with `routers`, only to links that take announces and sealed messages.
    /// `next` is the slot to look at next.
    Fanout {
        except: Option<PeerId>,
        native: Option<Span>,
        line: Option<Span>,
        next: usize,
        routers: bool,
    },
    Connect {
        peer: PeerId,
        host: Span,
        port: u16,
    },
    Close {
        peer: PeerId,
    },
    Event(Event<Span>),
    /// A frame that went out already, sealed with one before it: nothing to do.
    Taken,
}

pub(crate) struct Outbox<const A: usize> {
    arena: [u8; A],
    used: usize,
    pub(crate) jobs: Deque<Job, JOBS>,
}

impl<const A: usize> Default for Outbox<A> {
    fn default() -> Self {
        Outbox {
            arena: [0; A],
            used: 0,
            jobs: Deque::new(),
        }
    }
}

impl<const A: usize> Outbox<A> {
    /// True when at least `bytes` of arena and `jobs` job slots are free.
    pub(crate) fn has_room(&self, bytes: usize, jobs: usize) -> bool {
        A - self.used >= bytes && JOBS - self.jobs.len() >= jobs
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Forgets the arena's bytes; only once no job refers to them.
    pub(crate) fn reset_if_empty(&mut self) {
        if self.jobs.is_empty() {
            self.used = 0;
        }
    }

    /// Queues a job; false (and nothing queued) when the queue is full.
    pub(crate) fn push(&mut self, job: Job) -> bool {
        self.jobs.push_back(job).is_ok()
    }

    pub(crate) fn bytes(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        self.arena
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    /// The text in a span. Spans given to this were copied from `str`s, so they
    /// are valid UTF-8; anything else would come out empty. Safe Rust needs the
    /// check to lend a `&str` of arena bytes: simdutf8's is the cheap one.
    pub(crate) fn text(&self, span: Span) -> &str {
        utf8(self.bytes(span))
    }

    /// Copies `parts`, one after another, into one span.
    pub(crate) fn put(&mut self, parts: &[&[u8]]) -> Option<Span> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let free = self.arena.get_mut(self.used..)?;
        let dst = free.get_mut(..len)?;
        let mut at = 0;
        for part in parts {
            // In bounds: `dst` is exactly as long as all parts together.
            dst[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Some(self.claim(len))
    }

    /// Copies `bytes` as UTF-8 text, each invalid sequence replaced by U+FFFD,
    /// stopping at a character boundary before `max` bytes.
    pub(crate) fn put_lossy(&mut self, bytes: &[u8], max: usize) -> Option<Span> {
        let start = self.used;
        let room = (A - self.used).min(max);
        // Most text is valid and fits: one fast check and one copy.
        if bytes.len() <= room && simdutf8::basic::from_utf8(bytes).is_ok() {
            return self.put(&[bytes]);
        }
        let mut len = 0;
        for chunk in bytes.utf8_chunks() {
            let valid = chunk.valid();
            let mut cut = valid.len().min(room - len);
            while !valid.is_char_boundary(cut) {
                cut -= 1;
            }
            let piece = valid.get(..cut).unwrap_or_default().as_bytes();
            self.arena
                .get_mut(start + len..start + len + piece.len())?
                .copy_from_slice(piece);
            len += piece.len();
            if cut < valid.len() {
                break;
            }
            if !chunk.invalid().is_empty() {
                let replacement = "\u{FFFD}".as_bytes();
                if room - len < replacement.len() {
                    break;
                }
                self.arena
                    .get_mut(start + len..start + len + replacement.len())?
                    .copy_from_slice(replacement);
                len += replacement.len();
            }
        }
        Some(self.claim(len))
    }

    /// Writes `text` (shown by `show`, say [`crate::display::SafeStr`]) then `end`, for a
    /// text peer's terminal. What does not fit in the arena is cut off at a whole piece of
    /// the shown form, so the line is shorter but still safe and still ends with `end`.
    pub(crate) fn put_shown<'t, D: fmt::Display>(
        &mut self,
        text: &'t str,
        show: impl FnOnce(&'t str) -> D,
        end: &[u8],
    ) -> Option<Span> {
        self.put_fmt(show(text), usize::MAX, end)
    }

    /// Writes `shown` (at most `max` bytes of it) then `end`: a line the node composes
    /// for a text peer (a notice, a reply). What does not fit is cut off at a whole
    /// piece, and the line still ends with `end`.
    pub(crate) fn put_fmt(
        &mut self,
        shown: impl fmt::Display,
        max: usize,
        end: &[u8],
    ) -> Option<Span> {
        let free = self.arena.get_mut(self.used..)?;
        let room = free.len().checked_sub(end.len())?.min(max);
        let mut out = SliceWriter {
            buf: free.get_mut(..room)?,
            len: 0,
        };
        // A full arena cuts the text short (an `Err` here); what was written stands.
        let _ = fmt::write(&mut out, format_args!("{shown}"));
        let len = out.len;
        free.get_mut(len..len + end.len())?.copy_from_slice(end);
        Some(self.claim(len + end.len()))
    }

    /// Writes a room line for text peers, `text\n` or `<name> text\n` when the message is
    /// someone else's, every character made safe for a terminal ([`SafeStr`]): a line feed
    /// in `text` shows as `^J` and cannot forge a second line. Both are in the arena.
    /// A line too long for the arena is cut, as [`Outbox::put_shown`] cuts one.
    pub(crate) fn put_safe_line(&mut self, name: Option<Span>, text: Span) -> Option<Span> {
        let (done, free) = self.arena.split_at_mut(self.used);
        let read = |span: Span| {
            let start = span.start as usize;
            done.get(start..start + span.len as usize)
                .unwrap_or_default()
        };
        let room = free.len().checked_sub(1)?;
        let mut out = SliceWriter {
            buf: free.get_mut(..room)?,
            len: 0,
        };
        // A full arena cuts the line short (an `Err` here); what was written stands.
        let _ = (|| -> fmt::Result {
            if let Some(name) = name {
                out.write_str("<")?;
                write_safe(&mut out, read(name))?;
                out.write_str("> ")?;
            }
            write_safe(&mut out, read(text))
        })();
        let len = out.len;
        *free.get_mut(len)? = b'\n';
        Some(self.claim(len + 1))
    }

    /// Encodes a message as a frame. `make` may borrow text already in the
    /// arena (`texts` are handed to it as `&str`).
    pub(crate) fn put_frame(
        &mut self,
        texts: [Span; 2],
        make: impl for<'x> FnOnce([&'x str; 2]) -> Message<'x>,
    ) -> Option<Span> {
        let (done, free) = self.arena.split_at_mut(self.used);
        let text = |span: Span| {
            let start = span.start as usize;
            utf8(
                done.get(start..start + span.len as usize)
                    .unwrap_or_default(),
            )
        };
        let msg = make([text(texts[0]), text(texts[1])]);
        let len = msg.encode_frame(free).ok()?;
        Some(self.claim(len))
    }

    /// Encodes a message that borrows nothing from the arena.
    pub(crate) fn put_message(&mut self, msg: &Message<'_>) -> Result<Span, BufferTooSmall> {
        let free = self.arena.get_mut(self.used..).unwrap_or_default();
        let len = msg.encode_frame(free)?;
        Ok(self.claim(len))
    }

    /// Lets `write` fill the free arena and keeps the bytes it says it wrote.
    pub(crate) fn put_with<E>(
        &mut self,
        write: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<Span, E> {
        let free = self.arena.get_mut(self.used..).unwrap_or_default();
        let len = write(free)?;
        Ok(self.claim(len))
    }

    fn claim(&mut self, len: usize) -> Span {
        let len = len.min(A - self.used);
        let span = Span {
            start: self.used as u32,
            len: len as u32,
        };
        self.used += len;
        span
    }
}

/// `bytes` as text, or empty when they are not UTF-8.
fn utf8(bytes: &[u8]) -> &str {
    simdutf8::basic::from_utf8(bytes).unwrap_or_default()
}

/// Writes UTF-8 `text` as [`SafeStr`] shows it; plain printable ASCII (most text) is
/// copied as is, with no UTF-8 check, as it cannot be anything else.
fn write_safe(out: &mut SliceWriter<'_>, text: &[u8]) -> fmt::Result {
    if is_plain(text) {
        return out.write_ascii(text);
    }
    fmt::write(out, format_args!("{}", SafeStr(utf8(text))))
}

/// Whether every byte is printable ASCII or a tab: such text is its own safe form.
/// Eight bytes at a time, as this runs for every line a hub writes to a text peer.
fn is_plain(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let byte_ok = |b: &u8| matches!(b, b'\t' | b' '..=b'~');
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            return false;
        };
        let x = u64::from_ne_bytes(word);
        // A byte with its top bit set, under 0x20, or 0x7f (DEL) marks the word;
        // a marked word (a tab, or text to make safe) is checked byte by byte.
        let below_space = x.wrapping_sub(ONES * 0x20) & !x;
        let del = (x ^ (ONES * 0x7f)).wrapping_sub(ONES) & !(x ^ (ONES * 0x7f));
        if (x | below_space | del) & HIGH != 0 && !word.iter().all(byte_ok) {
            return false;
        }
    }
    words.remainder().iter().all(byte_ok)
}

/// Writes formatted text into a slice; a piece that does not fit is cut at a character
/// boundary and the write fails, so the text stops there.
struct SliceWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl SliceWriter<'_> {
    /// Writes `piece`, cut at `boundary` (the largest cut that fits and that it allows).
    fn write_cut(&mut self, piece: &[u8], boundary: impl Fn(usize) -> bool) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let mut cut = piece.len().min(room);
        while !boundary(cut) {
            cut -= 1;
        }
        self.buf
            .get_mut(self.len..self.len + cut)
            .ok_or(fmt::Error)?
            .copy_from_slice(piece.get(..cut).unwrap_or_default());
        self.len += cut;
        if cut < piece.len() {
            return Err(fmt::Error);
        }
        Ok(())
    }

    /// Writes ASCII bytes, which may be cut anywhere.
    fn write_ascii(&mut self, ascii: &[u8]) -> fmt::Result {
        self.write_cut(ascii, |_| true)
    }
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_cut(s.as_bytes(), |cut| s.is_char_boundary(cut))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_printable_ascii_and_tabs_at_every_position_of_a_word() {
        for len in 0..20 {
            let base = [b'a'; 20];
            assert!(is_plain(&base[..len]));
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut text = base;
                    text[at] = b;
                    let expected = b == b'\t' || (b' '..=b'~').contains(&b);
                    assert_eq!(
                        is_plain(&text[..len]),
                        expected,
                        "byte {b:#x} at {at} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_safe_line_too_long_for_the_arena_is_cut_short_still_safe_and_still_ends_its_line() {
        let mut outbox: Outbox<64> = Outbox::default();
        let text = outbox.put(&[&[0x1b; 40]]).unwrap();
        let line = outbox.put_safe_line(None, text).unwrap();
        // 24 bytes were free: 23 of the shown form, then the newline.
        let mut expected = "^[".repeat(11);
        expected.push_str("^\n");
        assert_eq!(outbox.bytes(line), expected.as_bytes());
    }

    #[test]
    fn a_room_line_names_its_author_and_shows_both_safely() {
        let mut outbox: Outbox<256> = Outbox::default();
        let name = outbox.put(&[b"al\x07ice"]).unwrap();
        let text = outbox.put(&["hi\u{202e} there\n".as_bytes()]).unwrap();
        let line = outbox.put_safe_line(Some(name), text).unwrap();
        assert_eq!(outbox.bytes(line), b"<al^Gice> hi\\u{202e} there^J\n");
    }
}
