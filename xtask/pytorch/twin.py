#!/usr/bin/env python3
"""PyTorch twin of Dreamroll's shipped presets (`vae`, `voices`), for `cargo xtask bench --vs-pytorch`.

Built from a model folder's `model.json`, loading the same `encoder.safetensors` and
`decoder.safetensors` under the same weight names. It runs the same algebra as candle: the
voices decoder's GRU input is a sum of rows picked from tables of projected embeddings plus a
projection per bar, not a product of the concatenated input (a third fewer multiply-adds), and
its sampler decodes from the same tables. Two flavours:

  eager    plain eager PyTorch: `torch.no_grad`, `torch.multinomial`, Adam (foreach)
  expert   what an expert adds: the training step's loss under `torch.compile` (inductor),
           fused Adam, `torch.inference_mode`, the decoding step compiled, head tables for the
           voices above and an inverse-CDF draw from uniforms like candle's sampler

  twin.py parity --model DIR --fixture F [--flavour F]   one training step against candle's numbers
  twin.py sampler-parity --fixture F                      the same uniforms give candle's choices
  twin.py worker --model DIR --fixture F --job decode|train --flavour F ...   timings as one JSON line
  twin.py config                                          torch's build, the CPU and glibc, as JSON
  twin.py flops --model DIR --fixture F                   a training step's matrix-product work
  twin.py gemm --threads N                                MKL's sgemm speed, the CPU's peak
"""

import ctypes
import ctypes.util


def keep_freed_memory():
    """The allocator settings candle's process runs with (xtask's `keep_freed_memory`): freed
    blocks stay in the heap rather than going back to the kernel and coming back as fresh
    zeroed pages every step. Set before torch allocates anything, as there."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)


keep_freed_memory()

import argparse
import json
import math
import os
import platform
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

# The context reader's dilations; the Rust side's `CONTEXT_DILATIONS`.
CONTEXT_DILATIONS = [1, 2, 4, 8]
REST, HOLD, NEW_NOTE = 0, 1, 2
# The voice-leading table's layout; the Rust side's `voices::leading`.
MOTION_RANGE, SPACING_LOW, SPACING_HIGH = 24, -12, 36
MOTION_ENTRIES = 2 + 2 * MOTION_RANGE + 1
PARALLEL_ENTRIES = 13 * 12 * 3 * 3 + 1
SPACING_ENTRIES = SPACING_HIGH - SPACING_LOW + 1 + 1
PAIR_ENTRIES = PARALLEL_ENTRIES + SPACING_ENTRIES


class Card:
    """The sizes the networks are built from, read off model.json as the Rust side reads them."""

    def __init__(self, folder):
        with open(f"{folder}/model.json") as f:
            card = json.load(f)
        r, a = card["representation"], card["architecture"]
        self.preset = card["preset"]
        self.tracks = len(r["tracks"])
        self.bars = r["bars_per_phrase"]
        self.steps_per_bar = r["meter"]["numerator"] * r["steps_per_beat"]
        self.steps = self.bars * self.steps_per_bar
        self.pitches = r["pitch_count"]
        self.latent = card["latent_size"]
        self.hidden = a["hidden"]
        self.bar_hidden = a["bar_hidden"]
        self.channels = a["channels"]
        self.patch = a["patch"]
        self.planes = 2 * self.tracks
        self.patch_features = self.channels * (self.steps_per_bar // self.patch) * (self.pitches // self.patch)
        self.temperature = card["decoding"]["temperature"]
        self.rest_bias = card["decoding"].get("rest_bias", 0.0)
        self.crossing_bias = card["decoding"].get("crossing_bias", 0.0)
        self.parallel_bias = card["decoding"].get("parallel_bias", 0.0)
        self.onset_threshold = card["decoding"]["onset_threshold"]
        self.sustain_threshold = card["decoding"]["sustain_threshold"]
        voice = a.get("voice")
        if voice:
            self.embed = voice["embed"]
            self.age_embed = voice["age_embed"]
            self.position_embed = voice["position_embed"]
            self.context = voice["context"]
            self.head = voice["head"]
            self.leading = voice.get("leading", False)
            self.voice_features = self.embed + self.age_embed
            self.max_age = self.steps_per_bar
            self.classes = self.pitches + NEW_NOTE
            self.step_input = self.tracks * self.voice_features + self.position_embed + self.bar_hidden + self.context


def phrase_to_bars(x, bars):
    b, planes, steps, pitches = x.shape
    return x.reshape(b, planes, bars, steps // bars, pitches).permute(0, 2, 1, 3, 4).reshape(b * bars, planes, steps // bars, pitches)


def bars_to_phrase(x, bars):
    bb, planes, steps, pitches = x.shape
    return x.reshape(bb // bars, bars, planes, steps, pitches).permute(0, 2, 1, 3, 4).reshape(bb // bars, planes, bars * steps, pitches)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.patches = nn.Conv2d(c.planes, c.channels, c.patch, stride=c.patch)
        self.bar = nn.Linear(c.patch_features, c.bar_hidden)
        self.phrase = nn.Linear(c.bars * c.bar_hidden, c.hidden)
        self.mean = nn.Linear(c.hidden, c.latent)
        self.log_variance = nn.Linear(c.hidden, c.latent)

    def forward(self, phrase):
        b = phrase.shape[0]
        features = F.relu(self.patches(phrase_to_bars(phrase, self.c.bars))).flatten(1)
        codes = F.relu(self.bar(features)).reshape(b, -1)
        hidden = F.relu(self.phrase(codes))
        return self.mean(hidden), self.log_variance(hidden)


class CellDecoder(nn.Module):
    """The `vae` preset's decoder: onset and sustain logits for every cell."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.latent = nn.Linear(c.latent, c.hidden)
        self.temporal = nn.Linear(c.hidden, c.bars * c.bar_hidden)
        self.bar = nn.Linear(c.bar_hidden, c.hidden)
        self.features = nn.Linear(c.hidden, c.patch_features)
        self.patches = nn.ConvTranspose2d(c.channels, c.planes, c.patch, stride=c.patch)

    def forward(self, z):
        c, b = self.c, z.shape[0]
        hidden = F.relu(self.latent(z))
        bar_latents = F.relu(self.temporal(hidden)).reshape(b * c.bars, c.bar_hidden)
        features = F.relu(self.features(F.relu(self.bar(bar_latents))))
        features = features.reshape(b * c.bars, c.channels, c.steps_per_bar // c.patch, c.pitches // c.patch)
        return bars_to_phrase(self.patches(features), c.bars)

    def loss(self, z, inputs):
        logits = self.forward(z)
        # binary_cross_entropy_with_logits is PyTorch's fused, stable form of the same loss.
        return logits, F.binary_cross_entropy_with_logits(logits, inputs["batch"], reduction="sum") / z.shape[0]

    def decode(self, z, generator, expert, compiled=None):
        """Onsets drawn as candle draws them (one uniform per cell against the sigmoid of the
        logit over the threshold's, at the card's temperature), sustains by threshold, as rolls
        of 0/1. `compiled` is `forward` compiled, if it is."""
        c = self.c
        logits = (compiled or self.forward)(z)
        onset_logits = logits[:, : c.tracks] - math.log(c.onset_threshold / (1 - c.onset_threshold))
        if c.temperature > 0:
            onsets = torch.rand(onset_logits.shape, generator=generator) < torch.sigmoid(onset_logits / c.temperature)
        else:
            onsets = onset_logits >= 0
        sustains = torch.sigmoid(logits[:, c.tracks :]) > c.sustain_threshold
        return (onsets | sustains).numpy()


class Conductor(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.first = nn.Linear(c.latent, c.hidden)
        self.bars = nn.Linear(c.hidden, c.bars * c.bar_hidden)

    def forward(self, z):
        return torch.tanh(self.bars(F.relu(self.first(z)))).reshape(z.shape[0], self.c.bars, self.c.bar_hidden)


def shift(x, by):
    """`x` [batch, steps, channels] moved `by` steps later (earlier if negative), zeros moving in."""
    steps = x.shape[1]
    n = min(abs(by), steps)
    if n == 0:
        return x
    zeros = x.new_zeros(x.shape[0], n, x.shape[2])
    return torch.cat([zeros, x[:, : steps - n]], 1) if by > 0 else torch.cat([x[:, n:], zeros], 1)


class ContextReader(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input = nn.Linear(c.tracks * (c.voice_features + 1), c.context)
        for i in range(len(CONTEXT_DILATIONS)):
            setattr(self, f"layer{i}", nn.Linear(3 * c.context, c.context))

    def forward(self, features, given):
        b, steps = features.shape[:2]
        masked = features * given.unsqueeze(-1)
        x = F.relu(self.input(torch.cat([masked, given.unsqueeze(-1)], -1).reshape(b, steps, -1)))
        for i, d in enumerate(CONTEXT_DILATIONS):
            windows = torch.cat([shift(x, d), x, shift(x, -d)], -1)
            x = x + F.relu(getattr(self, f"layer{i}")(windows))
        return x


class Head(nn.Module):
    def __init__(self, inputs, c):
        super().__init__()
        self.hidden = nn.Linear(inputs, c.head)
        self.out = nn.Linear(c.head, c.classes)

    def forward(self, x):
        return self.out(F.relu(self.hidden(x)))


class VoiceDecoder(nn.Module):
    """The `voices` preset's decoder: per voice and step, rest, hold or a new note."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.conductor = Conductor(c)
        self.context = ContextReader(c)
        self.pitch = nn.Embedding(c.pitches + 1, c.embed)
        self.age = nn.Embedding(c.max_age + 1, c.age_embed)
        self.position = nn.Embedding(c.steps_per_bar, c.position_embed)
        self.gru = nn.GRU(c.step_input, c.hidden, batch_first=True)
        self.initial = nn.Linear(c.bar_hidden, c.hidden)
        for v in range(c.tracks):
            setattr(self, f"head{v}", Head(c.hidden + v * c.voice_features, c))
        if c.leading:
            self.leading = nn.Parameter(torch.zeros(c.tracks * MOTION_ENTRIES + c.tracks * (c.tracks - 1) // 2 * PAIR_ENTRIES, 1))

    def leading_scores(self, before, now, v):
        """Voice v's voice-leading scores [..., classes] from every voice's last pitch before
        the step (row + 1, across rests; 0 before its first note) and its pitch at this step
        (0 resting), each [..., voices]."""
        c = self.c
        candidate = torch.arange(1 + c.pitches)
        own_before = before[..., v : v + 1]
        sounding = torch.where(candidate == 0, own_before, candidate)
        interval = (sounding - own_before).clamp(-MOTION_RANGE, MOTION_RANGE) + MOTION_RANGE
        motion = torch.where(candidate == 0, 1, torch.where(own_before == 0, 0, 2 + interval))
        total = self.leading[v * MOTION_ENTRIES + motion, 0]
        for u in range(v):
            a, b, now_u = before[..., u : u + 1], own_before, now[..., u : u + 1]
            both = (a > 0) & (b > 0)
            interval_before = torch.where(both, torch.remainder(a - b, 12), 12)
            upper_direction = torch.where(both, torch.sign(now_u - a) + 1, 1)
            lower_direction = torch.where(both, torch.sign(sounding - b) + 1, 1)
            parallel = ((interval_before * 12 + torch.remainder(now_u - sounding, 12)) * 3 + upper_direction) * 3 + lower_direction
            spacing = (now_u - sounding).clamp(SPACING_LOW, SPACING_HIGH) - SPACING_LOW
            silent = (now_u == 0) | (sounding == 0)
            parallel = torch.where(silent, PARALLEL_ENTRIES - 1, parallel)
            spacing = torch.where(silent, SPACING_ENTRIES - 1, spacing)
            base = c.tracks * MOTION_ENTRIES + (v * (v - 1) // 2 + u) * PAIR_ENTRIES
            total = total + self.leading[base + parallel, 0] + self.leading[base + PARALLEL_ENTRIES + spacing, 0]
        return torch.cat([torch.zeros_like(total[..., :1]), total], -1)

    def features(self, sounding, age):
        return torch.cat([self.pitch(sounding), self.age(age)], -1)

    def input_split(self):
        """W_ih's columns in candle's order: voices' states, position, bar, context."""
        c = self.c
        states = c.tracks * c.voice_features
        bar_at = states + c.position_embed
        return states, bar_at, bar_at + c.bar_hidden

    def state_tables(self):
        """Per voice, its pitch and age embeddings projected by W_ih: [voices × (pitches + 1 +
        ages), 3H], the rows a voice's state picks (candle's `state_tables`)."""
        c, w = self.c, self.gru.weight_ih_l0
        tables = []
        for v in range(c.tracks):
            at = v * c.voice_features
            tables.append(self.pitch.weight @ w[:, at : at + c.embed].T)
            tables.append(self.age.weight @ w[:, at + c.embed : at + c.voice_features].T)
        return torch.cat(tables, 0)

    def state_picks(self, sounding, age):
        """The rows of `state_tables` that voices in states (sounding, age) [..., voices] pick:
        [..., 2 × voices]."""
        c = self.c
        pitch_rows, age_rows = c.pitches + 1, c.max_age + 1
        base = torch.arange(c.tracks) * (pitch_rows + age_rows)
        return torch.stack([base + sounding, base + pitch_rows + age], -1).flatten(-2)

    def step_constants(self, bar_embeddings, context):
        """W_ih's product with what does not depend on the choices — position and context per
        step, the bar once per bar — plus b_ih: [batch, steps, 3H]."""
        c, w = self.c, self.gru.weight_ih_l0
        states, bar_at, context_at = self.input_split()
        b = bar_embeddings.shape[0]
        per_step = torch.cat([self.position.weight.repeat(c.bars, 1).expand(b, -1, -1), context], -1)
        per_step = per_step @ torch.cat([w[:, states:bar_at], w[:, context_at:]], 1).T
        per_bar = bar_embeddings @ w[:, bar_at:context_at].T + self.gru.bias_ih_l0
        return (per_step.reshape(b, c.bars, c.steps_per_bar, -1) + per_bar.unsqueeze(2)).reshape(b, c.steps, -1)

    def gru_sequence(self, gates_in, initial):
        """The states after each step [rows, steps, H] from the input's projection `gates_in`
        [rows, steps, 3H] and the first state [rows, H] (candle's `GruWeights::sequence`)."""
        gru, state, states = self.gru, initial, []
        for step in range(gates_in.shape[1]):
            state = gru_step(gates_in[:, step], state, gru.weight_hh_l0, gru.bias_hh_l0)
            states.append(state)
        return torch.stack(states, 1)

    def forward(self, z, inputs):
        """Teacher-forced scores [batch, steps, voices, classes], as the trainer computes them."""
        c, b = self.c, z.shape[0]
        sounding, age = inputs["sounding"], inputs["age"]
        current = self.features(sounding, age)
        context = self.context(self.features(inputs["given_sounding"], inputs["given_age"]), inputs["given_mask"])
        bar_embeddings = self.conductor(z)
        # The GRU's input per step: the rows the voices' states before it pick from their
        # tables (silence before the first step), plus the choice-free part.
        silence = torch.zeros(b, 1, c.tracks, dtype=torch.long)
        picks = self.state_picks(torch.cat([silence, sounding[:, :-1]], 1), torch.cat([silence, age[:, :-1]], 1))
        from_states = F.embedding_bag(picks.reshape(b * c.steps, -1), self.state_tables(), mode="sum")
        gates_in = from_states.reshape(b, c.steps, -1) + self.step_constants(bar_embeddings, context)
        rows = b * c.bars
        initial = torch.tanh(self.initial(bar_embeddings.reshape(rows, c.bar_hidden)))
        states = self.gru_sequence(gates_in.reshape(rows, c.steps_per_bar, -1), initial).reshape(b, c.steps, c.hidden)
        # Each voice's last pitch before each step, across rests.
        steps = torch.arange(c.steps).view(1, -1, 1).expand_as(sounding)
        latest, _ = torch.cummax(torch.where(sounding > 0, steps, -1), 1)
        last = torch.gather(sounding, 1, latest.clamp(min=0)) * (latest >= 0)
        sounding_before = torch.cat([torch.zeros_like(last[:, :1]), last[:, :-1]], 1)
        scores = []
        for v in range(c.tracks):
            x = states if v == 0 else torch.cat([states, current[:, :, :v].reshape(b, c.steps, -1)], -1)
            voice_scores = getattr(self, f"head{v}")(x)
            if c.leading:
                voice_scores = voice_scores + self.leading_scores(sounding_before, sounding, v)
            scores.append(voice_scores)
        return torch.stack(scores, 2)

    def loss(self, z, inputs):
        scores = self.forward(z, inputs)
        log_probabilities = F.log_softmax(scores + inputs["barred"], -1)
        chosen = log_probabilities.gather(-1, inputs["tokens"].unsqueeze(-1)).squeeze(-1)
        return scores, -(chosen * inputs["scored"]).sum() / z.shape[0]

    def decoding_tables(self, expert):
        """What decoding reads at every step: the state tables, W_hh, and per voice its head's
        hidden layer — as candle's sampler has it, the voices above through tables of their
        projected embeddings (expert), or as the layer itself (eager)."""
        c = self.c
        tables = {"states": self.state_tables(), "heads": []}
        for v in range(c.tracks):
            head = getattr(self, f"head{v}")
            w = head.hidden.weight
            above = None
            if expert and v > 0:
                above = torch.cat(
                    [
                        torch.cat([self.pitch.weight @ w[:, at : at + c.embed].T, self.age.weight @ w[:, at + c.embed : at + c.voice_features].T], 0)
                        for at in (c.hidden + u * c.voice_features for u in range(v))
                    ],
                    0,
                )
            tables["heads"].append((w[:, : c.hidden].T.contiguous() if expert else None, above))
        return tables

    def head_hidden(self, v, state, sounding, age, tables):
        """Voice v's head's hidden layer from the step's state and the voices above."""
        c = self.c
        head = getattr(self, f"head{v}")
        from_state, above = tables["heads"][v]
        if above is None:
            x = state if v == 0 else torch.cat([state, self.features(sounding[:, :v], age[:, :v]).reshape(state.shape[0], -1)], -1)
            return F.relu(head.hidden(x))
        pitch_rows, age_rows = c.pitches + 1, c.max_age + 1
        base = torch.arange(v) * (pitch_rows + age_rows)
        picks = torch.stack([base + sounding[:, :v], base + pitch_rows + age[:, :v]], -1).flatten(1)
        return F.relu(torch.addmm(head.hidden.bias, state, from_state) + F.embedding_bag(picks, above, mode="sum"))

    def decode_step(self, state, gates_constant, sounding, age, last, uniforms, tables, expert):
        """One step of every voice: the GRU, then each voice's choice given those above it.
        Returns the new state, the tokens [batch, voices] and the voices' new (sounding, age,
        last pitch). Expert draws by inverse CDF from `uniforms` [batch, voices] (candle's
        `draw`); eager by `torch.multinomial`."""
        c, b = self.c, state.shape[0]
        gru = self.gru
        gates_in = F.embedding_bag(self.state_picks(sounding, age), tables["states"], mode="sum") + gates_constant
        state = gru_step(gates_in, state, gru.weight_hh_l0, gru.bias_hh_l0)
        sounding, age = sounding.clone(), age.clone()
        tokens = []
        for v in range(c.tracks):
            scores = getattr(self, f"head{v}").out(self.head_hidden(v, state, sounding, age, tables))
            if c.leading:
                scores = scores + self.leading_scores(last, sounding, v)
            rest = torch.zeros_like(scores)
            rest[:, REST] = c.rest_bias
            scores = scores + rest
            if v > 0 and c.crossing_bias != 0.0:
                # A pitch above the lowest sounding voice above crosses it (pitches are row + 1, 0 silent).
                above = sounding[:, :v]
                lowest = torch.where(above > 0, above, torch.full_like(above, 1 << 20)).min(1).values
                pitches = torch.arange(1, c.pitches + 1)
                crossing = torch.cat([torch.zeros(b, 1), (sounding[:, v] > lowest).float().unsqueeze(1), (pitches[None, :] > lowest[:, None]).float()], 1)
                scores = scores + c.crossing_bias * crossing
            if v > 0 and c.parallel_bias != 0.0:
                # New notes moving with a voice above from a perfect fifth or octave to the same class.
                own = last[:, v]
                pitches = torch.arange(1, c.pitches + 1)
                parallel = torch.zeros(b, c.pitches, dtype=torch.bool)
                for u in range(v):
                    before, now = last[:, u], sounding[:, u]
                    interval = (before - own) % 12
                    perfect = (own > 0) & (before > 0) & (now > 0) & (now != before) & ((interval == 0) | (interval == 7))
                    with_it = torch.where((now > before)[:, None], pitches[None, :] > own[:, None], pitches[None, :] < own[:, None])
                    kept = ((now[:, None] - pitches[None, :]) % 12) == interval[:, None]
                    parallel = parallel | (perfect[:, None] & with_it & kept)
                scores = scores + c.parallel_bias * torch.cat([torch.zeros(b, NEW_NOTE), parallel.float()], 1)
            silent = torch.zeros_like(scores, dtype=torch.bool)
            silent[:, HOLD] = sounding[:, v] == 0
            scores = scores.masked_fill(silent, -math.inf) / max(c.temperature, 1e-3)
            if expert:
                token = inverse_cdf(scores, uniforms[:, v])
            else:
                token = torch.multinomial(F.softmax(scores, -1), 1).squeeze(1)
            tokens.append(token)
            held = (token == HOLD) & (sounding[:, v] > 0)
            new = token >= NEW_NOTE
            sounding[:, v] = torch.where(new, token - NEW_NOTE + 1, torch.where(held, sounding[:, v], torch.zeros_like(token)))
            age[:, v] = torch.where(new, torch.ones_like(token), torch.where(held, (age[:, v] + 1).clamp(max=c.max_age), torch.zeros_like(token)))
        last = torch.where(sounding > 0, sounding, last)
        return state, torch.stack(tokens, 1), sounding, age, last

    def decode(self, z, generator, expert, compiled=None):
        """Phrases from silence, step by step and voice by voice, every phrase of the batch at
        once. `compiled` is `decode_step` compiled, if it is."""
        c, b = self.c, z.shape[0]
        step = compiled or self.decode_step
        given = torch.zeros(b, c.steps, c.tracks, dtype=torch.long)
        context = self.context(self.features(given, given), given.float())
        bar_embeddings = self.conductor(z)
        constants = self.step_constants(bar_embeddings, context)
        initial = torch.tanh(self.initial(bar_embeddings))
        tables = self.decoding_tables(expert)
        sounding = torch.zeros(b, c.tracks, dtype=torch.long)
        age, last = torch.zeros_like(sounding), torch.zeros_like(sounding)
        uniforms = torch.rand(c.steps, b, c.tracks, generator=generator)
        tokens = []
        for at in range(c.steps):
            bar, position = divmod(at, c.steps_per_bar)
            if position == 0:
                state = initial[:, bar]
            state, chosen, sounding, age, last = step(state, constants[:, at], sounding, age, last, uniforms[at], tables, expert)
            tokens.append(chosen)
        return torch.stack(tokens, 1).numpy()


def inverse_cdf(scores, uniforms):
    """Per row of `scores` [rows, classes] (already divided by the temperature), the first
    class whose running sum of weights reaches the row's uniform times their total: candle's
    `draw`, so that the same uniforms give the same choices."""
    weights = torch.exp(scores - scores.max(1, keepdim=True).values)
    cumulative = weights.cumsum(1)
    pick = uniforms.unsqueeze(1) * cumulative[:, -1:]
    return torch.searchsorted(cumulative, pick).squeeze(1).clamp(max=scores.shape[1] - 1)


def gru_step(gates_in, state, weight_hh, bias_hh):
    """PyTorch's GRU cell from the input's projection `gates_in` (W_ih x + b_ih)."""
    reset_in, update_in, candidate_in = gates_in.chunk(3, 1)
    reset_state, update_state, candidate_state = F.linear(state, weight_hh, bias_hh).chunk(3, 1)
    reset = torch.sigmoid(reset_in + reset_state)
    update = torch.sigmoid(update_in + update_state)
    candidate = torch.tanh(candidate_in + reset * candidate_state)
    return candidate + update * (state - candidate)


class Twin(nn.Module):
    def __init__(self, folder):
        super().__init__()
        self.c = Card(folder)
        if self.c.preset not in ("vae", "voices"):
            sys.exit(f"the twin covers the vae and voices presets, not {self.c.preset}")
        self.encoder = Encoder(self.c)
        self.decoder = VoiceDecoder(self.c) if self.c.preset == "voices" else CellDecoder(self.c)
        weights = {**load_file(f"{folder}/encoder.safetensors"), **load_file(f"{folder}/decoder.safetensors")}
        self.load_state_dict(weights, strict=True)

    def loss(self, inputs):
        """The VAE's loss as the trainer computes it: reconstruction + beta * free-bits KL."""
        mean, log_variance = self.encoder(inputs["batch"])
        z = mean + torch.exp(0.5 * log_variance) * inputs["eps"]
        logits, reconstruction = self.decoder.loss(z, inputs)
        kl = (0.5 * (mean.square() + log_variance.exp() - log_variance - 1.0)).mean(0)
        loss = reconstruction + inputs["beta"] * kl.clamp(min=inputs["free_bits"]).sum()
        return {"logits": logits, "loss": loss, "reconstruction": reconstruction, "kl": kl.sum()}


def read_fixture(path):
    tensors = load_file(path)
    inputs = {}
    for name, tensor in tensors.items():
        if name.startswith("input."):
            key = name[len("input.") :]
            # Indices are u32 on the Rust side; PyTorch indexes with int64.
            inputs[key] = tensor.long() if tensor.dtype == torch.uint32 else tensor
    for key in ("beta", "free_bits"):
        inputs[key] = float(inputs[key][0])
    return inputs, tensors


def relative(ours, theirs):
    return float((ours.double() - theirs.double()).norm() / theirs.double().norm().clamp(min=1e-12))


def loss_function(twin, flavour):
    """The training step's loss, compiled by inductor for the expert."""
    def loss(inputs):
        return twin.loss(inputs)["loss"]

    return torch.compile(loss, dynamic=False) if flavour == "expert" else loss


def parity(args):
    twin = Twin(args.model)
    inputs, reference = read_fixture(args.fixture)
    if args.flavour == "expert":
        # The compiled graph returns the loss alone; the other outputs are the eager ones.
        outputs = {k: v for k, v in twin.loss(inputs).items() if k != "loss"}
        outputs["loss"] = loss_function(twin, "expert")(inputs)
    else:
        outputs = twin.loss(inputs)
    outputs["loss"].backward()
    differences = {f"output.{k}": relative(v.detach().reshape(-1), reference[f"output.{k}"].reshape(-1)) for k, v in outputs.items()}
    for name, parameter in twin.named_parameters():
        differences[f"grad.{name}"] = relative(parameter.grad, reference[f"grad.{name}"])
    missing = [k for k in reference if k.startswith("grad.") and k not in differences]
    if missing:
        sys.exit(f"candle has gradients the twin lacks: {missing}")
    worst = max(differences, key=differences.get)
    if args.verbose:
        for k, v in sorted(differences.items(), key=lambda kv: -kv[1]):
            print(f"{v:.2e} {k}", file=sys.stderr)
    print(json.dumps({"max_relative": differences[worst], "worst": worst, "tensors": len(differences)}))


def sampler_parity(args):
    """Candle's draws (`sampler.choices`) from scores and uniforms, against `inverse_cdf`."""
    tensors = load_file(args.fixture)
    scores = tensors["sampler.scores"] / float(tensors["sampler.temperature"][0])
    choices = inverse_cdf(scores, tensors["sampler.uniforms"])
    theirs = tensors["sampler.choices"].long()
    differing = int((choices != theirs).sum())
    print(json.dumps({"draws": len(theirs), "differing": differing}))


def config(_args):
    """What the twin runs on, for the report."""
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    print(json.dumps({
        "torch": torch.__version__,
        "torch_config": torch.__config__.show(),
        "torch_parallel": torch.__config__.parallel_info(),
        "cpu": model,
        "glibc": " ".join(platform.libc_ver()),
        "python": platform.python_version(),
    }))


def flops(args):
    """The multiply-adds (×2) of one training step's matrix products and convolutions,
    forward and backward, as torch's flop counter counts them. The twin runs candle's
    algebra, so this is candle's step's work too."""
    from torch.utils.flop_counter import FlopCounterMode

    twin = Twin(args.model)
    inputs, _ = read_fixture(args.fixture)
    with FlopCounterMode(display=False) as counter:
        twin.loss(inputs)["loss"].backward()
    by_op = {str(op): count / 1e9 for op, count in counter.get_flop_counts()["Global"].items()}
    print(json.dumps({"gflop": counter.get_total_flops() / 1e9, "by_op": by_op}))


def gemm(args):
    """The best of `--repeats` square f32 products of side `--size` on `--threads` threads."""
    torch.set_num_threads(args.threads)
    a, b = torch.randn(args.size, args.size), torch.randn(args.size, args.size)
    out = torch.empty(args.size, args.size)
    best = math.inf
    for _ in range(args.repeats + 2):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    print(json.dumps({"gflops": 2 * args.size**3 / best / 1e9}))


def worker(args):
    torch.set_num_threads(args.threads)
    expert = args.flavour == "expert"
    twin = Twin(args.model)
    seconds = {}

    def timed(name, run):
        for _ in range(args.warmup):
            run()
        # At least --repeats, and for short measures until a quarter second has been timed
        # (at most 1000 times): the same rule as the candle worker's.
        samples = []
        timing = time.perf_counter()
        while len(samples) < args.repeats or (time.perf_counter() - timing < 0.25 and len(samples) < 1000):
            start = time.perf_counter()
            run()
            samples.append(time.perf_counter() - start)
        seconds[name] = samples

    if args.job == "decode":
        twin.eval()
        generator = torch.Generator().manual_seed(0)
        decoder = twin.decoder
        compiled = None
        if expert:
            compiled = torch.compile(decoder.decode_step if isinstance(decoder, VoiceDecoder) else decoder.forward, dynamic=False)
        no_grad = torch.inference_mode if expert else torch.no_grad
        for batch in (1, 16):
            z = torch.randn(batch, twin.c.latent, generator=generator)

            def decode():
                with no_grad():
                    decoder.decode(z, generator, expert, compiled)

            timed(f"decode_{batch}", decode)
    else:
        inputs, _ = read_fixture(args.fixture)
        loss = loss_function(twin, args.flavour)
        optimiser = torch.optim.Adam(twin.parameters(), lr=1e-3, **({"fused": True} if expert else {"foreach": True}))

        def step():
            optimiser.zero_grad(set_to_none=True)
            loss(inputs).backward()
            torch.nn.utils.clip_grad_norm_(twin.parameters(), 5.0, foreach=True)
            optimiser.step()

        timed("train_step", step)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("parity")
    p.add_argument("--model", required=True)
    p.add_argument("--fixture", required=True)
    p.add_argument("--flavour", choices=["eager", "expert"], default="eager")
    p.add_argument("--verbose", action="store_true")
    commands.add_parser("sampler-parity").add_argument("--fixture", required=True)
    commands.add_parser("config")
    f = commands.add_parser("flops")
    f.add_argument("--model", required=True)
    f.add_argument("--fixture", required=True)
    g = commands.add_parser("gemm")
    g.add_argument("--threads", type=int, default=2)
    g.add_argument("--size", type=int, default=2048)
    g.add_argument("--repeats", type=int, default=10)
    w = commands.add_parser("worker")
    w.add_argument("--model", required=True)
    w.add_argument("--fixture", required=True)
    w.add_argument("--job", choices=["decode", "train"], required=True)
    w.add_argument("--flavour", choices=["eager", "expert"], default="eager")
    w.add_argument("--batch", type=int, default=64)
    w.add_argument("--repeats", type=int, default=10)
    w.add_argument("--warmup", type=int, default=2)
    w.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    {"parity": parity, "sampler-parity": sampler_parity, "config": config, "flops": flops, "gemm": gemm, "worker": worker}[args.command](args)


if __name__ == "__main__":
    main()
