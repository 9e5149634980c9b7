# Two commands set everything up: `make demo` and `make test`. Each creates .venv when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SAMPLE_CLIPS  := datasets/sample_clips
SAMPLE_FRAMES := datasets/sample_frames

.PHONY: venv demo test lint bench clean

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m behavior.synthetic --out $(SAMPLE_CLIPS) --videos-per-class 4
	$(PY) extract_frames.py --clips-dir $(SAMPLE_CLIPS) --frames-dir $(SAMPLE_FRAMES)
	@echo
	@echo "demo: sample clips in $(SAMPLE_CLIPS)/, person crops in $(SAMPLE_FRAMES)/ (see $(SAMPLE_FRAMES)/manifest.csv)"

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) benchmarks/extract_speed.py

clean:
	rm -rf $(SAMPLE_CLIPS) $(SAMPLE_FRAMES) .pytest_cache .ruff_cache
