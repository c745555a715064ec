//! The mode's actions (`serve`, `send`, `chat`, `mesh` rules): carried out in order
//! once the node is drained.

use meshtalk_core::command::Command;
use meshtalk_core::node::Input;

use super::Driver;
use crate::mode::Action;

impl Driver {
    /// Carries out what the mode asked for, in order (each command drains the node,
    /// which may queue more).
    pub(super) fn act(&mut self) {
        while !self.actions.is_empty() {
            let action = self.actions.remove(0);
            let now = self.now();
            let cmd = match &action {
                Action::Connect { host, port } => Command::Connect {
                    host,
                    port: *port,
                    alias: None,
                },
                Action::Send(text) => Command::Send {
                    target: None,
                    text,
                    all: text,
                },
                Action::Disconnect => Command::Disconnect { target: None },
                Action::Help(text) => {
                    self.render.help(text);
                    continue;
                }
                Action::Error(message) => {
                    self.error(message);
                    continue;
                }
                Action::LogSent { peer, lines } => {
                    self.render.log_sent(*peer, *lines);
                    continue;
                }
                Action::Log(lines) => {
                    self.render.log(lines);
                    continue;
                }
                Action::Quit(code) => {
                    self.quit.get_or_insert(*code);
                    continue;
                }
            };
            let refused = self.node.handle_input(now, Input::Command(cmd)).err();
            if let Some(e) = refused {
                self.error(&e.to_string());
                if !matches!(action, Action::Disconnect) {
                    self.mode.refused(now, &mut self.actions);
                }
            }
            self.drain();
        }
    }
}
