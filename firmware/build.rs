//! Puts memory.x where the linker (cortex-m-rt's link.x) looks for it, and
//! gives the firmware its secret: 32 bytes from the build machine's OS
//! randomness (the board has no RNG), from which `src/keys.rs` derives its
//! identity, node id and per-connection entropy.
use std::{env, fs, path::PathBuf};

/// Where the secret goes in OUT_DIR (`src/keys.rs` includes it).
const SECRET: &str = "secret.bin";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x into OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");

    // Kept once made: the firmware keeps its identity (which desktops pin)
    // across rebuilds in this build directory; `cargo clean` makes a new one.
    let secret = out.join(SECRET);
    if fs::read(&secret).is_ok_and(|s| s.len() == 32) {
        return;
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the build machine's OS randomness");
    fs::write(&secret, bytes).expect("write the firmware's secret into OUT_DIR");
}
