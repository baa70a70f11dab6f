//! The egui editor: the loop as a piano roll with a moving playhead, the knobs, the model
//! picker, a status line that says what went wrong, and "Export .mid".
//!
//! It reads what the engine published (a brief lock, never held by the audio thread) and the
//! playhead atomics; it writes only through the host's parameter setter and engine commands.

#[cfg(target_os = "linux")]
pub mod drag_out;
mod piano_roll;
mod widgets;

use crate::capture::MOST_BARS;
use crate::engine::models::{user_data_dir, user_models_dir, ModelSource};
use crate::engine::worker::{lock, Command, Published};
use crate::metrics::chords::chord_name;
use crate::model::latent::within_reach;
use crate::model::source::{MorphPoint, SourceMode};
use crate::playhead::Playhead;
use crate::plugin::params::{render_seed, DreamrollParams, ShapingVisitor, KNOBS};
use crate::plugin::presets::{self, Preset};
use crate::plugin::shared::ClipSlot;
use crate::roll::{pattern_to_midi, Take};
use crossbeam_channel::{Receiver, Sender};
use egui::{self, Color32, RichText};
use nice_plug::context::gui::{GuiContext, ParamSetter};
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::editor::{ResizeHint, SizeConstraints};
use nice_plug::params::enums::Enum;
use nice_plug::prelude::Param;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{create_egui_editor, EguiEditor, EguiNiceSettings, NiceEguiApp, RepaintNotifier};
use raw_window_handle::HasWindowHandle;
#[cfg(target_os = "linux")]
use raw_window_handle::RawWindowHandle;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Track colours, in order; chosen to stay distinct for the colour-blind and on a dark ground.
pub const TRACK_COLOURS: [Color32; 8] = [
    Color32::from_rgb(86, 180, 233),
    Color32::from_rgb(230, 159, 0),
    Color32::from_rgb(0, 158, 115),
    Color32::from_rgb(204, 121, 167),
    Color32::from_rgb(240, 228, 66),
    Color32::from_rgb(213, 94, 0),
    Color32::from_rgb(0, 114, 178),
    Color32::from_rgb(200, 200, 200),
];

/// Exports carry 120 BPM: the notes are on the grid, and a DAW places them at its own tempo
/// when the file is dropped on a track.
const EXPORT_BPM: f64 = 120.0;

const BACKGROUND: Color32 = Color32::from_rgb(24, 26, 31);

/// The editor's size as it opens, and the least it can be made: the panels are laid out for
/// it. A taller window gives the piano roll the extra height, a wider one its width.
pub const DEFAULT_SIZE: (f32, f32) = (980.0, 760.0);
/// The piano roll's height in a window of `DEFAULT_SIZE`.
const ROLL_HEIGHT: f32 = 210.0;

pub struct DreamrollEditor {
    params: Arc<DreamrollParams>,
    playhead: Arc<Playhead>,
    published: Arc<Mutex<Published>>,
    commands: Sender<Command>,
    gui: Option<GuiContext>,
    /// The folder typed into "Load folder".
    model_path: String,
    /// Where "Export .mid" writes, and what happened last time.
    export_path: String,
    export_result: Option<Result<String, String>>,
    /// A drag of the loop out of the editor, and where its outcome arrives in words.
    dragging: Option<Receiver<Result<String, String>>>,
    /// An open file dialog: what its file is for, and where the chosen path arrives.
    dialog: Option<(Browse, Receiver<Option<PathBuf>>)>,
    /// What the last file dialog came to, when it chose nothing.
    dialog_result: Option<String>,
    /// The MIDI file typed into "Load clip", and what happened last time.
    clip_path: String,
    clip_result: Option<Result<String, String>>,
    /// A clip being read, and where its outcome arrives.
    clip_loading: Option<(PathBuf, Receiver<Result<String, String>>)>,
    /// The factory presets, then the producer's own (the flag), read when the editor opens
    /// and after each save.
    presets: Vec<(Preset, bool)>,
    /// The name typed for "Save preset", and what the last preset action came to.
    preset_name: String,
    preset_result: Option<Result<String, String>>,
    /// A preset chosen for another model: applied once that model is loaded (its values may
    /// name the model's styles), given up on after `PRESET_PATIENCE`.
    pending_preset: Option<(Preset, std::time::Instant)>,
}

/// How long a preset waits for its model to load before it says why it could not be applied.
const PRESET_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

pub fn create(
    params: Arc<DreamrollParams>,
    playhead: Arc<Playhead>,
    engine: Option<(Arc<Mutex<Published>>, Sender<Command>)>,
) -> Option<EguiEditor<DreamrollEditor>> {
    let (published, commands) = engine?;
    let export_path = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join("dreamroll-loop.mid");
    let editor = DreamrollEditor {
        params: params.clone(),
        playhead,
        published,
        commands,
        gui: None,
        model_path: String::new(),
        export_path: export_path.display().to_string(),
        export_result: None,
        dragging: None,
        dialog: None,
        dialog_result: None,
        clip_path: String::new(),
        clip_result: None,
        clip_loading: None,
        presets: Vec::new(),
        preset_name: String::new(),
        preset_result: None,
        pending_preset: None,
    };
    create_egui_editor(
        params.editor_state.clone(),
        RepaintNotifier::new(),
        EguiNiceSettings::new().with_tile("Dreamroll").with_resize_hint(ResizeHint {
            can_resize: true,
            can_resize_horizontally: true,
            can_resize_vertically: true,
            size_constraints: SizeConstraints::min_logical_size(LogicalSize::new(DEFAULT_SIZE.0, DEFAULT_SIZE.1)),
            ..ResizeHint::NON_RESIZABLE
        }),
        editor,
    )
}

impl NiceEguiApp for DreamrollEditor {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        gui: GuiContext,
        frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        frame.set_clear_color(BACKGROUND.into());
        egui_ctx.set_visuals(egui::Visuals::dark());
        self.gui = Some(gui);
        let _ = self.commands.send(Command::ScanModels(user_models_dir()));
        self.read_presets();
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut nice_plug_egui::Frame) {
        let Some(gui) = self.gui.clone() else { return };
        let setter = gui.param_setter();
        let published = lock(&self.published).clone();
        // The playhead moves while the host plays; otherwise repaint only on input.
        if self.playhead.playing.load(std::sync::atomic::Ordering::Relaxed) {
            ui.ctx().request_repaint();
        }
        self.take_chosen_file(ui.ctx(), &published);
        let roll_height = ROLL_HEIGHT + (ui.available_height() - DEFAULT_SIZE.1).max(0.0);
        egui::Frame::new().fill(BACKGROUND).inner_margin(10.0).show(ui, |ui| {
            self.header(ui, &published);
            self.preset_row(ui, &published, &setter, frame.baseview_window());
            ui.add_space(6.0);
            let channels = published.settings.as_ref().map(|s| s.voicing.channels.clone()).unwrap_or_default();
            // Each part's channels as its tracks go out now (a producer may have moved them).
            let roll_parts: Vec<piano_roll::RollPart> = published
                .model
                .iter()
                .flat_map(|m| &m.parts)
                .map(|(name, tracks)| piano_roll::RollPart {
                    name,
                    channels: tracks.iter().filter_map(|&t| channels.get(t).copied()).collect(),
                })
                .collect();
            let continuing = published.settings.as_ref().is_some_and(|s| s.source.mode == SourceMode::Continue);
            let clip =
                published.clip.as_ref().map(|c| piano_roll::ClipView { pattern: &c.pattern, before: continuing });
            piano_roll::show(ui, published.pattern.as_deref(), clip, &roll_parts, &self.playhead, roll_height);
            self.status_line(ui, &published, &setter);
            self.source_row(ui, &published, &setter);
            ui.add_space(6.0);
            // A model with many named knobs or styles fills more than the panels' share of a
            // small window: what does not fit scrolls, never falls off the bottom.
            egui::ScrollArea::vertical().auto_shrink([false, true]).show(ui, |ui| self.panels(ui, &published, &setter));
        });
    }
}

impl DreamrollEditor {
    /// The knobs, the pattern and the voicing, side by side.
    fn panels(&mut self, ui: &mut egui::Ui, published: &Published, setter: &ParamSetter) {
        let parts: Vec<String> = published
            .model
            .as_ref()
            .map(|m| m.parts.iter().map(|(name, _)| name.clone()).collect())
            .unwrap_or_default();
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_width(250.0);
                ui.label(RichText::new("Macro knobs").strong());
                for knob in self.params.knobs.iter().take(KNOBS) {
                    widgets::row(ui, &knob.value, setter);
                }
                let named = published.model.as_ref().map(|m| m.named_knobs.clone()).unwrap_or_default();
                if !named.is_empty() {
                    ui.add_space(4.0);
                    ui.label(RichText::new("Named knobs").strong())
                        .on_hover_text("Learned from the model's corpus: each moves what it names");
                    for attribute in named {
                        let knob = &self.params.named[attribute.index()].value;
                        ui.horizontal(|ui| {
                            ui.add_sized([112.0, 18.0], egui::Label::new(knob.name()).truncate());
                            ui.add(ParamSlider::for_param(knob, setter).with_width(96.0));
                        });
                    }
                }
            });
            ui.separator();
            ui.vertical(|ui| {
                ui.set_width(300.0);
                ui.label(RichText::new("Pattern").strong());
                ui.horizontal(|ui| {
                    widgets::row(ui, &self.params.seed, setter);
                    let takes = self.params.takes.load(std::sync::atomic::Ordering::Acquire);
                    let label = if takes > 0 { format!("New seed ({takes})") } else { "New seed".to_string() };
                    if ui
                        .button(label)
                        .on_hover_text("The next take of this seed; the number is the take playing")
                        .clicked()
                    {
                        widgets::trigger(&self.params.new_seed, setter);
                    }
                });
                widgets::row(ui, &self.params.variation, setter);
                widgets::row(ui, &self.params.loop_bars, setter);
                widgets::row(ui, &self.params.density, setter);
                widgets::row(ui, &self.params.temperature, setter);
                widgets::row(ui, &self.params.switch_at, setter);
                widgets::toggle(ui, &self.params.hold, setter);
            });
            ui.separator();
            ui.vertical(|ui| {
                ui.label(RichText::new("Voicing").strong());
                widgets::row(ui, &self.params.key, setter);
                widgets::row(ui, &self.params.scale, setter);
                widgets::row(ui, &self.params.transpose, setter);
                widgets::row(ui, &self.params.velocity, setter);
                widgets::row(ui, &self.params.humanise, setter);
                widgets::row(ui, &self.params.swing, setter);
                ui.horizontal(|ui| {
                    widgets::toggle(ui, &self.params.preview, setter);
                    ui.add(ParamSlider::for_param(&self.params.preview_volume, setter).with_width(80.0));
                });
                ui.add_space(4.0);
                ui.label(RichText::new("Tracks: mute, MIDI channel").strong());
                for (index, name) in parts.iter().enumerate().take(self.params.tracks.len()) {
                    let slot = &self.params.tracks[index];
                    ui.horizontal(|ui| {
                        let colour = TRACK_COLOURS[index % TRACK_COLOURS.len()];
                        ui.add_sized([72.0, 18.0], egui::Label::new(RichText::new(name).color(colour)).truncate());
                        widgets::toggle_labelled(ui, &slot.mute, "Mute", setter);
                        ui.add(ParamSlider::for_param(&slot.channel, setter).with_width(60.0));
                    });
                }
            });
        });
    }

    /// Back, forward, and the list of the patterns this session made: choosing one sets the
    /// parameters that made it again (one host gesture each), so it plays again and what
    /// follows carries on from it.
    fn history_row(&self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let (moments, at) = {
            let history = lock(&self.params.history);
            (history.moments().iter().map(|m| m.label.clone()).collect::<Vec<_>>(), history.at())
        };
        let mut chosen = None;
        let shown = at.map_or_else(|| "—".to_string(), |at| format!("{} / {}: {}", at + 1, moments.len(), moments[at]));
        egui::ComboBox::from_id_salt("history").width(220.0).selected_text(shown).show_ui(ui, |ui| {
            for (index, label) in moments.iter().enumerate().rev() {
                if ui.selectable_label(Some(index) == at, format!("{}: {label}", index + 1)).clicked() {
                    chosen = Some(index);
                }
            }
        });
        let newer = at.is_some_and(|at| at + 1 < moments.len());
        if ui.add_enabled(newer, egui::Button::new("Forward")).on_hover_text("The pattern after this one").clicked() {
            chosen = at.map(|at| at + 1);
        }
        let older = at.is_some_and(|at| at > 0);
        if ui.add_enabled(older, egui::Button::new("Back")).on_hover_text("The pattern before this one").clicked() {
            chosen = at.and_then(|at| at.checked_sub(1));
        }
        ui.label("History").on_hover_text(
            "Every pattern this session made (new seeds, takes, knob moves), saved with the project: \
             bring one back to play it again",
        );
        let now = std::time::Instant::now();
        let Some(moment) = chosen.and_then(|index| lock(&self.params.history).recall(index, now).cloned()) else {
            return;
        };
        set_shaping(&self.params, setter, &moment.values);
        self.params.takes.store(moment.takes, std::sync::atomic::Ordering::Release);
    }

    fn read_presets(&mut self) {
        self.presets = presets::factory().into_iter().map(|preset| (preset, false)).collect();
        if let Some(dir) = presets::user_presets_dir() {
            let (own, problems) = presets::read_user_presets(&dir);
            self.presets.extend(own.into_iter().map(|preset| (preset, true)));
            if !problems.is_empty() {
                self.preset_result = Some(Err(problems.join("; ")));
            }
        }
    }

    /// Choose a preset (the loaded model's first, then the others', which load their model),
    /// or save the parameters as one of the producer's own.
    fn preset_row(
        &mut self,
        ui: &mut egui::Ui,
        published: &Published,
        setter: &ParamSetter,
        window: &impl HasWindowHandle,
    ) {
        let current = published.model.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        self.apply_pending_preset(published, setter);
        ui.horizontal(|ui| {
            ui.label("Preset");
            let mut chosen = None;
            egui::ComboBox::from_id_salt("preset").width(260.0).selected_text("Choose a preset").show_ui(ui, |ui| {
                let this_model_first = self.presets.iter().filter(|(p, _)| p.model == current);
                let others = self.presets.iter().filter(|(p, _)| p.model != current);
                for (preset, own) in this_model_first.chain(others) {
                    let label = format!("{} ({}{})", preset.name, preset.model, if *own { ", yours" } else { "" });
                    if ui.selectable_label(false, label).on_hover_text(&preset.description).clicked() {
                        chosen = Some(preset.clone());
                    }
                }
            });
            if let Some(preset) = chosen {
                self.choose_preset(preset, published);
            }
            self.browse_button(ui, Browse::Preset);
            ui.add(egui::TextEdit::singleline(&mut self.preset_name).hint_text("name").desired_width(140.0));
            if ui.button("Save preset").on_hover_text("The model and every knob, as one of your presets").clicked() {
                self.preset_result = Some(self.save_preset(&current));
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                self.loop_out(ui, published, window);
                // One line however long the description, in the room left: all of it on hover.
                if let Some(result) = &self.preset_result {
                    let (message, colour) = match result {
                        Ok(message) => (message, Color32::GRAY),
                        Err(message) => (message, Color32::LIGHT_RED),
                    };
                    ui.add(egui::Label::new(RichText::new(message).color(colour)).truncate()).on_hover_text(message);
                }
            });
        });
    }

    fn choose_preset(&mut self, preset: Preset, published: &Published) {
        let loaded = published.model.as_ref().is_some_and(|m| m.name == preset.model);
        if !loaded {
            let installed =
                published.models.iter().find(|entry| entry.status.as_ref().is_ok_and(|n| *n == preset.model));
            match installed {
                Some(entry) => {
                    let _ = self.commands.send(Command::LoadModel(entry.source.clone()));
                }
                None => {
                    self.preset_result = Some(Err(format!(
                        "preset {:?} is for the model {:?}, which is not installed here",
                        preset.name, preset.model
                    )));
                    return;
                }
            }
        }
        self.pending_preset = Some((preset, std::time::Instant::now()));
    }

    /// Sets the chosen preset's values once its model is the one loaded.
    fn apply_pending_preset(&mut self, published: &Published, setter: &ParamSetter) {
        let Some((preset, since)) = self.pending_preset.take() else { return };
        let loaded = published.model.as_ref().is_some_and(|m| m.name == preset.model);
        let values = if loaded { Some(self.params.preset_values(&preset)) } else { None };
        match values {
            Some(Ok(values)) => {
                set_shaping(&self.params, setter, &values);
                self.params.takes.store(preset.take, std::sync::atomic::Ordering::Release);
                self.preset_result = Some(Ok(format!("{}: {}", preset.name, preset.description)));
            }
            // The model's style names reach the parameters a moment after the model.
            _ if since.elapsed() < PRESET_PATIENCE => self.pending_preset = Some((preset, since)),
            Some(Err(problem)) => self.preset_result = Some(Err(problem)),
            None => {
                self.preset_result =
                    Some(Err(format!("preset {:?}: the model {:?} did not load", preset.name, preset.model)))
            }
        }
    }

    fn save_preset(&mut self, model: &str) -> Result<String, String> {
        let dir = presets::user_presets_dir().ok_or("there is no user folder to keep presets in")?;
        let name = self.preset_name.trim();
        let preset = self.params.preset_of_now(name, &format!("{model}, saved from the editor"), model);
        let path = presets::save_user_preset(&dir, &preset)?;
        self.read_presets();
        Ok(format!("saved {}", path.display()))
    }

    fn header(&mut self, ui: &mut egui::Ui, published: &Published) {
        ui.horizontal(|ui| {
            ui.label(RichText::new("Dreamroll").size(20.0).strong().color(TRACK_COLOURS[0]));
            ui.add_space(12.0);
            let current = published.model.as_ref().map_or("—".to_string(), |m| m.name.clone());
            egui::ComboBox::from_id_salt("model").selected_text(format!("Model: {current}")).width(230.0).show_ui(
                ui,
                |ui| {
                    for entry in &published.models {
                        match &entry.status {
                            Ok(name) => {
                                let label = match &entry.source {
                                    ModelSource::Embedded => format!("{name} (built in)"),
                                    ModelSource::Folder(_) => name.clone(),
                                };
                                let chosen = published.model.as_ref().is_some_and(|m| m.source == entry.source);
                                if ui.selectable_label(chosen, label).clicked() {
                                    let _ = self.commands.send(Command::LoadModel(entry.source.clone()));
                                }
                            }
                            Err(reason) => {
                                ui.label(
                                    RichText::new(format!("✖ {}: {reason}", entry.source.describe()))
                                        .color(Color32::LIGHT_RED),
                                );
                            }
                        }
                    }
                    if ui.button("Rescan models folder").clicked() {
                        let _ = self.commands.send(Command::ScanModels(user_models_dir()));
                    }
                },
            );
            ui.add(egui::TextEdit::singleline(&mut self.model_path).hint_text("model folder").desired_width(180.0));
            self.browse_button(ui, Browse::ModelFolder);
            if ui.button("Load folder").clicked() && !self.model_path.trim().is_empty() {
                let _ =
                    self.commands.send(Command::LoadModel(ModelSource::Folder(PathBuf::from(self.model_path.trim()))));
            }
        });
    }

    /// The loop out of the plugin: dragged onto a track, or written where the producer says.
    fn loop_out(&mut self, ui: &mut egui::Ui, published: &Published, window: &impl HasWindowHandle) {
        let drag = ui
            .add_enabled(self.dragging.is_none(), egui::Button::new("Drag loop out").sense(egui::Sense::drag()))
            .on_hover_text("Hold and drag onto a track in your DAW's arrangement: the loop as a MIDI clip, kept in Dreamroll's dragged folder");
        if drag.drag_started() {
            self.start_drag(published, window);
        }
        if let Some(outcome) = self.dragging.as_ref().and_then(|dragging| dragging.try_recv().ok()) {
            self.export_result = Some(outcome);
            self.dragging = None;
        }
        if ui.button("Export .mid").clicked() {
            let path = PathBuf::from(self.export_path.trim());
            self.export_result = Some(write_loop(published, &path));
        }
        self.browse_button(ui, Browse::Export);
        ui.add(egui::TextEdit::singleline(&mut self.export_path).desired_width(150.0));
    }

    fn load_clip(&mut self, path: PathBuf, ctx: &egui::Context) {
        let repaint = ctx.clone();
        let outcome =
            load_clip_in_background(path.clone(), self.params.clip.clone(), move || repaint.request_repaint());
        self.clip_loading = Some((path, outcome));
        self.clip_result = None;
    }

    /// "…": the OS's own file dialog for `purpose`, the typed path beside it staying as the
    /// other way.
    fn browse_button(&mut self, ui: &mut egui::Ui, purpose: Browse) {
        let button = ui
            .add_enabled(self.dialog.is_none(), egui::Button::new("…"))
            .on_hover_text(format!("{} with the system's file dialog", purpose.title()));
        if button.clicked() {
            self.dialog = Some((purpose, open_file_dialog(purpose, ui.ctx().clone())));
            self.dialog_result = None;
        }
    }

    /// Acts on the file a dialog chose, as its button beside the typed path would.
    fn take_chosen_file(&mut self, ctx: &egui::Context, published: &Published) {
        let Some((purpose, answer)) = &self.dialog else { return };
        let (purpose, chosen) = match answer.try_recv() {
            Ok(chosen) => (*purpose, chosen),
            Err(crossbeam_channel::TryRecvError::Disconnected) => (*purpose, None),
            Err(crossbeam_channel::TryRecvError::Empty) => return,
        };
        self.dialog = None;
        let Some(path) = chosen else {
            self.dialog_result = Some(format!(
                "{}: no file chosen (if no dialog opened, this desktop has no file-dialog portal: type the path instead)",
                purpose.title()
            ));
            return;
        };
        let shown = path.display().to_string();
        match purpose {
            Browse::Clip => {
                self.clip_path = shown;
                self.load_clip(path, ctx);
            }
            Browse::ModelFolder => {
                self.model_path = shown;
                let _ = self.commands.send(Command::LoadModel(ModelSource::Folder(path)));
            }
            Browse::Export => {
                self.export_path = shown;
                self.export_result = Some(write_loop(published, &path));
            }
            Browse::Preset => match presets::read_preset_file(&path) {
                Ok(preset) => self.choose_preset(preset, published),
                Err(problem) => self.preset_result = Some(Err(problem)),
            },
        }
    }

    /// Writes the loop into the dragged folder, where a host that refers to a dropped file
    /// rather than copying it keeps finding it, and starts the OS's drag of it from `window`
    /// (the editor's); what it comes to arrives in words.
    fn start_drag(&mut self, published: &Published, window: &impl HasWindowHandle) {
        let written = loop_midi(published).and_then(|(midi, notes)| {
            let path = dragged_file(published, &midi)?;
            write_midi_file(&path, &midi, notes).map(|_| path)
        });
        let path = match written {
            Ok(path) => path,
            Err(problem) => {
                self.export_result = Some(Err(problem));
                return;
            }
        };
        let (send, outcome) = crossbeam_channel::bounded(1);
        match drag_loop(path, window, send) {
            Ok(()) => self.dragging = Some(outcome),
            Err(problem) => self.export_result = Some(Err(problem)),
        }
    }

    /// Where the notes come from, and the clip the producer gives: recorded or loaded.
    fn source_row(&mut self, ui: &mut egui::Ui, published: &Published, setter: &ParamSetter) {
        let params = self.params.clone();
        ui.horizontal(|ui| {
            ui.label(RichText::new("Source").strong());
            for choice in SourceMode::ALL {
                let name = SourceMode::variants()[choice.to_index()];
                if ui.selectable_label(params.source.value() == choice, name).clicked() {
                    setter.begin_set_parameter(&params.source);
                    setter.set_parameter(&params.source, choice);
                    setter.end_set_parameter(&params.source);
                }
            }
            ui.add_enabled_ui(params.source.value() == SourceMode::Vary, |ui| {
                ui.label("Distance");
                ui.add(ParamSlider::for_param(&params.distance, setter).with_width(90.0));
            });
        });
        ui.horizontal(|ui| {
            ui.label(RichText::new("Clip").strong());
            widgets::toggle(ui, &params.record, setter);
            ui.add(ParamSlider::for_param(&params.take_length, setter).with_width(70.0));
            let heard = params.bars_heard.load(std::sync::atomic::Ordering::Relaxed);
            if params.record.value() && self.playhead.playing.load(std::sync::atomic::Ordering::Relaxed) {
                ui.label(
                    RichText::new(format!("rec {heard}/{}", params.take_length.value().bars()))
                        .color(Color32::LIGHT_RED),
                )
                .on_hover_text(
                    "Whole bars heard toward the take; a take starts on a bar that is a multiple of its length",
                );
            }
            ui.separator();
            ui.add(
                egui::TextEdit::singleline(&mut self.clip_path)
                    .hint_text("a .mid file to use as the clip")
                    .desired_width(220.0),
            );
            if let Some((_, outcome)) = &self.clip_loading {
                if let Ok(outcome) = outcome.try_recv() {
                    self.clip_result = Some(outcome);
                    self.clip_loading = None;
                }
            }
            let load = egui::Button::new("Load clip");
            let clicked = ui
                .add_enabled(self.clip_loading.is_none(), load)
                .on_hover_text("Its first 8 bars become the clip (until a new take is recorded)")
                .clicked();
            if clicked && !self.clip_path.trim().is_empty() {
                self.load_clip(PathBuf::from(self.clip_path.trim()), ui.ctx());
            }
            self.browse_button(ui, Browse::Clip);
            if let Some((path, _)) = &self.clip_loading {
                ui.label(RichText::new(format!("reading {}…", path.display())).color(Color32::GRAY));
            }
            if ui.add_enabled(params.clip.get().is_some(), egui::Button::new("Clear")).clicked() {
                params.clip.set(None);
                self.clip_result = None;
            }
        });
        if params.source.value().follows_chords() {
            let heard = params.heard_chord.get().and_then(|(classes, bass)| chord_name(classes, bass));
            let following = match (heard, published.clip.as_ref()) {
                (Some(name), _) => format!("following {name} (held on the input; hold another chord to change)"),
                (None, Some(_)) => "following the clip's chord in each bar".to_string(),
                (None, None) => "hold a chord on Dreamroll's MIDI input, or give it a clip of chords".to_string(),
            };
            ui.label(RichText::new(following).color(TRACK_COLOURS[4]));
        }
        let clip_line = match (&published.clip, params.clip.get()) {
            (Some(shown), Some(_)) if params.source.value().reads_clip(params.heard_chord.get().is_some()) => {
                shown.summary.clone()
            }
            (_, Some(take)) => {
                format!("clip: {} bars, {} notes (read when the source is not Dream)", take.bars, take.notes.len())
            }
            (_, None) => "no clip: play into Dreamroll with the transport running, or load a .mid".to_string(),
        };
        ui.label(RichText::new(clip_line).color(Color32::GRAY));
        self.style_row(ui, &params, setter);
        self.morph_row(ui, &params, setter);
        if let Some(Err(message)) = &self.clip_result {
            ui.label(RichText::new(message).color(Color32::LIGHT_RED));
        }
    }

    /// The model's styles, when it learnt several: the one *Dream* dreams in.
    fn style_row(&self, ui: &mut egui::Ui, params: &DreamrollParams, setter: &ParamSetter) {
        let names = params.style_names.names();
        if names.is_empty() {
            return;
        }
        ui.horizontal(|ui| {
            ui.label(RichText::new("Style").strong());
            let step = params.style.value();
            egui::ComboBox::from_id_salt("style").selected_text(params.style_names.text(step)).width(200.0).show_ui(
                ui,
                |ui| {
                    for (n, name) in std::iter::once("Any").chain(names.iter().map(String::as_str)).enumerate() {
                        if ui.selectable_label(n as i32 == step, name).clicked() {
                            setter.begin_set_parameter(&params.style);
                            setter.set_parameter(&params.style, n as i32);
                            setter.end_set_parameter(&params.style);
                        }
                    }
                },
            );
            ui.label(RichText::new(format!("{} styles the model learnt", names.len())).color(Color32::GRAY));
        });
    }

    /// Points A and B (what plays now, or the clip) and the Morph knob between them.
    fn morph_row(&self, ui: &mut egui::Ui, params: &DreamrollParams, setter: &ParamSetter) {
        let points = params.morph_points.get();
        ui.horizontal(|ui| {
            ui.label(RichText::new("Morph").strong());
            for (which, name) in ["A", "B"].into_iter().enumerate() {
                let now = MorphPoint::Dream {
                    seed: render_seed(params.seed.value(), params.takes.load(std::sync::atomic::Ordering::Acquire)),
                    knobs: params.knobs.iter().map(|k| within_reach(k.value.value())).collect(),
                    named: params.named.iter().map(|k| within_reach(k.value.value())).collect(),
                    style: params.style_names.name(params.style.value()),
                };
                if ui.button(format!("{name} = now")).on_hover_text("Store the seed and knobs playing now").clicked() {
                    params.morph_points.update(|points| points[which] = Some(now));
                }
                let clip = params.clip.get();
                if ui
                    .add_enabled(clip.is_some(), egui::Button::new(format!("{name} = clip")))
                    .on_hover_text("Store the clip, as the model reads it")
                    .clicked()
                {
                    params
                        .morph_points
                        .update(|points| points[which] = clip.map(|take| MorphPoint::Clip(Take::clone(&take))));
                }
                let shown = match &points[which] {
                    Some(MorphPoint::Dream { seed, style, .. }) => {
                        let in_style = style.as_ref().map_or(String::new(), |style| format!(", {style}"));
                        match seed >> 32 {
                            0 => format!("{name}: seed {}{in_style}", seed & u64::from(u32::MAX)),
                            take => format!("{name}: seed {} take {take}{in_style}", seed & u64::from(u32::MAX)),
                        }
                    }
                    Some(MorphPoint::Clip(take)) => format!("{name}: clip of {} bars", take.bars),
                    None => format!("{name}: —"),
                };
                ui.label(RichText::new(shown).color(Color32::GRAY));
            }
            let both = points.iter().all(Option::is_some);
            ui.add_enabled_ui(both && params.source.value().morphs(), |ui| {
                ui.add(ParamSlider::for_param(&params.morph, setter).with_width(150.0));
            });
            if ui.add_enabled(points.iter().any(Option::is_some), egui::Button::new("Clear")).clicked() {
                params.morph_points.set([None, None]);
            }
        });
    }

    fn status_line(&self, ui: &mut egui::Ui, published: &Published, setter: &ParamSetter) {
        ui.horizontal(|ui| {
            ui.label(RichText::new(&published.message).color(Color32::GRAY));
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| self.history_row(ui, setter));
        });
        if let Some(problem) = &published.problem {
            ui.label(RichText::new(problem).color(Color32::LIGHT_RED));
        }
        if let Some(problem) = self.params.session.problem() {
            ui.label(RichText::new(problem).color(Color32::LIGHT_RED));
        }
        if let Some(message) = &self.dialog_result {
            ui.label(RichText::new(message).color(Color32::GRAY));
        }
        match &self.export_result {
            Some(Ok(message)) => {
                ui.label(RichText::new(message).color(Color32::GRAY));
            }
            Some(Err(message)) => {
                ui.label(RichText::new(message).color(Color32::LIGHT_RED));
            }
            None => {}
        }
    }
}

/// What a file dialog chooses a file for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Browse {
    Clip,
    ModelFolder,
    Export,
    Preset,
}

impl Browse {
    fn title(self) -> &'static str {
        match self {
            Browse::Clip => "Load a clip",
            Browse::ModelFolder => "Load a model folder",
            Browse::Export => "Export the loop",
            Browse::Preset => "Open a preset file",
        }
    }
}

/// Opens the OS's file dialog for `purpose` (on Linux the desktop's file-chooser portal, so no
/// GUI toolkit is loaded into the host) and waits for it on a thread of its own: the editor
/// keeps drawing and the host keeps running while it is open. The path chosen, or none,
/// arrives on the returned channel.
fn open_file_dialog(purpose: Browse, repaint: egui::Context) -> Receiver<Option<PathBuf>> {
    let dialog = rfd::AsyncFileDialog::new().set_title(purpose.title());
    let midi = ["mid", "midi"];
    // The dialog is made here, on the editor's thread (macOS wants its windows made on the
    // main thread), and only waited for elsewhere.
    let chosen: std::pin::Pin<Box<dyn std::future::Future<Output = Option<rfd::FileHandle>> + Send>> = match purpose {
        Browse::Clip => Box::pin(dialog.add_filter("MIDI file", &midi).pick_file()),
        Browse::ModelFolder => Box::pin(dialog.pick_folder()),
        Browse::Export => {
            Box::pin(dialog.add_filter("MIDI file", &midi).set_file_name("dreamroll-loop.mid").save_file())
        }
        Browse::Preset => Box::pin(dialog.add_filter("Dreamroll preset", &[presets::EXTENSION]).pick_file()),
    };
    let (send, answer) = crossbeam_channel::bounded(1);
    // A thread that cannot start drops the sender, which reads as nothing chosen.
    let _ = std::thread::Builder::new().name("dreamroll file dialog".into()).spawn(move || {
        let _ = send.send(pollster::block_on(chosen).map(|file| file.path().to_path_buf()));
        repaint.request_repaint();
    });
    answer
}

/// The loop playing now as a MIDI file, a track per part, and how many notes it holds.
fn loop_midi(published: &Published) -> Result<(Vec<u8>, usize), String> {
    let pattern = published.pattern.as_ref().ok_or("there is no pattern yet")?;
    let names: Vec<(u8, String)> = match (&published.model, &published.settings) {
        (Some(model), Some(settings)) => {
            model.parts.iter().map(|(name, tracks)| (settings.voicing.channels[tracks[0]], name.clone())).collect()
        }
        _ => Vec::new(),
    };
    Ok((pattern_to_midi(pattern, EXPORT_BPM, &names), pattern.notes.len()))
}

/// Writes `midi` (of `notes` notes) to `path`; what was written, in words.
fn write_midi_file(path: &Path, midi: &[u8], notes: usize) -> Result<String, String> {
    std::fs::write(path, midi).map_err(|e| format!("could not write {}: {e}", path.display()))?;
    Ok(format!("wrote {} ({notes} notes at {EXPORT_BPM:.0} BPM)", path.display()))
}

/// Writes the loop playing now to `path`.
fn write_loop(published: &Published, path: &Path) -> Result<String, String> {
    let (midi, notes) = loop_midi(published)?;
    write_midi_file(path, &midi, notes)
}

/// Where a dragged loop of file contents `midi` is kept: a file of its own in the dragged
/// folder, named by the model and the seed and told apart by its contents, so an
/// arrangement's clips never change under it.
fn dragged_file(published: &Published, midi: &[u8]) -> Result<PathBuf, String> {
    let dir = user_data_dir().ok_or("there is no user folder to keep dragged loops in")?.join("dragged");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    let model = published.model.as_ref().map_or("loop", |model| model.name.as_str());
    let seed = published.settings.as_ref().map_or(0, |settings| settings.request.seed);
    let contents = crate::hash::fnv1a(midi.iter().copied()) & 0xff_ffff;
    Ok(dir.join(format!("Dreamroll {model} seed {seed} {contents:06x}.mid")))
}

/// What a drag of `path` came to, in words.
fn drag_outcome(path: &Path, dropped: bool) -> String {
    match dropped {
        true => format!("dragged out {}", path.display()),
        false => format!("let go where nothing takes MIDI files; the loop is kept at {}", path.display()),
    }
}

/// X11: the drag follows the pointer on a thread of its own (see [`drag_out`]), never over
/// Dreamroll's own window.
#[cfg(target_os = "linux")]
fn drag_loop(path: PathBuf, window: &impl HasWindowHandle, done: Sender<Result<String, String>>) -> Result<(), String> {
    let own = match window.window_handle().map(|handle| handle.as_raw()) {
        Ok(RawWindowHandle::Xlib(handle)) => Some(handle.window as u32),
        Ok(RawWindowHandle::Xcb(handle)) => Some(handle.window.get()),
        _ => None,
    };
    std::thread::Builder::new()
        .name("dreamroll drag".into())
        .spawn(move || {
            let outcome =
                drag_out::drag_file(&path, own).map(|o| drag_outcome(&path, o == drag_out::DragOutcome::Dropped));
            let _ = done.send(outcome);
        })
        .map(|_| ())
        .map_err(|e| format!("the drag could not start: {e}"))
}

/// macOS and Windows: the OS's own drag session, started from the editor's window while the
/// mouse is down (Windows runs it to the drop here; macOS calls back when it ends).
#[cfg(any(target_os = "macos", target_os = "windows"))]
fn drag_loop(path: PathBuf, window: &impl HasWindowHandle, done: Sender<Result<String, String>>) -> Result<(), String> {
    let image = drag::Image::Raw(DRAG_IMAGE.to_vec());
    let shown = path.clone();
    let ended = move |result: drag::DragResult, _: drag::CursorPosition| {
        let _ = done.send(Ok(drag_outcome(&shown, matches!(result, drag::DragResult::Dropped))));
    };
    drag::start_drag(window, drag::DragItem::Files(vec![path]), image, ended, drag::Options::default())
        .map_err(|e| format!("the drag could not start: {e}; use Export .mid"))
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
fn drag_loop(
    path: PathBuf,
    _window: &impl HasWindowHandle,
    _done: Sender<Result<String, String>>,
) -> Result<(), String> {
    Err(format!("dragging out is not made for this system; the loop is written to {}", path.display()))
}

/// The picture under the pointer while a loop is dragged (macOS and Windows draw one).
#[cfg(any(target_os = "macos", target_os = "windows"))]
const DRAG_IMAGE: &[u8] = include_bytes!("../../bundled/drag-clip.png");

/// Sets the shaping parameters to `values` (normalised, by ID), each changed one as a host
/// gesture, so the host's undo and automation see it.
fn set_shaping(params: &DreamrollParams, setter: &ParamSetter, values: &std::collections::BTreeMap<String, f32>) {
    struct Set<'a> {
        setter: &'a ParamSetter<'a>,
        values: &'a std::collections::BTreeMap<String, f32>,
    }
    impl ShapingVisitor for Set<'_> {
        fn visit<P: Param>(&mut self, id: &str, param: &P) {
            match self.values.get(id) {
                Some(&value) if value != param.unmodulated_normalized_value() => {
                    self.setter.begin_set_parameter(param);
                    self.setter.set_parameter_normalized(param, value);
                    self.setter.end_set_parameter(param);
                }
                _ => {}
            }
        }
    }
    params.visit_shaping(&mut Set { setter, values });
}

/// Reads a MIDI file into the clip slot on a thread of its own, so that a large, slow or
/// network file never stalls the editor (or the host's GUI with it); the outcome, in words,
/// arrives on the returned channel, and `done` is called when it has.
fn load_clip_in_background(
    path: PathBuf,
    slot: Arc<ClipSlot>,
    done: impl FnOnce() + Send + 'static,
) -> Receiver<Result<String, String>> {
    let (send, outcome) = crossbeam_channel::bounded(1);
    let failed = send.clone();
    let spawned = std::thread::Builder::new().name("dreamroll clip".into()).spawn(move || {
        let _ = send.send(load_clip(&path, &slot));
        done();
    });
    if let Err(error) = spawned {
        let _ = failed.send(Err(format!("could not start reading the clip: {error}")));
    }
    outcome
}

fn load_clip(path: &Path, slot: &ClipSlot) -> Result<String, String> {
    let take = Take::from_midi_file(path, MOST_BARS as u32).map_err(|e| e.to_string())?;
    let message = format!("loaded {} ({} bars, {} notes)", path.display(), take.bars, take.notes.len());
    slot.set(Some(Arc::new(take)));
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clip_is_loaded_off_the_calling_thread_into_the_slot_and_said_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mid");
        let notes = vec![(0, 480, 60, 90), (480, 480, 62, 90)];
        std::fs::write(
            &path,
            crate::roll::write_midi(
                480,
                500_000,
                crate::roll::Meter::COMMON,
                &[crate::roll::TrackToWrite { name: "a".into(), channel: 0, notes }],
                1920,
            ),
        )
        .unwrap();
        let slot = Arc::new(ClipSlot::default());
        let (told, done) = crossbeam_channel::bounded(1);
        let outcome = load_clip_in_background(path.clone(), slot.clone(), move || {
            told.send(std::thread::current().name().map(str::to_string)).unwrap()
        });
        assert_eq!(outcome.recv().unwrap(), Ok(format!("loaded {} (1 bars, 2 notes)", path.display())));
        assert_eq!(done.recv().unwrap().as_deref(), Some("dreamroll clip"), "read on its own thread");
        assert_eq!(slot.get().unwrap().notes.len(), 2);
        let missing =
            load_clip_in_background(dir.path().join("absent.mid"), slot.clone(), || ()).recv().unwrap().unwrap_err();
        assert!(missing.contains("absent.mid: cannot read"), "{missing}");
        assert_eq!(slot.get().unwrap().notes.len(), 2, "a failed load keeps the clip there was");
    }
}
