//! Dragging the loop out of the editor into a DAW's arrangement as a MIDI file: the X11 drag
//! source (the XDND protocol, version 5), on a connection and a thread of its own so the
//! editor never waits on it.
//!
//! The plugin's window belongs to the host's process and to baseview, which has no drag
//! source, and while the mouse button is down the window holds the pointer. So the drag does
//! not grab: it follows the pointer by asking the server where it is (60 times a second), finds
//! the XDND-aware window under it, and speaks the protocol from an unmapped window of its own,
//! which also owns the dragged data and hands it to the target as a `text/uri-list`. The drop
//! happens where the button is let go.

use std::path::Path;
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask, KeyButMask, PropMode,
    SelectionNotifyEvent, SelectionRequestEvent, Window, WindowClass, SELECTION_NOTIFY_EVENT,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{CURRENT_TIME, NONE};

/// The XDND version spoken; targets that speak an older one are answered in theirs.
const XDND_VERSION: u32 = 5;
/// How often the pointer is asked where it is.
const FOLLOW_EVERY: Duration = Duration::from_millis(16);
/// How long a target may take to take the file after the drop.
const FINISH_PATIENCE: Duration = Duration::from_secs(5);
/// How deep under a top-level window an XDND-aware window is looked for.
const MOST_DEPTH: usize = 16;

/// How a drag ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DragOutcome {
    /// A window took the file.
    Dropped,
    /// Let go over no window that takes files (or one that refused it).
    NotTaken,
}

x11rb::atom_manager! {
    Atoms: AtomsCookie {
        XdndAware,
        XdndSelection,
        XdndEnter,
        XdndPosition,
        XdndStatus,
        XdndLeave,
        XdndDrop,
        XdndFinished,
        XdndActionCopy,
        XdndTypeList,
        TARGETS,
        URI_LIST: b"text/uri-list",
    }
}

/// A `file://` URI for `path`, with the bytes a URI may not hold escaped.
pub fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => uri.push(byte as char),
            _ => uri.push_str(&format!("%{byte:02X}")),
        }
    }
    uri
}

/// Drags the file at `path` from wherever the pointer is, with its first button held, to where
/// it is let go; never onto `own` (Dreamroll's window: baseview takes file drops too). Blocks
/// until then: call it on a thread of its own.
pub fn drag_file(path: &Path, own: Option<Window>) -> Result<DragOutcome, String> {
    let (connection, screen) = x11rb::connect(None).map_err(|e| format!("no X display to drag on: {e}"))?;
    Drag::new(connection, screen, path, own.unwrap_or(NONE))?.run()
}

struct Drag {
    connection: RustConnection,
    root: Window,
    source: Window,
    /// Dreamroll's own window (or none): not a place to drop the loop.
    own: Window,
    atoms: Atoms,
    /// What the target is given: the file's URI and a line end, as `text/uri-list` has it.
    data: Vec<u8>,
}

/// The window under the pointer that takes drops, and what it said of ours.
struct Target {
    window: Window,
    version: u32,
    accepted: bool,
    /// A position was sent and its status has not come back yet.
    waiting: bool,
}

impl Drag {
    fn new(connection: RustConnection, screen: usize, path: &Path, own: Window) -> Result<Drag, String> {
        let fail = |e: &dyn std::fmt::Display| format!("the X display refused the drag: {e}");
        let root = connection.setup().roots[screen].root;
        let atoms = Atoms::new(&connection).map_err(|e| fail(&e))?.reply().map_err(|e| fail(&e))?;
        let source = connection.generate_id().map_err(|e| fail(&e))?;
        let aux = CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE);
        connection
            .create_window(0, source, root, -1, -1, 1, 1, 0, WindowClass::INPUT_ONLY, 0, &aux)
            .map_err(|e| fail(&e))?;
        connection.set_selection_owner(source, atoms.XdndSelection, CURRENT_TIME).map_err(|e| fail(&e))?;
        connection.flush().map_err(|e| fail(&e))?;
        let data = format!("{}\r\n", file_uri(path)).into_bytes();
        Ok(Drag { connection, root, source, own, atoms, data })
    }

    fn run(&self) -> Result<DragOutcome, String> {
        let fail = |e: &dyn std::fmt::Display| format!("the drag was lost: {e}");
        let mut target: Option<Target> = None;
        loop {
            let pointer =
                self.connection.query_pointer(self.root).map_err(|e| fail(&e))?.reply().map_err(|e| fail(&e))?;
            let under = self.aware_window_under(pointer.child).map_err(|e| fail(&e))?;
            if target.as_ref().map(|t| t.window) != under.map(|(window, _)| window) {
                if let Some(old) = target.take() {
                    self.send(old.window, self.atoms.XdndLeave, [self.source, 0, 0, 0, 0]).map_err(|e| fail(&e))?;
                }
                if let Some((window, version)) = under {
                    let version = version.min(XDND_VERSION);
                    self.send(window, self.atoms.XdndEnter, [self.source, version << 24, self.atoms.URI_LIST, 0, 0])
                        .map_err(|e| fail(&e))?;
                    target = Some(Target { window, version, accepted: false, waiting: false });
                }
            }
            if !pointer.mask.contains(KeyButMask::BUTTON1) {
                return self.drop_on(target).map_err(|e| fail(&e));
            }
            if let Some(target) = target.as_mut().filter(|t| !t.waiting) {
                let at = (u32::from(pointer.root_x as u16) << 16) | u32::from(pointer.root_y as u16);
                let action = if target.version >= 2 { self.atoms.XdndActionCopy } else { 0 };
                self.send(target.window, self.atoms.XdndPosition, [self.source, 0, at, CURRENT_TIME, action])
                    .map_err(|e| fail(&e))?;
                target.waiting = true;
            }
            self.connection.flush().map_err(|e| fail(&e))?;
            std::thread::sleep(FOLLOW_EVERY);
            while let Some(event) = self.connection.poll_for_event().map_err(|e| fail(&e))? {
                self.answer(&event, target.as_mut()).map_err(|e| fail(&e))?;
            }
        }
    }

    /// Lets go over `target`: a drop where it said it takes the file, then its word that it
    /// has, serving the file meanwhile.
    fn drop_on(&self, target: Option<Target>) -> Result<DragOutcome, Box<dyn std::error::Error>> {
        let Some(mut target) = target else { return Ok(DragOutcome::NotTaken) };
        // The answer to the last position may still be on its way.
        let asked = Instant::now();
        while target.waiting && asked.elapsed() < FINISH_PATIENCE {
            match self.connection.poll_for_event()? {
                Some(event) => self.answer(&event, Some(&mut target))?,
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        if !target.accepted {
            self.send(target.window, self.atoms.XdndLeave, [self.source, 0, 0, 0, 0])?;
            self.connection.flush()?;
            return Ok(DragOutcome::NotTaken);
        }
        self.send(target.window, self.atoms.XdndDrop, [self.source, 0, CURRENT_TIME, 0, 0])?;
        self.connection.flush()?;
        let dropped = Instant::now();
        while dropped.elapsed() < FINISH_PATIENCE {
            match self.connection.poll_for_event()? {
                Some(Event::ClientMessage(message)) if message.type_ == self.atoms.XdndFinished => {
                    let data = message.data.as_data32();
                    // Before version 5 a finish says nothing of whether the drop was taken.
                    let taken = target.version < 5 || data[1] & 1 == 1;
                    return Ok(if taken { DragOutcome::Dropped } else { DragOutcome::NotTaken });
                }
                Some(event) => self.answer(&event, Some(&mut target))?,
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        Err("the window it was dropped on never said it had taken the file".into())
    }

    /// The window under the pointer that says it takes drops, looked for from the top-level
    /// `child` of the root down as XDND has it, with its XDND version; none over Dreamroll's own.
    fn aware_window_under(&self, mut window: Window) -> Result<Option<(Window, u32)>, Box<dyn std::error::Error>> {
        for _ in 0..MOST_DEPTH {
            if window == NONE || window == self.source || (window == self.own && self.own != NONE) {
                return Ok(None);
            }
            let aware =
                self.connection.get_property(false, window, self.atoms.XdndAware, AtomEnum::ATOM, 0, 1)?.reply()?;
            if let Some(version) = aware.value32().and_then(|mut values| values.next()) {
                return Ok(Some((window, version)));
            }
            window = self.connection.query_pointer(window)?.reply()?.child;
        }
        Ok(None)
    }

    /// Answers what the server or the target sent: the target's status, and its asking for
    /// the file.
    fn answer(&self, event: &Event, target: Option<&mut Target>) -> Result<(), Box<dyn std::error::Error>> {
        match event {
            Event::ClientMessage(message) if message.type_ == self.atoms.XdndStatus => {
                let data = message.data.as_data32();
                if let Some(target) = target.filter(|t| t.window == data[0]) {
                    target.accepted = data[1] & 1 == 1;
                    target.waiting = false;
                }
            }
            Event::SelectionRequest(request) if request.selection == self.atoms.XdndSelection => {
                self.serve(request)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Hands the file's URI to a window that asked for it as `text/uri-list` (or asked what
    /// it can have).
    fn serve(&self, request: &SelectionRequestEvent) -> Result<(), Box<dyn std::error::Error>> {
        let property = if request.property == NONE { request.target } else { request.property };
        let served = if request.target == self.atoms.URI_LIST {
            self.connection.change_property8(
                PropMode::REPLACE,
                request.requestor,
                property,
                self.atoms.URI_LIST,
                &self.data,
            )?;
            true
        } else if request.target == self.atoms.TARGETS {
            let targets = [self.atoms.TARGETS, self.atoms.URI_LIST];
            self.connection.change_property32(
                PropMode::REPLACE,
                request.requestor,
                property,
                AtomEnum::ATOM,
                &targets,
            )?;
            true
        } else {
            false
        };
        let notify = SelectionNotifyEvent {
            response_type: SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: request.time,
            requestor: request.requestor,
            selection: request.selection,
            target: request.target,
            property: if served { property } else { NONE },
        };
        self.connection.send_event(false, request.requestor, EventMask::NO_EVENT, notify)?;
        self.connection.flush()?;
        Ok(())
    }

    fn send(&self, window: Window, kind: u32, data: [u32; 5]) -> Result<(), Box<dyn std::error::Error>> {
        let message = ClientMessageEvent::new(32, window, kind, data);
        self.connection.send_event(false, window, EventMask::NO_EVENT, message)?;
        Ok(())
    }
}

impl Drop for Drag {
    fn drop(&mut self) {
        let _ = self.connection.destroy_window(self.source);
        let _ = self.connection.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_uri_escapes_what_a_uri_may_not_hold() {
        assert_eq!(
            file_uri(Path::new("/home/me/Dreamroll/band seed 2#1.mid")),
            "file:///home/me/Dreamroll/band%20seed%202%231.mid"
        );
    }
}
