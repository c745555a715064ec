//! meshtalk on a Cortex-M3 (QEMU's lm3s6965evb): one `meshtalk_core::Node`
//! whose single connection is UART0, SysTick as its clock, no heap. It speaks
//! protocol 2 (secure links), with keys made as `keys` explains: the board has
//! no RNG.
//!
//! The desktop dials the UART (QEMU serves it on TCP), so to the node the link
//! is an inbound connection: it is accepted when its first byte arrives, and
//! the desktop's banner comes first. Once the hello is exchanged the firmware
//! says hello to the room; it answers a direct message with the text
//! upper-cased (`stats` with its memory use and uptime) and a room message
//! with `heard <who>: <TEXT>` in the room. `stats` also gives its key's
//! fingerprint, for the desktop's person to compare with the one pinned.
#![no_std]
#![no_main]

mod keys;
mod uart;

use core::fmt::Write as _;
use core::mem::size_of;
use core::net::{Ipv4Addr, SocketAddr};
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use heapless::{Deque, String};
use meshtalk_core::command;
use meshtalk_core::node::{Config, Event, Handled, Input, Kind, Node, Output, Secure};
use meshtalk_core::noise::Fingerprint;
use meshtalk_core::peers::PeerId;
use meshtalk_core::time::{Duration, Instant};

use uart::Uart;

/// One peer (the UART), frames of 1 KiB (944 bytes of text), 4 KiB of pending output.
type DeviceNode = Node<1, 1024, 4096>;

/// The name the firmware announces.
const NAME: &str = "cortex-m3";
/// The core clock after reset (the 12 MHz crystal; QEMU models the same).
const CLOCK_HZ: u32 = 12_000_000;
/// A silent link is pinged after this long (the desktop's default is 15 s) ...
const PING_AFTER: Duration = Duration::from_secs(2);
/// ... and dropped if nothing comes this long after the ping.
const DEAD_AFTER: Duration = Duration::from_secs(3);
/// The longest echoed text; a longer one is cut at a character boundary.
const ECHO_MAX: usize = 200;
/// What the firmware says to the room once a desktop has said hello.
const ANNOUNCE: &str = "hello room, this is meshtalk on a Cortex-M3 (QEMU lm3s6965evb): \
                        send me a message and I answer it upper-cased";

/// Milliseconds since boot, counted by the SysTick interrupt.
static MILLIS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}

/// Milliseconds since boot as a 64-bit count (the 32-bit counter wraps every 49 days).
struct Clock {
    last: u32,
    high: u64,
}

impl Clock {
    fn now(&mut self) -> Instant {
        let ms = MILLIS.load(Ordering::Relaxed);
        if ms < self.last {
            self.high += 1 << 32;
        }
        self.last = ms;
        Instant::from_millis(self.high | u64::from(ms))
    }
}

/// An answer the firmware owes, kept until the drain that produced it ends.
enum Reply {
    /// `broadcast <text>`
    Room(String<256>),
    /// `send #<peer> <text>`
    Direct(PeerId, String<256>),
}

#[entry]
fn main() -> ! {
    let mut core = cortex_m::Peripherals::take().expect("taken once, at boot");
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(CLOCK_HZ / 1000 - 1);
    core.SYST.clear_current();
    core.SYST.enable_interrupt();
    core.SYST.enable_counter();

    let uart = Uart::take();
    let mut config = Config::new(NAME, keys::node_id()).expect("NAME is a valid alias");
    config.secure = Some(Secure::new(keys::identity()));
    // The UART cannot tell that the desktop's TCP connection went away: a
    // desktop that vanished without a goodbye is found by pinging, soon, so
    // that the next one is not taken for the same link.
    config.ping_after = Some(PING_AFTER);
    config.dead_after = DEAD_AFTER;
    let node = make_node(config);
    let fingerprint = node.public_key().map(|key| Fingerprint::of(&key));
    // Making the node passed a copy of it through the stack: measure that
    // apart, then paint again, so `stats` shows what the run loop needs.
    let boot_stack = stack_use().0;
    repaint_stack();
    let mut clock = Clock { last: 0, high: 0 };
    let mut shell = Shell {
        uart,
        link: None,
        wake: None,
        replies: Deque::new(),
        boot_stack,
        receipts: 0,
        entropy: keys::Entropy::new(),
        fingerprint,
    };
    let mut rx = [0u8; 64];

    loop {
        let now = clock.now();
        let mut busy = false;
        let n = shell.uart.read_available(&mut rx);
        if n > 0 {
            busy = true;
            shell.received(node, now, &rx[..n]);
        }
        if shell.wake.is_some_and(|at| at <= now) {
            busy = true;
            let _ = node.handle_input(now, Input::Timeout { held: &[] });
            shell.drain(node, now);
        }
        while let Some(reply) = shell.replies.pop_front() {
            busy = true;
            answer(node, now, reply);
            shell.drain(node, now);
        }
        if !busy {
            // Until the next millisecond tick; the UART's FIFO holds what comes meanwhile.
            cortex_m::asm::wfi();
        }
    }
}

/// Puts the node in a static. Not inlined: `Node::new` returns the node by
/// value, through this function's frame, which is gone once it returns
/// (inlined, main's frame would keep that room for good).
#[inline(never)]
fn make_node(config: Config) -> &'static mut DeviceNode {
    cortex_m::singleton!(: DeviceNode = DeviceNode::new(config)).expect("made once, at boot")
}

/// What the run loop keeps beside the node: the UART, the link, the wake-up
/// time and the answers owed.
struct Shell {
    uart: Uart,
    link: Option<PeerId>,
    wake: Option<Instant>,
    replies: Deque<Reply, 4>,
    boot_stack: usize,
    /// Receipts the desktop sent for the firmware's messages.
    receipts: u32,
    /// Each connection's entropy for its Noise session.
    entropy: keys::Entropy,
    /// The fingerprint of the firmware's static key (`None` only if it were not secure).
    fingerprint: Option<Fingerprint>,
}

impl Shell {
    /// Feeds bytes from the UART; the first byte of a connection makes the
    /// node accept it as inbound.
    fn received(&mut self, node: &mut DeviceNode, now: Instant, mut bytes: &[u8]) {
        let peer = match self.link {
            Some(peer) => peer,
            None => {
                // The far end of the UART has no address the firmware could know.
                let addr = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0);
                let entropy = self.entropy.next(SYST::get_current(), now.as_millis());
                let accepted = node.handle_input(now, Input::Accepted { addr, entropy });
                self.drain(node, now);
                match accepted {
                    Ok(Handled::Accepted(peer)) => {
                        self.link = Some(peer);
                        peer
                    }
                    _ => return,
                }
            }
        };
        while !bytes.is_empty() && self.link == Some(peer) {
            let taken = match node.handle_input(now, Input::Received { peer, bytes }) {
                Ok(Handled::Consumed(taken)) => taken,
                _ => bytes.len(),
            };
            bytes = &bytes[taken..];
            self.drain(node, now);
        }
    }

    /// Carries out the node's outputs until it asks to be woken.
    fn drain(&mut self, node: &mut DeviceNode, now: Instant) {
        let mut closed = None;
        loop {
            match node.poll_output(now) {
                Output::Transmit { data, .. } => self.uart.write_all(data),
                // The UART cannot hang up: the link ends here, the next byte starts a new one.
                Output::Close { peer } => closed = Some(peer),
                // The firmware never dials.
                Output::Connect { .. } => {}
                Output::Event(event) => self.on_event(event),
                Output::Timeout(at) => {
                    self.wake = at;
                    break;
                }
            }
        }
        if let Some(peer) = closed {
            let _ = node.handle_input(now, Input::Closed { peer, error: None });
            self.link = None;
            self.drain(node, now);
        }
    }

    /// Reacts to what the node tells the person: the firmware's small behaviour.
    fn on_event(&mut self, event: Event<&str>) {
        let reply = match event {
            Event::Connected {
                kind: Kind::Native, ..
            } => Reply::Room(text256(ANNOUNCE)),
            Event::Message {
                peer,
                room: None,
                text,
                ..
            } => match text.trim().eq_ignore_ascii_case("stats") {
                true => Reply::Direct(
                    peer,
                    stats(self.boot_stack, self.receipts, self.fingerprint),
                ),
                false => Reply::Direct(peer, upper(text)),
            },
            // Not an answer to an answer: two such firmwares would talk forever.
            Event::Message {
                from,
                text,
                room: Some(_),
                ..
            } if !text.starts_with("heard ") => {
                let mut reply: String<256> = String::new();
                let _ = write!(reply, "heard {from}: {}", upper(text));
                Reply::Room(reply)
            }
            Event::Delivered { .. } => {
                self.receipts += 1;
                return;
            }
            Event::Disconnected { peer, .. } => {
                if self.link == Some(peer) {
                    self.link = None;
                }
                return;
            }
            _ => return,
        };
        // Four owed at once only if a peer floods the firmware: then it answers less.
        let _ = self.replies.push_back(reply);
    }
}

/// Feeds one owed answer to the node as the command a person would type.
fn answer(node: &mut DeviceNode, now: Instant, reply: Reply) {
    let mut line: String<300> = String::new();
    let _ = match &reply {
        Reply::Room(text) => write!(line, "broadcast {text}"),
        Reply::Direct(peer, text) => write!(line, "send {peer} {text}"),
    };
    if let Ok(Some(cmd)) = command::parse(&line) {
        let _ = node.handle_input(now, Input::Command(cmd));
    }
}

fn text256(text: &str) -> String<256> {
    let mut s = String::new();
    for c in text.chars() {
        if s.push(c).is_err() {
            break;
        }
    }
    s
}

/// The text upper-cased (ASCII letters), cut to [`ECHO_MAX`] bytes at a character boundary.
fn upper(text: &str) -> String<256> {
    let mut s: String<256> = String::new();
    for c in text.chars() {
        if s.len() + c.len_utf8() > ECHO_MAX || s.push(c.to_ascii_uppercase()).is_err() {
            break;
        }
    }
    s
}

/// `stack <high-water> of <size> B (boot <high-water> B), static <bytes> B
/// (node <bytes> B), receipts <n>, uptime <ms> ms, key <fingerprint>`.
fn stats(boot_stack: usize, receipts: u32, fingerprint: Option<Fingerprint>) -> String<256> {
    let (used, size) = stack_use();
    let mut s = String::new();
    let _ = write!(
        s,
        "stack {used} of {size} B (boot {boot_stack} B), static {} B (node {} B), \
         receipts {receipts}, uptime {} ms",
        static_bytes(),
        size_of::<DeviceNode>(),
        MILLIS.load(Ordering::Relaxed)
    );
    if let Some(fingerprint) = fingerprint {
        let _ = write!(s, ", key {fingerprint}");
    }
    s
}

unsafe extern "C" {
    static __sdata: u32;
    static _stack_end: u32;
    static _stack_start: u32;
}

/// RAM taken by statics: `.data`, `.bss` and `.uninit`, from the start of RAM
/// to where the stack's region begins.
fn static_bytes() -> usize {
    let start = &raw const __sdata as usize;
    let end = &raw const _stack_end as usize;
    end - start
}

/// The stack's high-water mark and its size, in bytes: the reset handler
/// painted the whole stack region (cortex-m-rt's `paint-stack`); the deepest
/// word no longer holding the paint marks the deepest the stack has been.
fn stack_use() -> (usize, usize) {
    let bottom = &raw const _stack_end as usize;
    let top = &raw const _stack_start as usize;
    let mut addr = bottom;
    while addr < top {
        // SAFETY: `addr` is a word-aligned address inside the stack region
        // given by the linker script, which is RAM; reading it changes nothing.
        let word = unsafe { core::ptr::read_volatile(addr as *const u32) };
        if word != cortex_m_rt::STACK_PAINT_VALUE {
            break;
        }
        addr += 4;
    }
    (top - addr, top - bottom)
}

/// Paints the free stack below the caller's frame again (with a margin for
/// the calls it makes), so that [`stack_use`] measures from here on.
#[inline(never)]
fn repaint_stack() {
    let bottom = &raw const _stack_end as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let mut addr = bottom;
    while addr + 256 < sp {
        // SAFETY: `addr` is word-aligned, inside the stack region and more than
        // 256 bytes below the stack pointer: memory no frame holds now (Arm has
        // no red zone, and an interrupt only pushes below the pointer while it runs).
        unsafe { core::ptr::write_volatile(addr as *mut u32, cortex_m_rt::STACK_PAINT_VALUE) };
        addr += 4;
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
