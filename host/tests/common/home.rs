//! A home of its own for every `meshtalk` a test starts: the binary keeps its
//! identity and `known_peers` under `$XDG_CONFIG_HOME/meshtalk`, so two test
//! nodes never share keys, and no test reads or writes the developer's files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A directory of its own under the system's temporary one, removed on drop.
pub struct TempDir(PathBuf);

/// Tells apart the directories made in one nanosecond by threads of one process.
static MADE: AtomicU32 = AtomicU32::new(0);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "meshtalk-{what}-{}-{nanos}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("make a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Points `command`'s HOME and XDG directories (config: identity and
/// `known_peers`; state: history; data; cache) into `home`.
pub fn live_in<'c>(command: &'c mut Command, home: &Path) -> &'c mut Command {
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join("cache"))
}

/// Whether the test gave `command` a config directory itself (a node restarted
/// in the home it had, or a test that looks at the files).
pub fn has_home(command: &Command) -> bool {
    command
        .get_envs()
        .any(|(key, value)| key == "XDG_CONFIG_HOME" && value.is_some())
}

/// Gives `command` a fresh home unless the test gave it one; the directory,
/// if made, lives as long as what is returned.
pub fn own_home(command: &mut Command, name: &str) -> Option<TempDir> {
    if has_home(command) {
        return None;
    }
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(32)
        .collect();
    let home = TempDir::new(&format!("home-{name}"));
    live_in(command, home.path());
    Some(home)
}
