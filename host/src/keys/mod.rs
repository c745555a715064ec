//! The keys of secure links, kept in files: this node's identity, the peers
//! it has pinned (`known_peers`) and the room key. The core gets them as bytes;
//! the files, their permissions and the flags that name them live here.
//!
//! Both secrets are one text line, a label then 64 hex digits
//! (`meshtalk-identity-v1 …`, `meshtalk-room-key-v1 …`), so neither can be
//! taken for the other, and both must be readable by their owner only.

mod identity;
mod known_peers;
mod room;

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use clap::Args;
use meshtalk_core::noise::{self, Fingerprint};

pub use identity::{create_identity, default_identity, load_identity, load_or_create};
pub use known_peers::KnownPeers;
pub use room::{PASSPHRASE_VAR, create_room_key, load_room_key, room_key_from_passphrase};

/// Which keys a listening mode uses, and how it trusts peers.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Keys")]
pub struct KeyArgs {
    /// This node's secret key, made on first use (default:
    /// `$XDG_CONFIG_HOME/meshtalk/identity`); `known_peers` is kept beside it.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// A private room: only nodes holding this key (`meshtalk keygen --room FILE`)
    /// connect. Or set MESHTALK_ROOM_PASSPHRASE (not both).
    #[arg(long, value_name = "FILE")]
    pub room_key: Option<PathBuf>,
    /// Accept only peers whose names and keys are already in `known_peers`.
    #[arg(long)]
    pub strict_keys: bool,
    /// In a private room, let plain-text peers (netcat, older programs) join,
    /// marked unencrypted.
    #[arg(long)]
    pub allow_text: bool,
}

/// `meshtalk keygen`: which key to make.
#[derive(Args)]
pub struct KeygenArgs {
    /// The identity file to make (default: `$XDG_CONFIG_HOME/meshtalk/identity`).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Replace the identity there: peers that pinned the old key refuse the new
    /// one until they `/trust` it.
    #[arg(long)]
    pub force: bool,
    /// Make a room key in FILE, to share with the room's members (never replaces one).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["identity", "force"])]
    pub room: Option<PathBuf>,
}

/// Every key a node runs with, loaded from the files and flags.
pub struct Keys {
    /// Our static secret.
    pub secret: [u8; 32],
    /// Our public key's fingerprint (`/whoami`).
    pub fingerprint: Fingerprint,
    /// The room key, from `--room-key` or the passphrase; `None`: no private room.
    pub room_key: Option<[u8; 32]>,
    /// The names and keys pinned so far.
    pub known: KnownPeers,
    /// `--strict-keys`: refuse a name not in `known`.
    pub strict: bool,
    /// `--allow-text`: plain-text peers may join a private room.
    pub allow_text: bool,
}

impl Keys {
    /// The keys `args` name: the identity (made if it is the first run), the
    /// known peers beside it, and the room key from `--room-key` or
    /// [`PASSPHRASE_VAR`].
    pub fn load(args: &KeyArgs) -> Result<Keys, KeysError> {
        Keys::load_with(args, std::env::var(PASSPHRASE_VAR).ok())
    }

    /// [`Keys::load`] with the passphrase given (tests set no environment).
    fn load_with(args: &KeyArgs, passphrase: Option<String>) -> Result<Keys, KeysError> {
        let path = match &args.identity {
            Some(path) => path.clone(),
            None => default_identity().ok_or(KeysError::NoConfigDir)?,
        };
        let room_key = match (&args.room_key, passphrase) {
            (Some(_), Some(_)) => return Err(KeysError::TwoRoomKeys),
            (Some(file), None) => Some(load_room_key(file)?),
            (None, Some(phrase)) => Some(room_key_from_passphrase(&phrase)?),
            (None, None) => None,
        };
        let secret = load_or_create(&path)?;
        let public = noise::public_key(&secret);
        Ok(Keys {
            secret,
            fingerprint: Fingerprint::of(&public),
            room_key,
            known: KnownPeers::load(&path.with_file_name("known_peers"))?,
            strict: args.strict_keys,
            allow_text: args.allow_text,
        })
    }
}

/// `meshtalk keygen`: makes the identity or the room key `args` name and says
/// what it made; the exit code.
pub fn keygen(args: &KeygenArgs) -> i32 {
    let made = match (&args.room, &args.identity) {
        (Some(room), _) => create_room_key(room).map(|_| {
            println!("room key: {}", room.display());
            println!(
                "Share it only with the room's members, over a channel you trust (scp, \
                 a USB stick); each starts meshtalk with --room-key FILE. Whoever holds \
                 it can join the room."
            );
        }),
        (None, Some(path)) => new_identity(path, args.force),
        (None, None) => match default_identity() {
            Some(path) => new_identity(&path, args.force),
            None => Err(KeysError::NoConfigDir),
        },
    };
    match made {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("meshtalk: {e}");
            1
        }
    }
}

/// Makes the identity `path` (replacing one with `force`) and shows its
/// fingerprint; an identity there already is not replaced.
fn new_identity(path: &Path, force: bool) -> Result<(), KeysError> {
    let secret = match create_identity(path, force) {
        Err(KeysError::Exists { .. }) => {
            let old = load_identity(path)?;
            return Err(KeysError::IdentityExists {
                path: path.to_path_buf(),
                fingerprint: Fingerprint::of(&noise::public_key(&old)),
            });
        }
        made => made?,
    };
    println!("identity: {}", path.display());
    println!(
        "fingerprint: {}",
        Fingerprint::of(&noise::public_key(&secret))
    );
    Ok(())
}

/// Why the keys cannot be used, said so that the person can fix it.
#[derive(Debug)]
pub enum KeysError {
    /// No home directory to find the default identity in.
    NoConfigDir,
    /// A file or directory could not be read or written.
    Io {
        path: PathBuf,
        /// What was being done ("read", "write", …).
        doing: &'static str,
        error: io::Error,
    },
    /// A secret file others may read or write (as ssh refuses a private key).
    TooOpen { path: PathBuf, mode: u32 },
    /// A secret file that is not the one line expected.
    Malformed { path: PathBuf, label: &'static str },
    /// A new secret file would replace one that exists.
    Exists { path: PathBuf },
    /// `keygen` without `--force` where an identity exists.
    IdentityExists {
        path: PathBuf,
        fingerprint: Fingerprint,
    },
    /// A line of `known_peers` that is not `<name> <64 hex digits>`.
    KnownPeersLine {
        path: PathBuf,
        line: usize,
        why: &'static str,
    },
    /// A name that cannot be written to `known_peers` (empty, spaces, `#`).
    BadName(String),
    /// Both `--room-key` and [`PASSPHRASE_VAR`] were given.
    TwoRoomKeys,
    /// [`PASSPHRASE_VAR`] is set but empty.
    EmptyPassphrase,
    /// Argon2 refused to stretch the passphrase.
    Stretch(argon2::Error),
}

impl fmt::Display for KeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeysError::NoConfigDir => write!(
                f,
                "no home directory for the identity file: name one with --identity FILE"
            ),
            KeysError::Io { path, doing, error } => {
                write!(f, "cannot {doing} '{}': {error}", path.display())
            }
            KeysError::TooOpen { path, mode } => write!(
                f,
                "permissions {mode:04o} for '{0}' are too open: a secret key must be \
                 readable by its owner only (chmod 600 '{0}')",
                path.display()
            ),
            KeysError::Malformed { path, label } => write!(
                f,
                "'{}' is not the key file expected: it should be one line, '{label}' \
                 and 64 hex digits",
                path.display()
            ),
            KeysError::Exists { path } => write!(
                f,
                "'{}' exists already: a key file is never replaced (remove it first)",
                path.display()
            ),
            KeysError::IdentityExists { path, fingerprint } => write!(
                f,
                "an identity exists already in '{}', fingerprint {fingerprint}; --force \
                 replaces it (then peers that pinned it refuse the new key until they /trust it)",
                path.display()
            ),
            KeysError::KnownPeersLine { path, line, why } => write!(
                f,
                "{}:{line}: {why}; each line is '<name> <64 hex digits>' or a '#' comment \
                 (fix or delete the line)",
                path.display()
            ),
            KeysError::BadName(name) => write!(
                f,
                "'{}' cannot be pinned: a name has no spaces and does not start with '#'",
                name.escape_debug()
            ),
            KeysError::TwoRoomKeys => write!(
                f,
                "two room keys: both --room-key and {PASSPHRASE_VAR} are set; unset one"
            ),
            KeysError::EmptyPassphrase => write!(
                f,
                "{PASSPHRASE_VAR} is empty: set a passphrase the room shares, or unset it"
            ),
            KeysError::Stretch(e) => write!(f, "cannot stretch the room passphrase: {e}"),
        }
    }
}

impl std::error::Error for KeysError {}

/// What an I/O error while `doing` something to `path` is said as.
fn io_error<'a>(path: &'a Path, doing: &'static str) -> impl FnOnce(io::Error) -> KeysError + 'a {
    move |error| KeysError::Io {
        path: path.to_path_buf(),
        doing,
        error,
    }
}

/// 32 bytes from the operating system's random source.
fn random_key(path: &Path) -> Result<[u8; 32], KeysError> {
    let mut key = [0; 32];
    getrandom::fill(&mut key)
        .map_err(|e| io_error(path, "make a random key for")(io::Error::other(e)))?;
    Ok(key)
}

/// `key` as 64 lowercase hex digits.
fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits (either case) as 32 bytes; `None` for anything else.
fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut key = [0; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// Reads the secret file `path`: its owner alone may read it, and it holds one
/// line, `label` and the key in hex.
fn read_secret(path: &Path, label: &'static str) -> Result<[u8; 32], KeysError> {
    let file = fs::File::open(path).map_err(io_error(path, "read"))?;
    let mode = file
        .metadata()
        .map_err(io_error(path, "read"))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeysError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = String::new();
    // A line is 86 bytes: anything much longer is not one.
    let read = file.take(256).read_to_string(&mut text);
    let line = text.strip_suffix('\n').unwrap_or(&text);
    match (read, line.split_once(' ')) {
        (Ok(_), Some((found, key))) if found == label => unhex(key),
        _ => None,
    }
    .ok_or_else(|| KeysError::Malformed {
        path: path.to_path_buf(),
        label,
    })
}

/// Writes the secret file `path`: `label` and `key`, as [`write_file`] does.
fn write_secret(path: &Path, label: &str, key: &[u8; 32], replace: bool) -> Result<(), KeysError> {
    write_file(path, replace, format!("{label} {}\n", hex(key)).as_bytes())
}

/// Writes `contents` as the file `path` (mode 0600, its directory made 0700)
/// whole or not at all, through a temporary file beside it: renamed over
/// `path` with `replace`, else linked to it, so that of two processes
/// creating it at once one succeeds and the other gets [`KeysError::Exists`].
fn write_file(path: &Path, replace: bool, contents: &[u8]) -> Result<(), KeysError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(path, "make the directory of"))?;
    }
    // Unique to this process and call, so that writers never share one.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let temp = path.with_file_name(format!(".{name}.{}-{n}.new", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(contents)?;
            file.sync_all()
        });
    let placed = match written {
        Ok(()) if replace => fs::rename(&temp, path).map_err(io_error(path, "write")),
        Ok(()) => fs::hard_link(&temp, path).map_err(|error| match error.kind() {
            io::ErrorKind::AlreadyExists => KeysError::Exists {
                path: path.to_path_buf(),
            },
            _ => io_error(path, "write")(error),
        }),
        Err(error) => Err(io_error(path, "write")(error)),
    };
    let _ = fs::remove_file(&temp);
    placed
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use meshtalk_core::trust::Verdict;

    use super::*;

    /// A fresh empty directory for a test, under the system's temporary
    /// directory; removed when dropped.
    pub(super) struct TestDir(PathBuf);

    impl TestDir {
        pub(super) fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    pub(super) fn test_dir(what: &str) -> TestDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("meshtalk-keys-{}-{what}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("a temporary directory");
        TestDir(dir)
    }

    fn args(dir: &TestDir) -> KeyArgs {
        KeyArgs {
            identity: Some(dir.join("id")),
            ..KeyArgs::default()
        }
    }

    #[test]
    fn keys_load_makes_an_identity_and_finds_known_peers_beside_it() {
        let dir = test_dir("load");
        fs::write(dir.join("known_peers"), format!("bob {}\n", hex(&[7; 32]))).unwrap();
        let keys = Keys::load_with(&args(&dir), None).unwrap();
        assert_eq!(keys.secret, load_identity(&dir.join("id")).unwrap());
        let public = noise::public_key(&keys.secret);
        assert_eq!(keys.fingerprint, Fingerprint::of(&public));
        assert_eq!(keys.known.check("bob", &[7; 32]), Verdict::Known);
        assert_eq!(keys.room_key, None);
    }

    #[test]
    fn a_room_key_file_and_a_passphrase_together_are_refused() {
        let dir = test_dir("two-rooms");
        create_room_key(&dir.join("room")).unwrap();
        let args = KeyArgs {
            room_key: Some(dir.join("room")),
            ..args(&dir)
        };
        let loaded = Keys::load_with(&args, Some("open sesame".into()));
        assert!(matches!(loaded, Err(KeysError::TwoRoomKeys)));
    }

    #[test]
    fn the_room_key_comes_from_the_file_named() {
        let dir = test_dir("room-file");
        let key = create_room_key(&dir.join("room")).unwrap();
        let args = KeyArgs {
            room_key: Some(dir.join("room")),
            ..args(&dir)
        };
        assert_eq!(Keys::load_with(&args, None).unwrap().room_key, Some(key));
    }

    #[test]
    fn hex_round_trips_and_refuses_anything_but_64_digits() {
        let key: [u8; 32] = core::array::from_fn(|i| i as u8 * 8);
        assert_eq!(unhex(&hex(&key)), Some(key));
        assert_eq!(unhex(&hex(&key).to_uppercase()), Some(key));
        assert_eq!(unhex(&hex(&key)[1..]), None);
        assert_eq!(unhex(&format!("{}0", hex(&key))), None);
        assert_eq!(unhex(&"g".repeat(64)), None);
        assert_eq!(unhex(&"+1".repeat(32)), None);
    }

    #[test]
    fn a_secret_file_is_written_whole_with_mode_0600_and_not_replaced() {
        let dir = test_dir("write");
        let path = dir.join("sub").join("secret");
        write_secret(&path, "label", &[1; 32], false).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dir_mode = fs::metadata(dir.join("sub")).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let e = write_secret(&path, "label", &[2; 32], false).unwrap_err();
        assert!(matches!(e, KeysError::Exists { .. }), "{e}");
        assert_eq!(read_secret(&path, "label").unwrap(), [1; 32]);
        write_secret(&path, "label", &[2; 32], true).unwrap();
        assert_eq!(read_secret(&path, "label").unwrap(), [2; 32]);
        // No temporary file is left beside it.
        assert_eq!(fs::read_dir(dir.join("sub")).unwrap().count(), 1);
    }

    #[test]
    fn a_secret_file_others_may_read_is_refused_as_ssh_does() {
        let dir = test_dir("open");
        let path = dir.join("secret");
        write_secret(&path, "label", &[1; 32], false).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_secret(&path, "label").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "permissions 0644 for '{}' are too open",
                path.display()
            )),
            "{text}"
        );
        assert!(text.contains("chmod 600"), "{text}");
    }

    #[test]
    fn a_secret_file_with_another_label_or_length_is_refused() {
        let dir = test_dir("malformed");
        let path = dir.join("secret");
        for contents in [
            format!("other {}\n", hex(&[1; 32])),
            format!("label {}\n", &hex(&[1; 32])[2..]),
            format!("label {}\nmore\n", hex(&[1; 32])),
            String::from_utf8_lossy(&[1; 32]).into_owned(),
            String::new(),
        ] {
            let _ = fs::remove_file(&path);
            write_file(&path, false, contents.as_bytes()).unwrap();
            let e = read_secret(&path, "label").unwrap_err();
            assert!(
                matches!(e, KeysError::Malformed { .. }),
                "{contents:?}: {e}"
            );
        }
    }
}
