//! A CLAP host for the tests: loads a built `dreamroll.clap`, drives its transport block by
//! block, sends parameter changes at sample offsets, and records every note it plays with its
//! absolute sample time. Written against the C ABI (clap-sys) so that it sees the plugin the way
//! any DAW does, through the exported `clap_entry` alone.

#![allow(dead_code)] // each test binary uses part of the host

use clap_sys::audio_buffer::clap_audio_buffer;
use clap_sys::entry::clap_plugin_entry;
use clap_sys::events::*;
use clap_sys::ext::audio_ports_config::{
    clap_audio_ports_config, clap_plugin_audio_ports_config, CLAP_EXT_AUDIO_PORTS_CONFIG,
};
use clap_sys::ext::params::{clap_param_info, clap_plugin_params, CLAP_EXT_PARAMS};
use clap_sys::ext::preset_load::{clap_host_preset_load, clap_plugin_preset_load, CLAP_EXT_PRESET_LOAD};
use clap_sys::ext::state::{clap_plugin_state, CLAP_EXT_STATE};
use clap_sys::factory::plugin_factory::{clap_plugin_factory, CLAP_PLUGIN_FACTORY_ID};
use clap_sys::factory::preset_discovery::*;
use clap_sys::fixedpoint::{CLAP_BEATTIME_FACTOR, CLAP_SECTIME_FACTOR};
use clap_sys::host::clap_host;
use clap_sys::plugin::clap_plugin;
use clap_sys::process::clap_process;
use clap_sys::stream::{clap_istream, clap_ostream};
use clap_sys::universal_plugin_id::clap_universal_plugin_id;
use clap_sys::version::CLAP_VERSION;
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The transport a block is played under.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transport {
    pub playing: bool,
    pub tempo: f64,
    /// Quarter notes from the song's start.
    pub beats: f64,
    pub bar_start: f64,
    pub bar_number: i32,
    pub numerator: u16,
    pub denominator: u16,
    pub loop_range: Option<(f64, f64)>,
}

impl Transport {
    /// Playing (or stopped) in 4/4 at `tempo`, `beats` quarters from the song's start, with the
    /// bar grid from the song's start: what most tests and benches drive the plugin with.
    pub fn four_four(beats: f64, tempo: f64, playing: bool) -> Transport {
        let bar = (beats / 4.0).floor();
        Transport {
            playing,
            tempo,
            beats,
            bar_start: bar * 4.0,
            bar_number: bar as i32,
            numerator: 4,
            denominator: 4,
            loop_range: None,
        }
    }
}

/// The plugin's shared library as cargo names it on this OS (`target/<profile>/…`).
pub const PLUGIN_LIBRARY: &str = if cfg!(target_os = "macos") {
    "libdreamroll.dylib"
} else if cfg!(windows) {
    "dreamroll.dll"
} else {
    "libdreamroll.so"
};

/// A note event the plugin sent, at an absolute sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Played {
    pub sample: u64,
    pub on: bool,
    pub channel: u8,
    pub key: u8,
    pub velocity: u8,
}

#[derive(Clone, Debug)]
pub struct ParamInfo {
    pub id: u32,
    pub name: String,
    pub min: f64,
    pub max: f64,
    pub default: f64,
    /// `CLAP_PARAM_IS_*` bits.
    pub flags: u32,
}

/// A remote-controls page as a controller shows it: eight slots, `None` where one is empty.
#[derive(Debug)]
pub struct RemotePage {
    pub section: String,
    pub name: String,
    pub params: Vec<Option<u32>>,
}

/// An event played into the plugin as a host may send it, nonsense included: a note event
/// with any key, channel and velocity, or raw MIDI bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HostInput {
    Note { sample: u32, on: bool, channel: i16, key: i16, velocity: f64 },
    Midi { sample: u32, data: [u8; 3] },
}

struct HostData {
    callback_requested: AtomicBool,
    /// What the plugin told the host's preset-load extension: "loaded NAME" or "error MESSAGE".
    preset_news: Mutex<Vec<String>>,
}

unsafe extern "C" fn get_extension(_host: *const clap_host, id: *const c_char) -> *const c_void {
    match unsafe { CStr::from_ptr(id) } == CLAP_EXT_PRESET_LOAD {
        true => &HOST_PRESET_LOAD as *const clap_host_preset_load as *const c_void,
        false => std::ptr::null(),
    }
}

static HOST_PRESET_LOAD: clap_host_preset_load =
    clap_host_preset_load { on_error: Some(preset_error), loaded: Some(preset_loaded) };

fn tell_host(host: *const clap_host, news: String) {
    unsafe { (*((*host).host_data as *const HostData)).preset_news.lock().unwrap().push(news) };
}

fn text_or_null(text: *const c_char) -> String {
    match text.is_null() {
        true => "null".to_string(),
        false => unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned(),
    }
}

unsafe extern "C" fn preset_error(
    host: *const clap_host,
    _kind: u32,
    _location: *const c_char,
    _load_key: *const c_char,
    _os_error: i32,
    message: *const c_char,
) {
    tell_host(host, format!("error {}", text_or_null(message)));
}

unsafe extern "C" fn preset_loaded(
    host: *const clap_host,
    _kind: u32,
    location: *const c_char,
    load_key: *const c_char,
) {
    tell_host(host, format!("loaded {} {}", text_or_null(location), text_or_null(load_key)));
}
unsafe extern "C" fn request_nothing(_host: *const clap_host) {}
unsafe extern "C" fn request_callback(host: *const clap_host) {
    unsafe { (*((*host).host_data as *const HostData)).callback_requested.store(true, Ordering::Release) };
}

/// Event lists: what the host sends in, and what the plugin sends out.
enum InEvent {
    Param(clap_event_param_value),
    Note(clap_event_note),
    Midi(clap_event_midi),
}
impl InEvent {
    fn header(&self) -> &clap_event_header {
        match self {
            InEvent::Param(e) => &e.header,
            InEvent::Note(e) => &e.header,
            InEvent::Midi(e) => &e.header,
        }
    }
}
struct InEvents {
    events: Vec<InEvent>,
}
unsafe extern "C" fn in_size(list: *const clap_input_events) -> u32 {
    unsafe { (*((*list).ctx as *const InEvents)).events.len() as u32 }
}
unsafe extern "C" fn in_get(list: *const clap_input_events, index: u32) -> *const clap_event_header {
    unsafe {
        let events = &(*((*list).ctx as *const InEvents)).events;
        events.get(index as usize).map_or(std::ptr::null(), |e| e.header() as *const clap_event_header)
    }
}
struct OutEvents {
    notes: Vec<(u32, bool, clap_event_note)>,
    other: usize,
}
unsafe extern "C" fn out_push(list: *const clap_output_events, event: *const clap_event_header) -> bool {
    unsafe {
        let out = &mut *((*list).ctx as *mut OutEvents);
        let header = &*event;
        if header.space_id == CLAP_CORE_EVENT_SPACE_ID
            && (header.type_ == CLAP_EVENT_NOTE_ON || header.type_ == CLAP_EVENT_NOTE_OFF)
        {
            let note = *(event as *const clap_event_note);
            out.notes.push((header.time, header.type_ == CLAP_EVENT_NOTE_ON, note));
        } else {
            out.other += 1;
        }
        true
    }
}

unsafe extern "C" fn write_vec(stream: *const clap_ostream, buffer: *const c_void, size: u64) -> i64 {
    unsafe {
        let out = &mut *((*stream).ctx as *mut Vec<u8>);
        out.extend_from_slice(std::slice::from_raw_parts(buffer as *const u8, size as usize));
        size as i64
    }
}
unsafe extern "C" fn read_slice(stream: *const clap_istream, buffer: *mut c_void, size: u64) -> i64 {
    unsafe {
        let source = &mut *((*stream).ctx as *mut &[u8]);
        let n = (size as usize).min(source.len());
        std::ptr::copy_nonoverlapping(source.as_ptr(), buffer as *mut u8, n);
        *source = &source[n..];
        n as i64
    }
}

pub struct ClapInstance {
    plugin: *const clap_plugin,
    params: *const clap_plugin_params,
    state: *const clap_plugin_state,
    host: Box<clap_host>,
    host_data: Box<HostData>,
    _names: [CString; 4],
    entry: *const clap_plugin_entry,
    _library: libloading::Library,
    sample_rate: f64,
    /// Absolute sample of the next block, for stamping what the plugin plays.
    pub position: u64,
    active: bool,
    processing: bool,
    left: Vec<f32>,
    right: Vec<f32>,
    /// Channels of the audio output the host offers (2 unless another configuration is chosen).
    output_channels: u32,
    /// Events the plugin sent that were neither note-ons nor note-offs.
    pub other_events: usize,
}

impl ClapInstance {
    /// Loads the plugin from a `.clap` file (or any library exporting `clap_entry`).
    pub fn load(path: &Path) -> ClapInstance {
        unsafe {
            let library =
                libloading::Library::new(path).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
            let entry =
                *library.get::<*const clap_plugin_entry>(b"clap_entry\0").expect("the library exports clap_entry");
            let path_c = CString::new(path.to_str().unwrap()).unwrap();
            assert!(((*entry).init.unwrap())(path_c.as_ptr()), "clap_entry.init failed");
            let factory =
                ((*entry).get_factory.unwrap())(CLAP_PLUGIN_FACTORY_ID.as_ptr()) as *const clap_plugin_factory;
            assert!(!factory.is_null(), "no plugin factory");
            assert_eq!(((*factory).get_plugin_count.unwrap())(factory), 1, "one plugin in the bundle");
            let descriptor = ((*factory).get_plugin_descriptor.unwrap())(factory, 0);
            let names =
                [c"dreamroll-test-host".to_owned(), c"Dreamroll tests".to_owned(), c"".to_owned(), c"1.0".to_owned()];
            let host_data =
                Box::new(HostData { callback_requested: AtomicBool::new(false), preset_news: Mutex::new(Vec::new()) });
            let host = Box::new(clap_host {
                clap_version: CLAP_VERSION,
                host_data: &*host_data as *const HostData as *mut c_void,
                name: names[0].as_ptr(),
                vendor: names[1].as_ptr(),
                url: names[2].as_ptr(),
                version: names[3].as_ptr(),
                get_extension: Some(get_extension),
                request_restart: Some(request_nothing),
                request_process: Some(request_nothing),
                request_callback: Some(request_callback),
            });
            let plugin = ((*factory).create_plugin.unwrap())(factory, &*host, (*descriptor).id);
            assert!(!plugin.is_null(), "create_plugin failed");
            assert!(((*plugin).init.unwrap())(plugin), "plugin init failed");
            let params =
                ((*plugin).get_extension.unwrap())(plugin, CLAP_EXT_PARAMS.as_ptr()) as *const clap_plugin_params;
            let state = ((*plugin).get_extension.unwrap())(plugin, CLAP_EXT_STATE.as_ptr()) as *const clap_plugin_state;
            assert!(!params.is_null() && !state.is_null(), "params and state extensions");
            ClapInstance {
                plugin,
                params,
                state,
                host,
                host_data,
                _names: names,
                entry,
                _library: library,
                sample_rate: 0.0,
                position: 0,
                active: false,
                processing: false,
                left: Vec::new(),
                right: Vec::new(),
                output_channels: 2,
                other_events: 0,
            }
        }
    }

    /// Runs what the plugin asked the main thread to do (parameter rescans and the like).
    pub fn pump_main_thread(&mut self) {
        if self.host_data.callback_requested.swap(false, Ordering::AcqRel) {
            unsafe { ((*self.plugin).on_main_thread.unwrap())(self.plugin) };
        }
    }

    pub fn params(&self) -> Vec<ParamInfo> {
        unsafe {
            let count = ((*self.params).count.unwrap())(self.plugin);
            (0..count)
                .map(|index| {
                    let mut info: clap_param_info = std::mem::zeroed();
                    assert!(((*self.params).get_info.unwrap())(self.plugin, index, &mut info));
                    ParamInfo {
                        id: info.id,
                        name: CStr::from_ptr(info.name.as_ptr()).to_string_lossy().into_owned(),
                        min: info.min_value,
                        max: info.max_value,
                        default: info.default_value,
                        flags: info.flags,
                    }
                })
                .collect()
        }
    }

    /// The pages of `clap.remote-controls`, as a host enumerates them for a controller.
    pub fn remote_control_pages(&self) -> Vec<RemotePage> {
        use clap_sys::ext::remote_controls::{
            clap_plugin_remote_controls, clap_remote_controls_page, CLAP_EXT_REMOTE_CONTROLS,
        };
        use clap_sys::id::CLAP_INVALID_ID;
        let text = |chars: &[c_char]| unsafe { CStr::from_ptr(chars.as_ptr()) }.to_string_lossy().into_owned();
        unsafe {
            let controls = ((*self.plugin).get_extension.unwrap())(self.plugin, CLAP_EXT_REMOTE_CONTROLS.as_ptr())
                as *const clap_plugin_remote_controls;
            assert!(!controls.is_null(), "the remote-controls extension");
            (0..((*controls).count.unwrap())(self.plugin))
                .map(|index| {
                    let mut page: clap_remote_controls_page = std::mem::zeroed();
                    assert!(((*controls).get.unwrap())(self.plugin, index, &mut page), "page {index}");
                    RemotePage {
                        section: text(&page.section_name),
                        name: text(&page.page_name),
                        params: page.param_ids.iter().map(|&id| (id != CLAP_INVALID_ID).then_some(id)).collect(),
                    }
                })
                .collect()
        }
    }

    pub fn param_id(&self, name: &str) -> u32 {
        self.params().into_iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no parameter {name}")).id
    }

    pub fn param_value(&self, id: u32) -> f64 {
        let mut value = 0.0;
        unsafe { assert!(((*self.params).get_value.unwrap())(self.plugin, id, &mut value)) };
        value
    }

    /// The host value of a parameter shown as `text` (the plugin parses it, as a DAW's text
    /// entry would).
    pub fn value_from_text(&self, id: u32, text: &str) -> f64 {
        self.text_to_value(id, text).unwrap_or_else(|| panic!("the plugin cannot read {text:?}"))
    }

    /// `clap_plugin_params.text_to_value`: `None` where the plugin refuses the text.
    pub fn text_to_value(&self, id: u32, text: &str) -> Option<f64> {
        let text_c = CString::new(text).unwrap();
        let mut value = 0.0;
        unsafe { ((*self.params).text_to_value.unwrap())(self.plugin, id, text_c.as_ptr(), &mut value) }
            .then_some(value)
    }

    /// `clap_plugin_params.value_to_text`: what a host shows for `value`.
    pub fn value_to_text(&self, id: u32, value: f64) -> Option<String> {
        let mut buffer = [0 as c_char; 256];
        let written = unsafe {
            ((*self.params).value_to_text.unwrap())(self.plugin, id, value, buffer.as_mut_ptr(), buffer.len() as u32)
        };
        written.then(|| unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned())
    }

    /// Chooses the plugin's audio-ports configuration whose main output has `channels`
    /// channels (0: none), as a host does before activating; the host then offers that many.
    pub fn choose_output_channels(&mut self, channels: u32) {
        assert!(!self.active);
        unsafe {
            let configs = ((*self.plugin).get_extension.unwrap())(self.plugin, CLAP_EXT_AUDIO_PORTS_CONFIG.as_ptr())
                as *const clap_plugin_audio_ports_config;
            assert!(!configs.is_null(), "the audio-ports-config extension");
            let id = (0..((*configs).count.unwrap())(self.plugin))
                .find_map(|index| {
                    let mut config: clap_audio_ports_config = std::mem::zeroed();
                    assert!(((*configs).get.unwrap())(self.plugin, index, &mut config));
                    let main = if config.has_main_output { config.main_output_channel_count } else { 0 };
                    (main == channels).then_some(config.id)
                })
                .unwrap_or_else(|| panic!("no configuration with {channels} output channels"));
            assert!(((*configs).select.unwrap())(self.plugin, id), "configuration {id} refused");
        }
        self.output_channels = channels;
    }

    /// Samples of output `channel` in the last block.
    pub fn output(&self, channel: usize, frames: u32) -> &[f32] {
        assert!((channel as u32) < self.output_channels);
        &[&self.left, &self.right][channel][..frames as usize]
    }

    /// A parameter change for `name` set to the display text `text`.
    pub fn change(&self, name: &str, text: &str) -> (u32, f64) {
        let id = self.param_id(name);
        (id, self.value_from_text(id, text))
    }

    /// Sets parameters outside processing, as a host does from its main thread.
    pub fn flush_params(&mut self, changes: &[(u32, f64)]) {
        let mut events =
            InEvents { events: changes.iter().map(|&(id, value)| InEvent::Param(param_event(0, id, value))).collect() };
        let input = clap_input_events {
            ctx: &mut events as *mut InEvents as *mut c_void,
            size: Some(in_size),
            get: Some(in_get),
        };
        let mut sink = OutEvents { notes: Vec::new(), other: 0 };
        let output = clap_output_events { ctx: &mut sink as *mut OutEvents as *mut c_void, try_push: Some(out_push) };
        unsafe { ((*self.params).flush.unwrap())(self.plugin, &input, &output) };
        self.pump_main_thread();
    }

    /// Asks for offline rendering (a bounce), through the render extension.
    pub fn set_offline(&mut self) {
        use clap_sys::ext::render::{clap_plugin_render, CLAP_EXT_RENDER, CLAP_RENDER_OFFLINE};
        unsafe {
            let render = ((*self.plugin).get_extension.unwrap())(self.plugin, CLAP_EXT_RENDER.as_ptr())
                as *const clap_plugin_render;
            assert!(!render.is_null(), "the render extension");
            assert!(((*render).set.unwrap())(self.plugin, CLAP_RENDER_OFFLINE), "offline rendering refused");
        }
    }

    pub fn activate(&mut self, sample_rate: f64, max_frames: u32) {
        assert!(!self.active);
        unsafe {
            assert!(((*self.plugin).activate.unwrap())(self.plugin, sample_rate, 1, max_frames), "activate failed")
        };
        self.sample_rate = sample_rate;
        self.left = vec![0.0; max_frames as usize];
        self.right = vec![0.0; max_frames as usize];
        unsafe { assert!(((*self.plugin).start_processing.unwrap())(self.plugin)) };
        self.active = true;
        self.processing = true;
    }

    pub fn deactivate(&mut self) {
        if self.active {
            unsafe {
                ((*self.plugin).stop_processing.unwrap())(self.plugin);
                ((*self.plugin).deactivate.unwrap())(self.plugin);
            }
            self.active = false;
            self.processing = false;
        }
        self.pump_main_thread();
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Plays one block under `transport`, with parameter changes at offsets inside it. Returns
    /// the notes played, stamped with absolute samples, and the peak of the audio.
    pub fn process(&mut self, frames: u32, transport: &Transport, changes: &[(u32, u32, f64)]) -> (Vec<Played>, f32) {
        self.process_with_notes(frames, transport, changes, &[])
    }

    /// The same, with notes played into the plugin (`sample` relative to the block).
    pub fn process_with_notes(
        &mut self,
        frames: u32,
        transport: &Transport,
        changes: &[(u32, u32, f64)],
        notes: &[Played],
    ) -> (Vec<Played>, f32) {
        let input: Vec<HostInput> = notes
            .iter()
            .map(|n| HostInput::Note {
                sample: n.sample as u32,
                on: n.on,
                channel: i16::from(n.channel),
                key: i16::from(n.key),
                velocity: f64::from(n.velocity) / 127.0,
            })
            .collect();
        self.process_with_input(frames, transport, changes, &input)
    }

    /// The same, with whatever a host may send played in.
    pub fn process_with_input(
        &mut self,
        frames: u32,
        transport: &Transport,
        changes: &[(u32, u32, f64)],
        input: &[HostInput],
    ) -> (Vec<Played>, f32) {
        assert!(self.active && frames as usize <= self.left.len());
        let mut flags = CLAP_TRANSPORT_HAS_TEMPO
            | CLAP_TRANSPORT_HAS_BEATS_TIMELINE
            | CLAP_TRANSPORT_HAS_SECONDS_TIMELINE
            | CLAP_TRANSPORT_HAS_TIME_SIGNATURE;
        if transport.playing {
            flags |= CLAP_TRANSPORT_IS_PLAYING;
        }
        let (loop_start, loop_end) = transport.loop_range.unwrap_or((0.0, 0.0));
        if transport.loop_range.is_some() {
            flags |= CLAP_TRANSPORT_IS_LOOP_ACTIVE;
        }
        let beats = |b: f64| (b * CLAP_BEATTIME_FACTOR as f64).round() as i64;
        let seconds = |b: f64| (b * 60.0 / transport.tempo * CLAP_SECTIME_FACTOR as f64).round() as i64;
        let clap_transport = clap_event_transport {
            header: clap_event_header {
                size: size_of::<clap_event_transport>() as u32,
                time: 0,
                space_id: CLAP_CORE_EVENT_SPACE_ID,
                type_: CLAP_EVENT_TRANSPORT,
                flags: 0,
            },
            flags,
            song_pos_beats: beats(transport.beats),
            song_pos_seconds: seconds(transport.beats),
            tempo: transport.tempo,
            tempo_inc: 0.0,
            loop_start_beats: beats(loop_start),
            loop_end_beats: beats(loop_end),
            loop_start_seconds: seconds(loop_start),
            loop_end_seconds: seconds(loop_end),
            bar_start: beats(transport.bar_start),
            bar_number: transport.bar_number,
            tsig_num: transport.numerator,
            tsig_denom: transport.denominator,
        };
        let note_events = input.iter().map(|&event| match event {
            HostInput::Note { sample, on, channel, key, velocity } => {
                let type_ = if on { CLAP_EVENT_NOTE_ON } else { CLAP_EVENT_NOTE_OFF };
                InEvent::Note(clap_event_note {
                    header: clap_event_header {
                        size: size_of::<clap_event_note>() as u32,
                        time: sample,
                        space_id: CLAP_CORE_EVENT_SPACE_ID,
                        type_,
                        flags: 0,
                    },
                    note_id: -1,
                    port_index: 0,
                    channel,
                    key,
                    velocity,
                })
            }
            HostInput::Midi { sample, data } => InEvent::Midi(clap_event_midi {
                header: clap_event_header {
                    size: size_of::<clap_event_midi>() as u32,
                    time: sample,
                    space_id: CLAP_CORE_EVENT_SPACE_ID,
                    type_: CLAP_EVENT_MIDI,
                    flags: 0,
                },
                port_index: 0,
                data,
            }),
        });
        let mut events = InEvents {
            events: changes
                .iter()
                .map(|&(offset, id, value)| InEvent::Param(param_event(offset, id, value)))
                .chain(note_events)
                .collect(),
        };
        events.events.sort_by_key(|e| e.header().time);
        let input = clap_input_events {
            ctx: &mut events as *mut InEvents as *mut c_void,
            size: Some(in_size),
            get: Some(in_get),
        };
        let mut sink = OutEvents { notes: Vec::with_capacity(256), other: 0 };
        let output = clap_output_events { ctx: &mut sink as *mut OutEvents as *mut c_void, try_push: Some(out_push) };
        self.left[..frames as usize].fill(f32::NAN);
        self.right[..frames as usize].fill(f32::NAN);
        let mut channels = [self.left.as_mut_ptr(), self.right.as_mut_ptr()];
        let mut audio = clap_audio_buffer {
            data32: channels.as_mut_ptr(),
            data64: std::ptr::null_mut(),
            channel_count: self.output_channels,
            latency: 0,
            constant_mask: 0,
        };
        let process = clap_process {
            steady_time: self.position as i64,
            frames_count: frames,
            transport: &clap_transport,
            audio_inputs: std::ptr::null(),
            audio_outputs: &mut audio,
            audio_inputs_count: 0,
            audio_outputs_count: u32::from(self.output_channels > 0),
            in_events: &input,
            out_events: &output,
        };
        let status = unsafe { ((*self.plugin).process.unwrap())(self.plugin, &process) };
        assert_ne!(status, clap_sys::process::CLAP_PROCESS_ERROR, "process() failed");
        self.other_events += sink.other;
        let played = sink
            .notes
            .iter()
            .map(|&(time, on, note)| {
                assert!(time < frames, "an event at {time} in a block of {frames}");
                Played {
                    sample: self.position + u64::from(time),
                    on,
                    channel: note.channel as u8,
                    key: note.key as u8,
                    velocity: (note.velocity * 127.0).round() as u8,
                }
            })
            .collect();
        let peak = (0..self.output_channels as usize).flat_map(|c| self.output(c, frames)).fold(0.0f32, |m, s| {
            if s.is_nan() {
                f32::NAN
            } else {
                m.max(s.abs())
            }
        });
        self.position += u64::from(frames);
        self.pump_main_thread();
        (played, peak)
    }

    pub fn save_state(&mut self) -> Vec<u8> {
        let mut bytes: Vec<u8> = Vec::new();
        let stream = clap_ostream { ctx: &mut bytes as *mut Vec<u8> as *mut c_void, write: Some(write_vec) };
        unsafe { assert!(((*self.state).save.unwrap())(self.plugin, &stream), "state save failed") };
        bytes
    }

    /// Whether the plugin accepted the state.
    pub fn load_state(&mut self, bytes: &[u8]) -> bool {
        let mut source: &[u8] = bytes;
        let stream = clap_istream { ctx: &mut source as *mut &[u8] as *mut c_void, read: Some(read_slice) };
        let accepted = unsafe { ((*self.state).load.unwrap())(self.plugin, &stream) };
        self.pump_main_thread();
        accepted
    }
}

/// A preset as a host's browser lists it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListedPreset {
    pub name: String,
    pub load_key: Option<String>,
    pub kind: u32,
    /// The file, for a preset in a file location.
    pub location: Option<String>,
    pub description: String,
    pub plugin_ids: Vec<String>,
    pub flags: u32,
    pub features: Vec<String>,
}

/// What a provider declared to the indexer, and the presets its locations hold.
#[derive(Debug, Default)]
pub struct PresetCrawl {
    pub filetypes: Vec<String>,
    /// (name, kind, location, flags) of each declared location.
    pub locations: Vec<(String, u32, Option<String>, u32)>,
    pub presets: Vec<ListedPreset>,
    pub errors: Vec<String>,
}

unsafe extern "C" fn declare_filetype(
    indexer: *const clap_preset_discovery_indexer,
    filetype: *const clap_preset_discovery_filetype,
) -> bool {
    let crawl = unsafe { &mut *((*indexer).indexer_data as *mut PresetCrawl) };
    crawl.filetypes.push(text_or_null(unsafe { (*filetype).file_extension }));
    true
}

unsafe extern "C" fn declare_location(
    indexer: *const clap_preset_discovery_indexer,
    location: *const clap_preset_discovery_location,
) -> bool {
    let crawl = unsafe { &mut *((*indexer).indexer_data as *mut PresetCrawl) };
    let location = unsafe { &*location };
    let place = (!location.location.is_null()).then(|| text_or_null(location.location));
    crawl.locations.push((text_or_null(location.name), location.kind, place, location.flags));
    true
}

unsafe extern "C" fn declare_soundpack(
    _indexer: *const clap_preset_discovery_indexer,
    _soundpack: *const clap_preset_discovery_soundpack,
) -> bool {
    true
}

unsafe extern "C" fn indexer_extension(
    _indexer: *const clap_preset_discovery_indexer,
    _id: *const c_char,
) -> *const c_void {
    std::ptr::null()
}

/// The receiver's data: the presets found so far and where they are.
struct Receiving<'a> {
    crawl: &'a mut PresetCrawl,
    kind: u32,
    location: Option<String>,
}

fn receiving<'a>(receiver: *const clap_preset_discovery_metadata_receiver) -> &'a mut Receiving<'a> {
    unsafe { &mut *((*receiver).receiver_data as *mut Receiving) }
}

fn current(receiver: *const clap_preset_discovery_metadata_receiver) -> &'static mut ListedPreset {
    let receiving = receiving(receiver);
    let preset = receiving.crawl.presets.last_mut().expect("begin_preset comes first");
    unsafe { &mut *(preset as *mut ListedPreset) }
}

unsafe extern "C" fn receive_error(
    receiver: *const clap_preset_discovery_metadata_receiver,
    _os: i32,
    message: *const c_char,
) {
    receiving(receiver).crawl.errors.push(text_or_null(message));
}
unsafe extern "C" fn begin_preset(
    receiver: *const clap_preset_discovery_metadata_receiver,
    name: *const c_char,
    load_key: *const c_char,
) -> bool {
    let receiving = receiving(receiver);
    let load_key = (!load_key.is_null()).then(|| text_or_null(load_key));
    let (kind, location) = (receiving.kind, receiving.location.clone());
    receiving.crawl.presets.push(ListedPreset {
        name: text_or_null(name),
        load_key,
        kind,
        location,
        ..Default::default()
    });
    true
}
unsafe extern "C" fn add_plugin_id(
    receiver: *const clap_preset_discovery_metadata_receiver,
    id: *const clap_universal_plugin_id,
) {
    let id = unsafe { &*id };
    current(receiver).plugin_ids.push(format!("{}:{}", text_or_null(id.abi), text_or_null(id.id)));
}
unsafe extern "C" fn set_soundpack_id(_receiver: *const clap_preset_discovery_metadata_receiver, _id: *const c_char) {}
unsafe extern "C" fn set_flags(receiver: *const clap_preset_discovery_metadata_receiver, flags: u32) {
    current(receiver).flags = flags;
}
unsafe extern "C" fn add_creator(_receiver: *const clap_preset_discovery_metadata_receiver, _creator: *const c_char) {}
unsafe extern "C" fn set_description(receiver: *const clap_preset_discovery_metadata_receiver, text: *const c_char) {
    current(receiver).description = text_or_null(text);
}
unsafe extern "C" fn set_timestamps(
    _receiver: *const clap_preset_discovery_metadata_receiver,
    _created: u64,
    _modified: u64,
) {
}
unsafe extern "C" fn add_feature(receiver: *const clap_preset_discovery_metadata_receiver, feature: *const c_char) {
    current(receiver).features.push(text_or_null(feature));
}
unsafe extern "C" fn add_extra_info(
    _receiver: *const clap_preset_discovery_metadata_receiver,
    _key: *const c_char,
    _value: *const c_char,
) {
}

impl ClapInstance {
    /// Crawls the plugin's presets as a host's browser does: the preset-discovery factory's
    /// first provider, its declared locations, and for a folder each file of a declared type.
    pub fn crawl_presets(&self) -> PresetCrawl {
        let mut crawl = PresetCrawl::default();
        unsafe {
            let factory = ((*self.entry).get_factory.unwrap())(CLAP_PRESET_DISCOVERY_FACTORY_ID.as_ptr())
                as *const clap_preset_discovery_factory;
            assert!(!factory.is_null(), "no preset-discovery factory");
            assert_eq!(((*factory).count.unwrap())(factory), 1, "one preset provider");
            let descriptor = ((*factory).get_descriptor.unwrap())(factory, 0);
            let names = [c"dreamroll-test-host", c"Dreamroll tests", c"", c"1.0"];
            let indexer = clap_preset_discovery_indexer {
                clap_version: CLAP_VERSION,
                name: names[0].as_ptr(),
                vendor: names[1].as_ptr(),
                url: names[2].as_ptr(),
                version: names[3].as_ptr(),
                indexer_data: &mut crawl as *mut PresetCrawl as *mut c_void,
                declare_filetype: Some(declare_filetype),
                declare_location: Some(declare_location),
                declare_soundpack: Some(declare_soundpack),
                get_extension: Some(indexer_extension),
            };
            let provider = ((*factory).create.unwrap())(factory, &indexer, (*descriptor).id);
            assert!(!provider.is_null(), "the provider is made");
            assert!(((*provider).init.unwrap())(provider), "the provider starts");
            let mut places = Vec::new();
            for (_, kind, location, _) in crawl.locations.clone() {
                match (kind, location) {
                    (CLAP_PRESET_DISCOVERY_LOCATION_FILE, Some(dir)) => {
                        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
                        files.sort();
                        let wanted = |path: &Path| {
                            crawl.filetypes.iter().any(|ext| path.extension().is_some_and(|e| e == ext.as_str()))
                        };
                        places.extend(
                            files.into_iter().filter(|f| wanted(f)).map(|f| (kind, Some(f.display().to_string()))),
                        );
                    }
                    other => places.push(other),
                }
            }
            for (kind, location) in places {
                let mut receiving = Receiving { crawl: &mut crawl, kind, location: location.clone() };
                let receiver = clap_preset_discovery_metadata_receiver {
                    receiver_data: &mut receiving as *mut Receiving as *mut c_void,
                    on_error: Some(receive_error),
                    begin_preset: Some(begin_preset),
                    add_plugin_id: Some(add_plugin_id),
                    set_soundpack_id: Some(set_soundpack_id),
                    set_flags: Some(set_flags),
                    add_creator: Some(add_creator),
                    set_description: Some(set_description),
                    set_timestamps: Some(set_timestamps),
                    add_feature: Some(add_feature),
                    add_extra_info: Some(add_extra_info),
                };
                let location = location.map(|l| CString::new(l).unwrap());
                let answered = ((*provider).get_metadata.unwrap())(
                    provider,
                    kind,
                    location.as_ref().map_or(std::ptr::null(), |l| l.as_ptr()),
                    &receiver,
                );
                if !answered {
                    crawl.errors.push(format!("get_metadata refused {location:?}"));
                }
            }
            ((*provider).destroy.unwrap())(provider);
        }
        crawl
    }

    /// Loads `preset` through the plugin's preset-load extension, as a browser does on a
    /// double-click; whether the plugin says it loaded, and what it told the host.
    pub fn load_preset(&mut self, preset: &ListedPreset) -> (bool, Vec<String>) {
        let location = preset.location.as_ref().map(|l| CString::new(l.as_str()).unwrap());
        let load_key = preset.load_key.as_ref().map(|k| CString::new(k.as_str()).unwrap());
        let loaded = unsafe {
            let extension = ((*self.plugin).get_extension.unwrap())(self.plugin, CLAP_EXT_PRESET_LOAD.as_ptr())
                as *const clap_plugin_preset_load;
            assert!(!extension.is_null(), "the plugin offers preset-load");
            ((*extension).from_location.unwrap())(
                self.plugin,
                preset.kind,
                location.as_ref().map_or(std::ptr::null(), |l| l.as_ptr()),
                load_key.as_ref().map_or(std::ptr::null(), |k| k.as_ptr()),
            )
        };
        self.pump_main_thread();
        (loaded, std::mem::take(&mut *self.host_data.preset_news.lock().unwrap()))
    }
}

fn param_event(offset: u32, id: u32, value: f64) -> clap_event_param_value {
    clap_event_param_value {
        header: clap_event_header {
            size: size_of::<clap_event_param_value>() as u32,
            time: offset,
            space_id: CLAP_CORE_EVENT_SPACE_ID,
            type_: CLAP_EVENT_PARAM_VALUE,
            flags: 0,
        },
        param_id: id,
        cookie: std::ptr::null_mut(),
        note_id: -1,
        port_index: -1,
        channel: -1,
        key: -1,
        value,
    }
}

impl Drop for ClapInstance {
    fn drop(&mut self) {
        self.deactivate();
        unsafe {
            ((*self.plugin).destroy.unwrap())(self.plugin);
            ((*self.entry).deinit.unwrap())();
        }
    }
}

/// nice-plug's saved state: a little-endian length, then JSON whose `fields` hold each
/// persisted field as JSON text. These read and replace Dreamroll's session in it.
pub fn session_in_state(state: &[u8]) -> serde_json::Value {
    let outer: serde_json::Value =
        serde_json::from_slice(&state[8..]).expect("nice-plug's state is JSON after its length");
    let field = outer["fields"]["session"].as_str().unwrap_or_else(|| panic!("no session saved in {outer}"));
    let text: String = serde_json::from_str(field).expect("the field holds the session as a JSON string");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the session {text:?} is not JSON: {e}"))
}

pub fn state_with_session(state: &[u8], session: &str) -> Vec<u8> {
    let mut outer: serde_json::Value =
        serde_json::from_slice(&state[8..]).expect("nice-plug's state is JSON after its length");
    outer["fields"]["session"] = serde_json::Value::String(serde_json::to_string(session).unwrap());
    let json = serde_json::to_vec(&outer).unwrap();
    (json.len() as u64).to_le_bytes().into_iter().chain(json).collect()
}
