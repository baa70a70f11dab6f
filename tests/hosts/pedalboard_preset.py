"""Load Dreamroll's VST3 in pedalboard (Spotify's JUCE-based host), load a .vstpreset into it
as a host's preset browser does, and print the state the plugin then gives the host.

Usage: pedalboard_preset.py PLUGIN PRESET. Prints JSON: the plugin's state (nice-plug's JSON)
before and after, read from the .vstpreset that JUCE writes of the instance. pedalboard keeps
its own copy of parameter values and does not read them again after a preset loads, so the
state is what shows what the plugin took.
"""
import json
import struct
import sys

import pedalboard


def state(plugin):
    data = plugin.preset_data
    assert data[:4] == b"VST3", data[:4]
    (chunks_at,) = struct.unpack_from("<q", data, 40)
    return json.loads(data[48:chunks_at])


def main():
    plugin = pedalboard.load_plugin(sys.argv[1])
    before = state(plugin)
    plugin.load_preset(sys.argv[2])
    print(json.dumps({"before": before, "after": state(plugin)}))


if __name__ == "__main__":
    main()
