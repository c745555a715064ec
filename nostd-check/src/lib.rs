//! Links meshtalk-core into a `#![no_std]` library, as firmware would.
#![no_std]

use meshtalk_core::command;
use meshtalk_core::node::{Config, Input, Node, Output};
use meshtalk_core::time::Instant;

/// A node for a small device: 8 peers, 1 KiB frames.
type DeviceNode = Node<8, 1024, 4096>;

/// Runs one command through a node and counts the outputs, so that every
/// part of the core is linked.
#[unsafe(no_mangle)]
pub extern "C" fn meshtalk_check(line: *const u8, len: usize, seed: u64) -> usize {
    let _ = (line, len);
    let Ok(config) = Config::new("device", seed) else {
        return 0;
    };
    let mut node = DeviceNode::new(config);
    let now = Instant::ZERO;
    if let Ok(Some(cmd)) = command::parse("broadcast hello") {
        let _ = node.handle_input(now, Input::Command(cmd));
    }
    let mut outputs = 0;
    while !matches!(node.poll_output(now), Output::Timeout(_)) {
        outputs += 1;
    }
    outputs
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
