"""The ONNX Runtime backend against the torch backend, on real sentences of the Baker voice.

Exports into the voice's folder in $QINGYIN_HOME, as users get it (once; later sessions reuse the files).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

from qingyin.families.base import SequenceTooLongError  # noqa: E402
from qingyin.families.fs2_mbmelgan.features import AcousticControls  # noqa: E402
from tests.rounding import assert_equal_but_for_rounding_flips  # noqa: E402
from tests.test_synthesizer import assert_batch_gives_what_one_by_one_gives  # noqa: E402

TEXTS = ("今天天气很好，我们去公园散步吧。", "银行行长说：重新开始吧！", "2024年3月5日，气温25摄氏度。")
# Measured with onnxruntime 1.31.1 against torch 2.13 (x86-64): mel max |diff| ~2e-5, pitch/energy ~1e-5;
# 5e-6-9e-6 and ~3e-6 since export format 2 computes Mish in closed form.
MEL_TOLERANCE = 2e-4
VARIANCE_TOLERANCE = 1e-4
# The vocoder's int8 fake quantization of its sub-band signals (steps of 1/128) turns float differences of
# ~1e-6 into a whole step where a value sits on a rounding edge: ~140 dB with no such flip, 60-66 dB with one.
MIN_VOCODER_SNR_DB = 55.0
# A padded batch against the same items one by one (fp32, onnxruntime 1.31.1, x86-64, 2 threads): the longest
# row identical, shorter rows' mel max |diff| ~5e-6, pitch ~2e-6, energy ~7e-7; durations always identical.
BATCH_TOLERANCE = 1e-4


def _needs_exporter(baker_dir, variant: str) -> None:
    """Export the variant when it is not (the runtime never exports); skip when the exporter's packages are missing."""
    from qingyin.families.fs2_mbmelgan.export import is_exported

    if not is_exported(baker_dir, variant):
        pytest.importorskip("onnx", reason="exporting to ONNX needs onnx and onnxscript")
        pytest.importorskip("onnxscript", reason="exporting to ONNX needs onnx and onnxscript")
        from qingyin.families.fs2_mbmelgan.export.onnx_export import export_voice_dir

        export_voice_dir(baker_dir, variant)


@pytest.fixture(scope="session")
def onnx_fp32(baker_dir):
    from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend

    _needs_exporter(baker_dir, "fp32")
    return OnnxBackend(baker_dir, "fp32", threads=2)


@pytest.fixture(scope="session")
def onnx_int8(baker_dir):
    from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend

    _needs_exporter(baker_dir, "int8-dynamic")
    return OnnxBackend(baker_dir, "int8-dynamic", threads=2)


@pytest.fixture(scope="session")
def onnx_int8_static(baker_dir):
    from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend

    _needs_exporter(baker_dir, "int8-static")
    return OnnxBackend(baker_dir, "int8-static", threads=2)


@pytest.fixture(scope="session")
def sentence_ids(baker_dir) -> list[list[int]]:
    from qingyin.text import SymbolTable, text_to_sentences

    table = SymbolTable.from_json(baker_dir / "symbols.json")
    return [table.ids(sentence.phones) + [table.eos_id]
            for text in TEXTS for sentence in text_to_sentences(text).sentences if sentence.phones]


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / max(float(np.sum((reference - other) ** 2)), 1e-30)))


def assert_same_features(expected, actual) -> None:
    np.testing.assert_array_equal(actual.durations, expected.durations)
    assert actual.mel.shape == expected.mel.shape
    assert np.abs(actual.mel - expected.mel).max() < MEL_TOLERANCE
    assert np.abs(actual.pitch - expected.pitch).max() < VARIANCE_TOLERANCE
    assert np.abs(actual.energy - expected.energy).max() < VARIANCE_TOLERANCE


def test_geometry_matches_torch(onnx_fp32, backend):
    assert (onnx_fp32.hop_length, onnx_fp32.max_positions, onnx_fp32.min_vocoder_frames) == (
        backend.hop_length, backend.max_positions, backend.min_vocoder_frames)


def test_fp32_acoustic_matches_torch(onnx_fp32, backend, sentence_ids):
    for ids in sentence_ids:
        assert_same_features(backend.acoustic(ids, AcousticControls()), onnx_fp32.acoustic(ids, AcousticControls()))


def test_fp32_vocoder_matches_torch(onnx_fp32, backend, sentence_ids):
    mel = backend.acoustic(sentence_ids[0], AcousticControls()).mel
    expected, actual = backend.vocode(mel), onnx_fp32.vocode(mel)
    assert actual.shape == expected.shape
    assert snr_db(expected, actual) >= MIN_VOCODER_SNR_DB
    middle = len(mel) // 2
    short = mel[middle : middle + 3]  # below the vocoder's minimum: padded the same way
    assert snr_db(backend.vocode(short), onnx_fp32.vocode(short)) >= MIN_VOCODER_SNR_DB
    assert onnx_fp32.vocode(mel[:0]).shape == (0,)


def test_scales_and_forced_durations_match_torch(onnx_fp32, backend, sentence_ids):
    ids = sentence_ids[1]
    rng = np.random.default_rng(0)
    per_symbol = AcousticControls(duration_scale=rng.uniform(0.6, 1.5, len(ids)).astype(np.float32),
                                  pitch_scale=rng.uniform(0.5, 1.5, len(ids)).astype(np.float32),
                                  energy_scale=rng.uniform(0.5, 1.5, len(ids)).astype(np.float32))
    uniform = AcousticControls(duration_scale=1 / 1.3, pitch_scale=1.2, energy_scale=0.8)
    forced = AcousticControls(durations=rng.integers(0, 12, len(ids)))
    for controls in (per_symbol, uniform, forced):
        assert_same_features(backend.acoustic(ids, controls), onnx_fp32.acoustic(ids, controls))


def test_a_pitch_contour_inside_symbols_matches_torch(onnx_fp32, backend, sentence_ids):
    ids = sentence_ids[1]
    rng = np.random.default_rng(1)
    start, end = (rng.uniform(0.5, 1.5, len(ids)).astype(np.float32) for _ in range(2))
    for durations in (None, rng.integers(0, 12, len(ids))):
        controls = AcousticControls(pitch_scale=start, pitch_scale_end=end, durations=durations)
        assert_same_features(backend.acoustic(ids, controls), onnx_fp32.acoustic(ids, controls))
    batch = [(ids, AcousticControls(pitch_scale=start, pitch_scale_end=end)), (sentence_ids[0], AcousticControls())]
    for one, alone in zip(onnx_fp32.acoustic_batch(batch), [onnx_fp32.acoustic(*item) for item in batch], strict=True):
        assert_same_features(alone, one)  # a contour goes one by one, like forced durations


def test_too_long_raises_like_torch(onnx_fp32, backend, sentence_ids):
    too_many_symbols = sentence_ids[0] * (backend.max_positions // len(sentence_ids[0]) + 1)
    too_many_frames = AcousticControls(durations=np.full(len(sentence_ids[0]), backend.max_positions))
    for ids, controls in ((too_many_symbols, AcousticControls()), (sentence_ids[0], too_many_frames)):
        for model in (backend, onnx_fp32):
            with pytest.raises(SequenceTooLongError):
                model.acoustic(ids, controls)


def test_int8_dynamic_stays_close_to_fp32(onnx_int8, onnx_fp32, sentence_ids):
    """Measured on TEXTS: 97-98 % of durations identical, all within 1 frame; with fp32's durations forced, mel
    mean |diff| 0.019-0.041 (max 0.54) and audio RMS within 1 %. The waveform SNR is no use here (-1 to 8 dB):
    a slightly different mel shifts the vocoder's phases, not what one hears."""
    diffs = []
    for ids in sentence_ids:
        reference = onnx_fp32.acoustic(ids, AcousticControls())
        diffs.append(np.abs(onnx_int8.acoustic(ids, AcousticControls()).durations - reference.durations))
        quantized = onnx_int8.acoustic(ids, AcousticControls(durations=reference.durations))
        assert np.abs(quantized.mel - reference.mel).mean() < 0.08
        expected, actual = onnx_fp32.vocode(reference.mel), onnx_int8.vocode(quantized.mel)
        assert actual.shape == expected.shape and np.isfinite(actual).all()
        assert 0.9 < np.sqrt(np.mean(actual**2) / np.mean(expected**2)) < 1.1
    assert np.mean(np.concatenate(diffs) <= 1) >= 0.95


def test_int8_static_stays_close_to_fp32(onnx_int8_static, onnx_fp32, sentence_ids):
    """Only the decoder is quantized: the encoder and the vocoder are the fp32 graphs, so durations, pitch and
    the vocoder's audio are exactly fp32's. Measured on TEXTS with fp32's durations forced: mel mean |diff|
    0.025-0.027 (max 0.35), audio RMS 0.970-0.989 of fp32's."""
    for ids in sentence_ids:
        reference = onnx_fp32.acoustic(ids, AcousticControls())
        free = onnx_int8_static.acoustic(ids, AcousticControls())
        np.testing.assert_array_equal(free.durations, reference.durations)
        np.testing.assert_array_equal(free.pitch, reference.pitch)
        quantized = onnx_int8_static.acoustic(ids, AcousticControls(durations=reference.durations))
        assert quantized.mel.shape == reference.mel.shape
        assert np.abs(quantized.mel - reference.mel).mean() < 0.035
        assert np.abs(quantized.mel - reference.mel).max() < 0.5
        expected, actual = onnx_fp32.vocode(reference.mel), onnx_int8_static.vocode(quantized.mel)
        assert actual.shape == expected.shape and np.isfinite(actual).all()
        assert 0.95 < np.sqrt(np.mean(actual**2) / np.mean(expected**2)) < 1.05
    mel = onnx_fp32.acoustic(sentence_ids[0], AcousticControls()).mel
    np.testing.assert_array_equal(onnx_int8_static.vocode(mel), onnx_fp32.vocode(mel))


def test_int8_static_quantizes_the_decoder_convolutions_only(onnx_int8_static, baker_dir):
    import onnx

    from qingyin.families.fs2_mbmelgan.export import DECODER_FILE, ENCODER_FILE, VOCODER_FILE, variant_dir

    folder = variant_dir(baker_dir, "int8-static")
    ops = {name: [node.op_type for node in onnx.load(str(folder / name)).graph.node]
           for name in (ENCODER_FILE, DECODER_FILE, VOCODER_FILE)}
    # 2 + 2 + 1 feed-forward convolutions (the last layer's first one stays float) and the 5 of the postnet
    assert ops[DECODER_FILE].count("QLinearConv") == 10
    assert "MatMulInteger" not in ops[DECODER_FILE] and "DynamicQuantizeLinear" not in ops[DECODER_FILE]
    for name in (ENCODER_FILE, VOCODER_FILE):
        assert not [op for op in ops[name] if "Quant" in op or op.startswith("QLinear")], name
    assert "Softplus" not in ops[ENCODER_FILE] + ops[DECODER_FILE]  # Mish in closed form (replace_mish)


def test_replace_mish_matches_float64_mish():
    onnx = pytest.importorskip("onnx", reason="the exporter needs onnx")
    import onnxruntime as ort

    from qingyin.families.fs2_mbmelgan.export.onnx_export import replace_mish

    helper = onnx.helper
    graph = helper.make_graph([helper.make_node("Mish", ["x"], ["y"], name="mish")], "mish",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    assert replace_mish(model) == 1
    assert [node.op_type for node in model.graph.node].count("Mish") == 0
    x = np.concatenate([np.linspace(-40, 40, 20001), [-1e4, 1e4, 88.0, 89.0]]).astype(np.float32)
    (y,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    exact = x.astype(np.float64) * np.tanh(np.logaddexp(0.0, x.astype(np.float64)))
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, exact, rtol=1e-6, atol=1e-6)
    assert replace_mish(model) == 0  # nothing left to replace; no second set of constants


# --- batches: one padded run per graph, as if one by one ------------------------------------------------------


@pytest.fixture(scope="session")
def onnx_tts(baker_dir):
    import qingyin

    _needs_exporter(baker_dir, "fp32")
    return qingyin.TTS(voice="baker", backend="onnx", variant="fp32", threads=2)


def test_acoustic_batch_matches_one_by_one(onnx_fp32, sentence_ids, monkeypatch):
    assert len({len(ids) for ids in sentence_ids}) == len(sentence_ids) >= 3  # different lengths: padding
    pitch = np.random.default_rng(0).uniform(0.7, 1.3, len(sentence_ids[1])).astype(np.float32)
    controls = [AcousticControls(duration_scale=1.2), AcousticControls(pitch_scale=pitch),
                AcousticControls(energy_scale=0.9)] + [AcousticControls()] * (len(sentence_ids) - 3)
    batch = list(zip(sentence_ids, controls, strict=True))
    runs = []
    for name in ("encoder", "decoder"):
        session = getattr(onnx_fp32, name)
        monkeypatch.setattr(onnx_fp32, name, SimpleNamespace(
            run=lambda outputs, feeds, name=name, session=session: runs.append(name) or session.run(outputs, feeds)))
    features = onnx_fp32.acoustic_batch(batch)
    monkeypatch.undo()
    assert runs == ["encoder", "decoder"]  # one padded run of each graph for the whole batch
    for (ids, item_controls), batched in zip(batch, features, strict=True):
        alone = onnx_fp32.acoustic(ids, item_controls)
        np.testing.assert_array_equal(batched.durations, alone.durations)
        assert batched.mel.shape == alone.mel.shape == (alone.durations.sum(), alone.mel.shape[1])
        assert batched.pitch.shape == batched.energy.shape == (len(ids),)
        np.testing.assert_allclose(batched.mel, alone.mel, rtol=0, atol=BATCH_TOLERANCE)
        np.testing.assert_allclose(batched.pitch, alone.pitch, rtol=0, atol=BATCH_TOLERANCE)
        np.testing.assert_allclose(batched.energy, alone.energy, rtol=0, atol=BATCH_TOLERANCE)
        assert_equal_but_for_rounding_flips(onnx_fp32.vocode(batched.mel), onnx_fp32.vocode(alone.mel))


def test_acoustic_batch_with_forced_durations_or_one_item_goes_one_by_one(onnx_fp32, sentence_ids):
    forced = AcousticControls(durations=np.random.default_rng(1).integers(1, 12, len(sentence_ids[1])))
    for batch in ([(sentence_ids[0], AcousticControls()), (sentence_ids[1], forced)],
                  [(sentence_ids[2], AcousticControls(duration_scale=0.9))]):
        for (ids, controls), batched in zip(batch, onnx_fp32.acoustic_batch(batch), strict=True):
            alone = onnx_fp32.acoustic(ids, controls)
            for name in ("durations", "mel", "pitch", "energy"):
                np.testing.assert_array_equal(getattr(batched, name), getattr(alone, name), err_msg=name)
    np.testing.assert_array_equal(onnx_fp32.acoustic_batch([(sentence_ids[1], forced)])[0].durations,
                                  forced.durations)
    assert onnx_fp32.acoustic_batch([]) == []


def test_acoustic_batch_checks_every_row_like_one_alone(onnx_fp32, sentence_ids):
    short = (sentence_ids[1], AcousticControls())
    too_many_symbols = sentence_ids[0] * (onnx_fp32.max_positions // len(sentence_ids[0]) + 1)
    with pytest.raises(SequenceTooLongError, match="symbols"):
        onnx_fp32.acoustic_batch([short, (too_many_symbols, AcousticControls())])
    with pytest.raises(SequenceTooLongError, match="mel frames"):
        onnx_fp32.acoustic_batch([short, (sentence_ids[0], AcousticControls(duration_scale=50.0))])
    with pytest.raises(ValueError, match="zero frames"):
        onnx_fp32.acoustic_batch([short, (sentence_ids[0], AcousticControls(duration_scale=0.0))])
    with pytest.raises(ValueError, match="per-symbol scales"):
        onnx_fp32.acoustic_batch([short, (sentence_ids[0], AcousticControls(pitch_scale=np.ones(3)))])


def test_synthesize_batch_on_the_onnx_backend_gives_what_one_by_one_gives(onnx_tts):
    assert_batch_gives_what_one_by_one_gives(onnx_tts)


# --- wiring: the same choices everywhere ----------------------------------------------------------------------


def test_synthesizer_with_the_onnx_backend_streams_without_torch(onnx_fp32):
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, qingyin\n"
        "tts = qingyin.TTS(backend='onnx', variant='fp32', threads=1)\n"
        "text = '今天天气不错，我们去公园散步吧。'\n"
        "whole = tts.synthesize(text).audio\n"
        "stream = np.concatenate(list(tts.synthesize_stream(text, first_chunk=5, chunk=30)))\n"
        "assert stream.shape == whole.shape and np.abs(stream - whole).max() <= 2 * 7.9e-3, 'stream differs'\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_backend_and_variant_errors_name_the_choices(baker_dir):
    from qingyin.families.fs2_mbmelgan.backends import UnknownBackendError, load_backend

    with pytest.raises(UnknownBackendError, match="torch, onnx"):
        load_backend("tflite", baker_dir)
    with pytest.raises(UnknownBackendError, match="fp32"):
        load_backend("torch", baker_dir, variant="int8-dynamic")
    with pytest.raises(UnknownBackendError, match="int8-dynamic"):
        load_backend("onnx", baker_dir, variant="int4")


def test_int8_is_the_int8_variant_that_holds_the_quality_bar(baker_dir):
    import qingyin
    from qingyin.evaluate.variants import parse_variant
    from qingyin.families.fs2_mbmelgan.export import UnknownVariantError, check_variant

    _needs_exporter(baker_dir, "int8-static")
    assert check_variant("int8") == "int8-static" and check_variant("fp32") == "fp32"
    with pytest.raises(UnknownVariantError, match=r"int8-static \(int8 = int8-static\)"):
        check_variant("int4")
    tts = qingyin.TTS(voice="baker", backend="onnx", variant="int8", threads=2)  # the spelling
    assert tts.voice.variant == "int8-static"
    assert parse_variant("baker:onnx:variant=int8").variant == "int8-static"


def test_eval_and_bench_variants_name_backend_and_model_variant():
    from qingyin.evaluate.variants import parse_variant
    from qingyin.runtime.synthesizer import InvalidOptionError

    variant = parse_variant("baker:onnx:variant=int8-dynamic,speed=1.2")
    assert (variant.backend, variant.variant, variant.options) == ("onnx", "int8-dynamic", {"speed": 1.2})
    assert variant.name == "baker:onnx:speed=1.2,variant=int8-dynamic"
    with pytest.raises(InvalidOptionError, match="fp32"):
        parse_variant("baker:torch:variant=int8-dynamic")
    assert parse_variant("baker:variant=int8-dynamic").backend == "onnx"  # only ONNX has it
    with pytest.raises(InvalidOptionError, match="int8-dynamic"):
        parse_variant("baker:onnx:variant=int3")


def test_cli_say_with_the_onnx_backend(onnx_int8, tmp_path):
    from qingyin.cli import main

    out = tmp_path / "out.wav"
    assert main(["say", "你好。", "-o", str(out), "--backend", "onnx", "--variant", "int8-dynamic"]) == 0
    assert out.stat().st_size > 10_000
    assert main(["say", "你好。", "-o", str(out), "--variant", "int8-dynamic"]) == 2  # torch has only fp32


def test_the_runtime_never_exports_it_names_the_command(baker_dir, tmp_path):
    """A missing or stale variant is refused with the provisioning command, without exporting anything."""
    from qingyin.families.fs2_mbmelgan.export import MANIFEST_FILE, variant_dir
    from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend
    from qingyin.voices.wheels import VoiceNotAvailableError

    voice = tmp_path / "baker"
    voice.mkdir()
    for path in baker_dir.iterdir():
        if path.is_file():
            (voice / path.name).symlink_to(path)
    with pytest.raises(VoiceNotAvailableError, match=r"run `qingyin models fetch baker`"):
        OnnxBackend(voice, "fp32", threads=1)
    with pytest.raises(VoiceNotAvailableError, match=r"run `qingyin export baker --variant int8-dynamic`"):
        OnnxBackend(voice, "int8-dynamic", threads=1)
    stale = variant_dir(voice, "fp32")
    stale.mkdir(parents=True)
    (stale / MANIFEST_FILE).write_text('{"format": 0}')
    with pytest.raises(VoiceNotAvailableError, match="missing or were made from other weights"):
        OnnxBackend(voice, threads=1)
    assert sorted(p.name for p in stale.iterdir()) == [MANIFEST_FILE]  # nothing exported
