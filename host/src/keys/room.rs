//! The room key of a private room: only nodes holding the same 32 bytes
//! connect. Either a file (`--room-key FILE`, one line, `meshtalk-room-key-v1`
//! and the key in hex, mode 0600, made by `meshtalk keygen --room FILE`) or a
//! passphrase in [`PASSPHRASE_VAR`], stretched with Argon2id.

use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};

use super::{KeysError, random_key, read_secret, write_secret};

/// The first word of a room key file.
pub(super) const LABEL: &str = "meshtalk-room-key-v1";

/// The environment variable holding a room's passphrase.
pub const PASSPHRASE_VAR: &str = "MESHTALK_ROOM_PASSPHRASE";

/// The salt of the passphrase's stretching. Fixed, since every member must
/// derive the same key from the same passphrase with nothing else shared.
const SALT: &[u8] = b"meshtalk room key v2";

/// Argon2id with 64 MiB, 3 passes, 1 lane, 32 bytes out (RFC 9106's second
/// choice, one lane): 0.13 s on one server core, and every guess at the
/// passphrase costs an attacker as much.
const PARAMS: Params = match Params::new(64 * 1024, 3, 1, Some(32)) {
    Ok(params) => params,
    Err(_) => panic!("Argon2 parameters out of range"),
};

/// A new random room key written to `path` (mode 0600); an existing file is
/// never replaced.
pub fn create_room_key(path: &Path) -> Result<[u8; 32], KeysError> {
    let key = random_key(path)?;
    write_secret(path, LABEL, &key, false)?;
    Ok(key)
}

/// The room key in the file `path`.
pub fn load_room_key(path: &Path) -> Result<[u8; 32], KeysError> {
    read_secret(path, LABEL)
}

/// The room key of `passphrase`: Argon2id with the fixed [`SALT`] and [`PARAMS`].
pub fn room_key_from_passphrase(passphrase: &str) -> Result<[u8; 32], KeysError> {
    if passphrase.is_empty() {
        return Err(KeysError::EmptyPassphrase);
    }
    let mut key = [0; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
        .hash_password_into(passphrase.as_bytes(), SALT, &mut key)
        .map_err(KeysError::Stretch)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::super::tests::test_dir;
    use super::*;

    #[test]
    fn a_created_room_key_loads_back_and_is_never_overwritten() {
        let dir = test_dir("room");
        let path = dir.join("room.key");
        let key = create_room_key(&path).unwrap();
        assert_eq!(load_room_key(&path).unwrap(), key);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let e = create_room_key(&path).unwrap_err();
        assert!(matches!(e, KeysError::Exists { .. }), "{e}");
        assert_eq!(load_room_key(&path).unwrap(), key);
    }

    #[test]
    fn an_identity_file_is_not_a_room_key() {
        let dir = test_dir("identity");
        let path = dir.join("identity");
        super::super::create_identity(&path, false).unwrap();
        let e = load_room_key(&path).unwrap_err();
        assert!(matches!(e, KeysError::Malformed { .. }), "{e}");
    }

    #[test]
    fn the_passphrase_is_stretched_with_argon2id_and_the_fixed_salt() {
        // Computed independently with the reference implementation's CLI
        // (Debian's `argon2` package):
        //   echo -n "correct horse battery staple" |
        //     argon2 "meshtalk room key v2" -id -t 3 -m 16 -p 1 -l 32 -r
        let key = room_key_from_passphrase("correct horse battery staple").unwrap();
        assert_eq!(super::super::hex(&key), KNOWN_ANSWER);
    }

    #[test]
    fn an_empty_passphrase_is_refused() {
        let e = room_key_from_passphrase("").unwrap_err();
        assert!(matches!(e, KeysError::EmptyPassphrase), "{e}");
    }

    const KNOWN_ANSWER: &str = "5f03cd15fc6504c4bb62d3e81613d42b6b9909b984f49d1bf67d2ba76809d2d2";
}
