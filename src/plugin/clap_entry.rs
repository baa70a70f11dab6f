//! The CLAP entry point: nice-plug's plugin factory and wrapper, plus what nice-plug 0.4.2 does
//! not offer, so that hosts' preset browsers list Dreamroll's presets and load them: the
//! preset-discovery factory (`clap.preset-discovery-factory/2`) and the preset-load extension
//! (`clap.preset-load/2`).
//!
//! Every plugin call goes to nice-plug's wrapper unchanged; only `get_extension` is answered
//! here first (for preset-load) and `destroy` forgets the instance's host. A preset loads as
//! plugin state through the wrapper's own state path ([`Wrapper::set_state_object_from_gui`]),
//! the one a project's recall takes, so it is applied between process calls and the host is
//! told the new parameter values.

// The CLAP ABI is C: raw pointers from the host, and `extern "C"` calls back into it.
#![allow(unsafe_code)]

use super::presets::{self, installed_models, Preset};
use super::Dreamroll;
use crate::engine::models::user_models_dir;
use crate::engine::worker::lock;
use clap_sys::ext::preset_load::{
    clap_host_preset_load, clap_plugin_preset_load, CLAP_EXT_PRESET_LOAD, CLAP_EXT_PRESET_LOAD_COMPAT,
};
use clap_sys::factory::preset_discovery::*;
use clap_sys::universal_plugin_id::clap_universal_plugin_id;
use nice_plug::prelude::ClapPlugin;
use nice_plug::wrapper::clap::{
    clap_host, clap_plugin, clap_plugin_descriptor, clap_plugin_entry, clap_plugin_factory, PluginDescriptor, Wrapper,
    CLAP_PLUGIN_FACTORY_ID, CLAP_VERSION,
};
use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The CLAP entry point hosts look up.
#[unsafe(no_mangle)]
#[used]
pub static clap_entry: clap_plugin_entry = clap_plugin_entry {
    clap_version: CLAP_VERSION,
    init: Some(init),
    deinit: Some(deinit),
    get_factory: Some(get_factory),
};

extern "C" fn init(_plugin_path: *const c_char) -> bool {
    nice_plug::wrapper::setup_logger::<Dreamroll>();
    true
}

extern "C" fn deinit() {}

extern "C" fn get_factory(factory_id: *const c_char) -> *const c_void {
    if factory_id.is_null() {
        return std::ptr::null();
    }
    // SAFETY: the host passes a C string.
    let id = unsafe { CStr::from_ptr(factory_id) };
    if id == CLAP_PLUGIN_FACTORY_ID {
        &PLUGIN_FACTORY as *const _ as *const c_void
    } else if id == CLAP_PRESET_DISCOVERY_FACTORY_ID || id == CLAP_PRESET_DISCOVERY_FACTORY_ID_COMPAT {
        &PRESET_DISCOVERY_FACTORY as *const _ as *const c_void
    } else {
        std::ptr::null()
    }
}

static PLUGIN_FACTORY: clap_plugin_factory = clap_plugin_factory {
    get_plugin_count: Some(plugin_count),
    get_plugin_descriptor: Some(plugin_descriptor),
    create_plugin: Some(create_plugin),
};

fn descriptor() -> &'static PluginDescriptor {
    static DESCRIPTOR: OnceLock<PluginDescriptor> = OnceLock::new();
    DESCRIPTOR.get_or_init(PluginDescriptor::for_plugin::<Dreamroll>)
}

unsafe extern "C" fn plugin_count(_factory: *const clap_plugin_factory) -> u32 {
    1
}

unsafe extern "C" fn plugin_descriptor(
    _factory: *const clap_plugin_factory,
    index: u32,
) -> *const clap_plugin_descriptor {
    match index {
        0 => descriptor().clap_plugin_descriptor(),
        _ => std::ptr::null(),
    }
}

/// The wrapper's own `get_extension` and `destroy`, which ours forward to.
struct WrapperCalls {
    get_extension: unsafe extern "C" fn(*const clap_plugin, *const c_char) -> *const c_void,
    destroy: unsafe extern "C" fn(*const clap_plugin),
}

static WRAPPER_CALLS: OnceLock<WrapperCalls> = OnceLock::new();

/// Each live instance's host (by the wrapper's address), told when a preset has loaded.
fn hosts() -> &'static Mutex<HashMap<usize, HostPtr>> {
    static HOSTS: OnceLock<Mutex<HashMap<usize, HostPtr>>> = OnceLock::new();
    HOSTS.get_or_init(Default::default)
}

#[derive(Clone, Copy)]
struct HostPtr(*const clap_host);
// SAFETY: the host pointer is only used on the main thread, where the host calls preset-load.
unsafe impl Send for HostPtr {}

unsafe extern "C" fn create_plugin(
    _factory: *const clap_plugin_factory,
    host: *const clap_host,
    plugin_id: *const c_char,
) -> *const clap_plugin {
    // SAFETY: the host passes a C string.
    if plugin_id.is_null() || unsafe { CStr::from_ptr(plugin_id) } != descriptor().clap_id() {
        return std::ptr::null();
    }
    // SAFETY: `host` is the host's, as nice-plug's own factory passes it on. The Arc is made
    // whole again in the wrapper's `destroy`.
    let wrapper = unsafe { &*Arc::into_raw(Wrapper::<Dreamroll>::new(host)) };
    let mut plugin = wrapper.clap_plugin.borrow_mut();
    WRAPPER_CALLS.get_or_init(|| WrapperCalls {
        get_extension: plugin.get_extension.expect("nice-plug's wrapper answers get_extension"),
        destroy: plugin.destroy.expect("nice-plug's wrapper has destroy"),
    });
    plugin.get_extension = Some(get_extension);
    plugin.destroy = Some(destroy);
    lock(hosts()).insert(plugin.plugin_data as usize, HostPtr(host));
    &*plugin as *const clap_plugin
}

unsafe extern "C" fn get_extension(plugin: *const clap_plugin, id: *const c_char) -> *const c_void {
    // SAFETY: the host passes a C string.
    if !id.is_null()
        && matches!(unsafe { CStr::from_ptr(id) }, i if i == CLAP_EXT_PRESET_LOAD || i == CLAP_EXT_PRESET_LOAD_COMPAT)
    {
        return &PRESET_LOAD as *const _ as *const c_void;
    }
    let calls = WRAPPER_CALLS.get().expect("set when the instance was made");
    // SAFETY: forwarded as the host called it.
    unsafe { (calls.get_extension)(plugin, id) }
}

unsafe extern "C" fn destroy(plugin: *const clap_plugin) {
    if !plugin.is_null() {
        // SAFETY: a plugin the factory made.
        lock(hosts()).remove(&(unsafe { (*plugin).plugin_data } as usize));
    }
    let calls = WRAPPER_CALLS.get().expect("set when the instance was made");
    // SAFETY: forwarded as the host called it.
    unsafe { (calls.destroy)(plugin) }
}

static PRESET_LOAD: clap_plugin_preset_load = clap_plugin_preset_load { from_location: Some(from_location) };

/// Where a preset is: a factory preset by name (the plugin's own location), or a file.
fn find_preset(kind: u32, location: Option<&str>, load_key: Option<&str>) -> Result<Preset, String> {
    match (kind, location, load_key) {
        (CLAP_PRESET_DISCOVERY_LOCATION_PLUGIN, _, Some(name)) => presets::factory()
            .into_iter()
            .find(|preset| preset.name == name)
            .ok_or_else(|| format!("Dreamroll has no factory preset {name:?}")),
        (CLAP_PRESET_DISCOVERY_LOCATION_FILE, Some(path), _) => presets::read_preset_file(Path::new(path)),
        _ => Err("Dreamroll's presets are its factory presets, by name, and .dreamroll-preset files".to_string()),
    }
}

unsafe extern "C" fn from_location(
    plugin: *const clap_plugin,
    kind: u32,
    location: *const c_char,
    load_key: *const c_char,
) -> bool {
    if plugin.is_null() {
        return false;
    }
    let text = |ptr: *const c_char| {
        // SAFETY: the host passes C strings or null.
        (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
    };
    let (place, key) = (text(location), text(load_key));
    // SAFETY: a plugin the factory made, whose data is nice-plug's wrapper.
    let wrapper = unsafe { &*((*plugin).plugin_data as *const Wrapper<Dreamroll>) };
    let host = lock(hosts()).get(&(wrapper as *const _ as usize)).copied();
    let loaded = find_preset(kind, place.as_deref(), key.as_deref())
        .and_then(|preset| {
            presets::preset_state(&preset, Some(&wrapper.get_state_object()), user_models_dir().as_deref())
        })
        .map(|state| wrapper.set_state_object_from_gui(state));
    let Some(HostPtr(host)) = host else { return loaded.is_ok() };
    // SAFETY: the host's own pointer and extension, called on the main thread as the host
    // called us.
    unsafe {
        let extension = (*host).get_extension.map_or(std::ptr::null(), |get| get(host, CLAP_EXT_PRESET_LOAD.as_ptr()));
        let extension = extension as *const clap_host_preset_load;
        match (&loaded, extension.is_null()) {
            (Ok(()), false) => {
                if let Some(told) = (*extension).loaded {
                    told(host, kind, location, load_key);
                }
            }
            (Err(reason), false) => {
                if let (Some(told), Ok(reason)) = ((*extension).on_error, CString::new(reason.as_str())) {
                    told(host, kind, location, load_key, 0, reason.as_ptr());
                }
            }
            (_, true) => {}
        }
    }
    loaded.is_ok()
}

static PRESET_DISCOVERY_FACTORY: clap_preset_discovery_factory = clap_preset_discovery_factory {
    count: Some(provider_count),
    get_descriptor: Some(provider_descriptor),
    create: Some(create_provider),
};

/// The one preset provider's descriptor, its strings kept for the library's lifetime.
struct ProviderDescriptor {
    descriptor: clap_preset_discovery_provider_descriptor,
    _strings: [CString; 3],
}
// SAFETY: the descriptor's pointers point into its own immutable strings.
unsafe impl Send for ProviderDescriptor {}
unsafe impl Sync for ProviderDescriptor {}

fn provider() -> &'static ProviderDescriptor {
    static PROVIDER: OnceLock<ProviderDescriptor> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let strings = [
            CString::new(format!("{}.presets", Dreamroll::CLAP_ID)).expect("no NUL in the ID"),
            CString::new("Dreamroll presets").expect("no NUL"),
            CString::new(<Dreamroll as nice_plug::prelude::Plugin>::VENDOR).expect("no NUL"),
        ];
        ProviderDescriptor {
            descriptor: clap_preset_discovery_provider_descriptor {
                clap_version: CLAP_VERSION,
                id: strings[0].as_ptr(),
                name: strings[1].as_ptr(),
                vendor: strings[2].as_ptr(),
            },
            _strings: strings,
        }
    })
}

unsafe extern "C" fn provider_count(_factory: *const clap_preset_discovery_factory) -> u32 {
    1
}

unsafe extern "C" fn provider_descriptor(
    _factory: *const clap_preset_discovery_factory,
    index: u32,
) -> *const clap_preset_discovery_provider_descriptor {
    match index {
        0 => &provider().descriptor,
        _ => std::ptr::null(),
    }
}

/// A provider and the indexer it declares its locations to.
struct Provider {
    clap: clap_preset_discovery_provider,
    indexer: *const clap_preset_discovery_indexer,
}

unsafe extern "C" fn create_provider(
    _factory: *const clap_preset_discovery_factory,
    indexer: *const clap_preset_discovery_indexer,
    provider_id: *const c_char,
) -> *const clap_preset_discovery_provider {
    // SAFETY: the host passes a C string.
    if indexer.is_null()
        || provider_id.is_null()
        || unsafe { CStr::from_ptr(provider_id) } != provider()._strings[0].as_c_str()
    {
        return std::ptr::null();
    }
    let provider = Box::into_raw(Box::new(Provider {
        clap: clap_preset_discovery_provider {
            desc: &provider().descriptor,
            provider_data: std::ptr::null_mut(),
            init: Some(provider_init),
            destroy: Some(provider_destroy),
            get_metadata: Some(get_metadata),
            get_extension: Some(provider_extension),
        },
        indexer,
    }));
    // SAFETY: just made; `provider_data` leads back to the whole box.
    unsafe {
        (*provider).clap.provider_data = provider as *mut c_void;
        &(*provider).clap
    }
}

/// The provider behind `clap`.
///
/// # Safety
/// `clap` is one [`create_provider`] made and [`provider_destroy`] has not freed.
unsafe fn provider_of<'a>(clap: *const clap_preset_discovery_provider) -> &'a Provider {
    unsafe { &*((*clap).provider_data as *const Provider) }
}

unsafe extern "C" fn provider_destroy(clap: *const clap_preset_discovery_provider) {
    if !clap.is_null() {
        // SAFETY: made by `Box::into_raw` in `create_provider`; the host destroys it once.
        drop(unsafe { Box::from_raw((*clap).provider_data as *mut Provider) });
    }
}

unsafe extern "C" fn provider_extension(
    _provider: *const clap_preset_discovery_provider,
    _id: *const c_char,
) -> *const c_void {
    std::ptr::null()
}

/// The user presets folder, where it exists: a location declared is crawled, and a missing one
/// is an error to the host.
fn user_presets_folder() -> Option<PathBuf> {
    presets::user_presets_dir().filter(|dir| dir.is_dir())
}

unsafe extern "C" fn provider_init(clap: *const clap_preset_discovery_provider) -> bool {
    if clap.is_null() {
        return false;
    }
    // SAFETY: made by `create_provider`; the indexer outlives the provider.
    let indexer = unsafe { &*provider_of(clap).indexer };
    let (Some(declare_filetype), Some(declare_location)) = (indexer.declare_filetype, indexer.declare_location) else {
        return false;
    };
    let name = c"Dreamroll preset";
    let description = c"A Dreamroll model and its knobs, saved from the editor";
    let extension = CString::new(presets::EXTENSION).expect("no NUL");
    let factory = c"Factory presets";
    let filetype = clap_preset_discovery_filetype {
        name: name.as_ptr(),
        description: description.as_ptr(),
        file_extension: extension.as_ptr(),
    };
    let built_in = clap_preset_discovery_location {
        flags: CLAP_PRESET_DISCOVERY_IS_FACTORY_CONTENT,
        name: factory.as_ptr(),
        kind: CLAP_PRESET_DISCOVERY_LOCATION_PLUGIN,
        location: std::ptr::null(),
    };
    // SAFETY: the indexer's own calls, with structures that live through them.
    unsafe {
        if !declare_filetype(indexer, &filetype) || !declare_location(indexer, &built_in) {
            return false;
        }
        let folder = user_presets_folder().and_then(|dir| CString::new(dir.to_string_lossy().into_owned()).ok());
        if let Some(folder) = folder {
            let yours = c"Your presets";
            let location = clap_preset_discovery_location {
                flags: CLAP_PRESET_DISCOVERY_IS_USER_CONTENT,
                name: yours.as_ptr(),
                kind: CLAP_PRESET_DISCOVERY_LOCATION_FILE,
                location: folder.as_ptr(),
            };
            return declare_location(indexer, &location);
        }
    }
    true
}

unsafe extern "C" fn get_metadata(
    _clap: *const clap_preset_discovery_provider,
    kind: u32,
    location: *const c_char,
    receiver: *const clap_preset_discovery_metadata_receiver,
) -> bool {
    if receiver.is_null() {
        return false;
    }
    // SAFETY: the host's receiver, for this call.
    let receiver = unsafe { &*receiver };
    let presets: Vec<(Preset, bool)> = match kind {
        CLAP_PRESET_DISCOVERY_LOCATION_PLUGIN => presets::factory().into_iter().map(|preset| (preset, true)).collect(),
        CLAP_PRESET_DISCOVERY_LOCATION_FILE if !location.is_null() => {
            // SAFETY: the host passes a C string.
            let path = PathBuf::from(unsafe { CStr::from_ptr(location) }.to_string_lossy().into_owned());
            match presets::read_preset_file(&path) {
                Ok(preset) => vec![(preset, false)],
                Err(reason) => {
                    if let (Some(on_error), Ok(reason)) = (receiver.on_error, CString::new(reason)) {
                        // SAFETY: the receiver's own call.
                        unsafe { on_error(receiver, 0, reason.as_ptr()) };
                    }
                    return false;
                }
            }
        }
        _ => return false,
    };
    // A preset whose model is not installed could not load, so a browser does not list it.
    let installed = installed_models(user_models_dir().as_deref());
    for (preset, factory) in presets.into_iter().filter(|(preset, _)| installed.contains_key(&preset.model)) {
        // SAFETY: the receiver's own calls, with strings that live through them.
        if !unsafe { describe(receiver, &preset, factory) } {
            break;
        }
    }
    true
}

/// Tells `receiver` of one preset; false when it wants no more.
///
/// # Safety
/// `receiver` is the host's, inside its `get_metadata` call.
unsafe fn describe(receiver: &clap_preset_discovery_metadata_receiver, preset: &Preset, factory: bool) -> bool {
    let text = |s: &str| CString::new(s.replace('\0', " ")).expect("NULs replaced");
    let (name, description, model) = (text(&preset.name), text(&preset.description), text(&preset.model));
    // A factory preset is found by name in the plugin's own location; a file is its own key.
    let load_key = factory.then(|| name.clone());
    let clap_id = CString::new(Dreamroll::CLAP_ID).expect("no NUL");
    let plugin_id = clap_universal_plugin_id { abi: c"clap".as_ptr(), id: clap_id.as_ptr() };
    let creator = c"Dreamroll";
    unsafe {
        let Some(begin) = receiver.begin_preset else { return false };
        if !begin(receiver, name.as_ptr(), load_key.as_ref().map_or(std::ptr::null(), |key| key.as_ptr())) {
            return false;
        }
        if let Some(add_plugin_id) = receiver.add_plugin_id {
            add_plugin_id(receiver, &plugin_id);
        }
        if let Some(set_description) = receiver.set_description {
            set_description(receiver, description.as_ptr());
        }
        if let Some(set_flags) = receiver.set_flags {
            let flags =
                if factory { CLAP_PRESET_DISCOVERY_IS_FACTORY_CONTENT } else { CLAP_PRESET_DISCOVERY_IS_USER_CONTENT };
            set_flags(receiver, flags);
        }
        if factory {
            if let Some(add_creator) = receiver.add_creator {
                add_creator(receiver, creator.as_ptr());
            }
        }
        if let Some(add_feature) = receiver.add_feature {
            add_feature(receiver, model.as_ptr());
        }
    }
    true
}
