//! The whole-program load tool: starts `meshtalk mesh --hub`, `ncat --chat` and
//! a minimal relay on 127.0.0.1 and measures each under the same load, rounds
//! interleaved, reporting medians and ratios. `--help` lists the options.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use meshtalk_benches::load::client::{
    self, Prefix, Receivers, RxConfig, Sender, Shared, Talk, Tally, Wire,
};
use meshtalk_benches::load::hub::{self, Hub, HubKind, HubOptions, Programs};
use meshtalk_benches::load::perf::{self, Syscalls};
use meshtalk_benches::load::stats::{median, percentile};
use meshtalk_benches::load::{
    epoch, listen_overflows, now_ns, own_cpu, raise_nofile, relay, soak, svg,
};

const HELP: &str = "\
load: meshtalk's hub against ncat --chat and a minimal relay, on 127.0.0.1

  cargo build --release -p meshtalk
  cargo run --release -p meshtalk-benches --bin load -- [options]

  --smoke            N = 10, meshtalk only, lines and native, fan-out and all-to-all;
                     exit 1 on any lost, duplicated, merged, reordered or garbled message,
                     or any line that is no message
  --scenario S       fanout, closed, alltoall, faults, connect, stall, idle or all (default
                     all), or soak (not in all); several, comma-separated: fanout,closed
  --soak-secs N      seconds of join/leave churn in the soak scenario (default 600)
  --sizes 2,10,100   fan-out room sizes N (one sender, N-1 receivers)
  --a2a-sizes 10,100 all-to-all room sizes N (every client sends and receives)
  --peers 1000       peers connected at once in the connect and idle scenarios
  --rounds R         interleaved rounds per configuration (default 3)
  --blast S          seconds of sending as fast as the hub takes (default 2); msg/s is
                     over the blast and its deliveries, not the wait for lost ones
  --paced K          messages sent one by one at --rate before the blast (default 300)
  --rate R           paced messages per second (default 300)
  --size B           bytes per message on the wire, newline or frame header included
                     (default 64, which divides ncat's 8 KiB reads; at least 48)
  --faults-size B    message size of the faults scenario (default 65: lines that
                     straddle ncat's reads, to show what ncat does to them)
  --window W         messages in flight per receiver at most (default 256); a message
                     known lost (a later one came first, or it came damaged) frees its slot
  --closed-window W  the closed loop's lines in flight (default 16): line k + W is sent only
                     once the slowest receiver has line k; it runs for --blast seconds;
                     each line its own write
  --closed-batch     the closed loop's sender writes every line the window allows at once
  --no-perf          do not count the hub's system calls (`perf stat`, attached to the hub
                     over the blast and the closed loop; skipped with a note when missing)
  --hubs a,b         meshtalk, ncat, relay (default all three), ncat-ssl (ncat --chat --ssl
                     with TLS clients: issue 13's reference for meshtalk native on secure links)
  --acks a,b         plain, quick (TCP_QUICKACK after every read) (default both)
  --meshtalk PATH    the meshtalk binary (default target/release/meshtalk)
  --out DIR          where the SVG plot goes (default benches/results)
  --timeout S        give up the whole run after S seconds (default 1200)
";

#[derive(Clone, Debug)]
struct Opts {
    smoke: bool,
    scenario: String,
    sizes: Vec<usize>,
    rounds: usize,
    blast: f64,
    paced: u32,
    rate: f64,
    size: usize,
    faults_size: usize,
    window: u64,
    closed_window: u32,
    closed_batch: bool,
    perf: bool,
    hubs: Vec<HubKind>,
    acks: Vec<bool>,
    meshtalk: PathBuf,
    out: PathBuf,
    timeout: f64,
    soak_secs: f64,
    a2a_sizes: Vec<usize>,
    peers: usize,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        smoke: false,
        scenario: "all".into(),
        sizes: vec![2, 10, 100],
        rounds: 3,
        blast: 2.0,
        paced: 300,
        rate: 300.0,
        size: 64,
        faults_size: 65,
        window: 256,
        closed_window: 16,
        closed_batch: false,
        perf: true,
        hubs: vec![HubKind::Meshtalk, HubKind::Ncat, HubKind::Relay],
        acks: vec![false, true],
        meshtalk: hub::workspace_meshtalk(),
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"),
        timeout: 1200.0,
        soak_secs: 600.0,
        a2a_sizes: vec![10, 100],
        peers: 1000,
    };
    let sizes = |v: String, what: &str| {
        v.split(',')
            .map(|s| s.parse::<usize>().ok().filter(|&n| n >= 2))
            .collect::<Option<Vec<_>>>()
            .ok_or(format!("{what}: numbers of at least 2, comma-separated"))
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        let num = |v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("{a}: '{v}' is not a number"))
        };
        match a.as_str() {
            "--help" | "-h" => return Err(String::new()),
            "--smoke" => o.smoke = true,
            "--scenario" => o.scenario = val()?,
            "--sizes" => o.sizes = sizes(val()?, "--sizes")?,
            "--a2a-sizes" => o.a2a_sizes = sizes(val()?, "--a2a-sizes")?,
            "--peers" => o.peers = num(val()?)?.clamp(1.0, 1020.0) as usize,
            "--rounds" => o.rounds = num(val()?)?.max(1.0) as usize,
            "--blast" => o.blast = num(val()?)?,
            "--paced" => o.paced = num(val()?)? as u32,
            "--rate" => o.rate = num(val()?)?.max(1.0),
            "--size" => o.size = num(val()?)?.clamp(48.0, 4000.0) as usize,
            "--faults-size" => o.faults_size = num(val()?)?.clamp(48.0, 4000.0) as usize,
            "--window" => o.window = num(val()?)?.max(1.0) as u64,
            "--closed-window" => o.closed_window = num(val()?)?.clamp(1.0, 1e6) as u32,
            "--closed-batch" => o.closed_batch = true,
            "--no-perf" => o.perf = false,
            "--timeout" => o.timeout = num(val()?)?,
            "--soak-secs" => o.soak_secs = num(val()?)?.max(1.0),
            "--meshtalk" => o.meshtalk = PathBuf::from(val()?),
            "--out" => o.out = PathBuf::from(val()?),
            "--hubs" => {
                o.hubs = val()?
                    .split(',')
                    .map(|h| match h {
                        "meshtalk" => Ok(HubKind::Meshtalk),
                        "ncat" => Ok(HubKind::Ncat),
                        "ncat-ssl" => Ok(HubKind::NcatSsl),
                        "relay" => Ok(HubKind::Relay),
                        _ => Err(format!("--hubs: unknown hub '{h}'")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--acks" => {
                o.acks = val()?
                    .split(',')
                    .map(|h| match h {
                        "plain" => Ok(false),
                        "quick" => Ok(true),
                        _ => Err(format!("--acks: '{h}' is not plain or quick")),
                    })
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(format!("unknown option {a}")),
        }
    }
    Ok(o)
}

/// One hub, one wire, one acknowledgement mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Setup {
    hub: HubKind,
    wire: Wire,
}

impl Setup {
    /// What the hub writes before each message to a text peer.
    fn prefix(self) -> Prefix {
        match (self.hub, self.wire) {
            (_, Wire::Native) | (HubKind::Relay, _) => Prefix::Bare,
            (HubKind::Meshtalk, _) => Prefix::Tag,
            (HubKind::Ncat | HubKind::NcatSsl, _) => Prefix::ReadTag,
        }
    }

    fn label(self) -> String {
        match self.wire {
            Wire::Lines => format!("{} lines", self.hub.name()),
            Wire::Native => format!("{} native", self.hub.name()),
            Wire::Tls => format!("{} tls", self.hub.name()),
        }
    }
}

/// What one fan-out run measured.
#[derive(Clone, Debug, Default)]
struct Run {
    /// Which round it was: ratios pair the setups' runs of one round.
    round: usize,
    /// Deliveries that arrived whole per second of the blast (see [`blast_secs`]).
    msgs_per_s: f64,
    paced_p50: f64,
    paced_p99: f64,
    paced_max: f64,
    blast_p99: f64,
    /// Hub CPU per delivery while paced: every hub gets the same load, one write per message.
    paced_cpu_us_per_msg: f64,
    /// Hub CPU per delivery in the blast: each hub as fast as it goes.
    hub_cpu_us_per_msg: f64,
    /// Share of the blast (sending only, not the drain after it) the sender spent waiting
    /// for the receivers to catch up: near 100 when the hub keeps up, lower when the hub
    /// is what holds it back.
    sender_wait_pct: f64,
    tool_cpu_pct: f64,
    /// Deliveries in the span the hub's CPU and system calls were taken over (blast or closed loop).
    delivered: u64,
    /// The hub's system calls over that span, when perf counted them.
    syscalls: Option<Syscalls>,
    /// Closed loop: the sender's writes, and the lines they carried.
    sender_writes: u64,
    lines_sent: u64,
    /// Closed loop: latency of every line, median.
    blast_p50: f64,
    saturated: Vec<String>,
    tally: Tally,
}

impl Run {
    /// `f` of the hub's system calls per delivery; NaN when they were not counted.
    fn per_delivery(&self, f: fn(&Syscalls) -> u64) -> f64 {
        self.syscalls
            .as_ref()
            .map_or(f64::NAN, |s| f(s) as f64 / self.delivered.max(1) as f64)
    }

    /// Closed loop: `f` of the hub's system calls per line the sender sent; NaN uncounted.
    fn per_line(&self, f: fn(&Syscalls) -> u64) -> f64 {
        match (&self.syscalls, self.lines_sent) {
            (Some(s), lines) if lines > 0 => f(s) as f64 / lines as f64,
            _ => f64::NAN,
        }
    }

    fn sends_per_msg(&self) -> f64 {
        self.per_delivery(Syscalls::sends)
    }

    fn syscalls_per_msg(&self) -> f64 {
        self.per_delivery(Syscalls::total)
    }
}

/// One measured span of a hub: its CPU (utime + stime from `/proc/<pid>/stat`, all threads)
/// and, when perf can, its system calls (perf attached to the hub before the span begins,
/// counting from [`Span::start`] to [`Span::end`]).
struct Span {
    cpu0: f64,
    perf: Result<perf::Counter, Option<String>>,
}

impl Span {
    /// Attaches perf first (its start-up is not in the span), then takes the CPU.
    fn start(hub: &Hub, count: bool) -> Span {
        let perf = if count {
            perf::Counter::attach(hub.pid())
                .and_then(|mut c| c.enable().map(|()| c))
                .map_err(|e| Some(e.to_string()))
        } else {
            Err(None)
        };
        Span {
            cpu0: hub.cpu(),
            perf,
        }
    }

    /// The hub's CPU seconds over the span; its system calls are put in `run` (or why not,
    /// in its notes).
    fn end(self, hub: &Hub, run: &mut Run) -> f64 {
        let cpu = hub.cpu() - self.cpu0;
        match self
            .perf
            .and_then(|c| c.finish().map_err(|e| Some(e.to_string())))
        {
            Ok(calls) => run.syscalls = Some(calls),
            Err(Some(why)) => run.saturated.push(why),
            Err(None) => {}
        }
        cpu
    }
}

fn ack_name(quick: bool) -> &'static str {
    if quick { "quick-ACK" } else { "plain" }
}

/// Connects the sender (see [`client::Sender::connect`]).
fn sender_for(addr: SocketAddr, wire: Wire) -> std::io::Result<Sender> {
    Sender::connect(addr, wire)
}

/// Waits after connecting so the hub treats every client as a member of the room.
fn settle(hub: HubKind, wire: Wire) {
    let ms = match (hub, wire) {
        // A silent text peer is taken for one after meshtalk's 500 ms greeting timeout.
        (HubKind::Meshtalk, Wire::Lines) => 700,
        (HubKind::Meshtalk, Wire::Native) => 200,
        _ => 100,
    };
    thread::sleep(Duration::from_millis(ms));
}

/// Sends probes (messages the checks ignore) until all `count` receivers have heard the
/// sender: a big room of text peers takes the hub longer than a fixed wait to admit (each
/// after its 500 ms greeting timeout, later under load).
fn probe_until_heard(
    sender: &mut Sender,
    rx: &Receivers,
    count: usize,
    setup: Setup,
    size: usize,
) -> Result<(), String> {
    let mut buf = Vec::new();
    let limit = Instant::now() + ready_limit(count);
    let mut probe = 0;
    while rx.shared.heard.load(Ordering::Relaxed) < count {
        if Instant::now() > limit {
            return Err(format!(
                "{}: {} of {count} receivers heard the sender in time",
                setup.label(),
                rx.shared.heard.load(Ordering::Relaxed)
            ));
        }
        probe += 1;
        buf.clear();
        sender.encode(client::PROBE, probe, size, &mut buf);
        sender
            .write_all(&buf)
            .map_err(|e| format!("sending: {e}"))?;
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// How long a room of `n` clients may take to be greeted: 10 s, plus 20 ms a client past 100.
fn ready_limit(n: usize) -> Duration {
    Duration::from_secs(10) + Duration::from_millis(20 * n.saturating_sub(100) as u64)
}

/// Starts `setup`'s hub with room for a room of `n` clients; its address.
fn start_room(programs: &Programs, setup: Setup, n: usize) -> Result<(Hub, SocketAddr), String> {
    let hub = Hub::start(
        setup.hub,
        programs,
        HubOptions {
            max_peers: n + 10,
            stall_timeout: 5.0,
        },
    )
    .map_err(|e| e.to_string())?;
    let addr = ([127, 0, 0, 1], hub.port).into();
    Ok((hub, addr))
}

/// How long deliveries may pause before the drain after a blast ends.
const QUIET: Duration = Duration::from_millis(200);
/// The longest a drain waits in all.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Waits after a blast that ended at `end_ns` until `target` deliveries are settled (arrived
/// whole, or known lost), or none has arrived for [`QUIET`] (counted from `end_ns` at the
/// earliest: a hub that delivers nothing more is not waited for), or [`DRAIN_LIMIT`] passed.
fn drain(shared: &Shared, target: impl Fn() -> u64, end_ns: u64) {
    let limit = Instant::now() + DRAIN_LIMIT;
    while shared.settled() < target() && Instant::now() < limit {
        let last = shared.last_delivery_ns.load(Ordering::Relaxed).max(end_ns);
        if now_ns().saturating_sub(last) >= QUIET.as_nanos() as u64 {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// The seconds a blast's deliveries are divided by: from its start (`start_ns`) to its end
/// (`end_ns`) or, if later, the last delivery before the drain ended. The drain's quiet wait
/// is not in it, so a hub that loses messages is not charged for the wait for them.
fn blast_secs(shared: &Shared, start_ns: u64, end_ns: u64) -> f64 {
    let last = shared.last_delivery_ns.load(Ordering::Relaxed).max(end_ns);
    last.saturating_sub(start_ns) as f64 * 1e-9
}

/// Connects `rx_count` receivers (two threads from 50 on) and, once every one is
/// greeted, the sender; then lets the hub settle.
fn join_room(
    addr: SocketAddr,
    setup: Setup,
    rx_count: usize,
    cfg: RxConfig,
) -> Result<(Receivers, Sender), String> {
    let threads = if rx_count >= 50 { 2 } else { 1 };
    let rx = Receivers::start(addr, rx_count, threads, cfg)
        .map_err(|e| format!("connecting receivers: {e}"))?;
    if !rx.wait_ready(rx_count, ready_limit(rx_count)) {
        return Err(format!(
            "{}: receivers not greeted within {:?}",
            setup.label(),
            ready_limit(rx_count)
        ));
    }
    let sender = sender_for(addr, setup.wire).map_err(|e| format!("connecting the sender: {e}"))?;
    settle(setup.hub, setup.wire);
    Ok((rx, sender))
}

/// A blast's measures from its start: the hub's CPU and syscalls, the tool's CPU,
/// and the deliveries so far. `end` drains, takes the receivers' tallies and fills
/// in the run's throughput, CPU and blast latencies, the same for every load.
struct Blast {
    span: Span,
    tool_cpu0: f64,
    delivered0: u64,
    settled0: u64,
    start_ns: u64,
    shared: std::sync::Arc<Shared>,
}

impl Blast {
    fn start(hub: &Hub, shared: &std::sync::Arc<Shared>, perf: bool) -> Blast {
        Blast {
            span: Span::start(hub, perf),
            tool_cpu0: own_cpu(false),
            delivered0: shared.delivered.load(Ordering::Relaxed),
            settled0: shared.settled(),
            start_ns: now_ns(),
            shared: shared.clone(),
        }
    }

    /// Ends the blast once `expected` more deliveries are settled (or the drain
    /// gives up), with `last` the last sequence sent.
    fn end(self, run: &mut Run, hub: Hub, rx: Receivers, expected: u64, last: u32) {
        let shared = &self.shared;
        let end_ns = now_ns();
        drain(shared, || self.settled0 + expected, end_ns);
        let wall = blast_secs(shared, self.start_ns, end_ns);
        let delivered = shared.delivered.load(Ordering::Relaxed) - self.delivered0;
        let hub_cpu = self.span.end(&hub, run);
        let tool_cpu = own_cpu(false) - self.tool_cpu0;
        let closed = shared.closed.load(Ordering::Relaxed);
        let (tallies, rx_cpu) = rx.finish(last);
        drop(hub);
        if closed > 0 {
            run.saturated
                .push(format!("{closed} receivers closed by the hub"));
        }
        if rx_cpu > 0.9 * wall {
            run.saturated.push(format!(
                "a receiver thread busy {:.0}%",
                rx_cpu * 100.0 / wall
            ));
        }
        run.delivered = delivered;
        run.msgs_per_s = delivered as f64 / wall;
        run.hub_cpu_us_per_msg = hub_cpu * 1e6 / delivered.max(1) as f64;
        run.tool_cpu_pct = tool_cpu * 100.0 / wall;
        for t in tallies {
            run.tally.add(t);
        }
        run.tally.blast_us.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        run.blast_p50 = ms(percentile(&run.tally.blast_us, 50.0));
        run.blast_p99 = ms(percentile(&run.tally.blast_us, 99.0));
        run.tally.blast_us = Vec::new();
    }
}

fn fanout(
    programs: &Programs,
    o: &Opts,
    setup: Setup,
    quick: bool,
    n: usize,
) -> Result<Run, String> {
    let (hub, addr) = start_room(programs, setup, n)?;
    let rx_count = n - 1;
    let cfg = RxConfig {
        wire: setup.wire,
        size: o.size,
        prefix: setup.prefix(),
        quickack: quick,
        paced: o.paced,
        talk: None,
    };
    let (rx, mut sender) = join_room(addr, setup, rx_count, cfg)?;
    let mut run = Run::default();
    let mut buf = Vec::with_capacity(64 * 1024);
    probe_until_heard(&mut sender, &rx, rx_count, setup, o.size)?;

    // Paced: one message per write, at a rate every hub can take: latency without
    // queueing, and the CPU each hub spends on the same load.
    let paced_cpu0 = hub.run_time();
    let t0 = Instant::now();
    let mut late = 0;
    for seq in 1..=o.paced {
        let due = t0 + Duration::from_secs_f64(f64::from(seq) / o.rate);
        let now = Instant::now();
        if now < due {
            thread::sleep(due - now);
        } else if now > due + Duration::from_millis(5) {
            late += 1;
        }
        buf.clear();
        sender.encode(0, seq, o.size, &mut buf);
        sender
            .write_all(&buf)
            .map_err(|e| format!("sending: {e}"))?;
    }
    if late > o.paced / 10 {
        run.saturated
            .push(format!("sender late for {late} paced messages"));
    }
    let shared = rx.shared.clone();
    let paced_total = u64::from(o.paced) * rx_count as u64;
    drain(&shared, || paced_total, now_ns());
    run.paced_cpu_us_per_msg = (hub.run_time() - paced_cpu0) * 1e6
        / shared.delivered.load(Ordering::Relaxed).max(1) as f64;

    // Blast: as fast as the hub takes it, at most `window` messages in flight per receiver.
    let blast = Blast::start(&hub, &shared, o.perf);
    let sender_cpu0 = own_cpu(true);
    let settled0 = blast.settled0;
    let start = Instant::now();
    let stop_at = start + Duration::from_secs_f64(o.blast);
    let mut seq = o.paced;
    let batch = 16;
    let rxn = rx_count as u64;
    let mut waited = Duration::ZERO;
    while Instant::now() < stop_at {
        let sent = u64::from(seq - o.paced);
        // Messages known lost free their slots: a lossy hub is not throttled by its losses.
        let got = shared.settled() - settled0;
        if sent * rxn > got + o.window * rxn {
            let w = Instant::now();
            thread::sleep(Duration::from_micros(50));
            waited += w.elapsed();
            continue;
        }
        buf.clear();
        for _ in 0..batch {
            seq += 1;
            sender.encode(0, seq, o.size, &mut buf);
        }
        sender
            .write_all(&buf)
            .map_err(|e| format!("sending: {e}"))?;
    }
    let sending = start.elapsed().as_secs_f64();
    let sent = u64::from(seq - o.paced);
    let sender_cpu = own_cpu(true) - sender_cpu0;
    blast.end(&mut run, hub, rx, sent * rxn, seq);
    run.sender_wait_pct = waited.as_secs_f64() * 100.0 / sending;
    let busy = sending - waited.as_secs_f64();
    if sender_cpu > 0.9 * busy.max(1e-9) && waited.as_secs_f64() < 0.05 * sending {
        run.saturated.push(format!(
            "sender busy {:.0}% and never waited for the hub",
            sender_cpu * 100.0 / sending
        ));
    }
    run.tally.paced_us.sort_unstable();
    let ms = |us: u32| f64::from(us) / 1000.0;
    run.paced_p50 = ms(percentile(&run.tally.paced_us, 50.0));
    run.paced_p99 = ms(percentile(&run.tally.paced_us, 99.0));
    run.paced_max = ms(percentile(&run.tally.paced_us, 100.0));
    run.tally.paced_us = Vec::new();
    Ok(run)
}

type Key = (usize, bool, Setup);

/// Medians over rounds of one configuration.
struct Summary {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    blast_p99: f64,
    paced_cpu: f64,
    cpu: f64,
    sender_wait: f64,
    tool: f64,
    /// Hub system calls per delivery (all counted, and the sending ones); NaN uncounted.
    syscalls: f64,
    sends: f64,
    /// Closed loop: hub sends, reads and readiness waits per line sent.
    sends_per_line: f64,
    reads: f64,
    waits: f64,
    /// Closed loop: lines per write of the sender.
    lines_per_write: f64,
    blast_p50: f64,
    faults: Tally,
    notes: Vec<String>,
    /// Every round's run, for ratios taken round by round.
    runs: Vec<Run>,
}

fn summarize(runs: &[Run]) -> Summary {
    let m = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let mut faults = Tally::default();
    let mut notes = Vec::new();
    for r in runs {
        faults.add(r.tally.clone());
        for s in &r.saturated {
            if !notes.contains(s) {
                notes.push(s.clone());
            }
        }
    }
    Summary {
        rate: m(|r| r.msgs_per_s),
        p50: m(|r| r.paced_p50),
        p99: m(|r| r.paced_p99),
        max: m(|r| r.paced_max),
        blast_p99: m(|r| r.blast_p99),
        paced_cpu: m(|r| r.paced_cpu_us_per_msg),
        cpu: m(|r| r.hub_cpu_us_per_msg),
        sender_wait: m(|r| r.sender_wait_pct),
        tool: m(|r| r.tool_cpu_pct),
        syscalls: m(Run::syscalls_per_msg),
        sends: m(Run::sends_per_msg),
        sends_per_line: m(|r| r.per_line(Syscalls::sends)),
        reads: m(|r| r.per_line(Syscalls::reads)),
        waits: m(|r| r.per_line(Syscalls::waits)),
        lines_per_write: m(|r| r.lines_sent as f64 / r.sender_writes.max(1) as f64),
        blast_p50: m(|r| r.blast_p50),
        faults,
        notes,
        runs: runs.to_vec(),
    }
}

/// The median over rounds of the per-round ratio `f(a) / f(b)`, each run of `a` paired with
/// `b`'s run of the same round (run side by side); `None` when no round has both.
fn ratio(a: &Summary, b: &Summary, f: fn(&Run) -> f64) -> Option<f64> {
    let per_round: Vec<f64> = a
        .runs
        .iter()
        .filter_map(|ra| {
            let rb = b.runs.iter().find(|rb| rb.round == ra.round)?;
            Some(f(ra) / f(rb)).filter(|r| r.is_finite())
        })
        .collect();
    (!per_round.is_empty()).then(|| median(&per_round))
}

/// `v` with `places` decimals, or `-` when it was not measured (NaN).
fn maybe(v: f64, places: usize) -> String {
    if v.is_finite() {
        format!("{v:.places$}")
    } else {
        "-".into()
    }
}

fn faults_text(t: &Tally) -> String {
    if t.faults() == 0 {
        "none".into()
    } else {
        for (rx, from, a, b) in &t.gaps {
            eprintln!("  receiver {rx} lost sender {from}'s messages {a}..={b}");
        }
        format!(
            "lost {} dup {} merged {} reord {} garbled {} unknown {}",
            t.lost, t.duplicated, t.merged, t.reordered, t.garbled, t.unknown
        )
    }
}

fn setups(o: &Opts) -> Vec<Setup> {
    let mut v = Vec::new();
    for &hub in &o.hubs {
        let wire = match hub {
            HubKind::NcatSsl => Wire::Tls,
            _ => Wire::Lines,
        };
        v.push(Setup { hub, wire });
        if hub == HubKind::Meshtalk {
            v.push(Setup {
                hub,
                wire: Wire::Native,
            });
        }
    }
    v
}

/// ncat listens with a backlog of 10 (`ss -ltn`) and accepts more slowly than clients
/// connect (it writes each join notice to every client first), so connects overflow the queue
/// and wait for the kernel's SYN retry a second later: 300 peers took 23.6 s, 23.4 s of it in
/// 23 such waits. Fan-out skips it above this size; the connect scenario measures it.
const NCAT_MAX_N: usize = 500;

fn run_fanout(programs: &Programs, o: &Opts, deadline: Instant) -> (BTreeMap<Key, Summary>, bool) {
    rounds(o, &o.sizes, deadline, "", |o, setup, quick, n| {
        // ncat is left out above NCAT_MAX_N (see there).
        (!matches!(setup.hub, HubKind::Ncat | HubKind::NcatSsl) || n <= NCAT_MAX_N)
            .then(|| fanout(programs, o, setup, quick, n))
    })
}

/// Runs `run` for every size, round, receiver kind and setup, in that order
/// (so the setups of a round run side by side), until done or `deadline`;
/// each run is logged with `label`. `run` answers `None` for a setup it skips.
/// Returns the medians per (size, receivers, setup) and whether any run failed.
fn rounds(
    o: &Opts,
    sizes: &[usize],
    deadline: Instant,
    label: &str,
    run: impl Fn(&Opts, Setup, bool, usize) -> Option<Result<Run, String>>,
) -> (BTreeMap<Key, Summary>, bool) {
    let mut all: BTreeMap<Key, Vec<Run>> = BTreeMap::new();
    let mut errors = false;
    'outer: for &n in sizes {
        for round in 0..o.rounds {
            for &quick in &o.acks {
                for setup in setups(o) {
                    if Instant::now() > deadline {
                        eprintln!("load: --timeout reached, stopping");
                        errors = true;
                        break 'outer;
                    }
                    match run(o, setup, quick, n) {
                        None => {}
                        Some(Ok(mut run)) => {
                            run.round = round;
                            // The closed loop has no paced part: its latency is of every line.
                            let (p50, p99) = if run.blast_p50 > 0.0 {
                                (run.blast_p50, run.blast_p99)
                            } else {
                                (run.paced_p50, run.paced_p99)
                            };
                            eprintln!(
                                "{label}N={n:<4} round {round} {:<9} {:<16} {:>10.0} msg/s  p50 {:>7.2} p99 {:>7.2} ms  {}",
                                ack_name(quick),
                                setup.label(),
                                run.msgs_per_s,
                                p50,
                                p99,
                                faults_text(&run.tally)
                            );
                            all.entry((n, quick, setup)).or_default().push(run);
                        }
                        Some(Err(e)) => {
                            eprintln!("{label}N={n} {} {}: {e}", ack_name(quick), setup.label());
                            errors = true;
                        }
                    }
                }
            }
        }
    }
    (
        all.into_iter().map(|(k, v)| (k, summarize(&v))).collect(),
        errors,
    )
}

fn print_fanout(o: &Opts, table: &BTreeMap<Key, Summary>) {
    println!(
        "\n### Fan-out (one sender, N-1 receivers; medians of {} rounds)\n",
        o.rounds
    );
    println!(
        "| N | receivers | hub, wire | delivered msg/s | p50 ms | p99 ms | max ms | p99 under blast ms | hub CPU µs/msg paced | hub CPU µs/msg blast | hub syscalls/msg blast | hub sends/msg blast | sender waiting % | tool CPU % | faults | notes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for ((n, quick, setup), s) in table {
        println!(
            "| {n} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {} | {} | {:.0} | {:.0} | {} | {} |",
            ack_name(*quick),
            setup.label(),
            s.rate,
            s.p50,
            s.p99,
            s.max,
            s.blast_p99,
            s.paced_cpu,
            s.cpu,
            maybe(s.syscalls, 3),
            maybe(s.sends, 3),
            s.sender_wait,
            s.tool,
            faults_text(&s.faults),
            s.notes.join("; ")
        );
    }
    print_ratios("Ratios", &o.sizes, o, table, true);
    print_secure_ratios(&o.sizes, o, table);
    if o.hubs.contains(&HubKind::Ncat) && o.sizes.iter().any(|&n| n > NCAT_MAX_N) {
        println!(
            "\nncat not run above N = {NCAT_MAX_N}: its listen backlog of 10 overflows while it accepts, and each connect that finds it full waits 1 s for a SYN retry; see the connect scenario."
        );
    }
}

/// The ratio table: meshtalk lines over ncat and over the relay, per size and receiver mode;
/// with `paced`, also the CPU per message at the paced (same for every hub) load.
fn print_ratios(
    title: &str,
    sizes: &[usize],
    o: &Opts,
    table: &BTreeMap<Key, Summary>,
    paced: bool,
) {
    let mt = Setup {
        hub: HubKind::Meshtalk,
        wire: Wire::Lines,
    };
    let nc = Setup {
        hub: HubKind::Ncat,
        wire: Wire::Lines,
    };
    let rl = Setup {
        hub: HubKind::Relay,
        wire: Wire::Lines,
    };
    println!("\n### {title} (meshtalk lines / other, median over rounds of each round's ratio)\n");
    let cpu_head = if paced {
        " CPU per msg / ncat, paced | CPU per msg / ncat, blast |"
    } else {
        " CPU per msg / ncat |"
    };
    println!("| N | receivers | throughput / ncat | throughput / relay | p99 / ncat |{cpu_head}");
    println!(
        "|---|---|---|---|---|---|{}",
        if paced { "---|" } else { "" }
    );
    for &n in sizes {
        for &quick in &o.acks {
            let get = |s: Setup| table.get(&(n, quick, s));
            let Some(m) = get(mt) else { continue };
            let r = |other: Setup, f: fn(&Run) -> f64| {
                get(other)
                    .and_then(|c| ratio(m, c, f))
                    .map_or("-".into(), |v| format!("{v:.2}"))
            };
            let paced_cpu = if paced {
                format!(" {} |", r(nc, |r| r.paced_cpu_us_per_msg))
            } else {
                String::new()
            };
            println!(
                "| {n} | {} | {} | {} | {} |{paced_cpu} {} |",
                ack_name(quick),
                r(nc, |r| r.msgs_per_s),
                r(rl, |r| r.msgs_per_s),
                r(nc, |r| r.paced_p99),
                r(nc, |r| r.hub_cpu_us_per_msg),
            );
        }
    }
}

/// Issue 13's table: meshtalk native (secure links) over meshtalk lines (the plaintext
/// meshtalk of the same run) and over `ncat --chat --ssl` with TLS clients; printed only
/// when ncat-ssl ran (`--hubs meshtalk,ncat-ssl`).
fn print_secure_ratios(sizes: &[usize], o: &Opts, table: &BTreeMap<Key, Summary>) {
    let native = Setup {
        hub: HubKind::Meshtalk,
        wire: Wire::Native,
    };
    let lines = Setup {
        hub: HubKind::Meshtalk,
        wire: Wire::Lines,
    };
    let ssl = Setup {
        hub: HubKind::NcatSsl,
        wire: Wire::Tls,
    };
    if !table.keys().any(|k| k.2 == ssl) {
        return;
    }
    println!(
        "\n### Secure links (issue 13: meshtalk native / other, median over rounds of each round's ratio)\n"
    );
    println!(
        "| N | receivers | throughput / meshtalk lines (target >= 0.5) | throughput / ncat-ssl (target >= 1) | CPU per msg / ncat-ssl |"
    );
    println!("|---|---|---|---|---|");
    for &n in sizes {
        for &quick in &o.acks {
            let get = |s: Setup| table.get(&(n, quick, s));
            let Some(m) = get(native) else { continue };
            let r = |other: Setup, f: fn(&Run) -> f64| {
                get(other)
                    .and_then(|c| ratio(m, c, f))
                    .map_or("-".into(), |v| format!("{v:.2}"))
            };
            println!(
                "| {n} | {} | {} | {} | {} |",
                ack_name(quick),
                r(lines, |r| r.msgs_per_s),
                r(ssl, |r| r.msgs_per_s),
                r(ssl, |r| r.hub_cpu_us_per_msg),
            );
        }
    }
}

/// Fan-out at `--faults-size` (65 B: lines that straddle ncat's 8 KiB reads), one round: what
/// each hub does to such lines. Faults only: ncat's are a property of how it reads, and a
/// throughput figure from a run that damages messages would compare nothing.
fn run_faults(programs: &Programs, o: &Opts, deadline: Instant) -> bool {
    let odd = Opts {
        size: o.faults_size,
        rounds: 1,
        ..o.clone()
    };
    let (table, errors) = rounds(
        &odd,
        &odd.sizes,
        deadline,
        "faults ",
        |o, setup, quick, n| {
            (!matches!(setup.hub, HubKind::Ncat | HubKind::NcatSsl) || n <= NCAT_MAX_N)
                .then(|| fanout(programs, o, setup, quick, n))
        },
    );
    println!(
        "\n### Faults at {} B messages (fan-out, one round; not a throughput figure)\n",
        odd.size
    );
    println!(
        "| N | receivers | hub, wire | arrived whole | lost | garbled | merged | unknown lines | duplicated | reordered |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for ((n, quick, setup), s) in &table {
        let t = &s.faults;
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            ack_name(*quick),
            setup.label(),
            t.received,
            t.lost,
            t.garbled,
            t.merged,
            t.unknown,
            t.duplicated,
            t.reordered
        );
    }
    !errors
}

/// Closed loop: one sender, N-1 receivers, at most `--closed-window` (W) lines in flight:
/// line k + W is sent only once the slowest receiver has line k (whole, or known lost), so
/// every hub carries the same stream at the pace of its own slowest delivery. Runs for
/// `--blast` seconds; deliveries/s, the hub's CPU and its system calls per delivery.
fn closed_loop(
    programs: &Programs,
    o: &Opts,
    setup: Setup,
    quick: bool,
    n: usize,
) -> Result<Run, String> {
    let (hub, addr) = start_room(programs, setup, n)?;
    let rx_count = n - 1;
    let cfg = RxConfig {
        wire: setup.wire,
        size: o.size,
        prefix: setup.prefix(),
        quickack: quick,
        paced: 0,
        talk: None,
    };
    let (rx, mut sender) = join_room(addr, setup, rx_count, cfg)?;
    probe_until_heard(&mut sender, &rx, rx_count, setup, o.size)?;
    let shared = rx.shared.clone();
    // The readers wake this thread when a receiver moves on.
    let _ = shared.waiter.set(thread::current());
    let mut run = Run::default();
    let mut buf = Vec::with_capacity(64 * 1024);
    let blast = Blast::start(&hub, &shared, o.perf);
    let start = Instant::now();
    let stop_at = start + Duration::from_secs_f64(o.blast);
    let w = o.closed_window;
    let (mut next, mut writes) = (1u32, 0u64);
    let (mut low_seen, mut moved_at) = (0u32, Instant::now());
    while Instant::now() < stop_at {
        let low = shared.slowest();
        let allowed = low.saturating_add(w);
        if next <= allowed {
            // Each line its own write, as a person's client sends it (or, with
            // --closed-batch, every line the window allows in one write).
            let per_write = if o.closed_batch {
                allowed - next + 1
            } else {
                1
            };
            while next <= allowed {
                buf.clear();
                let last = allowed.min(next + per_write - 1);
                for seq in next..=last {
                    sender.encode(0, seq, o.size, &mut buf);
                }
                sender
                    .write_all(&buf)
                    .map_err(|e| format!("sending: {e}"))?;
                writes += 1;
                next = last + 1;
            }
            continue;
        }
        if low != low_seen {
            (low_seen, moved_at) = (low, Instant::now());
        } else if moved_at.elapsed() > Duration::from_secs(1) {
            // A line lost at the window's edge is known lost only when a later one comes.
            run.saturated.push(format!(
                "stopped: the slowest receiver stayed at line {low} for 1 s"
            ));
            break;
        }
        thread::park_timeout(Duration::from_millis(1));
    }
    let sent = next - 1;
    blast.end(&mut run, hub, rx, u64::from(sent) * rx_count as u64, sent);
    run.sender_writes = writes;
    run.lines_sent = u64::from(sent);
    Ok(run)
}

fn run_closed(programs: &Programs, o: &Opts, deadline: Instant) -> (BTreeMap<Key, Summary>, bool) {
    rounds(o, &o.sizes, deadline, "closed ", |o, setup, quick, n| {
        (!matches!(setup.hub, HubKind::Ncat | HubKind::NcatSsl) || n <= NCAT_MAX_N)
            .then(|| closed_loop(programs, o, setup, quick, n))
    })
}

fn print_closed(o: &Opts, table: &BTreeMap<Key, Summary>) {
    println!(
        "\n### Closed loop (one sender, N-1 receivers, {} lines in flight, {}, {} s; medians of {} rounds)\n",
        o.closed_window,
        if o.closed_batch {
            "the lines the window allows in one write"
        } else {
            "one line per write"
        },
        o.blast,
        o.rounds
    );
    println!(
        "| N | receivers | hub, wire | deliveries/s | p50 ms | p99 ms | hub CPU µs/delivery | hub syscalls/delivery | sends/delivery | sends/line | reads/line | waits/line | lines per sender write | tool CPU % | faults | notes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for ((n, quick, setup), s) in table {
        println!(
            "| {n} | {} | {} | {:.0} | {:.2} | {:.2} | {:.3} | {} | {} | {} | {} | {} | {:.1} | {:.0} | {} | {} |",
            ack_name(*quick),
            setup.label(),
            s.rate,
            s.blast_p50,
            s.blast_p99,
            s.cpu,
            maybe(s.syscalls, 3),
            maybe(s.sends, 4),
            maybe(s.sends_per_line, 1),
            maybe(s.reads, 3),
            maybe(s.waits, 3),
            s.lines_per_write,
            s.tool,
            faults_text(&s.faults),
            s.notes.join("; ")
        );
    }
    println!(
        "\n(hub CPU: utime + stime of the hub from /proc/<pid>/stat over the loop and its drain, 10 ms ticks; \
         syscalls: `perf stat -e syscalls:sys_enter_{{{}}}` attached to the hub over the same span, \
         so perf's tracepoints are in the CPU figure too; sends = write + writev + sendto + sendmsg, \
         reads = read + recvfrom, waits = epoll_wait + epoll_pwait + select + pselect6 + poll + ppoll; per line: per line the sender sent, to N-1 receivers; \
         a hub that writes once per receiver per turn of input makes N-1 sends a turn)",
        perf::CALLS.join(",")
    );
}

/// Per-round ratios of meshtalk lines to ncat and to the relay in one table (closed loop or
/// blast), and the issue-12 targets against them.
fn print_efficiency(o: &Opts, tables: &[(&str, &BTreeMap<Key, Summary>)]) {
    let mt = Setup {
        hub: HubKind::Meshtalk,
        wire: Wire::Lines,
    };
    let nc = Setup {
        hub: HubKind::Ncat,
        wire: Wire::Lines,
    };
    let rl = Setup {
        hub: HubKind::Relay,
        wire: Wire::Lines,
    };
    println!(
        "\n### Fan-out cost (meshtalk lines / other, median over rounds of each round's ratio)\n"
    );
    println!(
        "| N | load | receivers | deliveries/s / ncat | deliveries/s / relay | CPU per delivery / ncat | CPU per delivery / relay | sends per delivery / ncat | sends per delivery / relay | syscalls per delivery / relay |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // (load, quick) -> (CPU / ncat, CPU / relay, sends / relay, throughput / ncat), N = the largest.
    let mut targets: Vec<(String, bool, [Option<f64>; 4])> = Vec::new();
    let biggest = o.sizes.iter().copied().filter(|&n| n <= NCAT_MAX_N).max();
    for &n in &o.sizes {
        for (load, table) in tables {
            for &quick in &o.acks {
                let get = |s: Setup| table.get(&(n, quick, s));
                let Some(m) = get(mt) else { continue };
                let r = |other: Setup, f: fn(&Run) -> f64| get(other).and_then(|c| ratio(m, c, f));
                let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
                let row = [
                    r(nc, |r| r.hub_cpu_us_per_msg),
                    r(rl, |r| r.hub_cpu_us_per_msg),
                    r(rl, Run::sends_per_msg),
                    r(nc, |r| r.msgs_per_s),
                ];
                println!(
                    "| {n} | {load} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    ack_name(quick),
                    show(row[3]),
                    show(r(rl, |r| r.msgs_per_s)),
                    show(row[0]),
                    show(row[1]),
                    show(r(nc, Run::sends_per_msg)),
                    show(row[2]),
                    show(r(rl, Run::syscalls_per_msg)),
                );
                if Some(n) == biggest {
                    targets.push((load.to_string(), quick, row));
                }
            }
        }
    }
    let Some(n) = biggest else { return };
    if targets.is_empty() {
        return;
    }
    println!("\n### Targets (issue 12, N = {n})\n");
    let head: Vec<String> = targets
        .iter()
        .map(|(load, quick, _)| format!("{load}, {}", ack_name(*quick)))
        .collect();
    println!("| target | {} |", head.join(" | "));
    println!("|---|{}", "---|".repeat(targets.len()));
    let rows: [(&str, usize, f64, bool); 4] = [
        ("CPU per delivery <= 1x ncat", 0, 1.0, false),
        ("CPU per delivery <= 2x the relay", 1, 2.0, false),
        ("sends per delivery <= 1.5x the relay", 2, 1.5, false),
        ("quick-ACK throughput >= 1.5x ncat", 3, 1.5, true),
    ];
    for (name, i, bound, at_least) in rows {
        let cells: Vec<String> = targets
            .iter()
            .map(|(_, quick, row)| match row[i] {
                _ if at_least && !quick => "(plain: no target)".into(),
                None => "-".into(),
                Some(v) if (at_least && v >= bound) || (!at_least && v <= bound) => {
                    format!("{v:.2}x met")
                }
                Some(v) => format!("{v:.2}x missed"),
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}

fn plot(o: &Opts, table: &BTreeMap<Key, Summary>) {
    let mut series = Vec::new();
    for &quick in &o.acks {
        for setup in setups(o) {
            if setup.hub == HubKind::Relay {
                continue;
            }
            for (pct, dashed) in [("p50", false), ("p99", true)] {
                let points: Vec<(f64, f64)> = o
                    .sizes
                    .iter()
                    .filter_map(|&n| {
                        table
                            .get(&(n, quick, setup))
                            .map(|s| (n as f64, if dashed { s.p99 } else { s.p50 }))
                    })
                    .collect();
                if points.is_empty() {
                    continue;
                }
                series.push(svg::Series {
                    label: format!("{} {} {pct}", setup.label(), ack_name(quick)),
                    points,
                    dashed,
                });
            }
        }
    }
    if series.is_empty() {
        return;
    }
    let path = o.out.join("latency-by-room-size.svg");
    let doc = svg::render(
        "One-way latency by room size (paced messages, medians of rounds)",
        "room size N (log)",
        "latency ms (log)",
        &series,
    );
    match std::fs::create_dir_all(&o.out).and_then(|()| std::fs::write(&path, doc)) {
        Ok(()) => println!("\nplot: {}", path.display()),
        Err(e) => eprintln!("load: writing {}: {e}", path.display()),
    }
}

/// Every one of `n` clients sends and receives for `--blast` seconds, at most `--window`
/// messages in flight per receiver; latency is of every delivered message.
fn all_to_all(
    programs: &Programs,
    o: &Opts,
    setup: Setup,
    quick: bool,
    n: usize,
) -> Result<Run, String> {
    let (hub, addr) = start_room(programs, setup, n)?;
    let fan = (n - 1) as u64;
    let cfg = RxConfig {
        wire: setup.wire,
        size: o.size,
        prefix: setup.prefix(),
        quickack: quick,
        paced: 0,
        talk: Some(Talk {
            batch: 4,
            fanout: fan,
            in_flight: o.window * n as u64,
        }),
    };
    let threads = if n >= 50 { 2 } else { 1 };
    let rx =
        Receivers::start(addr, n, threads, cfg).map_err(|e| format!("connecting clients: {e}"))?;
    if !rx.wait_ready(n, ready_limit(n)) {
        return Err(format!("{}: clients not greeted in time", setup.label()));
    }
    settle(setup.hub, setup.wire);
    let shared = rx.shared.clone();
    let hub_cpu0 = hub.cpu();
    let tool_cpu0 = own_cpu(false);
    let start_ns = now_ns();
    shared.go.store(true, Ordering::Relaxed);
    thread::sleep(Duration::from_secs_f64(o.blast));
    shared.quiet.store(true, Ordering::Relaxed);
    let end_ns = now_ns();
    // A client between its check of `quiet` and its count may still add one batch.
    thread::sleep(Duration::from_millis(5));
    drain(
        &shared,
        || shared.sent.load(Ordering::Relaxed) * fan,
        end_ns,
    );
    let wall = blast_secs(&shared, start_ns, end_ns);
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let hub_cpu = hub.cpu() - hub_cpu0;
    let tool_cpu = own_cpu(false) - tool_cpu0;
    let closed = shared.closed.load(Ordering::Relaxed);
    let (tallies, _, rx_cpu) = rx.finish_talk(0);
    drop(hub);
    let mut run = Run {
        msgs_per_s: delivered as f64 / wall,
        hub_cpu_us_per_msg: hub_cpu * 1e6 / delivered.max(1) as f64,
        tool_cpu_pct: tool_cpu * 100.0 / wall,
        ..Run::default()
    };
    if closed > 0 {
        run.saturated
            .push(format!("{closed} clients closed by the hub"));
    }
    if rx_cpu > 0.9 * wall {
        run.saturated.push(format!(
            "a client thread busy {:.0}%",
            rx_cpu * 100.0 / wall
        ));
    }
    for t in tallies {
        run.tally.add(t);
    }
    run.tally.blast_us.sort_unstable();
    let ms = |us: u32| f64::from(us) / 1000.0;
    run.paced_p50 = ms(percentile(&run.tally.blast_us, 50.0));
    run.paced_p99 = ms(percentile(&run.tally.blast_us, 99.0));
    run.paced_max = ms(percentile(&run.tally.blast_us, 100.0));
    run.blast_p99 = run.paced_p99;
    run.tally.blast_us = Vec::new();
    Ok(run)
}

fn run_alltoall(
    programs: &Programs,
    o: &Opts,
    deadline: Instant,
) -> (BTreeMap<Key, Summary>, bool) {
    rounds(
        o,
        &o.a2a_sizes,
        deadline,
        "all-to-all ",
        |o, setup, quick, n| Some(all_to_all(programs, o, setup, quick, n)),
    )
}

fn print_alltoall(o: &Opts, table: &BTreeMap<Key, Summary>) {
    println!(
        "\n### All-to-all (N clients, each sending and receiving; medians of {} rounds)\n",
        o.rounds
    );
    println!(
        "| N | receivers | hub, wire | delivered msg/s | p50 ms | p99 ms | max ms | hub CPU µs/msg | tool CPU % | faults | notes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for ((n, quick, setup), s) in table {
        println!(
            "| {n} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} |",
            ack_name(*quick),
            setup.label(),
            s.rate,
            s.p50,
            s.p99,
            s.max,
            s.cpu,
            s.tool,
            faults_text(&s.faults),
            s.notes.join("; ")
        );
    }
    print_ratios("All-to-all ratios", &o.a2a_sizes, o, table, false);
}

/// What connecting `--peers` clients to one hub took, in seconds from the first connect.
struct Joined {
    /// Peers connected before the time limit (all, unless the hub could not keep up).
    peers: usize,
    connected: f64,
    greeted: Option<f64>,
    usable: f64,
    kib_per_peer: f64,
    hub_cpu: f64,
    tool_cpu: f64,
    /// Connects the kernel dropped for a full listen queue while these peers connected
    /// (each then waits for a SYN retry, 1 s later); counted for the whole machine.
    overflows: Option<u64>,
}

/// How long connecting the peers may take in all.
const CONNECT_LIMIT: Duration = Duration::from_secs(90);

/// Connects `peers` receivers to a hub that already has a sender; a peer is usable once a
/// message from the sender has reached it (the sender writes one every 2 ms throughout).
fn connect_time(
    programs: &Programs,
    setup: Setup,
    peers: usize,
    size: usize,
) -> Result<Joined, String> {
    let hub = Hub::start(
        setup.hub,
        programs,
        HubOptions {
            max_peers: peers + 10,
            stall_timeout: 5.0,
        },
    )
    .map_err(|e| e.to_string())?;
    let addr: SocketAddr = ([127, 0, 0, 1], hub.port).into();
    let mut sender =
        sender_for(addr, setup.wire).map_err(|e| format!("connecting the sender: {e}"))?;
    settle(setup.hub, setup.wire);
    let rss0 = hub.rss_kib();
    let cfg = RxConfig {
        wire: setup.wire,
        size,
        prefix: setup.prefix(),
        quickack: false,
        paced: 0,
        talk: None,
    };
    let (hub_cpu0, tool_cpu0) = (hub.cpu(), own_cpu(false));
    let overflows0 = listen_overflows();
    let t0 = Instant::now();
    let limit = t0 + CONNECT_LIMIT;
    let rx = Receivers::start_until(addr, peers, 2, cfg, Some(limit))
        .map_err(|e| format!("connecting: {e}"))?;
    let connected = t0.elapsed().as_secs_f64();
    let overflows = listen_overflows()
        .zip(overflows0)
        .map(|(b, a)| b.saturating_sub(a));
    let shared = rx.shared.clone();
    let mut buf = Vec::new();
    let mut greeted = None;
    let mut seq = 0;
    let peers = shared.connected.load(Ordering::Relaxed);
    let mut next_probe = Instant::now();
    // On secure links every message costs the hub a seal per peer and each peer an open
    // (about 3 µs each for 64 B): a message every 2 ms to 1000 peers would need more than
    // a core on each side, and time the probes instead of the joins.
    let probe_every = match setup.wire {
        Wire::Lines | Wire::Tls => Duration::from_millis(2),
        Wire::Native => Duration::from_millis(20),
    };
    let usable = loop {
        let now = Instant::now();
        if setup.wire == Wire::Native
            && greeted.is_none()
            && shared.ready.load(Ordering::Relaxed) >= peers
        {
            greeted = Some(t0.elapsed().as_secs_f64());
        }
        if shared.heard.load(Ordering::Relaxed) >= peers {
            break t0.elapsed().as_secs_f64();
        }
        if now > limit + Duration::from_secs(10) {
            return Err(format!(
                "{}: {} of {peers} peers heard the sender in time",
                setup.label(),
                shared.heard.load(Ordering::Relaxed)
            ));
        }
        if now >= next_probe {
            seq += 1;
            buf.clear();
            sender.encode(0, seq, size, &mut buf);
            sender
                .write_all(&buf)
                .map_err(|e| format!("sending: {e}"))?;
            next_probe += probe_every;
        }
        thread::sleep(Duration::from_micros(250));
    };
    thread::sleep(Duration::from_millis(200));
    let rss1 = hub.rss_kib();
    let hub_cpu = hub.cpu() - hub_cpu0;
    let tool_cpu = own_cpu(false) - tool_cpu0;
    rx.finish(0);
    Ok(Joined {
        peers,
        hub_cpu,
        tool_cpu,
        overflows,
        connected,
        greeted,
        usable,
        kib_per_peer: rss1.saturating_sub(rss0) as f64 / peers as f64,
    })
}

/// Time to connect `--peers` peers to one hub, rounds interleaved; medians.
fn run_connect(programs: &Programs, o: &Opts) -> bool {
    let mut all: BTreeMap<Setup, Vec<Joined>> = BTreeMap::new();
    let mut ok = true;
    for round in 0..o.rounds {
        for setup in setups(o) {
            match connect_time(programs, setup, o.peers, o.size) {
                Ok(j) => {
                    eprintln!(
                        "connect {} of {} round {round} {:<16} connected {:.3} s greeted {} usable {:.3} s, {:.1} KiB/peer, CPU hub {:.2} s tool {:.2} s, listen overflows {}",
                        j.peers,
                        o.peers,
                        setup.label(),
                        j.connected,
                        j.greeted.map_or("-".into(), |g| format!("{g:.3} s")),
                        j.usable,
                        j.kib_per_peer,
                        j.hub_cpu,
                        j.tool_cpu,
                        j.overflows.map_or("-".into(), |n| n.to_string())
                    );
                    all.entry(setup).or_default().push(j);
                }
                Err(e) => {
                    eprintln!("connect {}: {e}", setup.label());
                    ok = false;
                }
            }
        }
    }
    println!(
        "\n### Time to connect {} peers to one hub (seconds from the first connect; medians of {} rounds)\n",
        o.peers, o.rounds
    );
    println!(
        "| hub, wire | peers connected within {} s | all connect() returned | all greeted by the hub | all usable (heard the sender) | hub VmRSS KiB per peer | hub CPU s | tool CPU s | connects dropped, listen queue full |",
        CONNECT_LIMIT.as_secs()
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (setup, js) in &all {
        let m = |f: fn(&Joined) -> f64| median(&js.iter().map(f).collect::<Vec<_>>());
        let greeted: Vec<f64> = js.iter().filter_map(|j| j.greeted).collect();
        let dropped: Vec<f64> = js
            .iter()
            .filter_map(|j| j.overflows)
            .map(|n| n as f64)
            .collect();
        let overflows = if dropped.is_empty() {
            "-".into()
        } else {
            format!("{:.0}", median(&dropped))
        };
        println!(
            "| {} | {} | {:.3} | {} | {:.3} | {:.1} | {:.2} | {:.2} | {} |",
            setup.label(),
            js.iter().map(|j| j.peers).min().unwrap_or(0),
            m(|j| j.connected),
            if greeted.is_empty() {
                "-".into()
            } else {
                format!("{:.3}", median(&greeted))
            },
            m(|j| j.usable),
            m(|j| j.kib_per_peer),
            m(|j| j.hub_cpu),
            m(|j| j.tool_cpu),
            overflows
        );
    }
    println!(
        "\n(\"connects dropped\": the kernel's ListenOverflows count for this machine over the connects, median of rounds; a dropped connect waits about 1 s for the retry. ncat listens with a backlog of 10.)"
    );
    ok
}

/// One receiver stops reading; the others' delivery rate over time, per hub.
fn stall(programs: &Programs, o: &Opts) -> bool {
    const N: usize = 10;
    const TIMEOUT: f64 = 2.0;
    const SECS: f64 = 10.0;
    println!(
        "\n### Stalled reader (N = {N}, one receiver stops reading; meshtalk --stall-timeout {TIMEOUT})\n"
    );
    println!(
        "| hub | msg/s to the others, first 1 s | msg/s, last 2 s | faults for the others | stalled reader |"
    );
    println!("|---|---|---|---|---|");
    let mut ok = true;
    for &kind in &o.hubs {
        if kind == HubKind::Relay {
            continue;
        }
        let r = (|| -> Result<(f64, f64, Tally, String), String> {
            let hub = Hub::start(
                kind,
                programs,
                HubOptions {
                    max_peers: N + 10,
                    stall_timeout: TIMEOUT,
                },
            )
            .map_err(|e| e.to_string())?;
            let addr: SocketAddr = ([127, 0, 0, 1], hub.port).into();
            let mut stuck = client::connect(addr, Some(4096)).map_err(|e| e.to_string())?;
            let cfg = RxConfig {
                wire: Wire::Lines,
                size: o.size,
                prefix: Setup {
                    hub: kind,
                    wire: Wire::Lines,
                }
                .prefix(),
                quickack: true,
                paced: 0,
                talk: None,
            };
            let rx = Receivers::start(addr, N - 2, 1, cfg).map_err(|e| e.to_string())?;
            let mut sender = sender_for(addr, Wire::Lines).map_err(|e| e.to_string())?;
            settle(kind, Wire::Lines);
            let shared = rx.shared.clone();
            let healthy = (N - 2) as u64;
            let mut buf = Vec::new();
            // The hub may stop reading the sender: a write never blocks past a quarter second,
            // and the rest of a batch is sent later, so no line is ever cut or dropped here.
            sender
                .stream
                .set_write_timeout(Some(Duration::from_millis(250)))
                .map_err(|e| e.to_string())?;
            let line = o.size as u64;
            let start = Instant::now();
            let (mut seq, mut batch_first, mut written) = (0u32, 1u32, 0usize);
            let mut marks = Vec::new();
            let mut next_mark = 0.0;
            let complete =
                |batch_first: u32, written: usize| batch_first - 1 + (written as u64 / line) as u32;
            loop {
                let t = start.elapsed().as_secs_f64();
                if t >= next_mark {
                    marks.push((t, shared.delivered.load(Ordering::Relaxed)));
                    next_mark += 0.25;
                }
                if t > SECS {
                    break;
                }
                if written < buf.len() {
                    match sender.write(&buf[written..]) {
                        Ok(n) => written += n,
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock
                                    | std::io::ErrorKind::TimedOut
                                    | std::io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => return Err(format!("sending: {e}")),
                    }
                    continue;
                }
                let got = shared.delivered.load(Ordering::Relaxed);
                if u64::from(seq) * healthy > got + o.window * healthy {
                    thread::sleep(Duration::from_micros(100));
                    continue;
                }
                buf.clear();
                written = 0;
                batch_first = seq + 1;
                for _ in 0..16 {
                    seq += 1;
                    sender.encode(0, seq, o.size, &mut buf);
                }
            }
            let sent = complete(batch_first, written);
            // Let what was sent arrive (at most 3 s, or 1 s without progress).
            let drain = Instant::now() + Duration::from_secs(3);
            let (mut last, mut since) = (0, Instant::now());
            while Instant::now() < drain && since.elapsed() < Duration::from_secs(1) {
                let d = shared.delivered.load(Ordering::Relaxed);
                if d >= u64::from(sent) * healthy {
                    break;
                }
                if d != last {
                    (last, since) = (d, Instant::now());
                }
                thread::sleep(Duration::from_millis(10));
            }
            let rate = |from: f64, to: f64| {
                let at = |x: f64| marks.iter().rev().find(|(t, _)| *t <= x).map_or(0, |m| m.1);
                (at(to) - at(from)) as f64 / healthy as f64 / (to - from)
            };
            let steps: Vec<String> = marks
                .windows(2)
                .map(|w| {
                    format!(
                        "{:.0}",
                        (w[1].1 - w[0].1) as f64 / healthy as f64 / (w[1].0 - w[0].0)
                    )
                })
                .collect();
            eprintln!(
                "stall {}: msg/s per receiver, every 0.25 s: {}",
                kind.name(),
                steps.join(" ")
            );
            let first = rate(0.0, 1.0);
            let last = rate(SECS - 2.0, SECS);
            let mut probe = [0u8; 1];
            stuck.set_nonblocking(true).map_err(|e| e.to_string())?;
            let fate = match std::io::Read::read(&mut stuck, &mut probe) {
                Ok(_) => "still connected",
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => "still connected",
                Err(_) => "disconnected",
            };
            let (tallies, _) = rx.finish(sent);
            let mut tally = Tally::default();
            for t in tallies {
                tally.add(t);
            }
            drop(hub);
            let fate = if kind == HubKind::Meshtalk {
                // meshtalk closes it: a read would see the end (after the queued data) or a reset.
                let _ = stuck.set_nonblocking(false);
                let _ = stuck.set_read_timeout(Some(Duration::from_millis(100)));
                let mut sink = vec![0u8; 1 << 16];
                let mut eof = false;
                for _ in 0..1000 {
                    match std::io::Read::read(&mut stuck, &mut sink) {
                        Ok(0) | Err(_) => {
                            eof = true;
                            break;
                        }
                        Ok(_) => {}
                    }
                }
                if eof { "dropped by the hub" } else { fate }
            } else {
                fate
            };
            Ok((first, last, tally, fate.to_string()))
        })();
        match r {
            Ok((first, last, tally, fate)) => {
                ok &= kind != HubKind::Meshtalk || tally.faults() == 0;
                println!(
                    "| {} | {first:.0} | {last:.0} | {} | {fate} |",
                    kind.name(),
                    faults_text(&tally)
                );
            }
            Err(e) => {
                eprintln!("stall {}: {e}", kind.name());
                ok &= kind != HubKind::Meshtalk;
            }
        }
    }
    ok
}

/// CPU of a hub holding 100 idle peers over 10 s, and resident memory per peer.
fn idle(programs: &Programs, o: &Opts) {
    println!("\n### Idle and memory\n");
    println!(
        "| hub, peers | CPU over 10 s idle, % of a core | VmRSS before, KiB | after, KiB | KiB per peer |"
    );
    println!("|---|---|---|---|---|");
    let mut cases = vec![
        (HubKind::Meshtalk, Wire::Native, 100),
        (HubKind::Meshtalk, Wire::Lines, 100),
    ];
    if o.peers > 100 {
        cases.push((HubKind::Meshtalk, Wire::Native, o.peers));
        cases.push((HubKind::Meshtalk, Wire::Lines, o.peers));
    }
    if o.hubs.contains(&HubKind::Ncat) {
        // (ncat at 1000 peers: the connect scenario; joining them takes it minutes.)
        cases.push((HubKind::Ncat, Wire::Lines, 100));
    }
    for (kind, wire, n) in cases {
        let r = (|| -> Result<(f64, u64, u64), String> {
            let hub = Hub::start(
                kind,
                programs,
                HubOptions {
                    max_peers: n + 10,
                    stall_timeout: 5.0,
                },
            )
            .map_err(|e| e.to_string())?;
            thread::sleep(Duration::from_millis(300));
            let before = hub.rss_kib();
            let addr: SocketAddr = ([127, 0, 0, 1], hub.port).into();
            let cfg = RxConfig {
                wire,
                size: o.size,
                prefix: Setup { hub: kind, wire }.prefix(),
                quickack: false,
                paced: 0,
                talk: None,
            };
            let rx = Receivers::start(addr, n, 2, cfg).map_err(|e| e.to_string())?;
            if !rx.wait_ready(n, ready_limit(n)) {
                return Err(format!("{n} peers not greeted in time"));
            }
            // Idle means every peer admitted: one more peer probes until all have heard it.
            let mut sender = sender_for(addr, wire).map_err(|e| e.to_string())?;
            probe_until_heard(&mut sender, &rx, n, Setup { hub: kind, wire }, o.size)?;
            thread::sleep(Duration::from_secs(1));
            let after = hub.rss_kib();
            let c0 = hub.run_time();
            thread::sleep(Duration::from_secs(10));
            let cpu = (hub.run_time() - c0) * 100.0 / 10.0;
            rx.finish(0);
            Ok((cpu, before, after))
        })();
        let label = format!(
            "{} {}, {n}",
            kind.name(),
            if wire == Wire::Native {
                "native"
            } else {
                "lines"
            }
        );
        match r {
            Ok((cpu, before, after)) => println!(
                "| {label} | {cpu:.3} | {before} | {after} | {:.1} |",
                after.saturating_sub(before) as f64 / n as f64
            ),
            Err(e) => eprintln!("idle {label}: {e}"),
        }
    }
}

/// Peers joining and leaving one hub for `--soak-secs`; exit 1 on any fault.
fn run_soak(programs: &Programs, o: &Opts) -> ExitCode {
    let opts = soak::SoakOptions {
        secs: o.soak_secs,
        warmup: 10.0,
    };
    let r = match soak::run(programs, opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load --scenario soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "\n### Soak ({:.0} s of churn, {} resident text peers)\n",
        r.secs,
        soak::RESIDENTS
    );
    println!("| | VmRSS KiB | open fds |");
    println!("|---|---|---|");
    println!(
        "| start (after warm-up) | {} | {} |",
        r.start.rss_kib, r.start.fds
    );
    for (t, f) in &r.samples {
        println!("| {t:.0} s | {} | {} |", f.rss_kib, f.fds);
    }
    println!(
        "| end (churners gone) | {} | {} |",
        r.end.rss_kib, r.end.fds
    );
    println!(
        "\njoins {} leaves {} ({} native), churner errors {}; messages sent {}, delivered to residents {} of {} expected; lost {} duplicated {} reordered {}; residents dropped {}",
        r.joins,
        r.leaves,
        r.native_churners,
        r.churn_failures,
        r.sent,
        r.delivered,
        r.expected,
        r.lost,
        r.duplicated,
        r.reordered,
        r.residents_dropped
    );
    if r.ok() {
        println!(
            "load --scenario soak: every message arrived once and in order; fds back to the start count"
        );
        ExitCode::SUCCESS
    } else {
        eprintln!("load --scenario soak: FAILED");
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--relay-serve") {
        let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        return match relay::serve(port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("relay: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut o = match parse_args() {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("load: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    epoch();
    let nofile = raise_nofile();
    let biggest = o
        .sizes
        .iter()
        .chain(&o.a2a_sizes)
        .copied()
        .max()
        .unwrap_or(2)
        .max(o.peers);
    // Each peer costs a socket here and one in the hub.
    if (nofile as usize) < biggest * 2 + 64 {
        eprintln!(
            "load: only {nofile} open files allowed (ulimit -n); N = {biggest} needs {}: raise the hard limit",
            biggest * 2 + 64
        );
        return ExitCode::from(2);
    }
    if !o.meshtalk.is_file() {
        eprintln!(
            "load: {} not found: build it first with `cargo build --release -p meshtalk` (or pass --meshtalk PATH)",
            o.meshtalk.display()
        );
        return ExitCode::from(2);
    }
    let ncat = hub::which("ncat");
    if ncat.is_none()
        && !o.smoke
        && o.hubs
            .iter()
            .any(|h| matches!(h, HubKind::Ncat | HubKind::NcatSsl))
    {
        eprintln!("load: ncat not found, skipping it (Debian: `apt-get install -y ncat`)");
        o.hubs
            .retain(|&h| !matches!(h, HubKind::Ncat | HubKind::NcatSsl));
    }
    let myself = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("load"));
    let programs = Programs {
        meshtalk: o.meshtalk.clone(),
        ncat,
        myself,
    };
    let deadline = Instant::now() + Duration::from_secs_f64(o.timeout);
    if o.smoke {
        o.sizes = vec![10];
        o.rounds = 1;
        o.blast = 1.0;
        o.hubs = vec![HubKind::Meshtalk];
        o.acks = vec![false];
        // Correctness only: no perf start-up per run (the syscall columns read `-`).
        o.perf = false;
        let (table, errors) = run_fanout(&programs, &o, deadline);
        print_fanout(&o, &table);
        o.a2a_sizes = vec![10];
        o.blast = 0.5;
        let (a2a, a2a_errors) = run_alltoall(&programs, &o, deadline);
        print_alltoall(&o, &a2a);
        let faults: u64 = table
            .values()
            .chain(a2a.values())
            .map(|s| s.faults.faults())
            .sum();
        let done = table.len() + a2a.len();
        if errors || a2a_errors || faults > 0 || done != 4 {
            eprintln!("load --smoke: FAILED ({faults} faulty messages, {done} of 4 runs done)");
            return ExitCode::FAILURE;
        }
        println!("\nload --smoke: every message arrived once, whole and in order");
        return ExitCode::SUCCESS;
    }
    if o.scenario == "soak" {
        return run_soak(&programs, &o);
    }
    let mut ok = true;
    let wants = |s: &str| o.scenario.split(',').any(|x| x == s || x == "all");
    println!(
        "load: hubs {:?}, fan-out sizes {:?}, all-to-all sizes {:?}, {} rounds, {} B messages ({} B in the faults scenario), tool pid {}",
        o.hubs,
        o.sizes,
        o.a2a_sizes,
        o.rounds,
        o.size,
        o.faults_size,
        std::process::id()
    );
    let mut blast = None;
    if wants("fanout") {
        let (table, errors) = run_fanout(&programs, &o, deadline);
        print_fanout(&o, &table);
        plot(&o, &table);
        ok &= !errors;
        blast = Some(table);
    }
    if wants("closed") {
        let (table, errors) = run_closed(&programs, &o, deadline);
        print_closed(&o, &table);
        ok &= !errors;
        let mut tables = vec![("closed loop", &table)];
        if let Some(b) = &blast {
            tables.push(("blast", b));
        }
        print_efficiency(&o, &tables);
    } else if let Some(b) = &blast {
        print_efficiency(&o, &[("blast", b)]);
    }
    if wants("alltoall") {
        let (table, errors) = run_alltoall(&programs, &o, deadline);
        print_alltoall(&o, &table);
        ok &= !errors;
    }
    if wants("faults") {
        ok &= run_faults(&programs, &o, deadline);
    }
    if wants("connect") {
        ok &= run_connect(&programs, &o);
    }
    if wants("stall") {
        ok &= stall(&programs, &o);
    }
    if wants("idle") {
        idle(&programs, &o);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
