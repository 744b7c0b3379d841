"""Property-based fuzzing (hypothesis) of everything that reads user input: strategies and the properties.

tests/test_fuzz.py runs each property with a fixed seed and a small budget; benchmarks/fuzz.py runs the same
properties for minutes and reports. The invariants (issue 17):
- the library raises only its documented errors (ValueError subclasses; VoiceNotAvailableError for a voice that
  is not installed), the server answers bad input with a 4xx JSON error body, never a 500;
- every string that comes back (warnings, errors, reports, manifest records) can be encoded as UTF-8;
- the time taken is bounded per character of input (TIME_BASE + TIME_PER_CHAR * characters);
- the work limits hold: no request makes more audio than its max_audio_seconds, streaming or not.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from qingyin.runtime.limits import WorkLimits
from qingyin.voices.wheels import VoiceNotAvailableError

# Bounds for one example, once warmed up (`warm_up`): generous on a loaded 2-core machine (a sentence of synthesis
# is ~0.1 s, the frontend ~1 ms a character); a hang or a quadratic blow-up on an odd input is what they catch.
TIME_BASE = 5.0
TIME_PER_CHAR = 0.05
LIBRARY_ERRORS = (ValueError, VoiceNotAvailableError)
# The fuzzed server: small, so that what it synthesizes is short.
SERVER = {"max_chars": 300, "max_audio_seconds": 20.0, "max_ssml_elements": 40, "max_break_seconds": 15.0}
ENGINE_LIMITS = WorkLimits(max_audio_seconds=8.0, max_ssml_elements=40, max_break_seconds=15.0)

# --- strategies --------------------------------------------------------------------------------------------
WORDS = ["今天天气不错", "我们去公园散步吧", "银行行长", "重[chong2]新", "2024年3月5日", "打110", "3.5%", "¥1,000",
         "一会儿", "AI", "GPT-4", "Hello", "。", "，", "！", "？", "……", "\n", " ", "<", ">", "&", "[", "]", "&amp;"]
NASTY = [
    "\x00", "\x01", "\x07", "\x1b[31m", "\x7f", "\x85", "\u00ad", "\ufeff", "\ufffd", "\ufffe", "\uffff",
    "\u0301", "\u0300\u0301\u0302", "\u20dd", "\u3099",  # combining marks
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f",
    "\u061c",  # bidi controls
    "\u200b", "\u200c", "\u200d", "\u2028", "\u2029", "\u3000",  # zero-width and separators
    "👨\u200d👩\u200d👧\u200d👦", "🏳\ufe0f\u200d🌈", "👍🏽", "🇨🇳", "😀",  # emoji ZWJ sequences, modifiers, flags
    "𠮷", "𪚥", "\U0002a6d6", "\U00030000", "\U0010ffff", "\ue000",  # CJK extension B-G, plane 16, private use
    "Ａ１", "①", "Ⅻ", "½", "²", "ﬁ", "ｶ",  # compatibility forms
]
surrogates = st.integers(0xD800, 0xDFFF).map(chr)
nasty_char = st.one_of(
    st.sampled_from(NASTY), surrogates, st.integers(0, 0x1F).map(chr), st.integers(0x80, 0x9F).map(chr),
    st.integers(0x300, 0x36F).map(chr), st.integers(0x20000, 0x2A6DF).map(chr), st.integers(0x4E00, 0x9FFF).map(chr),
    st.characters(),
)
pieces = st.one_of(st.sampled_from(WORDS), nasty_char, st.text(max_size=4))


def texts(max_pieces: int = 12) -> st.SearchStrategy[str]:
    """Mostly Chinese with nasty Unicode mixed in: surrogates, NUL, controls, combining marks, bidi controls,
    ZWJ emoji, CJK extension characters, markup characters."""
    return st.lists(pieces, max_size=max_pieces).map("".join)


def _attribute_value() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["500ms", "1s", "10s", "99999s", "-1s", "0", "1e309ms", "nan s", "x-slow", "fast", "+50%",
                         "-100%", "200%", "+6dB", "-99dB", "loud", "silent", "happy", "sad", "1.5", "3", "-1", "",
                         "chong2", "ni3 hao3", "zzz9", "py", "pinyin", "ipa", "digits", "date", "telephone",
                         "characters", "baker", "yunxi", "xiaobei:0.6,yunxi:0.4", "nobody", "strong", "x-weak"]),
        texts(3),
    )


_TAGS = {
    "break": ["time", "strength"], "prosody": ["rate", "pitch", "volume"], "emotion": ["category", "intensity"],
    "phoneme": ["alphabet", "ph"], "say-as": ["interpret-as"], "sub": ["alias"], "p": [], "s": [],
    "voice": ["name"], "emphasis": ["level"], "audio": ["src"],
}


def _escape(text: str, raw: bool) -> str:
    return text if raw else text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def _element(draw: st.DrawFn, children: st.SearchStrategy[list[str]]) -> str:
    tag = draw(st.sampled_from(sorted(_TAGS)))
    names = draw(st.lists(st.sampled_from([*_TAGS[tag], "bogus", "xml:lang"]), max_size=3, unique=True))
    attributes = "".join(f' {name}="{_escape(draw(_attribute_value()), False).replace(chr(34), "&quot;")}"'
                         for name in names)
    inner = "".join(draw(children))
    return f"<{tag}{attributes}/>" if not inner and draw(st.booleans()) else f"<{tag}{attributes}>{inner}</{tag}>"


_leaf = st.builds(_escape, texts(4), st.sampled_from([False] * 7 + [True]))  # raw: < and & unescaped
_nodes = st.recursive(_leaf, lambda inner: _element(st.lists(inner, max_size=4)), max_leaves=25)


@st.composite
def ssml_documents(draw: st.DrawFn) -> str:
    """A random SSML tree: known and unknown elements and attributes, odd values, nasty text; sometimes broken."""
    body = "".join(draw(st.lists(_nodes, max_size=5)))
    document = f"<speak>{body}</speak>"
    damage = draw(st.sampled_from(["none"] * 6 + ["cut", "prefix", "doctype", "raw"]))
    if damage == "cut":
        document = document[: draw(st.integers(0, len(document)))]
    elif damage == "prefix":
        document = '<?xml version="1.0"?>' + document
    elif damage == "doctype":
        document = '<!DOCTYPE speak [<!ENTITY a "aaaa">]><speak>&a;</speak>'
    elif damage == "raw":
        document = document.replace("&lt;", "<", 1)
    return document


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                         st.floats(allow_nan=True, allow_infinity=True), texts(4))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(texts(2), inner, max_size=3), max_leaves=8)
numbers = st.one_of(st.sampled_from([1, 1, 0.25, 0.5, 1.5, 2, 4]), st.floats(0.2, 4.5),
                    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6))
sentences = st.lists(st.sampled_from(WORDS[:10]), min_size=1, max_size=3).map("".join)
spoken = st.one_of(sentences, sentences, texts(), ssml_documents(), st.integers(100, 400).map(lambda n: "你好" * n))
# Each field with plausible values, odd values and values of the wrong type.
FIELD_VALUES = {
    "text": spoken, "ssml": spoken, "input": spoken,
    "voice": st.one_of(st.just("baker"), st.sampled_from(["baker", "yunxi", "xiaobei:0.6,yunxi:0.4", "alloy", "nova",
                                                          "", "nobody", "baker:0.5,baker:0.5", "baker:nan"])),
    "emotion": st.one_of(st.sampled_from(["happy", "sad", "neutral", "happy:0.6,surprise:0.3", "", "furious"]),
                         st.dictionaries(st.sampled_from(["happy", "sad", "fear", "x"]), numbers, max_size=3)),
    "intensity": numbers, "speed": numbers, "pitch": numbers, "energy": numbers, "reference_strength": numbers,
    "sentence_pause": numbers,
    "format": st.sampled_from(["wav", "pcm", "mp3", "wav", "pcm", "ogg", "opus", "flac", "aac", "", "WAV"]),
    "response_format": st.sampled_from(["mp3", "wav", "pcm", "wav", "pcm", "flac", "aac", "opus", ""]),
    "sample_rate": st.one_of(st.sampled_from([8000, 16000, 22050, 24000, 48000, 0, -1, 10**9]), numbers),
    "lexicon": st.dictionaries(texts(2), st.one_of(st.sampled_from(["hang2 zhang3", "chong2", "x"]), texts(2)),
                               max_size=2),
    "stream": st.booleans(), "model": st.sampled_from(["tts-1", "tts-1-hd", "qingyin", "whisper", "baker"]),
    "instructions": st.one_of(st.sampled_from(["开心", "speak sadly", "生气地说"]), texts(3)),
    "stream_format": st.sampled_from(["audio", "audio", "sse", ""]), "type": st.sampled_from(["close", "speak", ""]),
    "id": st.one_of(st.sampled_from(["a1", "b.2", "../x", "", "x" * 200]), texts(2)),
    "reference": st.sampled_from(["/nonexistent.wav", "", "tests"]),
}
ROUTE_FIELDS = {
    "/v1/tts": ["text", "ssml", "voice", "emotion", "intensity", "speed", "pitch", "energy", "format", "sample_rate",
                "lexicon", "stream", "reference_strength"],
    "/v1/audio/speech": ["model", "input", "voice", "response_format", "speed", "instructions", "stream_format"],
    "/v1/frontend": ["text"],
    "ws": ["text", "ssml", "voice", "emotion", "intensity", "speed", "format", "sample_rate", "lexicon", "type"],
    "jsonl": ["id", "text", "ssml", "voice", "emotion", "intensity", "speed", "pitch", "energy", "sentence_pause",
              "reference", "reference_strength"],
}


ROUTE_REQUIRED = {"/v1/tts": [("text", "ssml")], "/v1/audio/speech": [("model",), ("input",), ("voice",)],
                  "/v1/frontend": [("text",)], "ws": [("text", "ssml")], "jsonl": [("text", "ssml")]}
VALID = {"model": "tts-1", "voice": "baker"}  # the other required fields' plain values


@st.composite
def bodies(draw: st.DrawFn, route: str) -> object:
    """A JSON value for `route`: usually an object with its required fields and a few others (plausible, odd or
    wrongly typed values), sometimes without a required field or with an unknown one, sometimes any JSON value."""
    # rare(n): true about once in n draws (hypothesis draws the smallest integer most often: 0 is the common case)
    def rare(n: int) -> bool:
        return draw(st.integers(0, n - 1)) == n - 1

    if rare(10):
        return draw(json_values)
    required = [draw(st.sampled_from(choices)) for choices in ROUTE_REQUIRED[route] if not rare(8)]
    if not rare(3):  # a well-formed request whose text is nasty: what gets furthest into the server
        return {name: draw(texts()) if name in ("text", "ssml", "input") else VALID[name] for name in required}
    optional = [name for name in ROUTE_FIELDS[route] if all(name not in c for c in ROUTE_REQUIRED[route])]
    names = required + (draw(st.lists(st.sampled_from(optional), max_size=4, unique=True)) if optional else [])
    body = {name: draw(json_values if rare(20) else FIELD_VALUES[name]) for name in names}
    if rare(12):
        body[draw(st.sampled_from(ROUTE_FIELDS[route]))] = draw(json_values)
    if rare(12):
        body[draw(texts(2))] = draw(json_values)
    return body


def encoded(body: object) -> bytes:
    """JSON as a client would send it: lone surrogates as \\udXXX escapes, NaN and Infinity as Python writes them."""
    return json.dumps(body, allow_nan=True).encode()


speeds = st.one_of(st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]), st.floats(0.25, 4.0))


# --- bookkeeping -------------------------------------------------------------------------------------------
@dataclass
class Stats:
    """What the properties did: examples per timed step, how they ended (an HTTP status, "ok" or the error's type),
    the slowest example, and the slowest CPU seconds per input character among inputs of at least LONG characters
    (below that, fixed costs dominate)."""

    LONG = 20
    examples: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    slowest: dict[str, tuple[float, int, str]] = field(default_factory=dict)  # s, chars, input
    per_char: dict[str, tuple[float, float, int, str]] = field(default_factory=dict)  # s/char, s, chars, input

    def record(self, name: str, seconds: float, size: int, sample: object) -> None:
        self.examples[name] = self.examples.get(name, 0) + 1
        if seconds > self.slowest.get(name, (0.0,))[0]:
            self.slowest[name] = (seconds, size, ascii(sample)[:120])
        if size >= self.LONG and seconds / size > self.per_char.get(name, (0.0,))[0]:
            self.per_char[name] = (seconds / size, seconds, size, ascii(sample)[:120])

    def outcome(self, name: str, label: str) -> None:
        counts = self.outcomes.setdefault(name, {})
        counts[label] = counts.get(label, 0) + 1


STATS = Stats()


@contextlib.contextmanager
def timed(name: str, size: int, sample: object) -> Iterator[None]:
    """Time one example and check the per-character bound (also when it raised an allowed error). The bound is on
    the CPU time of the process (all its threads: the server's workers too), so that other work on a shared
    machine does not fail it; a hang or a blow-up spends CPU."""
    began, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        STATS.record(name, cpu, size, sample)
    assert cpu <= TIME_BASE + TIME_PER_CHAR * size, (f"{name}: {cpu:.2f} s of CPU ({seconds:.2f} s) for {size} "
                                                     f"characters: {ascii(sample)[:200]}")


def utf8(value: object) -> None:
    """Every string in `value` encodes as UTF-8 (what logs, JSON bodies, cache keys and manifests need)."""
    json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")


def size_of(value: object) -> int:
    return len(json.dumps(value, default=str)) if not isinstance(value, str | bytes) else len(value)


# --- properties: the library -------------------------------------------------------------------------------
def warm_up(tts=None) -> None:  # noqa: ANN001
    """Load what the first call would (jieba's dictionary, the polyphone model, the voice's first run), so that
    the time bound measures the input, not the loading."""
    from qingyin.text.frontend import default_frontend

    default_frontend()("银行行长说：2024年3月5日，我们重新开始。")
    if tts is not None:
        tts.synthesize("你好，欢迎。")


def check_frontend(text: str) -> None:
    """Normalization, G2P and the SSML parser through the frontend: sentences of known phones, or a MarkupError."""
    from qingyin.text.frontend import default_frontend
    from qingyin.text.symbols import FINALS, INITIALS

    symbols = {"sil", "#0", "#1", "#2", "#3", "^", *INITIALS} | {f + t for f in FINALS for t in "12345"}
    frontend = default_frontend()
    with timed("frontend", len(text), text):
        try:
            result = frontend(text)
        except ValueError as error:
            STATS.outcome("frontend", type(error).__name__)
            utf8(str(error))
            return
    STATS.outcome("frontend", "ok")
    for sentence in result.sentences:
        assert sentence.phones == [] or sentence.phones[0] == sentence.phones[-1] == "sil"
        assert set(sentence.phones) <= symbols
        assert sentence.break_ms is None or 0 <= sentence.break_ms <= 10_000
    utf8(result.report())


def check_normalize(text: str) -> None:
    from qingyin.text.hanzi import is_han
    from qingyin.text.normalize import PUNCTUATION, normalize

    with timed("normalize", len(text), text):
        result = normalize(text)
    assert all(is_han(c) or c in PUNCTUATION for c in result.text) and len(result.pinyin) == len(result.text)
    utf8(result.warnings)


def check_limits(text: str, speed: float) -> None:
    """The up-front check: passes or raises a ValueError; what passes has breaks within the limit."""
    from qingyin.text import markup

    limits = WorkLimits()
    with timed("limits", len(text), text):
        try:
            limits.check(text, speed)
        except ValueError as error:
            utf8(str(error))
            return
    breaks = sum(s.ms for s in markup.parse(text) if isinstance(s, markup.Break))
    assert breaks <= limits.max_break_seconds * 1000


def check_options(options: dict[str, object]) -> None:
    """Option validation: the checked options, or InvalidOptionError (a ValueError) naming the problem."""
    from qingyin.runtime.synthesizer import checked_options

    with timed("options", size_of(options), options):
        try:
            checked = checked_options(options)
        except ValueError as error:
            utf8(str(error))
            return
    for name in ("speed", "pitch", "energy", "sentence_pause", "intensity", "reference_strength"):
        assert math.isfinite(getattr(checked, name))


def check_engine(tts, text: str, stream: bool, speed: float) -> None:  # noqa: ANN001
    """Synthesis under ENGINE_LIMITS: audio of at most max_audio_seconds, whole or streamed, or a library error."""
    made = 0
    name = "engine-stream" if stream else "engine"
    with timed(name, len(text), text):
        try:
            if stream:
                for chunk in tts.stream_chunks(text, limits=ENGINE_LIMITS, speed=speed):
                    made += len(chunk.audio)
            else:
                made = len(tts.synthesize(text, limits=ENGINE_LIMITS, speed=speed).audio)
            STATS.outcome(name, "ok")
        except LIBRARY_ERRORS as error:
            STATS.outcome(name, type(error).__name__)
            utf8(str(error))
    assert made <= ENGINE_LIMITS.max_audio_seconds * tts.sample_rate


def check_batch_input(directory: Path, kind: str, lines: list[str]) -> None:
    """`qingyin batch` input parsing: items (a bad line is that item's error) or BatchInputError; every item can be
    keyed, checked against the limits and recorded in a manifest."""
    from qingyin.batch import read_items
    from qingyin.batch.items import BatchInputError
    from qingyin.batch.job import LIMITS, check_item, item_key
    from qingyin.batch.manifest import ERROR, Manifest

    suffix = {"jsonl": ".jsonl", "book": ".md", "lines": ".txt"}[kind]
    path = directory / f"input{suffix}"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")  # a surrogate: not UTF-8
    manifest = Manifest(directory / "manifest.jsonl")
    with timed("batch", sum(map(len, lines)), lines):
        try:
            items = read_items(path, "baker", kind="auto")
        except BatchInputError as error:
            utf8(str(error))
            return
        for item in items:
            problem = check_item(item, LIMITS)
            manifest.add({"id": item.id, "voice": item.voice, "options": item.options, "key": item_key(item, "wav",
                                                                                                      None),
                          "status": ERROR, "error": problem})
    manifest.close()


# --- properties: the server --------------------------------------------------------------------------------
def check_response(response, route: str) -> None:  # noqa: ANN001
    """Never a 500; a 4xx has the JSON error body with the status and a message; a 200 is audio or JSON."""
    STATS.outcome(f"http {route}", str(response.status_code))
    assert response.status_code != 500, (route, response.text[:500])
    if response.status_code >= 400:
        assert response.status_code < 500, (route, response.status_code, response.text[:300])
        error = response.json()["error"]
        assert error["code"] == response.status_code and isinstance(error["message"], str) and error["message"]
        if response.status_code == 413 and error["type"] == "work_limit":
            assert any(name in error["message"] for name in ("max_audio_seconds", "max_ssml_elements",
                                                             "max_break_seconds"))
    elif route == "/v1/frontend":
        assert "sentences" in response.json()
    else:
        assert response.headers["content-type"].startswith(("audio/", "application/octet-stream")), route
        duration = response.headers.get("x-audio-duration")
        assert duration is None or float(duration) <= SERVER["max_audio_seconds"]


def check_http(client, route: str, body: object, raw: bytes | None = None) -> None:  # noqa: ANN001
    data = encoded(body) if raw is None else raw
    with timed(f"http {route}", len(data), data):
        response = client.post(route, content=data, headers={"content-type": "application/json"})
    check_response(response, route)


def check_http_get(client, params: dict[str, str]) -> None:  # noqa: ANN001
    """GET /v1/tts with the query as raw bytes: a lone surrogate goes as its (invalid UTF-8) three bytes."""
    query = urllib.parse.urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in params.items()})
    with timed("http GET /v1/tts", len(query), params):
        response = client.get(f"/v1/tts?{query}")
    check_response(response, "GET /v1/tts")


def check_websocket(client, messages: list[object]) -> None:  # noqa: ANN001
    """Each message is answered with `done` or an `error` event of a 4xx status, and the session goes on."""
    with client.websocket_connect("/v1/tts/ws") as websocket:
        for message in messages:
            size = len(message) if isinstance(message, bytes | str) else size_of(message)
            with timed("websocket", size, message):
                if isinstance(message, bytes):
                    websocket.send_bytes(message)
                else:
                    text = message if isinstance(message, str) else encoded(message).decode()
                    if isinstance(message, dict) and message.get("type") == "close":
                        message = {**message, "type": "speak"}
                        text = encoded(message).decode()
                    websocket.send_text(text)
                seconds = 0.0
                while True:
                    event = websocket.receive()
                    if event.get("bytes") is not None:
                        continue
                    payload = json.loads(event["text"])
                    if payload["type"] == "done":
                        seconds = payload["audio_seconds"]
                        STATS.outcome("websocket", "done")
                        break
                    if payload["type"] == "error":
                        assert 400 <= payload["status"] < 500, payload
                        STATS.outcome("websocket", str(payload["status"]))
                        break
            assert seconds <= SERVER["max_audio_seconds"]


@contextlib.contextmanager
def fuzz_client(tts) -> Iterator[object]:  # noqa: ANN001
    """A TestClient of an app with the SERVER limits around `tts`; a server error comes back as its 500 response
    (not raised), so that the properties can see it."""
    from fastapi.testclient import TestClient

    from qingyin.server.app import create_app
    from qingyin.server.config import ServerConfig
    from qingyin.server.service import TTSService

    config = ServerConfig(warmup=False, cache_dir=Path("off"), ui=False, **SERVER).validated()
    service = TTSService(config, synthesizers={"baker": tts})
    with TestClient(create_app(config, service), raise_server_exceptions=False) as client:
        yield client


def batch_lines(kind: str) -> st.SearchStrategy[list[str]]:
    """Lines of a batch input: JSON records (for jsonl), text, Markdown headings, broken JSON."""
    record = bodies("jsonl").map(lambda body: encoded(body).decode())
    line = st.one_of(texts(), st.sampled_from(["# 第一章", "## 标题", "第三章 开始", "```", "---", "", "{", "[]"]))
    return st.lists(st.one_of(record, record, line) if kind == "jsonl" else line, max_size=6)
