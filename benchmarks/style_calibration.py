"""The Baker voice's constants for style edits (qingyin/families/fs2_mbmelgan/voice.py), measured.

    .venv/bin/python -m benchmarks.style_calibration [--sentences 20] [--part all|level|final]

1. F0_MEAN_HZ, F0_STD_HZ: the model predicts pitch as a z-score per token; each token's median Harvest F0 (tokens
   of 3+ frames, 80 % voiced) is regressed on its predicted z over the first sentences of the default text.
2. The semitone shift and the mel tilt as realized: each edit alone through the engine's style path, against the
   unedited voice on the same sentences (mean log-F0 and its spread, semitones; the level of 3-8 kHz against
   0.1-1 kHz, dB).
3. LEVEL_DB_PER_ENERGY of Baker and of Kokoro (qingyin/families/kokoro/voice.py), which turn the energy a token is
   decoded with into the loudness the `dynamics` edit works on (`Acoustics.level_db`): each spoken token's RMS level
   in the audio (tokens of 2+ frames within 30 dB of the loudest) regressed on its `level_db`, over the first 6
   sentences; the constant to use is the current one times the slope.
4. Where the sentence-final contour has to go (`--part final`, Baker and yunxi, the first 10 sentences): a +4 st
   shift of the last syllable's tokens, of the tokens after it (qingyin.style.layout's `tail`), of both, and the
   final slope (qingyin.style.shape.final_rise) of +4 st over both, each against the unedited sentence: the change
   of the median log-F0 of the last 300 ms of voicing and of its rise (second half's median minus the first's).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from qingyin.evaluate.signal_metrics import analyze, final_contour
from qingyin.families.fs2_mbmelgan.voice import LEVEL_DB_PER_ENERGY as BAKER_LEVEL
from qingyin.families.kokoro.voice import LEVEL_DB_PER_ENERGY as KOKORO_LEVEL
from qingyin.runtime.synthesizer import Synthesizer
from qingyin.style import Style
from qingyin.style.presets import Preset
from qingyin.text.corpus import read_texts


def band_balance_db(audio: np.ndarray, sample_rate: int) -> float:
    """Level of 3-8 kHz against 0.1-1 kHz over the loud frames (within 30 dB of the loudest), dB."""
    size = 1024
    frames = np.lib.stride_tricks.sliding_window_view(audio, size)[:: size // 4] * np.hanning(size)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(size, 1 / sample_rate)
    level = 10 * np.log10(power.sum(1) + 1e-12)
    loud = power[level > level.max() - 30]
    low = loud[:, (freqs >= 100) & (freqs < 1000)].sum()
    high = loud[:, (freqs >= 3000) & (freqs < 8000)].sum()
    return float(10 * np.log10(high / low))


def pitch_regression(engine: Synthesizer, texts: list[str]) -> tuple[float, float, float]:
    """(mean Hz, std Hz, correlation) of token F0 = mean + std * z."""
    import pyworld

    z, hz = [], []
    for text in texts:
        for sentence in engine.synthesize(text).sentences:
            features = sentence.features
            f0, _ = pyworld.harvest(sentence.audio.astype(np.float64), engine.sample_rate, f0_floor=60, f0_ceil=600,
                                    frame_period=1000 * features.frame_seconds)
            ends = np.cumsum(features.durations)
            for token, (start, end) in enumerate(zip(ends - features.durations, ends, strict=True)):
                voiced = f0[start:end][f0[start:end] > 0]
                if end - start >= 3 and len(voiced) >= 0.8 * (end - start):
                    z.append(features.pitch[token])
                    hz.append(np.median(voiced))
    slope, intercept = np.polyfit(z, hz, 1)
    return float(intercept), float(slope), float(np.corrcoef(z, hz)[0, 1])


def realized(engine: Synthesizer, texts: list[str], preset: Preset) -> np.ndarray:
    """(mean log-F0 st, log-F0 std st, 3-8 kHz vs 0.1-1 kHz dB), averaged over `texts`, with `preset` applied."""
    style = Style(reference=preset)
    engine._style = lambda selection, opts: style  # the edit alone, whatever the options say
    rows = []
    for text in texts:
        result = engine.synthesize(text)
        clip = analyze(result.audio, result.sample_rate)
        semitones = 12 * np.log2(clip.f0_hz[(clip.f0_hz > 0) & clip.speech] / 100)
        rows.append([semitones.mean(), semitones.std(), band_balance_db(result.audio, result.sample_rate)])
    del engine._style
    return np.mean(rows, axis=0)


def level_regression(engine: Synthesizer, texts: list[str]) -> tuple[float, float, int]:
    """(slope, correlation, tokens) of each spoken token's RMS level (dB) on its estimated `level_db`."""
    estimated, heard = [], []
    for text in texts:
        for sentence in engine.synthesize(text).sentences:
            features = sentence.features
            hop = int(round(features.frame_seconds * engine.sample_rate))
            ends = np.cumsum(features.durations) - features.trim_frames
            for token, (start, end) in enumerate(zip(ends - features.durations, ends, strict=True)):
                if start < 0 or end - start < 2:
                    continue
                audio = sentence.audio[start * hop: end * hop].astype(np.float64)
                estimated.append(features.level_db[token])
                heard.append(10 * np.log10(np.mean(audio * audio) + 1e-10))
    x, y = np.array(estimated), np.array(heard)
    spoken = np.isfinite(x) & (y > y.max() - 30)
    slope, _ = np.polyfit(x[spoken], y[spoken], 1)
    return float(slope), float(np.corrcoef(x[spoken], y[spoken])[0, 1]), int(spoken.sum())


def final_contour_edits(engine: Synthesizer, texts: list[str]) -> dict[str, np.ndarray]:
    """{edit: (mean change of the last 300 ms' level, of its rise), st} over `texts` (their last sentences)."""
    from qingyin.style.layout import Layout
    from qingyin.style.shape import final_rise
    from qingyin.text import text_to_sentences

    voice, speaker = engine.selection.voice, engine.selection.speaker
    changes: dict[str, list[np.ndarray]] = {}
    for text in texts:
        tokens = voice.tokens(text_to_sentences(text).sentences[-1])
        predicted = voice.predict(tokens, speaker)
        layout = Layout.of(tokens, predicted.durations)
        count = len(tokens.ids)
        rise, offset = final_rise(layout, predicted.durations, np.full(count, 4.0, np.float32))
        edits = {"none": (np.zeros(count), None),
                 "last syllable +4 st": (np.where(layout.last_syllable, 4.0, 0.0), None),
                 "tail +4 st": (np.where(layout.tail, 4.0, 0.0), None),
                 "both +4 st": (np.where(layout.final, 4.0, 0.0), None),
                 "final slope +4 st": (offset, rise)}
        contours = {}
        for name, (shift, slope) in edits.items():
            prosody = voice.predict(tokens, speaker)
            prosody.pitch_shift = shift.astype(np.float32)
            prosody.pitch_slope = None if slope is None else slope.astype(np.float32)
            prosody.pitch_scale = np.full(count, 1.0001, np.float32)  # the edited path for "none" too
            audio = voice.render(voice.acoustic(tokens, prosody, speaker))
            contours[name] = _last_voicing(audio, voice.sample_rate)
        for name, contour in contours.items():
            if name != "none":
                changes.setdefault(name, []).append(contour - contours["none"])
    return {name: np.nanmean(rows, axis=0) for name, rows in changes.items()}


def _last_voicing(audio: np.ndarray, sample_rate: int, seconds: float = 0.3) -> np.ndarray:
    """(median log-F0 re 100 Hz, second half's median minus the first's) of the last `seconds` of voicing, st."""
    clip = analyze(audio, sample_rate)
    return np.array(final_contour(clip, clip.f0_hz > 0, 0.0, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--part", choices=("all", "level", "final"), default="all",
                        help="level: only the loudness constants; final: only where the final contour goes")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*pkg_resources.*")
    texts = read_texts()[: args.sentences]
    if args.part == "final":
        for voice, backend, variant in (("baker", "onnx", "fp32"), ("yunxi", None, None)):
            print(f"{voice}: change of the last 300 ms of voicing (level st, rise st), first {min(10, len(texts))} "
                  "sentences")
            changes = final_contour_edits(Synthesizer(voice, backend=backend, variant=variant), texts[:10])
            for name, (level, rise) in changes.items():
                print(f"  {name:<22} {level:+6.2f}  {rise:+6.2f}")
        return
    engine = Synthesizer("baker", backend="onnx")
    if args.part == "all":
        mean, std, r = pitch_regression(engine, texts)
        print(f"token F0 = {mean:.1f} Hz + {std:.1f} Hz * z  (r = {r:.2f}, {len(texts)} sentences)")
        base = realized(engine, texts[:4], Preset())
        print("edit (requested)        mean F0 st   F0 spread st   3-8k vs 0.1-1k dB   (change from unedited)")
        for label, preset in [("level_st +2.5", Preset(level_st=2.5)), ("level_st -2", Preset(level_st=-2.0)),
                              ("range 1.4", Preset(range=1.4)), ("range 0.7", Preset(range=0.7)),
                              ("tilt_db +3", Preset(tilt_db=3.0)), ("tilt_db -3", Preset(tilt_db=-3.0))]:
            change = realized(engine, texts[:4], preset) - base
            print(f"{label:<22}  {change[0]:+10.2f}   {change[1]:+12.2f}   {change[2]:+17.2f}")
    for voice, current in (("baker", BAKER_LEVEL), ("xiaobei", KOKORO_LEVEL), ("yunxi", KOKORO_LEVEL)):
        slope, r, count = level_regression(engine if voice == "baker" else Synthesizer(voice), texts[:6])
        print(f"{voice}: token level = {slope:.2f} x level_db (r = {r:.2f}, {count} tokens): "
              f"LEVEL_DB_PER_ENERGY {current:g} -> {current * slope:.2f}")


if __name__ == "__main__":
    main()
