//! The firmware's keys, for secure links (protocol 2), on a board without an RNG.
//!
//! The LM3S6965 has no random number generator, and QEMU gives its model none
//! (no noise source at all). So `build.rs` draws a 32-byte secret from the
//! build machine's OS randomness; it sits in flash, and everything is derived
//! from it with HMAC-BLAKE2s (clatter's, the hash of the core's Noise suite):
//!
//! - the identity (the static Noise key desktops pin) and the node id, fixed
//!   for the build: anyone holding the ELF holds the identity, as anyone
//!   reading a real board's flash holds its key;
//! - each connection's entropy (its Noise ephemeral key), from a connection
//!   counter, SysTick's current count and the millisecond clock at accept.
//!
//! What that costs: after a reboot the counter starts again, so a connection
//! accepted at the same millisecond and SysTick count would get the same
//! ephemeral key. For XX that does not break a session: the firmware only
//! answers (it never dials), and the desktop's fresh ephemeral goes into
//! every key (`ee`, `es`), so no two sessions share keys. What it loses is
//! forward secrecy against whoever later reads the flash: with the secret,
//! the counter and the timing (tens of bits to search) give the ephemeral
//! key, and with both the firmware's keys a recorded session opens. A real
//! board draws each connection's entropy (and makes its identity once, at
//! provisioning) from its hardware TRNG instead, and keeps nothing else.

use clatter::bytearray::ByteArray as _;
use clatter::crypto::hash::Blake2s;
use clatter::traits::Hash as _;
use meshtalk_core::noise::KEY_LEN;

/// 32 bytes of the build machine's OS randomness (see `build.rs`).
static SECRET: [u8; KEY_LEN] = *include_bytes!(concat!(env!("OUT_DIR"), "/secret.bin"));

/// HMAC-BLAKE2s keyed with the secret over `data`, whose first part is a
/// label of its own for each use.
fn derive(data: &[&[u8]]) -> [u8; KEY_LEN] {
    let mac = Blake2s::hmac_many(&SECRET, data);
    let mut out = [0; KEY_LEN];
    out.copy_from_slice(mac.as_slice());
    out
}

/// The static secret key of the firmware's Noise identity.
pub fn identity() -> [u8; KEY_LEN] {
    derive(&[b"meshtalk firmware identity\0"])
}

/// The node id (it names the firmware's broadcasts): one per build, so
/// firmwares from different builds can share a mesh.
pub fn node_id() -> u64 {
    let bytes = derive(&[b"meshtalk firmware node id\0"]);
    let mut id = [0; 8];
    id.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(id)
}

/// Per-connection entropy: each call gives other bytes within one boot (the
/// counter), and the timing makes them differ across boots.
pub struct Entropy {
    /// Connections accepted since boot.
    connections: u64,
}

impl Entropy {
    pub const fn new() -> Self {
        Entropy { connections: 0 }
    }

    /// 32 bytes for the next connection's ephemeral key, from the counter,
    /// SysTick's current count (`systick`, the phase within the millisecond)
    /// and the milliseconds since boot.
    pub fn next(&mut self, systick: u32, millis: u64) -> [u8; KEY_LEN] {
        self.connections += 1;
        derive(&[
            b"meshtalk firmware entropy\0",
            &self.connections.to_le_bytes(),
            &systick.to_le_bytes(),
            &millis.to_le_bytes(),
        ])
    }
}
