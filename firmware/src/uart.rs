//! UART0 of the LM3S6965 by its registers: no maintained driver crate covers
//! this chip (the `lm3s6965` crate has its interrupts, not its peripherals).
//! QEMU models it as a PL011 with 16-byte FIFOs; with `-serial tcp:...` its
//! bytes are a TCP stream, and a full receive FIFO holds the sender back.

use core::ptr::{read_volatile, write_volatile};

const UART0: usize = 0x4000_C000;
const DR: usize = UART0;
const FR: usize = UART0 + 0x018;
const IBRD: usize = UART0 + 0x024;
const FBRD: usize = UART0 + 0x028;
const LCRH: usize = UART0 + 0x02C;
const CTL: usize = UART0 + 0x030;
/// Run-mode clock gating control 1: bit 0 clocks UART0.
const RCGC1: usize = 0x400F_E104;

const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
/// 8 data bits, FIFOs on (without them QEMU hands over one byte at a time).
const LCRH_8N1_FIFO: u32 = 0b11 << 5 | 1 << 4;
const CTL_ENABLE_RX_TX: u32 = 1 | 1 << 8 | 1 << 9;

/// The board's UART0, the firmware's only link. One value exists (see [`Uart::take`]).
pub struct Uart {
    _private: (),
}

fn read(addr: usize) -> u32 {
    // SAFETY: `addr` is one of this module's UART0 or system-control
    // registers, which are always mapped on the LM3S6965.
    unsafe { read_volatile(addr as *const u32) }
}

fn write(addr: usize, value: u32) {
    // SAFETY: as in `read`; only the `Uart` value (one exists) writes them.
    unsafe { write_volatile(addr as *mut u32, value) }
}

impl Uart {
    /// Clocks and enables UART0: 115200 baud at the 12 MHz reset clock (QEMU
    /// ignores the rate), 8N1, FIFOs on. Call once.
    pub fn take() -> Self {
        write(RCGC1, read(RCGC1) | 1);
        write(CTL, 0);
        // 12 MHz / (16 * 115200) = 6.51: integer part 6, fraction 0.51 * 64 = 33.
        write(IBRD, 6);
        write(FBRD, 33);
        write(LCRH, LCRH_8N1_FIFO);
        write(CTL, CTL_ENABLE_RX_TX);
        Uart { _private: () }
    }

    /// Moves what the receive FIFO holds into `buf`, without waiting; returns how many bytes.
    pub fn read_available(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() && read(FR) & FR_RXFE == 0 {
            buf[n] = read(DR) as u8;
            n += 1;
        }
        n
    }

    /// Writes every byte, waiting while the transmit FIFO is full.
    pub fn write_all(&mut self, data: &[u8]) {
        for &byte in data {
            while read(FR) & FR_TXFF != 0 {}
            write(DR, u32::from(byte));
        }
    }
}
