//! Small parameter widgets shared by the editor's panels.

use nice_plug::prelude::*;

use nice_plug_egui::widgets::ParamSlider;

/// A labelled slider on one line, labels aligned.
pub fn row<P: Param>(ui: &mut egui::Ui, param: &P, setter: &ParamSetter) {
    ui.horizontal(|ui| {
        ui.add_sized([84.0, 18.0], egui::Label::new(param.name()).truncate());
        ui.add(ParamSlider::for_param(param, setter).with_width(96.0));
    });
}

/// A toggle button for an on/off parameter, as one host gesture.
pub fn toggle(ui: &mut egui::Ui, param: &BoolParam, setter: &ParamSetter) {
    toggle_labelled(ui, param, param.name(), setter);
}

/// The same with a shorter label, where the row already says what it is for.
pub fn toggle_labelled(ui: &mut egui::Ui, param: &BoolParam, label: &str, setter: &ParamSetter) {
    let mut on = param.value();
    if ui.checkbox(&mut on, label).clicked() {
        setter.begin_set_parameter(param);
        setter.set_parameter(param, on);
        setter.end_set_parameter(param);
    }
}

/// Presses a trigger parameter: on, then off, in one gesture the host can record.
pub fn trigger(param: &BoolParam, setter: &ParamSetter) {
    setter.begin_set_parameter(param);
    setter.set_parameter(param, true);
    setter.set_parameter(param, false);
    setter.end_set_parameter(param);
}
