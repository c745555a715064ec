//! meshtalk: chat with peers over TCP. The std shell around `meshtalk_core`'s node:
//! it parses the command line, binds the listener and runs the driver thread.

mod channel;
mod cli;
mod clock;
mod discover;
mod docs;
mod driver;
mod keys;
mod line;
mod log;
mod net;
mod prompt;
mod reach;
mod render;
mod said;
mod screen;
mod send_text;
mod signal;
mod transcript;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use meshtalk_core::alias::alias_from_host_name;
use meshtalk_core::command::parse_port;
use meshtalk_core::limits::SERVE_LOG;
use meshtalk_core::mode::client::Client;
use meshtalk_core::mode::serve::Serve;
use meshtalk_core::mode::{Chat, Mesh};
use meshtalk_core::node::{Config, Secure};

use crate::cli::{Cli, Cmd, DEFAULT_KEEPALIVE, DEFAULT_STALL, ListenArgs, keepalive, options};
use crate::driver::{HostMode, HostNode, Options};
use crate::keys::{KeyArgs, Keys};
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
            options.discover = args.listen.discover.on(true);
            options.auto_connect = args.auto_connect.map(usize::from);
            listen_and_run(config, &args.listen, options, |_| Box::new(Mesh))
        }
        Cmd::Chat(args) => {
            let Some(mut config) = config(args.name) else {
                return ExitCode::from(2);
            };
            config.single_peer = true;
            let mut options = options(&args.listen);
            options.discover = args.listen.discover.on(false);
            listen_and_run(config, &args.listen, options, |_| Box::new(Chat))
        }
        Cmd::Serve(args) => {
            let Some(mut config) = config(None) else {
                return ExitCode::from(2);
            };
            config.single_peer = true;
            config.serving = true;
            let mut options = options(&args);
            options.discover = args.discover.on(false);
            listen_and_run(config, &args, options, |config| {
                Box::new(Serve::<SERVE_LOG>::new(HostNode::max_text_for(config)))
            })
        }
        Cmd::Completions { shell } => exit_code(docs::completions(shell)),
        Cmd::Man => exit_code(docs::man()),
        Cmd::Keygen(args) => exit_code(keys::keygen(&args)),
        Cmd::Send(args) => {
            let render = Render { json: args.json };
            if args.text {
                return exit_code(send_text::run(&args.host, args.port, render));
            }
            let Some(mut config) = config(None) else {
                return ExitCode::from(2);
            };
            config.single_peer = true;
            let Some(keys) = secure(&mut config, &args.keys) else {
                return ExitCode::from(2);
            };
            let client: Client =
                Client::new(&args.host, args.port, HostNode::max_text_for(&config));
            let options = Options {
                stall: DEFAULT_STALL,
                keepalive: keepalive(DEFAULT_KEEPALIVE),
                reconnect: false,
                rate_limit: None,
                discover: false,
                auto_connect: None,
            };
            run(config, keys, None, render, Box::new(client), options)
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

/// The keys `args` name (the identity made on first run), set on `config` for
/// secure links; `None` after saying why they cannot be had.
fn secure(config: &mut Config, args: &KeyArgs) -> Option<Keys> {
    match Keys::load(args) {
        Ok(keys) => {
            config.secure = Some(Secure {
                identity: keys.secret,
                room_key: keys.room_key,
                allow_text: keys.allow_text,
                vet: true,
            });
            Some(keys)
        }
        Err(e) => {
            eprintln!("meshtalk: {e}");
            None
        }
    }
}

/// Binds, prints the address, then runs the node until the person (or the mode) quits;
/// `mode` is made for the node's configuration, the command line's limits applied.
fn listen_and_run(
    config: Config,
    args: &ListenArgs,
    options: Options,
    mode: impl FnOnce(&Config) -> HostMode,
) -> ExitCode {
    let mut config = args.limits.apply(config);
    let Some(keys) = secure(&mut config, &args.keys) else {
        return ExitCode::from(2);
    };
    let mode = mode(&config);
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
    run(config, keys, Some(listener), render, mode, options)
}

/// Runs the node on its own thread until the person (or the mode) quits.
fn run(
    config: Config,
    keys: Keys,
    listener: Option<TcpListener>,
    render: Render,
    mode: HostMode,
    options: Options,
) -> ExitCode {
    let driver = std::thread::Builder::new()
        .name("driver".into())
        .stack_size(DRIVER_STACK)
        .spawn(move || driver::run(config, keys, listener, render, mode, options));
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
        match parse_port(answer) {
            Ok(port) => return Ok(Some(port)),
            Err(e) => eprintln!("{e}: a number from 1 to 65535, please"),
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
    alias_from_host_name(&raw).map_or_else(|| DEFAULT_NAME.to_string(), |a| a.to_string())
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
