//! The soak scenario: one `meshtalk mesh --hub` for many minutes while peers
//! join and leave continuously and messages flow. A pool of long-lived text
//! peers stays the whole time and checks that every message of every other
//! peer (`#k <sender> <seq>`) arrives exactly once and in order; the hub's
//! resident memory and open descriptors are read at the start and the end.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use meshtalk_core::wire::Message;

use super::client::{Link, connect};
use super::hub::{Hub, HubKind, HubOptions, Programs, proc_rss_kib};
use super::secure;

/// The marker that starts a soak message's text: `#k <sender> <seq>`.
const MARK: &[u8] = b"#k ";
/// Long-lived peers that stay for the whole run and check what they receive.
pub const RESIDENTS: usize = 20;
/// How many of the residents also send, and at what rate each (messages per second).
const TALKERS: usize = 4;
const TALK_RATE: f64 = 10.0;
/// Churning peers started per second; every fourth speaks the native protocol.
const CHURN_RATE: f64 = 5.0;
/// Messages each churner sends before it leaves.
const CHURN_MSGS: u32 = 3;
/// Sender ids of churners start here (residents are 0..RESIDENTS).
const CHURN_BASE: u64 = 1000;

/// Settings of one soak run.
#[derive(Clone, Copy, Debug)]
pub struct SoakOptions {
    pub secs: f64,
    pub warmup: f64,
}

/// The hub's footprint at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Footprint {
    pub rss_kib: u64,
    pub fds: usize,
}

/// What a soak run measured.
#[derive(Debug, Default)]
pub struct SoakReport {
    pub start: Footprint,
    pub end: Footprint,
    /// Footprints sampled during the run (seconds since the start, footprint).
    pub samples: Vec<(f64, Footprint)>,
    pub joins: u64,
    pub leaves: u64,
    pub churn_failures: u64,
    pub native_churners: u64,
    pub sent: u64,
    pub delivered: u64,
    pub expected: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub residents_dropped: u64,
    pub secs: f64,
}

impl SoakReport {
    /// Nothing lost, duplicated or reordered, no resident dropped, descriptors back to the start.
    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.reordered == 0
            && self.residents_dropped == 0
            && self.end.fds <= self.start.fds
            && self.expected > 0
    }
}

/// Open file descriptors of a process (entries of /proc/<pid>/fd).
pub fn proc_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn footprint(pid: u32) -> Footprint {
    Footprint {
        rss_kib: proc_rss_kib(pid),
        fds: proc_fds(pid),
    }
}

/// State shared by every thread of the run.
#[derive(Default)]
struct Shared {
    stop_talk: AtomicBool,
    stop_churn: AtomicBool,
    stop_read: AtomicBool,
    delivered: AtomicU64,
    joins: AtomicU64,
    leaves: AtomicU64,
    churn_failures: AtomicU64,
    native_churners: AtomicU64,
    /// Messages each sender wrote completely, by sender id.
    sent: Mutex<HashMap<u64, u32>>,
}

/// One resident's view of the streams it received, per sender.
#[derive(Default)]
struct Check {
    last: HashMap<u64, u32>,
    received: u64,
    lost: u64,
    duplicated: u64,
    reordered: u64,
}

impl Check {
    fn on_line(&mut self, line: &[u8], me: u64, shared: &Shared) {
        let Some(at) = line.windows(MARK.len()).position(|w| w == MARK) else {
            // Join and leave notices.
            return;
        };
        let mut fields = line[at + MARK.len()..].split(|&b| b == b' ').map(|f| {
            std::str::from_utf8(f)
                .ok()
                .and_then(|f| f.parse::<u64>().ok())
        });
        let (Some(Some(sender)), Some(Some(seq))) = (fields.next(), fields.next()) else {
            return;
        };
        if sender == me {
            return;
        }
        let seq = seq as u32;
        let last = self.last.entry(sender).or_insert(0);
        if seq == *last {
            self.duplicated += 1;
        } else if seq < *last {
            self.reordered += 1;
        } else {
            if seq > *last + 1 && std::env::var_os("SOAK_DEBUG").is_some() {
                eprintln!("soak: resident {me} gap {sender} {}..{seq}", *last + 1);
            }
            self.lost += u64::from(seq - *last - 1);
            *last = seq;
        }
        self.received += 1;
        shared.delivered.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the messages never seen at the end of each sender's stream.
    fn finish(&mut self, me: u64, sent: &HashMap<u64, u32>) {
        for (&sender, &count) in sent {
            if sender == me {
                continue;
            }
            let last = self.last.get(&sender).copied().unwrap_or(0);
            if count > last && std::env::var_os("SOAK_DEBUG").is_some() {
                eprintln!("soak: resident {me} lost {sender} {}..={count}", last + 1);
            }
            self.lost += u64::from(count.saturating_sub(last));
        }
    }
}

fn soak_line(sender: u64, seq: u32, out: &mut Vec<u8>) {
    let _ = write!(out, "#k {sender} {seq} ");
    while out.len() < 48 {
        out.push(b'.');
    }
}

/// A long-lived text peer: reads and checks everything; a talker also sends.
fn resident(mut s: TcpStream, me: u64, talker: bool, shared: Arc<Shared>) -> (Check, bool) {
    let mut check = Check::default();
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut seq = 0u32;
    let mut next = Instant::now();
    let period = Duration::from_secs_f64(1.0 / TALK_RATE);
    let mut dropped = false;
    let _ = s.set_read_timeout(Some(Duration::from_millis(10)));
    while !shared.stop_read.load(Ordering::Relaxed) {
        if talker && !shared.stop_talk.load(Ordering::Relaxed) && Instant::now() >= next {
            next = Instant::now() + period;
            let mut line = Vec::with_capacity(64);
            soak_line(me, seq + 1, &mut line);
            line.push(b'\n');
            if s.write_all(&line).is_err() {
                dropped = true;
                break;
            }
            seq += 1;
            if let Ok(mut sent) = shared.sent.lock() {
                sent.insert(me, seq);
            }
        }
        match s.read(&mut buf) {
            Ok(0) => {
                dropped = true;
                break;
            }
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                    for line in pending[..end].split(|&b| b == b'\n') {
                        check.on_line(line, me, &shared);
                    }
                    pending.drain(..=end);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => {
                dropped = true;
                break;
            }
        }
    }
    (check, dropped)
}

/// One churning peer: joins, sends a few messages, reads a little, leaves cleanly.
fn churner(addr: SocketAddr, id: u64, native: bool, shared: &Shared) -> io::Result<()> {
    let mut s = connect(addr, None)?;
    shared.joins.fetch_add(1, Ordering::Relaxed);
    // Native: protocol 2's handshake before anything else.
    let mut link = match native {
        true => Some(Link::sealed(secure::dial(&mut s, &format!("c{id}"), id)?)),
        false => None,
    };
    s.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut text = Vec::with_capacity(64);
    let mut frame = Vec::with_capacity(128);
    let mut written = 0;
    let result = (|| -> io::Result<()> {
        for seq in 1..=CHURN_MSGS {
            text.clear();
            soak_line(id, seq, &mut text);
            if let Some(link) = &mut link {
                let body = std::str::from_utf8(&text).unwrap_or("");
                let msg = Message::Broadcast {
                    origin: id,
                    seq,
                    hops: 8,
                    name: "c",
                    text: body,
                };
                frame.clear();
                if !link.put(&msg, &mut frame) {
                    return Err(io::Error::other("sealing a broadcast"));
                }
                s.write_all(&frame)?;
            } else {
                text.push(b'\n');
                s.write_all(&text)?;
            }
            written = seq;
            // Read a little of the room between messages.
            match s.read(&mut buf) {
                Ok(0) => return Err(io::Error::other("closed by the hub")),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })();
    if let Ok(mut sent) = shared.sent.lock() {
        sent.insert(id, written);
    }
    // Leave: no more writes, then read until the hub closes (at most 3 s).
    let _ = s.shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(3);
    let mut closed = false;
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    shared.leaves.fetch_add(1, Ordering::Relaxed);
    result?;
    if !closed {
        return Err(io::Error::other(
            "the hub did not close after the peer left",
        ));
    }
    Ok(())
}

/// Starts churners at [`CHURN_RATE`] until `stop_churn`, then waits for all of them.
fn churn(addr: SocketAddr, shared: Arc<Shared>, next_id: Arc<AtomicU64>) {
    let period = Duration::from_secs_f64(1.0 / CHURN_RATE);
    let mut next = Instant::now();
    let mut handles = Vec::new();
    while !shared.stop_churn.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        next += period;
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let native = id.is_multiple_of(4);
        if native {
            shared.native_churners.fetch_add(1, Ordering::Relaxed);
        }
        let shared = shared.clone();
        handles.push(thread::spawn(move || {
            if let Err(e) = churner(addr, id, native, &shared) {
                shared.churn_failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: churner {id}: {e}");
            }
        }));
        handles.retain(|h| !h.is_finished());
    }
    for h in handles {
        let _ = h.join();
    }
}

/// Waits until the residents' delivered count stops moving for `quiet` (at most `limit`).
fn settle(shared: &Shared, quiet: Duration, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = shared.delivered.load(Ordering::Relaxed);
    let mut since = Instant::now();
    while Instant::now() < deadline && since.elapsed() < quiet {
        thread::sleep(Duration::from_millis(50));
        let d = shared.delivered.load(Ordering::Relaxed);
        if d != last {
            (last, since) = (d, Instant::now());
        }
    }
}

/// Runs one churn phase of `secs`, sampling the hub's footprint every `every` seconds.
fn churn_phase(
    addr: SocketAddr,
    pid: u32,
    shared: &Arc<Shared>,
    next_id: &Arc<AtomicU64>,
    secs: f64,
    every: f64,
    samples: &mut Vec<(f64, Footprint)>,
) {
    shared.stop_churn.store(false, Ordering::Relaxed);
    let spawner = {
        let (shared, next_id) = (shared.clone(), next_id.clone());
        thread::spawn(move || churn(addr, shared, next_id))
    };
    let start = Instant::now();
    let mut next_sample = every;
    while start.elapsed().as_secs_f64() < secs {
        thread::sleep(Duration::from_millis(200));
        let t = start.elapsed().as_secs_f64();
        if every > 0.0 && t >= next_sample {
            let f = footprint(pid);
            eprintln!(
                "soak: {t:>5.0} s  VmRSS {} KiB  fds {}  joins {}  leaves {}  delivered {}",
                f.rss_kib,
                f.fds,
                shared.joins.load(Ordering::Relaxed),
                shared.leaves.load(Ordering::Relaxed),
                shared.delivered.load(Ordering::Relaxed)
            );
            samples.push((t, f));
            next_sample += every;
        }
    }
    shared.stop_churn.store(true, Ordering::Relaxed);
    let _ = spawner.join();
}

/// The whole soak: warm-up, footprint, `secs` of churn, footprint, checks.
pub fn run(programs: &Programs, o: SoakOptions) -> Result<SoakReport, String> {
    let hub = Hub::start(
        HubKind::Meshtalk,
        programs,
        HubOptions {
            max_peers: 256,
            stall_timeout: 5.0,
        },
    )
    .map_err(|e| e.to_string())?;
    let pid = hub.pid();
    let addr: SocketAddr = ([127, 0, 0, 1], hub.port).into();
    let shared = Arc::new(Shared::default());
    // Nobody talks before every resident is a member of the room.
    shared.stop_talk.store(true, Ordering::Relaxed);
    let mut residents = Vec::new();
    for i in 0..RESIDENTS {
        let s = connect(addr, None).map_err(|e| format!("connecting resident {i}: {e}"))?;
        let shared = shared.clone();
        residents.push(thread::spawn(move || {
            resident(s, i as u64, i < TALKERS, shared)
        }));
    }
    // A silent text peer is taken for one after meshtalk's 500 ms greeting timeout;
    // the talkers wait for it too (their first line would make them text peers anyway).
    thread::sleep(Duration::from_millis(800));
    shared.stop_talk.store(false, Ordering::Relaxed);
    let next_id = Arc::new(AtomicU64::new(CHURN_BASE));
    let mut report = SoakReport::default();
    let mut warm = Vec::new();
    churn_phase(addr, pid, &shared, &next_id, o.warmup, 0.0, &mut warm);
    thread::sleep(Duration::from_millis(500));
    report.start = footprint(pid);
    let joins0 = shared.joins.load(Ordering::Relaxed);
    let leaves0 = shared.leaves.load(Ordering::Relaxed);
    let native0 = shared.native_churners.load(Ordering::Relaxed);
    eprintln!(
        "soak: start after {:.0} s of warm-up: VmRSS {} KiB, fds {}",
        o.warmup, report.start.rss_kib, report.start.fds
    );
    let began = Instant::now();
    churn_phase(
        addr,
        pid,
        &shared,
        &next_id,
        o.secs,
        (o.secs / 10.0).clamp(1.0, 60.0),
        &mut report.samples,
    );
    report.secs = began.elapsed().as_secs_f64();
    // The churners are gone: let the hub notice the last leaves.
    thread::sleep(Duration::from_millis(500));
    report.end = footprint(pid);
    shared.stop_talk.store(true, Ordering::Relaxed);
    settle(&shared, Duration::from_secs(2), Duration::from_secs(15));
    shared.stop_read.store(true, Ordering::Relaxed);
    let sent = shared.sent.lock().map(|s| s.clone()).unwrap_or_default();
    for (i, r) in residents.into_iter().enumerate() {
        let Ok((mut check, dropped)) = r.join() else {
            report.residents_dropped += 1;
            continue;
        };
        check.finish(i as u64, &sent);
        report.residents_dropped += u64::from(dropped);
        report.delivered += check.received;
        report.lost += check.lost;
        report.duplicated += check.duplicated;
        report.reordered += check.reordered;
        report.expected += sent
            .iter()
            .filter(|&(&s, _)| s != i as u64)
            .map(|(_, &c)| u64::from(c))
            .sum::<u64>();
    }
    report.sent = sent.values().map(|&c| u64::from(c)).sum();
    report.joins = shared.joins.load(Ordering::Relaxed) - joins0;
    report.leaves = shared.leaves.load(Ordering::Relaxed) - leaves0;
    report.churn_failures = shared.churn_failures.load(Ordering::Relaxed);
    report.native_churners = shared.native_churners.load(Ordering::Relaxed) - native0;
    drop(hub);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(check: &mut Check, lines: &[&str]) {
        let shared = Shared::default();
        for l in lines {
            check.on_line(l.as_bytes(), 99, &shared);
        }
    }

    #[test]
    fn a_stream_in_order_has_no_faults() {
        let mut c = Check::default();
        feed(
            &mut c,
            &["a: #k 1 1 ..", "* b joined", "a: #k 1 2 ..", "#k 2 1 ."],
        );
        c.finish(99, &HashMap::from([(1, 2), (2, 1)]));
        assert_eq!(
            (c.received, c.lost, c.duplicated, c.reordered),
            (3, 0, 0, 0)
        );
    }

    #[test]
    fn a_gap_and_a_missing_tail_count_as_lost() {
        let mut c = Check::default();
        feed(&mut c, &["#k 1 1", "#k 1 3"]);
        c.finish(99, &HashMap::from([(1, 5), (2, 2)]));
        assert_eq!(c.lost, 1 + 2 + 2);
    }

    #[test]
    fn a_repeat_is_duplicated_and_an_older_message_is_reordered() {
        let mut c = Check::default();
        feed(&mut c, &["#k 1 1", "#k 1 2", "#k 1 2", "#k 1 1"]);
        assert_eq!((c.duplicated, c.reordered), (1, 1));
    }

    #[test]
    fn a_peer_ignores_its_own_messages() {
        let mut c = Check::default();
        feed(&mut c, &["#k 99 1"]);
        c.finish(99, &HashMap::from([(99, 4)]));
        assert_eq!((c.received, c.lost), (0, 0));
    }
}
