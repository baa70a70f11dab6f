"""Render Dreamroll's VST3 in DawDreamer (a third-party JUCE host) and save what it played.

Usage: dawdreamer_render.py PLUGIN OUT_AUDIO SAMPLE_RATE BLOCK BPM SECONDS PARAMS_JSON [STATE_IN] [STATE_OUT]

PARAMS_JSON maps parameter *names* to plain values (as the editor shows them); they are set
through the host's normalised interface. The audio is written as little-endian float32,
left channel. The parameter list the host sees is printed as JSON on stdout.
"""
import json
import sys
import time

import dawdreamer as daw
import numpy as np


def main():
    plugin, out_audio, rate, block, bpm, seconds, params_json = sys.argv[1:8]
    state_in = sys.argv[8] if len(sys.argv) > 8 and sys.argv[8] != "-" else None
    state_out = sys.argv[9] if len(sys.argv) > 9 else None
    engine = daw.RenderEngine(int(rate), int(block))
    engine.set_bpm(float(bpm))
    synth = engine.make_plugin_processor("dreamroll", plugin)
    if state_in:
        synth.load_state(state_in)
    described = synth.get_parameters_description()
    by_name = {d["name"]: d for d in described}
    for name, plain in json.loads(params_json).items():
        d = by_name[name]
        if isinstance(plain, bool):
            normalised = float(plain)
        else:
            low, high = float(d["min"]), float(d["max"])
            normalised = (float(plain) - low) / (high - low)
        synth.set_parameter(d["index"], normalised)
    engine.load_graph([(synth, [])])
    # DawDreamer hands parameter values to the plugin with the first block it renders, and
    # renders as fast as it can while reporting real-time mode. In real time a new pattern
    # starts at the first bar line after the engine has made it, so, like a user who sets the
    # knobs and then presses play, let a short render deliver the values and give the engine
    # a moment before the take (which starts again from the top).
    engine.render(0.05)
    time.sleep(0.5)
    engine.render(float(seconds))
    audio = synth.get_audio()
    np.asarray(audio[0], dtype="<f4").tofile(out_audio)
    if state_out:
        synth.save_state(state_out)
    print(json.dumps([{"name": d["name"], "text": d["text"]} for d in synth.get_parameters_description()]))


if __name__ == "__main__":
    main()
