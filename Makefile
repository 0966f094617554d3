# Entry points for a fresh machine (Python 3.10+ with venv):
#   make demo  - install the runtime and detect digits in the shipped sample with the shipped model
#   make test  - install everything (train, tflite, dev extras) and run the test suite
#   make litert-check - the board install (LiteRT only, no onnxruntime) in its own venv, checked
VENV ?= .venv
LITERT_VENV ?= .venv-litert
PYTHON ?= python3
BIN := $(VENV)/bin
# What a small board installs besides `convdet --no-deps` (README, "Deployment").
LITERT_PACKAGES := numpy opencv-python-headless ai-edge-litert tqdm imagesize

.PHONY: demo test litert-check

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

demo: $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/convdet detect samples/digits.png --save runs/demo --json runs/demo/detections.jsonl

test: $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e ".[train,tflite,ray,dev]"
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

litert-check:
	$(PYTHON) -m venv $(LITERT_VENV)
	$(LITERT_VENV)/bin/python -m pip install --quiet $(LITERT_PACKAGES)
	$(LITERT_VENV)/bin/python -m pip install --quiet --no-deps --force-reinstall .
	$(LITERT_VENV)/bin/python deploy/litert_check.py
