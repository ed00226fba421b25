"""``python -m workbench exec``: run Python in a fresh sandboxed kernel and print what it produced.

The kernel runs on the Kernel Gateway that ``WORKBENCH_KERNEL_GATEWAY`` names, if set (see
:mod:`workbench.kernels`).

Exit statuses: 0 the code ran to the end; 1 it raised an exception; 124 it ran past
``--timeout`` and was interrupted; 125 the kernel died (or was restarted) while it ran. Errors
before the code runs (an unreadable file, no kernel) exit with 1 and say what to do.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any, TextIO

from kernel import Execution
from kernel.outputs import image_size
from workbench.errors import WorkbenchError
from workbench.kernels import isolation_warning, open_kernel

EXIT_OK, EXIT_ERROR, EXIT_TIMEOUT, EXIT_DIED = 0, 1, 124, 125


def sandbox_warning(kernel: object) -> str:
    """The warning printed when code runs without the sandbox (or the note for a gateway), or ""."""
    return isolation_warning(kernel)


def run_exec(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Run a file (or standard input) in a fresh sandboxed kernel and print what it produced.

    Returns:
        The exit status (see the module docstring).

    Raises:
        WorkbenchError: If the file cannot be read or the kernel cannot start.
    """
    code = _read_code(args.file, stdin)
    with open_kernel() as kernel:
        warning = sandbox_warning(kernel)
        if warning:
            print(warning, file=err, flush=True)
        execution = kernel.execute(code, timeout=args.timeout)
        sandboxed, gateway = kernel.sandboxed, getattr(kernel, "gateway_url", "")
    if args.json:
        data = execution_to_dict(execution, sandboxed, gateway)
        print(json.dumps(data, indent=2, ensure_ascii=False), file=out)
    else:
        print_execution(execution, out, err)
    return exit_status(execution)


def _read_code(name: str, stdin: TextIO) -> str:
    if name == "-":
        return stdin.read()
    path = Path(name)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkbenchError(
            f"There is no file {name!r}; give the path of a Python file, or '-' for stdin."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"Cannot read {name!r} ({exc}); give a readable UTF-8 Python file.") from None


def exit_status(execution: Execution) -> int:
    """0 when the code ran to the end, else 124 (time-out), 125 (kernel died) or 1 (an exception)."""
    if execution.timed_out:
        return EXIT_TIMEOUT
    if execution.restarted:
        return EXIT_DIED
    if execution.error is not None:
        return EXIT_ERROR
    return EXIT_OK


def print_execution(execution: Execution, out: TextIO, err: TextIO) -> None:
    """Print the outputs in order: stdout, results and image placeholders on ``out``; the rest on ``err``."""
    image_number = 0
    for output in execution.outputs:
        if output.kind == "error":
            print(output.text, file=err)
        elif output.image is not None:
            image_number += 1
            size = image_size(output.image)
            label = f"{size[0]}x{size[1]}" if size else "unreadable"
            print(
                f"[image {image_number}: {label} PNG, {len(output.image)} bytes; use --json to get it]",
                file=out,
            )
        elif output.kind == "stream":
            print(output.text, end="", file=err if output.name == "stderr" else out)
        elif output.text:
            print(output.text, file=out)
    if execution.note:
        print(f"[workbench] {execution.note}", file=err)
    out.flush()
    err.flush()


def execution_to_dict(execution: Execution, sandboxed: bool, gateway: str = "") -> dict[str, Any]:
    """The JSON form of an execution printed by ``exec --json`` (images as base64 PNG).

    ``gateway`` is the Kernel Gateway's address when the code ran there, else "".
    """
    error = execution.error
    return {
        "sandboxed": sandboxed,
        "gateway": gateway or None,
        "stdout": execution.stdout,
        "stderr": execution.stderr,
        "result": execution.result,
        "error": None
        if error is None
        else {"name": error.name, "value": error.value, "traceback": error.traceback},
        "timed_out": execution.timed_out,
        "restarted": execution.restarted,
        "note": execution.note,
        "duration": round(execution.duration, 3),
        "image_count": len(execution.images),
        "images": [base64.b64encode(png).decode("ascii") for png in execution.images],
        "exit_status": exit_status(execution),
    }
