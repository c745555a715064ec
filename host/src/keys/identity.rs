//! This node's identity: the long-term static secret its links authenticate
//! with, in `$XDG_CONFIG_HOME/meshtalk/identity` unless `--identity` names
//! another file. The file is one line, `meshtalk-identity-v1` and the secret
//! in hex, mode 0600; the public key is derived from it each start.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{KeysError, random_key, read_secret, write_secret};

/// The first word of an identity file.
const LABEL: &str = "meshtalk-identity-v1";

/// `identity` in the platform's config directory
/// (`$XDG_CONFIG_HOME/meshtalk/identity`, else `~/.config/meshtalk/identity`);
/// `None` without a home directory.
pub fn default_identity() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "meshtalk")?;
    Some(dirs.config_dir().join("identity"))
}

/// The secret in the identity file `path`.
pub fn load_identity(path: &Path) -> Result<[u8; 32], KeysError> {
    read_secret(path, LABEL)
}

/// A new random identity written to `path` (mode 0600, its directory 0700);
/// with `replace` it replaces an identity there, else that is an error.
pub fn create_identity(path: &Path, replace: bool) -> Result<[u8; 32], KeysError> {
    let secret = random_key(path)?;
    write_secret(path, LABEL, &secret, replace)?;
    Ok(secret)
}

/// The identity in `path`, made first if there is none (the first run). Two
/// nodes starting at once with the same file get the same identity.
pub fn load_or_create(path: &Path) -> Result<[u8; 32], KeysError> {
    match load_identity(path) {
        Err(KeysError::Io { error, .. }) if error.kind() == ErrorKind::NotFound => {}
        loaded => return loaded,
    }
    match create_identity(path, false) {
        // Another start made it between our read and our write: use theirs.
        Err(KeysError::Exists { .. }) => load_identity(path),
        created => created,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::super::tests::test_dir;
    use super::*;

    #[test]
    fn the_first_load_creates_an_identity_and_later_loads_return_it() {
        let dir = test_dir("first");
        let path = dir.join("meshtalk").join("identity");
        let made = load_or_create(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap(), made);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("meshtalk-identity-v1 "), "{text}");
        assert_eq!(text.len(), LABEL.len() + 1 + 64 + 1);
    }

    #[test]
    fn two_identities_are_not_the_same() {
        let dir = test_dir("two");
        let a = create_identity(&dir.join("a"), false).unwrap();
        let b = create_identity(&dir.join("b"), false).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn an_identity_is_replaced_only_when_asked() {
        let dir = test_dir("replace");
        let path = dir.join("identity");
        let first = create_identity(&path, false).unwrap();
        let e = create_identity(&path, false).unwrap_err();
        assert!(matches!(e, KeysError::Exists { .. }), "{e}");
        assert_eq!(load_identity(&path).unwrap(), first);
        let second = create_identity(&path, true).unwrap();
        assert_ne!(second, first);
        assert_eq!(load_identity(&path).unwrap(), second);
    }

    #[test]
    fn nodes_starting_at_once_share_one_identity() {
        let dir = test_dir("race");
        let path = dir.join("identity");
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || load_or_create(&path).unwrap())
            })
            .collect();
        let secrets: Vec<_> = starts.into_iter().map(|s| s.join().unwrap()).collect();
        assert!(secrets.iter().all(|s| *s == secrets[0]));
    }

    #[test]
    fn a_room_key_file_is_not_an_identity() {
        let dir = test_dir("room");
        let path = dir.join("room");
        super::super::create_room_key(&path).unwrap();
        let e = load_or_create(&path).unwrap_err();
        assert!(matches!(e, KeysError::Malformed { .. }), "{e}");
    }
}
