"""Load Dreamroll's VST3 in pedalboard (Spotify's JUCE-based host) and list its parameters.

Usage: pedalboard_params.py PLUGIN. Prints JSON: whether pedalboard sees an instrument, and
each parameter's name with its current value as pedalboard reports it.
"""
import json
import sys

import pedalboard


def main():
    plugin = pedalboard.load_plugin(sys.argv[1])
    params = {name: str(getattr(plugin, name)) for name in plugin.parameters.keys()}
    print(json.dumps({"is_instrument": plugin.is_instrument, "name": plugin.name, "parameters": params}))


if __name__ == "__main__":
    main()
