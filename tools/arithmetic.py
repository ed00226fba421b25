"""Safe arithmetic for the calculator tool: the expression is parsed with ``ast`` and walked, never eval-ed.

Only numbers, ``+ - * / // % **``, parentheses, a few constants and a few ``math`` functions are
understood. Anything that could grow without bound (huge powers, factorials, results) is refused
before it is computed.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_EXPRESSION_CHARS = 500
MAX_INT_BITS = 4000  # about 1200 decimal digits
MAX_FACTORIAL = 450  # 450! has about 1000 digits
MAX_ROUND_DIGITS = 100

Number = int | float


class CalculationError(ValueError):
    """The expression is not plain arithmetic, or its result would be unreasonable."""


def _factorial(n: Number) -> int:
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or n < 0:
        raise CalculationError(f"factorial() needs a whole number of 0 or more, not {n}.")
    if n > MAX_FACTORIAL:
        raise CalculationError(f"factorial({n}) is too large; the limit is factorial({MAX_FACTORIAL}).")
    return math.factorial(n)


def _round(x: Number, ndigits: int = 0) -> Number:
    if not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS:
        raise CalculationError(
            f"round() takes a whole number of digits between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}."
        )
    return round(x, ndigits)


CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "floor": math.floor,
    "ceil": math.ceil,
    "factorial": _factorial,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
# Symbols people and models write for the Python operators.
_SPELLINGS = {"^": "**", "×": "*", "÷": "/", "−": "-"}
_KNOWN = (
    "numbers, + - * / // % ** (or ^), parentheses, the constants "
    + ", ".join(CONSTANTS)
    + " and the functions "
    + ", ".join(FUNCTIONS)
)


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression and return an int or a float.

    Raises:
        CalculationError: If the expression is too long, is not arithmetic, divides by zero or would give
            a result too large to compute; the message says which.
    """
    text = expression.strip().rstrip("=").strip()
    if not text:
        raise CalculationError("The expression is empty; give one such as 2 * (3 + 4).")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculationError(
            f"The expression is {len(text)} characters long; the limit is {MAX_EXPRESSION_CHARS}. "
            "Split it into smaller steps."
        )
    for symbol, python in _SPELLINGS.items():
        text = text.replace(symbol, python)
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise CalculationError(f"{expression!r} is not an arithmetic expression; use {_KNOWN}.") from None
    try:
        return _checked(_eval(tree.body))
    except ZeroDivisionError:
        raise CalculationError("Division by zero.") from None
    except OverflowError:
        raise CalculationError("The result is too large to compute.") from None
    except RecursionError:
        raise CalculationError("The expression is nested too deeply.") from None


def format_number(value: Number) -> str:
    """Return ``value`` as a model reads it best: ints whole, floats to 15 significant digits."""
    return str(value) if isinstance(value, int) else format(value, ".15g")


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        if type(node.value) in (int, float):
            return _checked(node.value)
        raise CalculationError(f"{node.value!r} is not a number; use {_KNOWN}.")
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        if type(node.op) in _BINARY:
            return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            raise CalculationError(f"{node.id} is a function: call it with parentheses, as in {node.id}(2).")
        raise CalculationError(f"Unknown name {node.id!r}; the calculator knows {_KNOWN}.")
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Attribute):
        raise CalculationError(f"Attribute access ('.{node.attr}') is not allowed; use {_KNOWN}.")
    if isinstance(node, ast.Tuple):
        raise CalculationError("Commas are only allowed between function arguments; write 1234, not 1,234.")
    raise CalculationError(f"{_describe(node)} is not allowed; use {_KNOWN}.")


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        raise CalculationError(f"Unknown function {name!r}; the calculator knows {', '.join(FUNCTIONS)}.")
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise CalculationError(f"{node.func.id}() takes plain numbers, as in {node.func.id}(2).")
    args = [_eval(arg) for arg in node.args]
    try:
        return _checked(FUNCTIONS[node.func.id](*args))
    except TypeError:
        raise CalculationError(
            f"{node.func.id}() was given the wrong number of arguments ({len(args)})."
        ) from None
    except ValueError as exc:
        if isinstance(exc, CalculationError):
            raise
        shown = ", ".join(format_number(a) for a in args)
        raise CalculationError(f"{node.func.id}({shown}) is undefined ({exc}).") from None


def _power(base: Number, exponent: Number) -> Number:
    # An int result has at least exponent * (bits of base - 1) bits; refuse before computing it.
    exact = isinstance(base, int) and isinstance(exponent, int)
    if exact and exponent * (abs(int(base)).bit_length() - 1) > MAX_INT_BITS:
        raise CalculationError(
            f"{base} ** {exponent} is too large to compute; results are limited to about 1200 digits."
        )
    return _checked(base**exponent)


def _checked(value: Any) -> Number:
    if isinstance(value, complex):
        raise CalculationError("The result is a complex number; the calculator only handles real numbers.")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculationError("The result is too large; results are limited to about 1200 digits.")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculationError("The result is too large or undefined (infinite or not a number).")
    return value


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Compare):
        return "Comparison"
    if isinstance(node, ast.BinOp):
        return f"The operator {type(node.op).__name__}"
    return f"{type(node).__name__} ({ast.unparse(node)[:40]})"
