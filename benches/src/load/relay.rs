//! A minimal line relay, the practical ceiling of this machine: one thread,
//! mio readiness, every complete line read from one client appended to every
//! other client's buffer, one write per client per wake-up.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);
/// A client with more than this queued is dropped (it is not reading).
const MAX_QUEUED: usize = 64 << 20;

struct Client {
    stream: TcpStream,
    partial: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    writable_wanted: bool,
}

/// Serves the relay on 127.0.0.1:`port` until killed.
pub fn serve(port: u16) -> io::Result<()> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut listener = TcpListener::bind(addr)?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut clients: Vec<Option<Client>> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut dirty: Vec<usize> = Vec::new();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nodelay(true);
                    let slot = clients.iter().position(Option::is_none).unwrap_or_else(|| {
                        clients.push(None);
                        clients.len() - 1
                    });
                    if poll
                        .registry()
                        .register(&mut stream, Token(slot), Interest::READABLE)
                        .is_ok()
                    {
                        clients[slot] = Some(Client {
                            stream,
                            partial: Vec::new(),
                            out: Vec::new(),
                            sent: 0,
                            writable_wanted: false,
                        });
                    }
                }
                continue;
            }
            let from = event.token().0;
            if event.is_writable() {
                dirty.push(from);
            }
            if !event.is_readable() {
                continue;
            }
            let mut closed = false;
            while let Some(c) = clients.get_mut(from).and_then(Option::as_mut) {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        c.partial.extend_from_slice(&buf[..n]);
                        let Some(end) = c.partial.iter().rposition(|&b| b == b'\n') else {
                            continue;
                        };
                        let lines: Vec<u8> = c.partial.drain(..=end).collect();
                        for (i, other) in clients.iter_mut().enumerate() {
                            if i == from {
                                continue;
                            }
                            if let Some(o) = other {
                                if o.out.len() == o.sent {
                                    dirty.push(i);
                                }
                                o.out.extend_from_slice(&lines);
                            }
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            if closed {
                drop_client(&poll, &mut clients, from);
            }
        }
        dirty.sort_unstable();
        dirty.dedup();
        for i in dirty.drain(..) {
            let Some(c) = clients.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            let mut dead = false;
            while c.sent < c.out.len() {
                match c.stream.write(&c.out[c.sent..]) {
                    Ok(n) => c.sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        dead = true;
                        break;
                    }
                }
            }
            if c.sent == c.out.len() {
                c.out.clear();
                c.sent = 0;
            } else if c.sent > 1 << 20 {
                c.out.drain(..c.sent);
                c.sent = 0;
            }
            let want = !c.out.is_empty();
            if want != c.writable_wanted {
                let interest = if want {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                dead |= poll
                    .registry()
                    .reregister(&mut c.stream, Token(i), interest)
                    .is_err();
                c.writable_wanted = want;
            }
            if dead || c.out.len() > MAX_QUEUED {
                drop_client(&poll, &mut clients, i);
            }
        }
    }
}

fn drop_client(poll: &Poll, clients: &mut [Option<Client>], i: usize) {
    if let Some(mut c) = clients.get_mut(i).and_then(Option::take) {
        let _ = poll.registry().deregister(&mut c.stream);
    }
}
