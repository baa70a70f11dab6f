#!/usr/bin/env python3
"""Rebuild Dreamroll's training corpus from the corpus that ships inside music21.

Run by `cargo xtask corpus` with the interpreter of a private venv that has
music21==10.5.1; it is not meant to be run by hand, though it can be.

Why the output looks the way it does:

* Every file is a standard MIDI file, format 1, 480 ticks per quarter, with a
  conductor track (tempo 120 qpm, key signature, time signatures) followed by one
  track per voice, so the Rust importer only has to understand one shape.
* A pickup bar is padded with leading silence: the model works on a bar grid that
  starts at t = 0, so the first downbeat must fall on a bar line of that grid.
* The grid is carried by the time-signature events alone.  Where the notation
  drifts off its own metre (an Essen phrase one beat too long, a section that ends
  short and starts without its pickup), the bar that drifted gets a time-signature
  event of its real length and the metre is restated, so later downbeats stay on
  the grid; the manifest counts these bars as `irregular_bars`.
* Repeats are not expanded (that would only duplicate data), grace notes are
  dropped (they have no duration on a grid) and ties are merged (a tied note is one
  sounding note, and the decoder learns note lengths).
* One bad piece must never cost the whole run: every piece is converted inside
  its own try block and under a time limit, and a failure becomes a manifest line
  with `ok: false` and the reason.
"""

import argparse
import json
import multiprocessing
import os
import pathlib
import re
import signal
import struct
import sys
import time
import traceback
from collections import Counter, defaultdict
from fractions import Fraction

TPQ = 480
# MIDI stores the denominator as a power of two; Dreamroll's reader takes up to 2^6 and
# rejects a whole file over one larger time signature.
MAX_DENOMINATOR = 64
TEMPO_US_PER_QUARTER = 500_000  # 120 qpm
DEFAULT_VELOCITY = 90
# A piece normally takes well under a second; this only stops a pathological input
# from holding a worker forever.
PIECE_TIMEOUT_S = 300

# (output folder, folder in music21's corpus).  Order is the order of the summary.
FOLK_SOURCES = [
    ("essen", "essenFolksong"),
    ("oneills1850", "oneills1850"),
    ("airdsAirs", "airdsAirs"),
    ("ryansMammoth", "ryansMammoth"),
    ("miscFolk", "miscFolk"),
]
# music21 keeps its ABC parser's test fixtures next to the real Essen files; they
# repeat a handful of Essen tunes (test1.abc is one tune four times), so they would
# only add duplicates.
ESSEN_TEST_FILES = re.compile(r"^test.*\.abc$")
# Collections with one tune per file, each file named after its tune: the file name
# alone is the id there; the X: number is the tune's place in a book, not in the file.
ONE_TUNE_PER_FILE = {"ryansMammoth"}
CHORALE_EXTENSIONS = (".mxl", ".musicxml", ".xml", ".krn")

VOICES = ["Soprano", "Alto", "Tenor", "Bass"]
# First word of a part name, lower-cased -> voice.  Bach scores name the voice first
# even when the part also carries the doubling instruments ("Bass\rContinuo").
VOICE_ALIASES = {
    "soprano": "Soprano", "sopran": "Soprano", "canto": "Soprano", "cantus": "Soprano",
    "alto": "Alto", "alt": "Alto", "altus": "Alto", "contralto": "Alto",
    "tenor": "Tenor", "tenore": "Tenor",
    "bass": "Bass", "basso": "Bass", "bassus": "Bass",
}

XLINE = re.compile(r"^X:\s*(\d+)", re.MULTILINE)


# --------------------------------------------------------------------------- tasks


def corpus_root():
    # The corpus inside the installed package, not music21's configurable corpus
    # path: the corpus must be the one pinned by the package version.
    import music21

    return pathlib.Path(music21.__file__).parent / "corpus"


def chorale_tasks(root, limit):
    # The Humdrum (.krn) files in bach/ duplicate chorales that are also there as
    # MusicXML, so each BWV number is taken once, in the first format of this list.
    preference = {ext: i for i, ext in enumerate(CHORALE_EXTENSIONS)}
    best = {}
    for p in (root / "bach").iterdir():
        ext = p.suffix.lower()
        if p.is_file() and ext in preference:
            if p.stem not in best or preference[ext] < preference[best[p.stem].suffix.lower()]:
                best[p.stem] = p
    tasks = [{
        "kind": "chorale",
        "id": stem,
        "src": f"bach/{p.name}",
        "path": str(p),
        "file": f"chorales/{stem}.mid",
    } for stem, p in sorted(best.items())]
    return tasks[:limit] if limit is not None else tasks


def read_text(path):
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split_abc(text):
    """Yield (X number, tune text) for each tune of an ABC file.

    Splitting here rather than letting music21 parse a whole file gives one task per
    tune, so a 700-tune file spreads over all workers and one broken tune cannot take
    its neighbours down with it.  The file header (whatever precedes the first X:) is
    prepended to every tune, as the ABC standard says it applies to all of them.
    """
    starts = [m.start() for m in XLINE.finditer(text)]
    if not starts:
        return
    header = text[: starts[0]]
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        chunk = text[s:end]
        yield int(XLINE.match(chunk).group(1)), header + chunk


VOICE_FIELD = re.compile(r"^V:\s*([^\s\]]+)")
VOICE_INLINE = re.compile(r"^\[V:\s*([^\s\]]+)[^\]]*\]\s*(.*)$", re.DOTALL)


def first_voice_only(tune):
    """Drop every voice but the first from a tune written with V: fields.

    music21 turns each V: block of an interleaved tune into a part of its own (ten
    four-bar fragments instead of two voices), so the melody, which is the first
    voice in these collections, is cut out of the text before parsing.
    """
    if not re.search(r"^\[?V:", tune, re.MULTILINE):
        return tune
    out, in_body, first, current = [], False, None, None
    for line in tune.splitlines(keepends=True):
        stripped = line.strip()
        field = VOICE_FIELD.match(stripped)
        inline = VOICE_INLINE.match(stripped)
        if field or inline:
            voice = (field or inline).group(1)
            first = first or voice
            if in_body:
                current = voice
            if inline and current == first and inline.group(2):
                out.append(inline.group(2) + "\n")
            continue
        if re.match(r"^K:", stripped) and not in_body:
            in_body = True
            out.append(line)
            continue
        if not in_body or current is None or current == first:
            out.append(line)
    return "".join(out)


HEADER_LINE = re.compile(r"^([A-Za-z+]:|%|\s*$)")


def drop_malformed_header_lines(tune):
    """Drop lines of a tune header that are neither fields nor comments.

    A header holds only `F:` fields and comments, but a few transcriptions have a
    typo such as `I (1) :| (2) ||` (no colon); music21 reads that as music before
    the metre, and the whole tune loses its time signature.
    """
    lines = tune.splitlines(keepends=True)
    out, in_header = [], True
    for line in lines:
        if in_header and not HEADER_LINE.match(line):
            continue
        if line.startswith("K:"):
            in_header = False
        out.append(line)
    return "".join(out)


GRACE_IN_TUPLET = re.compile(r"\((\d(?::\d*){0,2})(\{[^}]*\})")


def grace_before_tuplet(tune):
    """Rewrite `(3{a}gfg` as `{a}(3gfg`.

    music21 counts a grace note right after a tuplet mark as one of the tuplet's
    notes, so the last real note falls out of the triplet and the bar comes out a
    sixth of a beat too long (and later bars off the grid).  Grace notes are
    dropped anyway, so moving them out of the way loses nothing.
    """
    return GRACE_IN_TUPLET.sub(r"\2(\1", tune)


def clean_tune(tune):
    return first_voice_only(grace_before_tuplet(drop_malformed_header_lines(tune)))


def folk_tasks(root, source, folder, limit):
    tasks, seen = [], set()
    for p in sorted((root / folder).glob("*.abc")):
        if source == "essen" and ESSEN_TEST_FILES.match(p.name):
            continue
        tunes = list(split_abc(read_text(p)))
        for x, tune in tunes:
            base = p.stem if source in ONE_TUNE_PER_FILE else f"{p.stem}_{x:04d}"
            ident, n = base, 2
            while ident in seen:  # a repeated X: number in one file
                ident, n = f"{base}-{n}", n + 1
            seen.add(ident)
            tasks.append({
                "kind": "folk",
                "source": source,
                "id": ident,
                "src": f"{folder}/{p.name}",
                "X": x,
                "abc": clean_tune(tune),
                "file": f"folk/{source}/{ident}.mid",
            })
            if limit is not None and len(tasks) >= limit:
                return tasks
    return tasks


# ----------------------------------------------------------------------- conversion


class Skip(Exception):
    """A piece that cannot become a training example; `kind` groups the summary."""

    def __init__(self, kind, detail=""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


def frac(x):
    return Fraction(x).limit_denominator(1 << 20)


def ql_json(x):
    x = float(x)
    return int(x) if x.is_integer() else x


def ratio_for_length(length_ql, prefer_den):
    """A time signature whose bar is `length_ql` quarters, or None if none that
    Dreamroll reads can express it (a bar shortened by a triplet, say)."""
    whole = frac(length_ql) / 4
    den = prefer_den
    while den <= MAX_DENOMINATOR:
        num = whole * den
        if num.denominator == 1 and 0 < num.numerator < 256:
            return f"{num.numerator}/{den}"
        den *= 2
    return None


def midi_expressible(ts):
    num, den = ts.numerator, ts.denominator
    return 0 < num < 256 and 0 < den <= MAX_DENOMINATOR and den & (den - 1) == 0


def bar_grid(part):
    """Measures of `part` -> (shift, time-signature events, bar statistics).

    Offsets in the returned events are in the padded timeline (shift applied).

    Measure lengths alone do not say where downbeats are: chorales split a bar
    around a repeat sign into a 3-beat and a 1-beat measure, and the pair still
    fills one bar of the grid.  So a measure boundary only counts as a downbeat
    when a full-length measure (or a notated metre change) starts there; if such a
    downbeat is off the grid, the bar that drifted is given a time signature of its
    real length, which puts the downbeat back on the grid.
    """
    from music21 import meter, stream

    measures = [m for m in part.getElementsByClass(stream.Measure)
                if m.duration.quarterLength > 0]
    ts = None
    if measures:
        ts = measures[0].timeSignature or measures[0].getContextByClass(meter.TimeSignature)
    elif part.recurse().getElementsByClass(meter.TimeSignature).first() is not None:
        # Barring the notes by the metre would have to guess where the first
        # downbeat is, and a wrong guess puts the whole tune off its grid.
        raise Skip("no bar lines", "notes without bar lines, so the downbeats are unknown")
    if ts is None:
        raise Skip("free metre", "no time signature (M:none), so no bar grid")

    if not midi_expressible(ts):
        raise Skip("odd metre", f"time signature {ts.ratioString} cannot be written to MIDI")

    first_len = frac(measures[0].duration.quarterLength)
    bar = frac(ts.barDuration.quarterLength)
    shift = bar - first_len if first_len < bar else Fraction(0)

    events = [[Fraction(0), ts.ratioString]]
    grid = {"origin": Fraction(0), "bar": bar, "den": ts.denominator,
            "ratio": ts.ratioString, "short": 0, "unfixable": 0}

    def add(offset, ratio):
        if events[-1][0] == offset:
            events[-1][1] = ratio
        else:
            events.append([offset, ratio])

    starts = []  # measure starts seen so far, in the padded timeline

    def short_bar_at(phase, offset):
        """Where the short bar of length `phase` goes, among the grid downbeats before
        `offset`: where the most measure starts end up on downbeats.

        A tune whose first ending is a beat short drifts by that beat, but only shows
        it after the second ending and the next pickup; the short bar belongs to the
        first ending, not to the bar just before the drift shows."""
        origin, bar = grid["origin"], grid["bar"]
        seen = [b for b in starts if origin <= b < offset]
        best, best_score = None, -1
        x = origin
        while x + phase <= offset:
            score = sum(1 for b in seen
                        if ((b - origin) % bar == 0 if b <= x else (b - x - phase) % bar == 0))
            if score >= best_score:  # ties: the latest place, the least rewritten
                best, best_score = x, score
            x += bar
        return best

    def downbeat(offset, new_ts):
        phase = (offset - grid["origin"]) % grid["bar"]
        if phase:
            short = ratio_for_length(phase, grid["den"])
            if short is None:  # e.g. a bar cut short by a triplet
                grid["unfixable"] += 1
            else:
                x = short_bar_at(phase, offset)
                add(x, short)
                add(x + phase, grid["ratio"])
                grid["origin"] = x + phase
                grid["short"] += 1
        if new_ts.ratioString != grid["ratio"]:
            add(offset, new_ts.ratioString)
            grid.update(origin=offset, bar=frac(new_ts.barDuration.quarterLength),
                        den=new_ts.denominator, ratio=new_ts.ratioString)

    full_bars = Counter()
    meters = {ts.ratioString}
    for i, m in enumerate(measures):
        offset = frac(m.offset) + shift
        length = frac(m.duration.quarterLength)
        starts.append(offset if i > 0 else Fraction(0))
        # music21 re-bars an overfull measure with a time signature of the overflow,
        # which can be 1/24 after a misread tuplet; such a bar is left to downbeat(),
        # as MIDI only knows power-of-two denominators.
        if i > 0 and m.timeSignature is not None and midi_expressible(m.timeSignature):
            ts = m.timeSignature
            meters.add(ts.ratioString)
            downbeat(offset, ts)
        bar = frac(ts.barDuration.quarterLength)
        if length == bar:
            full_bars[ts.ratioString] += 1
            if i > 0:
                downbeat(offset, ts)
    if grid["unfixable"]:
        raise Skip("off-grid bars", f"{grid['unfixable']} bar(s) of a length no time signature "
                   "can express, so later downbeats would be off the grid")
    end = frac(measures[-1].offset) + frac(measures[-1].duration.quarterLength) + shift
    return shift, events, {
        "n_measures": len(measures),
        "meters": len(meters),
        "full_bars_by_ts": dict(full_bars.most_common()),
        "irregular_bars": grid["short"],
        "end": end,
    }


def part_notes(part, shift, pick_low):
    """Sounding notes of one part as (onset, end, pitch, velocity), ties merged.

    Chords keep one note: the top one, except in a bass part, where the bottom one
    is the bass line (the few chords in these sources are divisi at final chords or
    fiddle double stops, and a voice track must stay one line)."""
    from music21 import chord, harmony

    raw = []
    for n in part.flatten().notes:
        if isinstance(n, harmony.Harmony):  # chord symbols are Chord subclasses
            continue
        if n.duration.isGrace or n.duration.quarterLength == 0:
            continue
        if isinstance(n, chord.Chord):
            members = [c for c in n.notes if c.pitch is not None]
            if not members:
                continue
            members.sort(key=lambda c: c.pitch.ps)
            sel = members[0] if pick_low else members[-1]
            tie = sel.tie or n.tie
            vel = sel.volume.velocity if sel.hasVolumeInformation() else None
            if vel is None and n.hasVolumeInformation():
                vel = n.volume.velocity
        elif hasattr(n, "pitch"):
            sel, tie = n, n.tie
            vel = n.volume.velocity if n.hasVolumeInformation() else None
        else:
            continue  # unpitched percussion
        midi = sel.pitch.midi
        if not 0 <= midi <= 127:
            continue
        onset = frac(n.offset) + shift
        raw.append([onset, onset + frac(n.duration.quarterLength), midi,
                    vel if vel else DEFAULT_VELOCITY, tie.type if tie else None,
                    (sel.pitch.step, sel.pitch.octave)])
    raw.sort(key=lambda r: (r[0], r[2]))

    # Merged here rather than with Stream.stripTies, which only follows ties inside
    # one voice; a tie continues a note that ends exactly where the tied note starts.
    # Some transcriptions (O'Neill's) write `G3-A`, a "tie" between two pitches: that
    # is two notes, and stays two.
    notes, open_ties, steps = [], {}, {}
    for onset, end, midi, vel, tie, step in raw:
        held = None
        if tie in ("stop", "continue"):
            held = open_ties.pop(midi, None)
            if held is None:
                # A tie joins one notated pitch, but music21 drops an accidental at
                # the bar line it crosses (ABC `=F6- | F2` gives F then F#): take the
                # tied note on the same staff step, and keep its pitch.
                near = [p for p in (midi - 1, midi + 1)
                        if p in open_ties and open_ties[p][1] == onset and steps[p] == step]
                if len(near) == 1:
                    held = open_ties.pop(near[0])
        if held is not None and held[1] == onset:
            held[1] = end
            if tie == "continue":
                open_ties[held[2]] = held
            continue
        note = [onset, end, midi, vel]
        notes.append(note)
        if tie in ("start", "continue"):
            open_ties[midi] = note
            steps[midi] = step
    return notes


def to_ticks(notes):
    """Quarter lengths -> ticks, resolving same-pitch overlaps, which a single MIDI
    channel cannot represent (the earlier note is cut where the next one starts)."""
    out = []
    last_by_pitch = {}
    for onset, end, midi, vel in sorted(notes, key=lambda n: (n[0], n[2])):
        on = round(onset * TPQ)
        off = max(round(end * TPQ), on + 1)
        prev = last_by_pitch.get(midi)
        if prev is not None and prev[1] > on:
            prev[1] = on
            if prev[1] <= prev[0]:
                out.remove(prev)
        note = [on, off, midi, vel]
        out.append(note)
        last_by_pitch[midi] = note
    return out


# ---------------------------------------------------------------------- MIDI writer


def vlq(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def track_chunk(events, end_tick):
    """events: (tick, order, bytes); `order` puts note-offs before note-ons at a tick."""
    body = bytearray()
    now = 0
    for tick, _, data in sorted(events, key=lambda e: (e[0], e[1])):
        body += vlq(tick - now) + data
        now = tick
    body += vlq(max(end_tick - now, 0)) + b"\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def meta(kind, payload):
    return bytes([0xFF, kind]) + vlq(len(payload)) + payload


def write_midi(path, ts_events, key_sig, tracks, end_tick):
    conductor = [(0, 0, meta(0x51, TEMPO_US_PER_QUARTER.to_bytes(3, "big")))]
    if key_sig is not None:
        sharps, minor = key_sig
        conductor.append((0, 1, meta(0x59, bytes([sharps & 0xFF, 1 if minor else 0]))))
    for offset, ratio in ts_events:
        num, den = (int(v) for v in ratio.split("/"))
        conductor.append((round(offset * TPQ), 2,
                          meta(0x58, bytes([num, den.bit_length() - 1, 24, 8]))))
    chunks = [track_chunk(conductor, end_tick)]
    for channel, (name, notes) in enumerate(tracks):
        ev = [(0, 0, meta(0x03, name.encode("latin-1", "replace")))]
        for on, off, midi, vel in notes:
            ev.append((on, 2, bytes([0x90 | channel, midi, vel])))
            ev.append((off, 1, bytes([0x80 | channel, midi, 0])))
        chunks.append(track_chunk(ev, end_tick))
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(chunks), TPQ)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = header + b"".join(chunks)
    path.write_bytes(data)
    return len(data)


# ---------------------------------------------------------------------- per piece


def voice_of(part):
    words = re.findall(r"[a-z]+", (part.partName or "").lower())
    return VOICE_ALIASES.get(words[0]) if words else None


def pick_satb(parts):
    by_voice = {}
    for p in parts:
        v = voice_of(p)
        if v is not None and v not in by_voice:
            by_voice[v] = p
    if len(by_voice) == 4:
        how = f"{len(parts)} parts" if len(parts) == 4 else f"{len(parts)} parts, picked by name"
        return [by_voice[v] for v in VOICES], how
    if len(parts) == 4:
        # Four unnamed parts (music21 names none in a Humdrum file): order them by
        # average pitch, highest first, rather than trust the source order, which
        # runs bass-first in kern.
        def mean_pitch(p):
            ps = [n.pitch.ps for n in p.flatten().notes if hasattr(n, "pitch")]
            return sum(ps) / len(ps) if ps else 0.0
        return sorted(parts, key=mean_pitch, reverse=True), "4 unnamed parts, ordered by pitch"
    names = ", ".join(repr(p.partName) for p in parts)
    raise Skip("not four voices", f"cannot identify S/A/T/B among {len(parts)} parts ({names})")


def key_info(parts, analyse_only):
    from music21 import key, stream

    notated = None
    for k in parts[0].recurse().getElementsByClass(key.KeySignature):
        notated = k
        break
    if notated is not None and isinstance(notated, key.Key) and not analyse_only:
        return {"tonic": notated.tonic.name, "mode": notated.mode,
                "sharps": notated.sharps, "source": "notated"}, notated
    s = stream.Score()
    for p in parts:
        s.insert(0, p)
    try:
        k = s.analyze("key")
    except Exception:  # no pitches, or an analysis edge case: a key is optional
        return None, notated
    return {"tonic": k.tonic.name, "mode": k.mode, "sharps": k.sharps,
            "source": "analyzed"}, notated


def has_repeats(part):
    from music21 import bar, spanner

    if part.recurse().getElementsByClass(bar.Repeat).first() is not None:
        return True
    return any(isinstance(s, spanner.RepeatBracket) for s in part.spannerBundle)


def render(task, out_dir, score, voice_parts, row, analyse_key):
    """Shared back half: grid, notes, MIDI file, manifest fields."""
    shift, ts_events, grid = bar_grid(voice_parts[0][1])
    tracks = []
    for name, part in voice_parts:
        notes = to_ticks(part_notes(part, shift, pick_low=(name == "Bass")))
        tracks.append((name, notes))
    all_notes = [n for _, ns in tracks for n in ns]
    if not all_notes:
        raise Skip("no notes")
    kinfo, notated = key_info([p for _, p in voice_parts], analyse_key)
    key_sig = None
    if notated is not None:
        key_sig = (max(-7, min(7, notated.sharps)), getattr(notated, "mode", None) == "minor")
    end_tick = max(round(grid["end"] * TPQ), max(n[1] for n in all_notes))
    size = write_midi(out_dir / task["file"], ts_events, key_sig, tracks, end_tick)
    pitches = [n[2] for n in all_notes]
    row.update({
        "ok": True,
        "bytes": size,
        "shift_ql": ql_json(shift),
        "time_sigs": [[ql_json(o), r] for o, r in ts_events],
        # single_ts: one time signature in the file, a uniform grid.  single_meter:
        # one notated metre, though odd bars may have needed events of their own.
        "single_ts": len(ts_events) == 1,
        "single_meter": grid["meters"] == 1,
        "key": kinfo,
        "n_measures": grid["n_measures"],
        "full_bars_by_ts": grid["full_bars_by_ts"],
        "irregular_bars": grid["irregular_bars"],
        "n_notes": len(all_notes),
        "pitch_range": [min(pitches), max(pitches)],
        "end_ql": ql_json(Fraction(end_tick, TPQ)),
        "has_repeats": has_repeats(voice_parts[0][1]),
    })
    return tracks


def convert_chorale(task, out_dir):
    from music21 import converter

    row = {"id": task["id"], "src": task["src"], "file": task["file"]}
    # forceSource: do not read or write music21's pickle cache under the temp dir.
    score = converter.parse(task["path"], forceSource=True)
    parts = list(score.parts)
    row["parts_in_source"] = len(parts)
    picked, how = pick_satb(parts)
    row["part_pick"] = how
    tracks = render(task, out_dir, score, list(zip(VOICES, picked)), row, analyse_key=True)
    k = picked[0].recurse().getElementsByClass("KeySignature").first()
    row["key_notated_sharps"] = k.sharps if k is not None else None
    row["voices"] = [
        {"name": name, "part": p.partName, "n_notes": len(ns),
         "range": [min(n[2] for n in ns), max(n[2] for n in ns)] if ns else None}
        for (name, ns), p in zip(tracks, picked)
    ]
    return row


def convert_folk(task, out_dir):
    from music21 import converter, harmony, stream

    row = {"id": task["id"], "source": task["source"], "src": task["src"],
           "X": task["X"], "file": task["file"]}
    score = converter.parseData(task["abc"], format="abc")
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    if score.metadata is not None and score.metadata.title:
        row["title"] = score.metadata.title
    parts = list(score.parts)
    row["parts_in_source"] = len(parts)
    if not parts:
        raise Skip("no music", "the tune has no notes")
    # A tune written with several voices (V:1 ... ) has its melody in the first one.
    melody = parts[0]
    render(task, out_dir, score, [("Melody", melody)], row, analyse_key=False)
    row["chord_symbols"] = sum(1 for _ in melody.recurse().getElementsByClass(harmony.Harmony))
    return row


def _alarm(signum, frame):
    raise TimeoutError(f"gave up after {PIECE_TIMEOUT_S} s")


def worker_init():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGALRM, _alarm)
    import warnings

    warnings.simplefilter("ignore")  # music21 warns per odd token; the manifest says enough
    import music21  # noqa: F401  (pay the import once per worker, not per piece)


OUT_DIR = None


def convert(task):
    started = time.perf_counter()
    out_dir = pathlib.Path(OUT_DIR)
    signal.alarm(PIECE_TIMEOUT_S)
    try:
        if task["kind"] == "chorale":
            row = convert_chorale(task, out_dir)
        else:
            row = convert_folk(task, out_dir)
    except Skip as e:
        row = failure(task, e.kind, str(e))
    except TimeoutError as e:
        row = failure(task, "timeout", str(e))
    except Exception as e:
        where = traceback.extract_tb(e.__traceback__)[-1]
        kind = f"music21 error ({type(e).__name__})"
        row = failure(task, kind, f"{kind}: {e} [{pathlib.Path(where.filename).name}:{where.lineno}]")
    finally:
        signal.alarm(0)
    row["sec"] = round(time.perf_counter() - started, 3)
    return task["kind"], row


def failure(task, kind, message):
    row = {"id": task["id"], "src": task["src"], "file": task["file"], "ok": False,
           "error_kind": kind, "error": message}
    if task["kind"] == "folk":
        row["source"] = task["source"]
        row["X"] = task["X"]
    stale = pathlib.Path(OUT_DIR) / task["file"]
    if stale.exists():
        stale.unlink()
    return row


def pool_init(out_dir):
    global OUT_DIR
    OUT_DIR = out_dir
    worker_init()


# --------------------------------------------------------------------------- driver


def clear_outputs(out_dir, collections):
    """Remove the .mid files of the collections being rebuilt, so that the folders
    always match their manifest (a --limit run must not leave a full run's files)."""
    dirs = []
    if "chorales" in collections:
        dirs.append(out_dir / "chorales")
    if "folk" in collections:
        dirs += [out_dir / "folk" / src for src, _ in FOLK_SOURCES]
    for d in dirs:
        if d.is_dir():
            for f in d.glob("*.mid"):
                f.unlink()


def write_manifest(path, rows):
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def summarise(rows_by_kind, elapsed):
    print()
    print(f"Summary ({elapsed:.1f} s)")
    groups = []
    if "chorale" in rows_by_kind:
        groups.append(("chorales", rows_by_kind["chorale"]))
    if "folk" in rows_by_kind:
        per_source = defaultdict(list)
        for r in rows_by_kind["folk"]:
            per_source[r["source"]].append(r)
        groups += [(f"folk/{src}", per_source[src]) for src, _ in FOLK_SOURCES if src in per_source]
    failures = []
    for name, rows in groups:
        ok = sum(1 for r in rows if r["ok"])
        print(f"  {name:<22} {ok:>6} written, {len(rows) - ok:>4} skipped")
        failures += [r for r in rows if not r["ok"]]
    total_ok = sum(1 for _, rows in groups for r in rows if r["ok"])
    print(f"  {'total':<22} {total_ok:>6} written, {len(failures):>4} skipped")
    if failures:
        print("Skipped pieces, by reason:")
        by_kind = defaultdict(list)
        for r in failures:
            by_kind[r["error_kind"]].append(r)
        for kind, rows in sorted(by_kind.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            rows.sort(key=lambda r: (r["src"], r.get("X", 0)))
            print(f"  {len(rows):>5} x {kind}")
            for r in rows[:3]:
                src = f"{r['src']} X:{r['X']}" if "X" in r else r["src"]
                print(f"          e.g. {r['id']} ({src}): {r['error']}")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--only", choices=["chorales", "folk"])
    ap.add_argument("--limit", type=int, help="at most N pieces per collection")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    if args.limit is not None and args.limit < 0:
        ap.error("--limit must be >= 0")
    jobs = max(1, args.jobs)

    started = time.perf_counter()
    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    collections = [args.only] if args.only else ["chorales", "folk"]

    import music21

    root = corpus_root()
    print(f"music21 {music21.__version__}, corpus at {root}")
    tasks = []
    if "chorales" in collections:
        tasks += chorale_tasks(root, args.limit)
    if "folk" in collections:
        for source, folder in FOLK_SOURCES:
            tasks += folk_tasks(root, source, folder, args.limit)
    counts = Counter(t["kind"] for t in tasks)
    print(f"converting {counts.get('chorale', 0)} chorales and {counts.get('folk', 0)} folk tunes "
          f"into {out_dir} with {jobs} worker(s)")
    sys.stdout.flush()
    clear_outputs(out_dir, collections)

    # Big chorale scores first so that no slow piece is left alone at the end.
    tasks.sort(key=lambda t: 0 if t["kind"] == "chorale" else 1)
    rows_by_kind = defaultdict(list)
    total = len(tasks)
    done, failed, last_report = 0, 0, time.perf_counter()
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    # maxtasksperchild bounds the memory music21's caches grow to in long runs.
    with ctx.Pool(jobs, initializer=pool_init, initargs=(str(out_dir),),
                  maxtasksperchild=1000) as pool:
        for kind, row in pool.imap_unordered(convert, tasks, chunksize=4):
            rows_by_kind[kind].append(row)
            done += 1
            failed += 0 if row["ok"] else 1
            now = time.perf_counter()
            if now - last_report >= 10 or done == total:
                last_report = now
                el = now - started
                eta = el / done * (total - done)
                print(f"  {done:>6}/{total} pieces ({failed} skipped), {el:6.0f} s elapsed, "
                      f"~{eta:.0f} s left", flush=True)

    def order(r):
        return (r["src"], r.get("X", 0), r["id"])

    if "chorales" in collections:
        write_manifest(out_dir / "chorales_manifest.jsonl",
                       sorted(rows_by_kind.get("chorale", []), key=order))
    if "folk" in collections:
        write_manifest(out_dir / "folk_manifest.jsonl",
                       sorted(rows_by_kind.get("folk", []), key=order))
    if "chorales" in collections:
        rows_by_kind.setdefault("chorale", [])
    if "folk" in collections:
        rows_by_kind.setdefault("folk", [])
    summarise(rows_by_kind, time.perf_counter() - started)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        # The pool is torn down on the way out; say what state the folder is in.
        print("\ninterrupted: the manifests were not rewritten, the output folder is partial",
              file=sys.stderr)
        sys.exit(130)
