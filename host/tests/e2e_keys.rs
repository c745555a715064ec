//! End to end: `meshtalk keygen` makes identities and room keys in files only
//! their owner may read, and refuses to replace or use them otherwise. Every
//! child gets a temporary HOME and XDG_CONFIG_HOME.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::home::TempDir;
use regex::Regex;

/// Runs `meshtalk args` to the end with HOME and XDG_CONFIG_HOME in `home`.
fn meshtalk(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtalk"))
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("MESHTALK_ROOM_PASSPHRASE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run meshtalk")
}

/// The default identity file under `home`.
fn identity(home: &Path) -> PathBuf {
    home.join("config").join("meshtalk").join("identity")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("the file").permissions().mode() & 0o777
}

/// The fingerprint `keygen` printed, checked for its shape.
fn fingerprint(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shape =
        Regex::new(r"(?m)^fingerprint: ((?:[0-9a-hjkmnp-tv-z]{4}-){3}[0-9a-hjkmnp-tv-z]{4})$")
            .expect("a regex");
    let found = shape.captures(&stdout);
    found.unwrap_or_else(|| panic!("no fingerprint in {stdout:?}"))[1].to_string()
}

#[test]
fn keygen_makes_an_identity_only_its_owner_may_read_and_shows_its_fingerprint() {
    let home = TempDir::new("keygen");
    let out = meshtalk(home.path(), &["keygen"]);
    assert!(out.status.success(), "{out:?}");
    let path = identity(home.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("identity: {}", path.display())),
        "{stdout}"
    );
    fingerprint(&out);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().expect("its directory")), 0o700);
}

#[test]
fn a_second_keygen_refuses_and_shows_the_identity_there() {
    let home = TempDir::new("keygen-again");
    let first = meshtalk(home.path(), &["keygen"]);
    let before = fs::read(identity(home.path())).expect("the identity");
    let second = meshtalk(home.path(), &["keygen"]);
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("exists already"), "{stderr}");
    assert!(stderr.contains(&fingerprint(&first)), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(
        fs::read(identity(home.path())).expect("the identity"),
        before
    );
}

#[test]
fn keygen_force_replaces_the_identity() {
    let home = TempDir::new("keygen-force");
    let first = meshtalk(home.path(), &["keygen"]);
    let forced = meshtalk(home.path(), &["keygen", "--force"]);
    assert!(forced.status.success(), "{forced:?}");
    assert_ne!(fingerprint(&forced), fingerprint(&first));
    assert_eq!(mode(&identity(home.path())), 0o600);
}

#[test]
fn keygen_identity_makes_the_file_named() {
    let home = TempDir::new("keygen-file");
    let path = home.path().join("elsewhere").join("me");
    let out = meshtalk(
        home.path(),
        &["keygen", "--identity", path.to_str().expect("UTF-8")],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&path), 0o600);
    assert!(!identity(home.path()).exists());
}

#[test]
fn an_identity_others_may_read_is_refused_as_ssh_does() {
    let home = TempDir::new("keygen-open");
    meshtalk(home.path(), &["keygen"]);
    let path = identity(home.path());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = meshtalk(home.path(), &["keygen"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("permissions 0644 for '{}' are too open", path.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
}

#[test]
fn keygen_room_makes_a_32_byte_key_and_never_replaces_it() {
    let home = TempDir::new("keygen-room");
    let path = home.path().join("room.key");
    let file = path.to_str().expect("UTF-8");
    let out = meshtalk(home.path(), &["keygen", "--room", file]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("--room-key"), "{stdout}");
    assert_eq!(mode(&path), 0o600);
    let text = fs::read_to_string(&path).expect("the room key");
    let line = Regex::new(r"^meshtalk-room-key-v1 [0-9a-f]{64}\n$").expect("a regex");
    assert!(line.is_match(&text), "{text:?}");
    let again = meshtalk(home.path(), &["keygen", "--room", file]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(fs::read_to_string(&path).expect("the room key"), text);
    // No identity was made on the way.
    assert!(!identity(home.path()).exists());
}
