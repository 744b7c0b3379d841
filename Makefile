# Two entry points (see README): `make demo` and `make test`. Both set everything up from scratch.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO_TEXT := 欢迎使用轻音。这是一个开源的中文语音合成系统，在两核的处理器上也能流畅运行。

.PHONY: demo test test-heavy setup voice lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,eval,onnx]'
	touch $(STAMP)

setup: $(STAMP)

voice: setup
	$(VENV)/bin/qingyin models fetch baker

demo: voice
	$(VENV)/bin/qingyin say "$(DEMO_TEXT)" -o demo.wav --verbose

test: voice
	$(PY) -m pytest -q
	$(VENV)/bin/ruff check qingyin tests benchmarks

test-heavy: voice
	$(PY) -m pytest -q -m heavy

lint: setup
	$(VENV)/bin/ruff check qingyin tests benchmarks

clean:
	rm -rf $(VENV) demo.wav .pytest_cache .ruff_cache
