# Two entry points for a fresh machine (Python 3.10+ with venv):
#   make demo  - install the runtime and detect digits in the shipped sample with the shipped model
#   make test  - install everything (train, tflite, dev extras) and run the test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

demo: $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/convdet detect samples/digits.png --save runs/demo --json runs/demo/detections.jsonl

test: $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e ".[train,tflite,dev]"
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q
