//! What went wrong for the one-way client, for the person: typed here, rendered by
//! the shell with [`fmt::Display`].

use core::fmt;

use crate::limits::MAX_HOST;
use crate::time::Duration;

/// Why the one-way client ([`super::client::Client`]) got no log, or could not
/// take a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The server closed the connection after `quit`, with no log.
    ClosedWithoutLog,
    /// The server closed the connection before `quit` went out.
    ClosedBeforeAsking,
    /// `quit` could not be sent (the node refused it; its error is shown).
    CouldNotAsk,
    /// No log came within this long of `quit`.
    NoLog(Duration),
    /// The server's host name is longer than [`MAX_HOST`].
    HostTooLong,
    /// A line of `len` bytes is longer than a message may be (`max`).
    TooLong {
        /// The line's length in bytes.
        len: usize,
        /// The longest message, in bytes.
        max: usize,
    },
    /// The log that came back held more than the client keeps (`kept` bytes):
    /// the lines after those were dropped.
    LogCut {
        /// The most log text the client keeps, in bytes.
        kept: usize,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::ClosedWithoutLog => {
                f.write_str("the server closed the connection without sending the log")
            }
            ClientError::ClosedBeforeAsking => {
                f.write_str("the server closed the connection before the log was asked for")
            }
            ClientError::CouldNotAsk => f.write_str("could not ask the server for the log"),
            ClientError::NoLog(wait) => write!(f, "no log from the server within {wait}"),
            ClientError::HostTooLong => write!(f, "host name longer than {MAX_HOST} characters"),
            ClientError::TooLong { len, max } => {
                write!(f, "message of {len} bytes is too long (max {max})")
            }
            ClientError::LogCut { kept } => write!(
                f,
                "the server's log is longer than {kept} bytes: the lines after those were dropped"
            ),
        }
    }
}
