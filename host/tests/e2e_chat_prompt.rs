//! End to end: the chat prompt at a terminal (a pseudo-terminal) and the files
//! around it: the shell completion script, the manual page, the saved history, the
//! transcript. Every child gets a temporary HOME and XDG directories, so no test
//! writes the developer's own history. Every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// A directory of its own under the system's temporary one, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("meshtalk-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("make a temporary directory");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `meshtalk` with HOME and the XDG directories in `home`, no `RUST_LOG`.
fn meshtalk_in(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshtalk"));
    command
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env_remove("RUST_LOG");
    command
}

/// Runs `meshtalk args` to the end with no input; its output.
fn run(home: &Path, args: &[&str]) -> Output {
    meshtalk_in(home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run meshtalk")
}

/// Runs `script` with bash, `meshtalk` being the binary under test; its output.
fn bash(script: &str) -> Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_meshtalk"));
    let dir = bin.parent().expect("the binary's directory");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    Command::new("bash")
        .args(["--norc", "--noprofile", "-c", script])
        .env("PATH", std::env::join_paths(paths).expect("a PATH"))
        .stdin(Stdio::null())
        .output()
        .expect("run bash")
}

#[test]
fn the_bash_completion_script_is_valid_bash() {
    let out = bash("meshtalk completions bash | bash -n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn completing_meshtalk_m_offers_mesh_and_man() {
    let out = bash(
        "source <(meshtalk completions bash) || exit 3
         COMP_WORDS=(meshtalk m); COMP_CWORD=1; COMP_LINE='meshtalk m'; COMP_POINT=${#COMP_LINE}
         \"$(complete -p meshtalk | sed -E 's/.*-F ([^ ]+).*/\\1/')\" meshtalk m meshtalk
         printf '%s\\n' \"${COMPREPLY[@]}\"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut offered: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    offered.sort();
    assert_eq!(offered, ["man", "mesh"]);
}

#[test]
fn every_shell_gets_a_completion_script_naming_the_modes() {
    let home = TempDir::new("completions");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(home.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for mode in ["mesh", "chat", "serve", "send", "man"] {
            assert!(script.contains(mode), "{shell}: no {mode} in\n{script}");
        }
    }
}

#[test]
fn an_unknown_shell_is_refused_with_the_ones_there_are() {
    let home = TempDir::new("completions");
    let out = run(home.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bash") && stderr.contains("zsh"),
        "{stderr}"
    );
}

#[test]
fn the_man_page_renders_with_every_mode_and_its_options() {
    let home = TempDir::new("man");
    let out = run(home.path(), &["man"]);
    assert!(out.status.success());
    let roff = String::from_utf8(out.stdout).expect("the page is UTF-8");
    assert!(
        roff.starts_with(".ie \\n(.g") || roff.contains(".TH meshtalk 1"),
        "{roff}"
    );
    for heading in [
        "MESHTALK MESH",
        "MESHTALK CHAT",
        "MESHTALK SERVE",
        "MESHTALK SEND",
    ] {
        assert!(roff.contains(&format!(".SH \"{heading}\"")), "{heading}");
    }
    let groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut groff) = groff else {
        eprintln!("no groff here: the roff text was checked, not its rendering");
        return;
    };
    {
        use std::io::Write;
        let mut stdin = groff.stdin.take().expect("piped stdin");
        stdin.write_all(roff.as_bytes()).expect("feed groff");
    }
    let rendered = groff.wait_with_output().expect("groff ends");
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(rendered.status.success(), "{warnings}");
    assert!(warnings.trim().is_empty(), "groff warned: {warnings}");
    let text = String::from_utf8_lossy(&rendered.stdout);
    // groff may hyphenate or use Unicode hyphens; the words themselves are there.
    let text = text.replace('\u{2010}', "-");
    for words in [
        "MESHTALK MESH",
        "--stall-timeout",
        "[default: 10]",
        "--max-text",
    ] {
        assert!(text.contains(words), "no {words:?} in\n{text}");
    }
}
