//! meshtalk: chat with peers over TCP. The std shell around `meshtalk_core`'s node:
//! it parses the command line, binds the listener and runs the driver thread.

mod channel;
mod docs;
mod driver;
mod line;
mod log;
mod mode;
mod net;
mod prompt;
mod render;
mod said;
mod send;
mod serve;
mod signal;
mod transcript;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use meshtalk_core::command::validate_alias;
use meshtalk_core::limits;
use meshtalk_core::node::Config;

use crate::driver::Options;
use crate::mode::{Chat, Mesh, Mode};
use crate::render::Render;

/// The driver thread's stack: the node (~10 MB) lives on it.
const DRIVER_STACK: usize = 256 << 20;
/// The name used when the host name is no valid alias.
const DEFAULT_NAME: &str = "meshtalk";
/// Without `--port` and off a terminal, a free port is picked from here (the
/// older programs accept only these ports).
const DEFAULT_PORTS: std::ops::RangeInclusive<u16> = 10000..=20000;
/// Random ports tried in [`DEFAULT_PORTS`] before any free port will do.
const PORT_TRIES: usize = 20;
/// The stall timeout where no flag sets it (the one-way client).
const DEFAULT_STALL: Duration = Seconds::of(limits::STALL_TIMEOUT).0;
/// TCP keepalive idle seconds where no flag sets it.
const DEFAULT_KEEPALIVE: u16 = 10;

#[derive(Parser)]
#[command(name = "meshtalk", version, about = "Chat with peers over TCP")]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// More diagnostics on stderr (connections, dials, the prompt); as `RUST_LOG=debug`.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    verbose: bool,
    /// No diagnostics on stderr (errors that stop meshtalk are still told).
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Listen for peers and chat with many at once: commands on stdin, one per line (`help` lists them).
    Mesh(MeshArgs),
    /// The two-peer chat: one peer at a time; `connect`, `send`, `disconnect`, `help`, `exit`.
    Chat(ChatArgs),
    /// The one-way server: logs each message from its client; `quit` gets the log back.
    Serve(ListenArgs),
    /// The one-way client: sends each line of stdin; `quit` or end of input prints the server's log.
    Send(SendArgs),
    /// Prints a shell completion script, e.g. `meshtalk completions bash > ~/.local/share/bash-completion/completions/meshtalk`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Prints the manual page (roff), e.g. `meshtalk man | man -l -`.
    Man,
}

/// Where to listen, and how to print.
#[derive(Args)]
struct ListenArgs {
    /// Port to listen on; 0 picks any free one. Default: asked for on a terminal,
    /// else a free one from 10000-20000.
    #[arg(long)]
    port: Option<u16>,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    bind: IpAddr,
    /// One JSON object per event on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// Disconnect a peer that takes none of the bytes waiting for it for this long.
    #[arg(long, value_name = "SECONDS", default_value_t = Seconds::of(limits::STALL_TIMEOUT),
          value_parser = parse_seconds)]
    stall_timeout: Seconds,
    /// TCP keepalive: probe a connection silent this long, so a dead link is found
    /// in about twice the time; 0 turns it off.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_KEEPALIVE,
          value_parser = clap::value_parser!(u16).range(0..=32767))]
    keepalive: u16,
    /// Show at most this many messages per second from one peer; read it no faster.
    #[arg(long, value_name = "MSGS_PER_S", value_parser = parse_rate)]
    rate_limit: Option<f64>,
    #[command(flatten)]
    prompt: PromptArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// How the prompt at a terminal keeps what was typed and said.
#[derive(Args)]
#[command(next_help_heading = "At a terminal")]
struct PromptArgs {
    /// Keep the typed lines' history in memory only, not in the state directory
    /// (`$XDG_STATE_HOME/meshtalk/history`).
    #[arg(long)]
    no_history: bool,
    /// Append a transcript of what is said, and by whom, with dates and times, to
    /// FILE (made readable by its owner only).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Do not ring the terminal's bell for a message to you or naming you (it is
    /// still highlighted).
    #[arg(long)]
    no_bell: bool,
}

impl PromptArgs {
    /// Hands the prompt and the renderer these settings for the node named `name`;
    /// before the driver starts.
    fn apply(&self, name: &str) -> Result<(), transcript::OpenError> {
        render::alert_for(name, !self.no_bell);
        prompt::keep_history_in(if self.no_history {
            None
        } else {
            prompt::default_history_file()
        });
        if let Some(file) = &self.log {
            transcript::open(file)?;
        }
        Ok(())
    }
}

/// What any one peer may cost this node; the defaults are `meshtalk_core::limits`.
#[derive(Args)]
#[command(next_help_heading = "Limits")]
struct LimitArgs {
    /// The most connections accepted at once from one IP address.
    #[arg(long, value_name = "N", default_value_t = limits::MAX_PER_IP as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_per_ip: u64,
    /// The longest message text, in bytes (at most 8128).
    #[arg(long, value_name = "BYTES", default_value_t = limits::MAX_TEXT as u64,
          value_parser = clap::value_parser!(u64).range(1..=driver::HostNode::MAX_TEXT as u64))]
    max_text: u64,
    /// Ping a meshtalk peer that has sent nothing for this long.
    #[arg(long, value_name = "SECONDS", default_value_t = Seconds::of(limits::PING_AFTER),
          value_parser = parse_seconds)]
    ping_after: Seconds,
    /// Drop a pinged peer that sends nothing for this long after the ping.
    #[arg(long, value_name = "SECONDS", default_value_t = Seconds::of(limits::DEAD_AFTER),
          value_parser = parse_seconds)]
    dead_after: Seconds,
}

impl LimitArgs {
    /// `config` with the limits given on the command line.
    fn apply(&self, mut config: Config) -> Config {
        let millis = |d: Duration| {
            meshtalk_core::time::Duration::from_millis(
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            )
        };
        config.max_per_ip = usize::try_from(self.max_per_ip).unwrap_or(usize::MAX);
        config.max_text = usize::try_from(self.max_text).unwrap_or(usize::MAX);
        config.ping_after = Some(millis(self.ping_after.0));
        config.dead_after = millis(self.dead_after.0);
        config
    }
}

#[derive(Args)]
struct ChatArgs {
    /// The name announced to peers (ASCII letters, digits, `_ . -`; up to 32); default: the host name.
    #[arg(long)]
    name: Option<String>,
    // Last: its groups of options have headings of their own.
    #[command(flatten)]
    listen: ListenArgs,
}

#[derive(Args)]
struct SendArgs {
    /// The server's host name or address.
    host: String,
    /// The server's port.
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Speak plain text with no banner, for older servers: one write per line, `quit` bare.
    #[arg(long)]
    text: bool,
    /// One JSON object per event on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct MeshArgs {
    /// The name announced to peers (ASCII letters, digits, `_ . -`; up to 32); default: the host name.
    #[arg(long)]
    name: Option<String>,
    /// The most peers at once (1-1024).
    #[arg(long, value_parser = parse_max_peers)]
    max_peers: Option<usize>,
    /// Relay plain-text peers' lines to the whole room, and give them the room:
    /// tagged lines, join and leave notices, /nick and /who.
    #[arg(long)]
    hub: bool,
    /// Dial outbound peers that drop again, waiting 1 s, 2 s, 4 s... up to 30 s;
    /// such a peer keeps its number and alias, and `disconnect` stops the dials.
    #[arg(long)]
    reconnect: bool,
    // Last: its groups of options have headings of their own.
    #[command(flatten)]
    listen: ListenArgs,
}

/// A number of peers from 1 to [`driver::MAX_PEERS`], the most the node holds.
fn parse_max_peers(text: &str) -> Result<usize, String> {
    let max = driver::MAX_PEERS;
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a number of peers, 1-{max}")),
    }
}

/// A positive number of messages per second, fractions allowed.
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of messages per second"))?;
    if !rate.is_finite() || rate <= 0.0 {
        return Err(format!("{rate}: must be more than 0"));
    }
    Ok(rate)
}

/// A positive number of seconds, fractions allowed.
/// A flag's number of seconds. Its `Display` is clap's `[default: ..]`, so a
/// default is written once, in `meshtalk_core::limits`, and `--help` shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Seconds(Duration);

impl Seconds {
    /// One of the core's durations (a default from `limits`) as seconds for a flag.
    const fn of(d: meshtalk_core::time::Duration) -> Seconds {
        Seconds(Duration::from_millis(d.as_millis()))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

fn parse_seconds(text: &str) -> Result<Seconds, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!(
            "{secs} s: must be more than 0 and at most 86400 (a day)"
        ));
    }
    Ok(Seconds(Duration::from_secs_f64(secs)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rust_log = std::env::var("RUST_LOG").ok();
    log::init(cli.verbose, cli.quiet, rust_log.as_deref());
    match cli.command {
        Cmd::Mesh(args) => {
            let Some(mut config) = config(args.name) else {
                return ExitCode::from(2);
            };
            if let Some(n) = args.max_peers {
                config.max_peers = n;
            }
            config.hub = args.hub;
            let mut options = options(&args.listen);
            options.reconnect = args.reconnect;
            listen_and_run(config, &args.listen, options, Box::new(Mesh))
        }
        Cmd::Chat(args) => {
            let Some(mut config) = config(args.name) else {
                return ExitCode::from(2);
            };
            config.single_peer = true;
            let options = options(&args.listen);
            listen_and_run(config, &args.listen, options, Box::new(Chat))
        }
        Cmd::Serve(args) => {
            let Some(mut config) = config(None) else {
                return ExitCode::from(2);
            };
            config.single_peer = true;
            config.serving = true;
            let options = options(&args);
            listen_and_run(config, &args, options, Box::new(serve::Serve::default()))
        }
        Cmd::Completions { shell } => exit_code(docs::completions(shell)),
        Cmd::Man => exit_code(docs::man()),
        Cmd::Send(args) => {
            let render = Render { json: args.json };
            if args.text {
                return exit_code(send::text(&args.host, args.port, render));
            }
            let Some(mut config) = config(None) else {
                return ExitCode::from(2);
            };
            config.single_peer = true;
            let client = send::Client::new(args.host, args.port);
            let options = Options {
                stall: DEFAULT_STALL,
                keepalive: keepalive(DEFAULT_KEEPALIVE),
                reconnect: false,
                rate_limit: None,
            };
            run(config, None, render, Box::new(client), options)
        }
    }
}

/// The node's configuration with `name` (default: the host name); `None` after
/// saying why the name is refused.
fn config(name: Option<String>) -> Option<Config> {
    let name = name.unwrap_or_else(default_name);
    match Config::new(&name, node_id()) {
        Ok(config) => Some(config),
        Err(e) => {
            eprintln!(
                "meshtalk: name '{}' is not allowed: {e}",
                name.escape_debug()
            );
            None
        }
    }
}

/// The driver's options from the listening modes' flags (`reconnect` off).
fn options(args: &ListenArgs) -> Options {
    Options {
        stall: args.stall_timeout.0,
        keepalive: keepalive(args.keepalive),
        reconnect: false,
        rate_limit: args.rate_limit,
    }
}

/// `--keepalive` seconds as the driver takes them: 0 is off.
fn keepalive(secs: u16) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(u64::from(secs)))
}

/// Binds, prints the address, then runs the node until the person (or the mode) quits.
fn listen_and_run(
    config: Config,
    args: &ListenArgs,
    options: Options,
    mode: Box<dyn Mode>,
) -> ExitCode {
    let config = args.limits.apply(config);
    if let Err(e) = args.prompt.apply(config.name.as_str()) {
        eprintln!("meshtalk: {e}");
        return ExitCode::FAILURE;
    }
    let render = Render { json: args.json };
    let listener = match listen(args.bind, args.port) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("meshtalk: {e}");
            return ExitCode::FAILURE;
        }
    };
    run(config, Some(listener), render, mode, options)
}

/// Runs the node on its own thread until the person (or the mode) quits.
fn run(
    config: Config,
    listener: Option<TcpListener>,
    render: Render,
    mode: Box<dyn Mode>,
    options: Options,
) -> ExitCode {
    let driver = std::thread::Builder::new()
        .name("driver".into())
        .stack_size(DRIVER_STACK)
        .spawn(move || driver::run(config, listener, render, mode, options));
    let code = match driver.map(|handle| handle.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => 101,
        Err(e) => {
            eprintln!("meshtalk: cannot start the driver thread: {e}");
            1
        }
    };
    // The stdin and listener threads are blocked in the kernel: end the process here.
    std::process::exit(code)
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The listener: on `port` when given (0: any free port); else, on a terminal, on
/// a port the person types; else on a free port from [`DEFAULT_PORTS`].
fn listen(bind: IpAddr, port: Option<u16>) -> Result<TcpListener, String> {
    let bind_on = |port: u16| {
        TcpListener::bind(SocketAddr::new(bind, port))
            .map_err(|e| format!("cannot listen on {bind} port {port}: {e}"))
    };
    match port {
        Some(port) => bind_on(port),
        None if io::stdin().is_terminal() => loop {
            match ask_port()? {
                None => return default_listener(bind),
                Some(port) => match bind_on(port) {
                    Ok(listener) => return Ok(listener),
                    Err(e) => eprintln!("{e}; try another"),
                },
            }
        },
        None => default_listener(bind),
    }
}

/// Asks on the terminal until a valid port comes; `None` for "any free one". The
/// question goes to stderr, so stdout stays events only.
fn ask_port() -> Result<Option<u16>, String> {
    let stdin = io::stdin();
    let mut line = String::new();
    loop {
        eprint!("Enter a port number (1-65535, Enter for a free one): ");
        let _ = io::stderr().flush();
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) => return Err("no port given".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("cannot read the port: {e}")),
        }
        let answer = line.trim();
        if answer.is_empty() {
            return Ok(None);
        }
        match answer.parse::<u16>() {
            Ok(port) if port >= 1 => return Ok(Some(port)),
            _ => eprintln!(
                "'{}' is no port: a number from 1 to 65535, please",
                answer.escape_debug()
            ),
        }
    }
}

/// A free port from [`DEFAULT_PORTS`], tried at random; any free port if none is.
fn default_listener(bind: IpAddr) -> Result<TcpListener, String> {
    let span = u64::from(DEFAULT_PORTS.end() - DEFAULT_PORTS.start()) + 1;
    for _ in 0..PORT_TRIES {
        let offset = u16::try_from(node_id() % span).unwrap_or(0);
        let port = DEFAULT_PORTS.start() + offset;
        if let Ok(listener) = TcpListener::bind(SocketAddr::new(bind, port)) {
            return Ok(listener);
        }
    }
    TcpListener::bind(SocketAddr::new(bind, 0)).map_err(|e| format!("cannot listen on {bind}: {e}"))
}

/// The host name made into a valid alias, else [`DEFAULT_NAME`].
fn default_name() -> String {
    let raw = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    // Only the first label: `box.example.com` is `box`.
    let first = raw.trim().split('.').next().unwrap_or_default();
    let name: String = first
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(limits::MAX_NAME)
        .collect();
    if validate_alias(&name).is_ok() {
        name
    } else {
        DEFAULT_NAME.to_string()
    }
}

/// A random id for this node: std's per-process random hash keys over the time and pid.
/// `MESHTALK_NODE_ID` sets it instead, so tests can say which of two nodes has the lower
/// id (it decides which of two links between them stays).
fn node_id() -> u64 {
    if let Some(id) = std::env::var("MESHTALK_NODE_ID")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return id;
    }
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_flags_default_to_the_cores_limits() {
        let cli = Cli::try_parse_from(["meshtalk", "serve"]).expect("parses");
        let Cmd::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.stall_timeout, Seconds::of(limits::STALL_TIMEOUT));
        assert_eq!(DEFAULT_STALL, args.stall_timeout.0);
        let config = args
            .limits
            .apply(Config::new("t", 1).expect("a valid name"));
        assert_eq!(config.ping_after, Some(limits::PING_AFTER));
        assert_eq!(config.dead_after, limits::DEAD_AFTER);
    }

    #[test]
    fn a_fraction_of_a_second_is_read_and_shown_as_typed() {
        let half = parse_seconds("0.5").expect("a number of seconds");
        assert_eq!(half, Seconds(Duration::from_millis(500)));
        assert_eq!(half.to_string(), "0.5");
        // Whole seconds show no ".0", as `--help` has always shown them.
        assert_eq!(Seconds(Duration::from_secs(15)).to_string(), "15");
    }
}
