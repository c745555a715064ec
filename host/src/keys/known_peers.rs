//! `known_peers`, beside the identity: the key each peer name had when first
//! seen, as ssh's `known_hosts` keeps hosts' keys. One peer a line,
//! `<name> <64 hex digits of its static public key>`; blank lines and lines
//! starting with `#` are comments, kept when the file is rewritten.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use meshtalk_core::trust::Verdict;

use super::{KeysError, hex, io_error, unhex, write_file};

/// The pinned names and keys, and the file they are kept in.
#[derive(Debug)]
pub struct KnownPeers {
    path: PathBuf,
    peers: Vec<(String, [u8; 32])>,
}

impl KnownPeers {
    /// The peers pinned in `path`; none when it does not exist yet.
    pub fn load(path: &Path) -> Result<KnownPeers, KeysError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(error) => return Err(io_error(path, "read")(error)),
        };
        let mut peers: Vec<(String, [u8; 32])> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let bad = |why| KeysError::KnownPeersLine {
                path: path.to_path_buf(),
                line: number + 1,
                why,
            };
            let Some((name, key)) = parse(line).map_err(bad)? else {
                continue;
            };
            match peers.iter().find(|(known, _)| known == name) {
                // Two meshtalks that met the name at once both pinned it.
                Some((_, pinned)) if *pinned == key => continue,
                Some(_) => {
                    return Err(bad("this name is pinned to another key on an earlier line"));
                }
                None => peers.push((name.to_string(), key)),
            }
        }
        Ok(KnownPeers {
            path: path.to_path_buf(),
            peers,
        })
    }

    /// The file the peers are kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key pinned for `name`, if any.
    pub fn get(&self, name: &str) -> Option<&[u8; 32]> {
        self.peers.iter().find(|(n, _)| n == name).map(|(_, k)| k)
    }

    /// Whether `name` coming with `key` is a first contact, the pinned key or another.
    pub fn check(&self, name: &str, key: &[u8; 32]) -> Verdict {
        Verdict::of(self.get(name), key)
    }

    /// Pins `name` to `key` on first contact, appending a line to the file; a
    /// name pinned already is left as it is (only [`KnownPeers::trust`] replaces).
    pub fn record(&mut self, name: &str, key: &[u8; 32]) -> Result<(), KeysError> {
        check_name(name)?;
        if self.get(name).is_some() {
            return Ok(());
        }
        let path = &self.path;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error(path, "write"))?;
        // A file edited by hand may not end its last line.
        let len = file.metadata().map_err(io_error(path, "read"))?.len();
        let mut last = [b'\n'];
        if len > 0 {
            file.read_exact_at(&mut last, len - 1)
                .map_err(io_error(path, "read"))?;
        }
        let start = if last == [b'\n'] { "" } else { "\n" };
        // One write: lines appended by two nodes at once do not mix.
        file.write_all(format!("{start}{name} {}\n", hex(key)).as_bytes())
            .map_err(io_error(path, "write"))?;
        self.peers.push((name.to_string(), *key));
        Ok(())
    }

    /// Pins `name` to `key` whatever it was pinned to (`/trust`, after the new
    /// key was checked out of band): the file is rewritten whole, its other
    /// lines as they were, and replaced in one rename.
    pub fn trust(&mut self, name: &str, key: &[u8; 32]) -> Result<(), KeysError> {
        check_name(name)?;
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(error) => return Err(io_error(&self.path, "read")(error)),
        };
        let pinned = format!("{name} {}", hex(key));
        let mut replaced = false;
        let mut out = String::with_capacity(text.len() + pinned.len() + 1);
        for line in text.lines() {
            match parse(line) {
                Ok(Some((n, _))) if n == name => {
                    if !replaced {
                        out.push_str(&pinned);
                        out.push('\n');
                    }
                    replaced = true;
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        if !replaced {
            out.push_str(&pinned);
            out.push('\n');
        }
        write_file(&self.path, true, out.as_bytes())?;
        match self.peers.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) => *old = *key,
            None => self.peers.push((name.to_string(), *key)),
        }
        Ok(())
    }
}

/// One line of the file: `None` for a comment or a blank line.
fn parse(line: &str) -> Result<Option<(&str, [u8; 32])>, &'static str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let (Some(name), Some(key), None) = (words.next(), words.next(), words.next()) else {
        return Err("not a name and a key");
    };
    let key = unhex(key).ok_or("the key is not 64 hex digits")?;
    Ok(Some((name, key)))
}

/// A name a line can hold: one word, not a comment.
fn check_name(name: &str) -> Result<(), KeysError> {
    if name.is_empty() || name.starts_with('#') || name.contains(char::is_whitespace) {
        return Err(KeysError::BadName(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{TestDir, test_dir};
    use super::*;

    const A: [u8; 32] = [0xaa; 32];
    const B: [u8; 32] = [0xbb; 32];

    /// No peers known yet, in a directory of their own (removed when dropped).
    fn peers(what: &str) -> (TestDir, KnownPeers) {
        let dir = test_dir(what);
        let known = KnownPeers::load(&dir.join("known_peers")).unwrap();
        (dir, known)
    }

    #[test]
    fn a_missing_file_knows_no_one() {
        let (_dir, known) = peers("missing");
        assert_eq!(known.check("bob", &A), Verdict::First);
        assert!(!known.path().exists());
    }

    #[test]
    fn a_recorded_name_is_known_with_its_key_and_changed_with_another() {
        let (_dir, mut known) = peers("record");
        known.record("bob", &A).unwrap();
        assert_eq!(known.check("bob", &A), Verdict::Known);
        assert_eq!(known.check("bob", &B), Verdict::Changed { old: A });
        assert_eq!(known.check("carol", &A), Verdict::First);
        let again = KnownPeers::load(known.path()).unwrap();
        assert_eq!(again.check("bob", &A), Verdict::Known);
    }

    #[test]
    fn record_never_replaces_a_pinned_key() {
        let (_dir, mut known) = peers("no-replace");
        known.record("bob", &A).unwrap();
        known.record("bob", &B).unwrap();
        assert_eq!(known.get("bob"), Some(&A));
        assert_eq!(KnownPeers::load(known.path()).unwrap().get("bob"), Some(&A));
    }

    #[test]
    fn record_appends_a_line_after_a_last_line_without_newline() {
        let (_dir, mut known) = peers("append");
        fs::write(known.path(), format!("# mine\nbob {}", hex(&A))).unwrap();
        known = KnownPeers::load(known.path()).unwrap();
        known.record("carol", &B).unwrap();
        let text = fs::read_to_string(known.path()).unwrap();
        assert_eq!(
            text,
            format!("# mine\nbob {}\ncarol {}\n", hex(&A), hex(&B))
        );
    }

    #[test]
    fn trust_replaces_the_names_key_and_keeps_the_other_lines() {
        let (_dir, mut known) = peers("trust");
        let text = format!("# pinned by hand\n\nbob {}\ncarol {}\n", hex(&A), hex(&B));
        fs::write(known.path(), &text).unwrap();
        known = KnownPeers::load(known.path()).unwrap();
        known.trust("bob", &B).unwrap();
        assert_eq!(known.check("bob", &B), Verdict::Known);
        let after = fs::read_to_string(known.path()).unwrap();
        assert_eq!(
            after,
            text.replace(&format!("bob {}", hex(&A)), &format!("bob {}", hex(&B)))
        );
        assert_eq!(KnownPeers::load(known.path()).unwrap().get("bob"), Some(&B));
    }

    #[test]
    fn trust_of_a_new_name_pins_it() {
        let (_dir, mut known) = peers("trust-new");
        known.trust("dave", &A).unwrap();
        assert_eq!(
            KnownPeers::load(known.path()).unwrap().get("dave"),
            Some(&A)
        );
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_the_file_and_line() {
        let dir = test_dir("malformed");
        let path = dir.join("known_peers");
        for (text, line) in [
            (format!("bob {}\nbob\n", hex(&A)), 2),
            (format!("# c\nbob {}0\n", hex(&A)), 2),
            (format!("bob {} extra\n", hex(&A)), 1),
            (format!("bob {}\n\nbob {}\n", hex(&A), hex(&B)), 3),
        ] {
            fs::write(&path, &text).unwrap();
            let e = KnownPeers::load(&path).unwrap_err();
            assert!(
                matches!(e, KeysError::KnownPeersLine { line: l, .. } if l == line),
                "{text:?}: {e}"
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("{}:{line}: ", path.display())),
                "{e}"
            );
        }
    }

    #[test]
    fn a_name_pinned_twice_to_the_same_key_is_known_once() {
        let dir = test_dir("twice");
        let path = dir.join("known_peers");
        fs::write(&path, format!("bob {}\nbob {}\n", hex(&A), hex(&A))).unwrap();
        let known = KnownPeers::load(&path).unwrap();
        assert_eq!(known.check("bob", &A), Verdict::Known);
    }

    #[test]
    fn a_name_a_line_cannot_hold_is_refused() {
        let (_dir, mut known) = peers("bad-name");
        for name in ["", "two words", "#bob", "tab\tbed"] {
            let e = known.record(name, &A).unwrap_err();
            assert!(matches!(e, KeysError::BadName(_)), "{name:?}: {e}");
        }
        assert!(!known.path().exists());
    }
}
