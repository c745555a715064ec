//! The node's outputs waiting to be polled: a queue of jobs whose bytes live in
//! one arena, emptied by each drain. One room broadcast is stored once however
//! many peers it goes to.

use heapless::Deque;

use crate::frame::BufferTooSmall;
use crate::node::Event;
use crate::peers::PeerId;
use crate::wire::Message;

/// How many outputs may wait at once.
pub const JOBS: usize = 64;

/// A byte range in the arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    start: u32,
    len: u32,
}

impl Span {
    pub fn len(self) -> usize {
        self.len as usize
    }

    /// The same span without its last `n` bytes.
    pub fn shorter(self, n: usize) -> Span {
        Span {
            start: self.start,
            len: self.len.saturating_sub(n as u32),
        }
    }
}

/// One pending output.
#[derive(Clone, Copy, Debug)]
pub enum Job {
    /// Bytes for one peer.
    Send {
        peer: PeerId,
        data: Span,
    },
    /// The same message for many peers: `native` (a frame) to native peers,
    /// `line` (text ending in a newline) to text peers, skipping `except`.
    /// `next` is the slot to look at next.
    Fanout {
        except: Option<PeerId>,
        native: Option<Span>,
        line: Option<Span>,
        next: usize,
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
}

pub struct Outbox<const A: usize> {
    arena: [u8; A],
    used: usize,
    pub jobs: Deque<Job, JOBS>,
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
    pub fn has_room(&self, bytes: usize, jobs: usize) -> bool {
        A - self.used >= bytes && JOBS - self.jobs.len() >= jobs
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Forgets the arena's bytes; only once no job refers to them.
    pub fn reset_if_empty(&mut self) {
        if self.jobs.is_empty() {
            self.used = 0;
        }
    }

    /// Queues a job; false (and nothing queued) when the queue is full.
    pub fn push(&mut self, job: Job) -> bool {
        self.jobs.push_back(job).is_ok()
    }

    pub fn bytes(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        self.arena
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    /// The text in a span. Spans given to this were copied from `str`s, so they
    /// are valid UTF-8; anything else would come out empty. Safe Rust needs the
    /// check to lend a `&str` of arena bytes: simdutf8's is the cheap one.
    pub fn text(&self, span: Span) -> &str {
        utf8(self.bytes(span))
    }

    /// Copies `parts`, one after another, into one span.
    pub fn put(&mut self, parts: &[&[u8]]) -> Option<Span> {
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
    pub fn put_lossy(&mut self, bytes: &[u8], max: usize) -> Option<Span> {
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

    /// Copies `text` already in the arena as a line for text peers: `text\n`,
    /// or `<name> text\n` when the message is someone else's.
    pub fn put_line(&mut self, name: Option<Span>, text: Span) -> Option<Span> {
        let start = self.used;
        let mut at = start;
        let mut copy = |arena: &mut [u8; A], from: Option<Span>, bytes: &[u8]| -> Option<()> {
            let len = from.map_or(bytes.len(), Span::len);
            arena.get(at..at + len)?;
            match from {
                Some(span) => {
                    let src = span.start as usize;
                    arena.get(src..src + len)?;
                    arena.copy_within(src..src + len, at);
                }
                None => arena.get_mut(at..at + len)?.copy_from_slice(bytes),
            }
            at += len;
            Some(())
        };
        if let Some(name) = name {
            copy(&mut self.arena, None, b"<")?;
            copy(&mut self.arena, Some(name), &[])?;
            copy(&mut self.arena, None, b"> ")?;
        }
        copy(&mut self.arena, Some(text), &[])?;
        copy(&mut self.arena, None, b"\n")?;
        let len = at - start;
        Some(self.claim(len))
    }

    /// Encodes a message as a frame. `make` may borrow text already in the
    /// arena (`texts` are handed to it as `&str`).
    pub fn put_frame(
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
    pub fn put_message(&mut self, msg: &Message<'_>) -> Result<Span, BufferTooSmall> {
        let free = self.arena.get_mut(self.used..).unwrap_or_default();
        let len = msg.encode_frame(free)?;
        Ok(self.claim(len))
    }

    /// Lets `write` fill the free arena and keeps the bytes it says it wrote.
    pub fn put_with<E>(
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
