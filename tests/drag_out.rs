//! Dragging the loop out of the editor, on a private X server (Xvfb) with a window that takes
//! files the way a DAW's arrangement does (the XDND protocol's target side, written here from
//! the specification) and a pointer moved with XTEST, as a producer's hand would.

#![cfg(target_os = "linux")]

use dreamroll::editor::drag_out::{drag_file, file_uri, DragOutcome};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, Window, WindowClass,
    BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, MOTION_NOTIFY_EVENT,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::CURRENT_TIME;

x11rb::atom_manager! {
    Atoms: AtomsCookie {
        XdndAware, XdndSelection, XdndEnter, XdndPosition, XdndStatus, XdndDrop, XdndFinished, XdndLeave,
        XdndActionCopy, DROPPED,
        URI_LIST: b"text/uri-list",
    }
}

/// An X server of its own, stopped with the test.
struct Xvfb(Child);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_xvfb() -> (Xvfb, String) {
    let display = format!(":{}", 200 + std::process::id() % 500);
    let child = Command::new("Xvfb")
        .args([display.as_str(), "-screen", "0", "800x600x24", "-nolisten", "tcp", "-noreset"])
        .spawn()
        .expect("Xvfb starts (the drag-out test needs it: apt-get install xvfb)");
    let server = Xvfb(child);
    let started = Instant::now();
    while x11rb::connect(Some(&display)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "Xvfb {display} did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, display)
}

/// What the target saw: the messages' names in order, and the data it was given.
#[derive(Debug, Default)]
struct Seen {
    messages: Vec<&'static str>,
    dropped: Option<Vec<u8>>,
}

/// A top-level window at `(x, y)`, 300 × 200, that takes `text/uri-list` drops, answering
/// until a drop is finished or `until` passes.
fn drop_target(display: &str, (x, y): (i16, i16), ready: mpsc::Sender<Window>, until: Duration) -> Seen {
    let (connection, screen) = x11rb::connect(Some(display)).unwrap();
    let root = connection.setup().roots[screen].root;
    let atoms = Atoms::new(&connection).unwrap().reply().unwrap();
    let window: Window = connection.generate_id().unwrap();
    let aux = CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE);
    connection.create_window(0, window, root, x, y, 300, 200, 0, WindowClass::INPUT_OUTPUT, 0, &aux).unwrap();
    connection.change_property32(PropMode::REPLACE, window, atoms.XdndAware, AtomEnum::ATOM, &[5]).unwrap();
    connection.map_window(window).unwrap();
    connection.get_input_focus().unwrap().reply().unwrap();
    ready.send(window).unwrap();
    let mut seen = Seen::default();
    let mut source = 0;
    let started = Instant::now();
    let reply = |to: Window, kind: u32, data: [u32; 5]| {
        connection.send_event(false, to, EventMask::NO_EVENT, ClientMessageEvent::new(32, to, kind, data)).unwrap();
        connection.flush().unwrap();
    };
    while started.elapsed() < until {
        let Some(event) = connection.poll_for_event().unwrap() else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        match event {
            Event::ClientMessage(message) => {
                let data = message.data.as_data32();
                if message.type_ == atoms.XdndEnter {
                    seen.messages.push("enter");
                    source = data[0];
                    assert_eq!(data[1] >> 24, 5, "the source speaks XDND 5");
                    assert_eq!(data[2], atoms.URI_LIST, "it offers a uri-list");
                } else if message.type_ == atoms.XdndPosition {
                    if seen.messages.last() != Some(&"position") {
                        seen.messages.push("position");
                    }
                    assert_eq!(data[4], atoms.XdndActionCopy);
                    reply(source, atoms.XdndStatus, [window, 1, 0, 0, atoms.XdndActionCopy]);
                } else if message.type_ == atoms.XdndLeave {
                    seen.messages.push("leave");
                } else if message.type_ == atoms.XdndDrop {
                    seen.messages.push("drop");
                    connection
                        .convert_selection(window, atoms.XdndSelection, atoms.URI_LIST, atoms.DROPPED, CURRENT_TIME)
                        .unwrap();
                    connection.flush().unwrap();
                }
            }
            Event::SelectionNotify(notify) => {
                let property = connection
                    .get_property(true, window, notify.property, AtomEnum::ANY, 0, 1 << 16)
                    .unwrap()
                    .reply()
                    .unwrap();
                seen.dropped = Some(property.value);
                reply(source, atoms.XdndFinished, [window, 1, atoms.XdndActionCopy, 0, 0]);
                // A round trip before this connection closes: the server drops what a closing
                // client sent and it had not read yet (a DAW's window stays open; this one
                // does not), and under load the finish was lost that way.
                connection.get_input_focus().unwrap().reply().unwrap();
                return seen;
            }
            _ => {}
        }
    }
    seen
}

/// Moves the pointer (already pressed) along `path` and lets go at its end.
fn hand(connection: &RustConnection, root: Window, path: &[(i16, i16)]) {
    for &(x, y) in path {
        connection.xtest_fake_input(MOTION_NOTIFY_EVENT, 0, CURRENT_TIME, root, x, y, 0).unwrap();
        connection.flush().unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }
    connection.xtest_fake_input(BUTTON_RELEASE_EVENT, 1, CURRENT_TIME, root, 0, 0, 0).unwrap();
    connection.flush().unwrap();
}

fn press_at(connection: &RustConnection, root: Window, x: i16, y: i16) {
    connection.xtest_fake_input(MOTION_NOTIFY_EVENT, 0, CURRENT_TIME, root, x, y, 0).unwrap();
    connection.xtest_fake_input(BUTTON_PRESS_EVENT, 1, CURRENT_TIME, root, 0, 0, 0).unwrap();
    connection.get_input_focus().unwrap().reply().unwrap();
}

#[test]
fn a_loop_dragged_onto_a_window_that_takes_files_is_dropped_there_as_the_files_uri() {
    let (_server, display) = start_xvfb();
    // SAFETY (edition 2024 would ask): this binary's one test, before any thread reads it.
    std::env::set_var("DISPLAY", &display);
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("Dreamroll band seed 2 a1b2c3.mid");
    std::fs::write(&file, b"MThd").unwrap();

    let (hand_connection, screen) = x11rb::connect(Some(&display)).unwrap();
    let root = hand_connection.setup().roots[screen].root;
    let (ready, target_ready) = mpsc::channel();
    let target_display = display.clone();
    let target = std::thread::spawn(move || drop_target(&target_display, (300, 200), ready, Duration::from_secs(20)));
    target_ready.recv().unwrap();

    // Pressed on the plugin's window (here: anywhere outside the target), dragged in, let go.
    press_at(&hand_connection, root, 40, 40);
    let dragged = file.clone();
    let drag = std::thread::spawn(move || drag_file(&dragged, None));
    std::thread::sleep(Duration::from_millis(100));
    hand(&hand_connection, root, &[(120, 120), (250, 220), (350, 260), (420, 300), (430, 310)]);
    let outcome = drag.join().unwrap();
    let seen = target.join().unwrap();
    assert_eq!(outcome, Ok(DragOutcome::Dropped), "{seen:?}");
    assert_eq!(seen.messages, ["enter", "position", "drop"]);
    let uri = format!("{}\r\n", file_uri(&file));
    assert_eq!(seen.dropped.as_deref(), Some(uri.as_bytes()), "the target reads the file's URI");
    assert!(uri.contains("Dreamroll%20band%20seed%202"), "{uri}");

    // Let go over nothing that takes files: nothing is dropped, and the drag says so.
    press_at(&hand_connection, root, 40, 40);
    let again = file.clone();
    let drag = std::thread::spawn(move || drag_file(&again, None));
    std::thread::sleep(Duration::from_millis(100));
    hand(&hand_connection, root, &[(60, 500), (100, 550)]);
    assert_eq!(drag.join().unwrap(), Ok(DragOutcome::NotTaken));

    // Started in a window that takes files (Dreamroll's own: baseview takes drops) and let go
    // there: not a drop onto itself.
    let (ready, own_ready) = mpsc::channel();
    let own_display = display.clone();
    let own = std::thread::spawn(move || drop_target(&own_display, (0, 0), ready, Duration::from_secs(3)));
    let own_window = own_ready.recv().unwrap();
    press_at(&hand_connection, root, 40, 40);
    let drag = std::thread::spawn(move || drag_file(&file, Some(own_window)));
    std::thread::sleep(Duration::from_millis(100));
    hand(&hand_connection, root, &[(80, 80), (120, 100)]);
    assert_eq!(drag.join().unwrap(), Ok(DragOutcome::NotTaken));
    assert!(own.join().unwrap().messages.is_empty(), "no XDND message to the window it started in");
}
