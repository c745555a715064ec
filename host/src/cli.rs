//! The command line: clap's definition of every subcommand and flag, their
//! parsers and defaults, and what the flags make of the node's [`Config`] and the
//! driver's [`Options`]. `main.rs` runs it; `docs.rs` makes the completions and
//! the manual page from the same definition.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use meshtalk_core::limits;
use meshtalk_core::node::Config;

use crate::driver::{self, Options};
use crate::keys::{KeyArgs, KeygenArgs};
use crate::prompt;
use crate::render;
use crate::transcript;

/// The stall timeout where no flag sets it (the one-way client).
pub const DEFAULT_STALL: Duration = Seconds::of(limits::STALL_TIMEOUT).0;
/// TCP keepalive idle seconds where no flag sets it.
pub const DEFAULT_KEEPALIVE: u16 = 10;

#[derive(Parser)]
#[command(name = "meshtalk", version, about = "Chat with peers over TCP")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
    /// More diagnostics on stderr (connections, dials, the prompt); as `RUST_LOG=debug`.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// No diagnostics on stderr (errors that stop meshtalk are still told).
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub enum Cmd {
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
    /// Makes this node's identity (its secret key) and shows its fingerprint;
    /// with `--room FILE`, makes a room key instead.
    Keygen(KeygenArgs),
}

/// Where to listen, and how to print.
#[derive(Args)]
pub struct ListenArgs {
    /// Port to listen on; 0 picks any free one. Default: asked for on a terminal,
    /// else a free one from 10000-20000.
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on; the addresses peers can reach it at are printed at start.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub bind: IpAddr,
    /// One JSON object per event on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Disconnect a peer that takes none of the bytes waiting for it for this long.
    #[arg(long, value_name = "SECONDS", default_value_t = Seconds::of(limits::STALL_TIMEOUT),
          value_parser = parse_seconds)]
    pub stall_timeout: Seconds,
    /// TCP keepalive: probe a connection silent this long, so a dead link is found
    /// in about twice the time; 0 turns it off.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_KEEPALIVE,
          value_parser = clap::value_parser!(u16).range(0..=32767))]
    pub keepalive: u16,
    /// Show at most this many messages per second from one peer; read it no faster.
    #[arg(long, value_name = "MSGS_PER_S", value_parser = parse_rate)]
    pub rate_limit: Option<f64>,
    #[command(flatten)]
    pub discover: DiscoverArgs,
    #[command(flatten)]
    pub prompt: PromptArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// LAN discovery: announcing this node on the local network and hearing others.
#[derive(Args)]
#[command(next_help_heading = "LAN discovery")]
pub struct DiscoverArgs {
    /// Announce this node on the local network (UDP multicast on each interface
    /// the listener is reachable on) and list the nodes heard (`/nearby`); on by
    /// default in `mesh`.
    #[arg(long, overrides_with = "no_discover")]
    pub discover: bool,
    /// Neither announce this node nor listen for others.
    #[arg(long, overrides_with = "discover")]
    pub no_discover: bool,
}

impl DiscoverArgs {
    /// Whether discovery runs, `default` unless a flag says otherwise (the last given wins).
    pub fn on(&self, default: bool) -> bool {
        match (self.discover, self.no_discover) {
            (true, _) => true,
            (_, true) => false,
            _ => default,
        }
    }
}

/// How the prompt at a terminal keeps what was typed and said.
#[derive(Args)]
#[command(next_help_heading = "At a terminal")]
pub struct PromptArgs {
    /// Keep the typed lines' history in memory only, not in the state directory
    /// (`$XDG_STATE_HOME/meshtalk/history`).
    #[arg(long)]
    pub no_history: bool,
    /// Append a transcript of what is said, and by whom, with dates and times, to
    /// FILE (made readable by its owner only).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Do not ring the terminal's bell for a message to you or naming you (it is
    /// still highlighted).
    #[arg(long)]
    pub no_bell: bool,
}

impl PromptArgs {
    /// Hands the prompt and the renderer these settings for the node named `name`;
    /// before the driver starts.
    pub fn apply(&self, name: &str) -> Result<(), transcript::OpenError> {
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
pub struct LimitArgs {
    /// The most connections accepted at once from one IP address.
    #[arg(long, value_name = "N", default_value_t = limits::MAX_PER_IP as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_per_ip: u64,
    /// The longest message text, in bytes (at most 8128).
    #[arg(long, value_name = "BYTES", default_value_t = limits::MAX_TEXT as u64,
          value_parser = clap::value_parser!(u64).range(1..=driver::HostNode::MAX_TEXT as u64))]
    pub max_text: u64,
    /// Ping a meshtalk peer that has sent nothing for this long.
    #[arg(long, value_name = "SECONDS", default_value_t = Seconds::of(limits::PING_AFTER),
          value_parser = parse_seconds)]
    pub ping_after: Seconds,
    /// Drop a pinged peer that sends nothing for this long after the ping.
    #[arg(long, value_name = "SECONDS", default_value_t = Seconds::of(limits::DEAD_AFTER),
          value_parser = parse_seconds)]
    pub dead_after: Seconds,
}

impl LimitArgs {
    /// `config` with the limits given on the command line.
    pub fn apply(&self, mut config: Config) -> Config {
        config.max_per_ip = usize::try_from(self.max_per_ip).unwrap_or(usize::MAX);
        config.max_text = usize::try_from(self.max_text).unwrap_or(usize::MAX);
        config.ping_after = Some(self.ping_after.0.into());
        config.dead_after = self.dead_after.0.into();
        config
    }
}

#[derive(Args)]
pub struct ChatArgs {
    /// The name announced to peers (ASCII letters, digits, `_ . -`; up to 32); default: the host name.
    #[arg(long)]
    pub name: Option<String>,
    // Last: its groups of options have headings of their own.
    #[command(flatten)]
    pub listen: ListenArgs,
}

#[derive(Args)]
pub struct SendArgs {
    /// The server's host name or address.
    pub host: String,
    /// The server's port.
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Speak plain text with no banner, for older servers: one write per line, `quit` bare.
    #[arg(long)]
    pub text: bool,
    /// One JSON object per event on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub keys: KeyArgs,
}

#[derive(Args)]
pub struct MeshArgs {
    /// The name announced to peers (ASCII letters, digits, `_ . -`; up to 32); default: the host name.
    #[arg(long)]
    pub name: Option<String>,
    /// The most peers at once (1-1024).
    #[arg(long, value_parser = parse_max_peers)]
    pub max_peers: Option<usize>,
    /// Relay plain-text peers' lines to the whole room, and give them the room:
    /// tagged lines, join and leave notices, /nick and /who.
    #[arg(long)]
    pub hub: bool,
    /// Dial outbound peers that drop again, waiting 1 s, 2 s, 4 s... up to 30 s;
    /// such a peer keeps its number and alias, and `disconnect` stops the dials.
    #[arg(long)]
    pub reconnect: bool,
    /// Link to up to N members of our room that LAN discovery finds (default 3
    /// when given bare); a node dials only those whose key sorts after its own,
    /// so two nodes never dial each other at once.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "3",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub auto_connect: Option<u16>,
    // Last: its groups of options have headings of their own.
    #[command(flatten)]
    pub listen: ListenArgs,
}

/// A number of peers from 1 to [`driver::MAX_PEERS`], the most the node holds.
pub fn parse_max_peers(text: &str) -> Result<usize, String> {
    let max = driver::MAX_PEERS;
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a number of peers, 1-{max}")),
    }
}

/// A positive number of messages per second, fractions allowed.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of messages per second"))?;
    if !rate.is_finite() || rate <= 0.0 {
        return Err(format!("{rate}: must be more than 0"));
    }
    Ok(rate)
}

/// A flag's number of seconds. Its `Display` is clap's `[default: ..]`, so a
/// default is written once, in `meshtalk_core::limits`, and `--help` shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seconds(pub Duration);

impl Seconds {
    /// One of the core's durations (a default from `limits`) as seconds for a flag.
    pub const fn of(d: meshtalk_core::time::Duration) -> Seconds {
        Seconds(Duration::from_millis(d.as_millis()))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// A positive number of seconds, fractions allowed, up to a day.
pub fn parse_seconds(text: &str) -> Result<Seconds, String> {
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

/// The driver's options from the listening modes' flags (`reconnect` off).
pub fn options(args: &ListenArgs) -> Options {
    Options {
        stall: args.stall_timeout.0,
        keepalive: keepalive(args.keepalive),
        reconnect: false,
        rate_limit: args.rate_limit,
        discover: false,
        auto_connect: None,
    }
}

/// `--keepalive` seconds as the driver takes them: 0 is off.
pub fn keepalive(secs: u16) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(u64::from(secs)))
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
    fn discovery_is_on_in_mesh_and_off_elsewhere_unless_a_flag_says_otherwise() {
        let mesh = |args: &[&str]| {
            let cli =
                Cli::try_parse_from([&["meshtalk", "mesh"][..], args].concat()).expect("parses");
            let Cmd::Mesh(args) = cli.command else {
                panic!("not mesh");
            };
            args.listen.discover.on(true)
        };
        assert!(mesh(&[]));
        assert!(!mesh(&["--no-discover"]));
        assert!(mesh(&["--no-discover", "--discover"]), "the last flag wins");
        let cli = Cli::try_parse_from(["meshtalk", "serve"]).expect("parses");
        let Cmd::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert!(!args.discover.on(false));
    }

    #[test]
    fn auto_connect_bare_links_to_three() {
        let cli = Cli::try_parse_from(["meshtalk", "mesh", "--auto-connect"]).expect("parses");
        let Cmd::Mesh(args) = cli.command else {
            panic!("not mesh");
        };
        assert_eq!(args.auto_connect, Some(3));
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
