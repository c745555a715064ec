//! meshtalk: chat with peers over TCP. The std shell around `meshtalk_core`'s node:
//! it parses the command line, binds the listener and runs the driver thread.

mod driver;
mod log;
mod net;
mod prompt;
mod render;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use meshtalk_core::command::{ALIAS_MAX_LEN, validate_alias};
use meshtalk_core::node::Config;

use crate::render::Render;

/// The driver thread's stack: the node (~10 MB) lives on it.
const DRIVER_STACK: usize = 256 << 20;
/// The name used when the host name is no valid alias.
const DEFAULT_NAME: &str = "meshtalk";

#[derive(Parser)]
#[command(name = "meshtalk", version, about = "Chat with peers over TCP")]
struct Cli {
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
    /// Listen for peers and chat: commands on stdin, one per line (`help` lists them).
    Mesh(MeshArgs),
}

#[derive(Args)]
struct MeshArgs {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    bind: IpAddr,
    /// The name announced to peers (letters, digits, `_ . -`; up to 32); default: the host name.
    #[arg(long)]
    name: Option<String>,
    /// The most peers at once (at most 1024).
    #[arg(long)]
    max_peers: Option<usize>,
    /// Relay plain-text peers' lines to the whole room.
    #[arg(long)]
    hub: bool,
    /// One JSON object per event on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// Disconnect a peer that takes none of the bytes waiting for it for this long.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    stall_timeout: Duration,
}

/// A positive number of seconds, fractions allowed.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!(
            "{secs} s: must be more than 0 and at most 86400 (a day)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rust_log = std::env::var("RUST_LOG").ok();
    log::init(cli.verbose, cli.quiet, rust_log.as_deref());
    let Cmd::Mesh(args) = cli.command;
    mesh(args)
}

/// Binds, then runs the node on its own thread until the person quits.
fn mesh(args: MeshArgs) -> ExitCode {
    let name = args.name.unwrap_or_else(default_name);
    let mut config = match Config::new(&name, node_id()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!(
                "meshtalk: name '{}' is not allowed: {e}",
                name.escape_debug()
            );
            return ExitCode::from(2);
        }
    };
    if let Some(n) = args.max_peers {
        config.max_peers = n;
    }
    config.hub = args.hub;
    let render = Render { json: args.json };
    let stall = args.stall_timeout;
    let listener = match TcpListener::bind(SocketAddr::new(args.bind, args.port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!(
                "meshtalk: cannot listen on {}:{}: {e}",
                args.bind, args.port
            );
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => render.listening(addr),
        Err(e) => eprintln!("meshtalk: listening, but on which address? {e}"),
    }
    let driver = std::thread::Builder::new()
        .name("driver".into())
        .stack_size(DRIVER_STACK)
        .spawn(move || driver::run(config, listener, render, stall));
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
        .take(ALIAS_MAX_LEN)
        .collect();
    if validate_alias(&name).is_ok() {
        name
    } else {
        DEFAULT_NAME.to_string()
    }
}

/// A random id for this node: std's per-process random hash keys over the time and pid.
fn node_id() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.finish()
}
