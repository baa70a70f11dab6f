#!/usr/bin/env python3
"""PyTorch twin of Dreamroll's shipped presets (`vae`, `voices`), for `cargo xtask bench --vs-pytorch`.

Built from a model folder's `model.json`, loading the same `encoder.safetensors` and
`decoder.safetensors` under the same weight names, and written the way a PyTorch user would
write it (cuDNN-style fused GRU, conv layers, log_softmax): the fair opponent for candle.

  twin.py parity --model DIR --fixture F   one training step against candle's numbers
  twin.py worker --model DIR --fixture F --job decode|train ...   timings as one JSON line
"""

import argparse
import json
import math
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

    @torch.no_grad()
    def decode(self, z, generator):
        """Onsets and sustains by threshold, as rolls of 0/1: what the plugin plays."""
        c = self.c
        probabilities = torch.sigmoid(self.forward(z))
        onsets = probabilities[:, : c.tracks] > c.onset_threshold
        sustains = probabilities[:, c.tracks :] > c.sustain_threshold
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

    def forward(self, z, inputs):
        """Teacher-forced scores [batch, steps, voices, classes], as the trainer computes them."""
        c, b = self.c, z.shape[0]
        current = self.features(inputs["sounding"], inputs["age"])
        context = self.context(self.features(inputs["given_sounding"], inputs["given_age"]), inputs["given_mask"])
        bar_embeddings = self.conductor(z)
        silence = self.features(*(torch.zeros(b, 1, c.tracks, dtype=torch.long),) * 2)
        before = torch.cat([silence, current[:, :-1]], 1).reshape(b, c.steps, -1)
        position = self.position.weight.unsqueeze(0).repeat(b, c.bars, 1)
        per_step = bar_embeddings.unsqueeze(2).expand(b, c.bars, c.steps_per_bar, c.bar_hidden).reshape(b, c.steps, c.bar_hidden)
        inputs_per_step = torch.cat([before, position, per_step, context], -1)
        rows = b * c.bars
        initial = torch.tanh(self.initial(bar_embeddings.reshape(rows, c.bar_hidden)))
        states, _ = self.gru(inputs_per_step.reshape(rows, c.steps_per_bar, c.step_input), initial.unsqueeze(0))
        states = states.reshape(b, c.steps, c.hidden)
        sounding = inputs["sounding"]
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

    @torch.no_grad()
    def decode(self, z, generator):
        """Phrases from silence, step by step and voice by voice, every phrase of the batch at once."""
        c, b = self.c, z.shape[0]
        given = torch.zeros(b, c.steps, c.tracks, dtype=torch.long)
        context = self.context(self.features(given, given), given.float())
        bar_embeddings = self.conductor(z)
        initial = torch.tanh(self.initial(bar_embeddings))
        sounding = torch.zeros(b, c.tracks, dtype=torch.long)
        age = torch.zeros(b, c.tracks, dtype=torch.long)
        gru = self.gru
        tokens = torch.zeros(b, c.steps, c.tracks, dtype=torch.long)
        last = torch.zeros(b, c.tracks, dtype=torch.long)
        for step in range(c.steps):
            bar, position = divmod(step, c.steps_per_bar)
            if position == 0:
                state = initial[:, bar]
            x = torch.cat([self.features(sounding, age).reshape(b, -1), self.position.weight[position].expand(b, -1), bar_embeddings[:, bar], context[:, step]], -1)
            state = torch.gru_cell(x, state, gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
            for v in range(c.tracks):
                x = state if v == 0 else torch.cat([state, self.features(sounding[:, :v], age[:, :v]).reshape(b, -1)], -1)
                scores = getattr(self, f"head{v}")(x)
                if c.leading:
                    scores = scores + self.leading_scores(last, sounding, v)
                scores[:, REST] += c.rest_bias
                if v > 0 and c.crossing_bias != 0.0:
                    # A pitch above the lowest sounding voice above crosses it (pitches are row + 1, 0 silent).
                    above = sounding[:, :v]
                    lowest = torch.where(above > 0, above, torch.full_like(above, 1 << 20)).min(1).values
                    pitches = torch.arange(1, scores.shape[1] - NEW_NOTE + 1)
                    scores[:, NEW_NOTE:] += c.crossing_bias * (pitches[None, :] > lowest[:, None])
                    scores[:, HOLD] += c.crossing_bias * (sounding[:, v] > lowest)
                if v > 0 and c.parallel_bias != 0.0:
                    # New notes moving with a voice above from a perfect fifth or octave to the same class.
                    own = last[:, v]
                    pitches = torch.arange(1, scores.shape[1] - NEW_NOTE + 1)
                    for u in range(v):
                        before, now = last[:, u], sounding[:, u]
                        interval = (before - own) % 12
                        perfect = (own > 0) & (before > 0) & (now > 0) & (now != before) & ((interval == 0) | (interval == 7))
                        with_it = torch.where((now > before)[:, None], pitches[None, :] > own[:, None], pitches[None, :] < own[:, None])
                        kept = ((now[:, None] - pitches[None, :]) % 12) == interval[:, None]
                        scores[:, NEW_NOTE:] += c.parallel_bias * (perfect[:, None] & with_it & kept)
                scores[:, HOLD] = torch.where(sounding[:, v] > 0, scores[:, HOLD], torch.full_like(scores[:, HOLD], -math.inf))
                token = torch.multinomial(F.softmax(scores / max(c.temperature, 1e-3), -1), 1, generator=generator).squeeze(1)
                tokens[:, step, v] = token
                held = (token == HOLD) & (sounding[:, v] > 0)
                new = token >= NEW_NOTE
                sounding[:, v] = torch.where(new, token - NEW_NOTE + 1, torch.where(held, sounding[:, v], torch.zeros_like(token)))
                age[:, v] = torch.where(new, torch.ones_like(token), torch.where(held, (age[:, v] + 1).clamp(max=c.max_age), torch.zeros_like(token)))
            last = torch.where(sounding > 0, sounding, last)
        return tokens.numpy()


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


def parity(args):
    twin = Twin(args.model)
    inputs, reference = read_fixture(args.fixture)
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


def worker(args):
    torch.set_num_threads(args.threads)
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
        for batch in (1, 16):
            z = torch.randn(batch, twin.c.latent, generator=generator)
            timed(f"decode_{batch}", lambda: twin.decoder.decode(z, generator))
    else:
        inputs, _ = read_fixture(args.fixture)
        optimiser = torch.optim.Adam(twin.parameters(), lr=1e-3)

        def step():
            optimiser.zero_grad(set_to_none=True)
            loss = twin.loss(inputs)["loss"]
            loss.backward()
            torch.nn.utils.clip_grad_norm_(twin.parameters(), 5.0)
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
    p.add_argument("--verbose", action="store_true")
    w = commands.add_parser("worker")
    w.add_argument("--model", required=True)
    w.add_argument("--fixture", required=True)
    w.add_argument("--job", choices=["decode", "train"], required=True)
    w.add_argument("--batch", type=int, default=64)
    w.add_argument("--repeats", type=int, default=10)
    w.add_argument("--warmup", type=int, default=2)
    w.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    parity(args) if args.command == "parity" else worker(args)


if __name__ == "__main__":
    main()
