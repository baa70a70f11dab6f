"""Open a saved Dreamroll state in DawDreamer (a JUCE host, through the VST3) and save it again
at once, ROUNDS times, each in a fresh plugin instance; print how many rounds gave back a
session that differs from the one loaded, as JSON.

Usage: dawdreamer_state.py PLUGIN STATE_IN ROUNDS WORK_DIR
"""
import json
import os
import sys

import dawdreamer as daw


JUCE_BASE64 = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"


def juce_base64_decode(text):
    """JUCE's MemoryBlock::toBase64Encoding: `size.` then 6-bit groups, least significant
    bit first, in JUCE's own alphabet."""
    size, _, body = text.partition(".")
    out = bytearray(int(size))
    for index, char in enumerate(body):
        value = JUCE_BASE64.index(char)
        for bit in range(6):
            position = index * 6 + bit
            if value >> bit & 1 and position < len(out) * 8:
                out[position // 8] |= 1 << (position % 8)
    return bytes(out)


def session_of(path):
    """The parameter values and the session field's exact text of a saved state. JUCE keeps
    the plugin's own bytes (nice-plug's JSON) in the IComponent element."""
    data = open(path, "rb").read()
    xml = data[data.index(b"<?xml") :].decode("utf-8", "replace")
    component = xml[xml.index("<IComponent>") + len("<IComponent>") : xml.index("</IComponent>")]
    plugin_bytes = juce_base64_decode(component.strip())
    outer = json.loads(plugin_bytes[plugin_bytes.index(b"{") :])
    return outer["params"], outer["fields"]["session"]


def main():
    plugin, state_in, rounds, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    expected = session_of(state_in)
    engine = daw.RenderEngine(48000, 512)
    lost, first = 0, None
    for round_ in range(rounds):
        synth = engine.make_plugin_processor(f"dreamroll{round_}", plugin)
        synth.load_state(state_in)
        out = os.path.join(work, "saved.bin")
        synth.save_state(out)
        got = session_of(out)
        if got != expected:
            lost += 1
            if first is None:
                first = {"round": round_, "session": got[1][:120]}
        del synth
    print(json.dumps({"rounds": rounds, "lost": lost, "first": first, "session_length": len(expected[1])}))


if __name__ == "__main__":
    main()
