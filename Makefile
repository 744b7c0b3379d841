# Two entry points (see README): `make serve` and `make test`. Both set everything up from scratch.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
QINGYIN_HOME ?= $(HOME)/.cache/qingyin
# The quality gate's verdicts on static INT8 and on the student (qingyin export --gate): the server loads by
# default the fastest variant that passed; otherwise fp32. `make serve` does not wait for them: the server gates
# both in the background and switches when one passes (qingyin/evaluate/background_gate.py); `make gate` runs
# them now.
GATE_INT8 := $(VENV)/bin/qingyin export baker --variant int8-static --gate
# The shipped student with INT8 (issue 15) is gated by how it sounds: Whisper's CER on the 79 texts that static INT8
# does not calibrate on, speaker similarity and DNSMOS against the teacher (about 6 min on 2 cores).
GATE_STUDENT := $(VENV)/bin/qingyin export baker --variant student-int8 --gate --cer --texts 79
DEMO_TEXT := 欢迎使用轻音。这是一个开源的中文语音合成系统，在两核的处理器上也能流畅运行。

.PHONY: serve demo test test-heavy setup voice gate browser lint audit clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,eval,onnx,server,convert,cluster,compress]'
	touch $(STAMP)

setup: $(STAMP)

# Every model of the catalog: baker (fetched, converted, fp32 ONNX exported) and kokoro (the eight Kokoro voices);
# idempotent, so a second run only checks.
voice: setup
	$(VENV)/bin/qingyin models fetch all

serve: voice
	$(VENV)/bin/qingyin serve --host 127.0.0.1 --port 8000

# A failed gate is a verdict too (the server then uses fp32).
gate: voice
	-$(GATE_INT8)
	-$(GATE_STUDENT)

# The web UI's browser test drives Debian's chromium (Playwright's own browser download needs the internet).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; \
	  else sudo apt-get install -y -q chromium; fi; } || echo "warning: could not install chromium; the web UI browser test needs it"

demo: voice
	$(VENV)/bin/qingyin say "$(DEMO_TEXT)" -o demo.wav --verbose

test: voice browser
	$(PY) -m pytest -q
	$(VENV)/bin/ruff check qingyin tests benchmarks

test-heavy: voice
	$(PY) -m pytest -q -m heavy

lint: setup
	$(VENV)/bin/ruff check qingyin tests benchmarks

# Known vulnerabilities of the installed packages, from PyPI's advisory data (pip-audit is installed into the venv
# here only, not by setup or test). --strict: a package that could not be checked fails the audit, where it
# would otherwise pass unchecked; qingyin itself (editable, not on PyPI) is left out.
audit: setup
	$(PY) -m pip install --quiet --disable-pip-version-check pip-audit
	$(VENV)/bin/pip-audit --strict --skip-editable --progress-spinner off

clean:
	rm -rf $(VENV) demo.wav .pytest_cache .ruff_cache
