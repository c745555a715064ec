#!/usr/bin/env bash
# Builds the firmware and boots it in QEMU's lm3s6965evb (Cortex-M3), with
# its UART served on a loopback TCP port: a desktop `meshtalk mesh` that
# connects there chats with the microcontroller. Ctrl-C stops QEMU.
#
# Usage: firmware/run.sh [PORT]   (default 7070; loopback only)
set -euo pipefail
cd "$(dirname "$0")"

port=${1:-7070}
command -v qemu-system-arm >/dev/null || {
    echo "firmware/run.sh: no qemu-system-arm; on Debian/Ubuntu: sudo apt-get install qemu-system-arm" >&2
    exit 1
}
rustup target list --installed 2>/dev/null | grep -qx thumbv7m-none-eabi || {
    echo "firmware/run.sh: no thumbv7m-none-eabi target; add it: rustup target add thumbv7m-none-eabi" >&2
    exit 1
}
cargo build --release --locked
cat <<MSG

The Cortex-M3 is booting; its UART is 127.0.0.1:$port. In another terminal:

    cargo run --release -p meshtalk -- mesh --name desk
    > connect 127.0.0.1 $port
    > send cortex-m3 hello          (it answers upper-cased; 'stats' for its memory and key fingerprint)
    > broadcast hi room             (it answers: heard desk: HI ROOM)

A desktop that leaves says goodbye and the next may connect at once; one
that was killed is noticed by the firmware's pings within 5 s: connect again
after that. Ctrl-C here stops QEMU.
MSG
exec qemu-system-arm -machine lm3s6965evb -display none -monitor none \
    -serial "tcp:127.0.0.1:$port,server,nowait" \
    -kernel target/thumbv7m-none-eabi/release/meshtalk-firmware
