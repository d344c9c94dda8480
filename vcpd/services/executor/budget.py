"""The run-time half of the program sandbox: step budget, deadline and size guards.

A program is untrusted (DESIGN §2): it must not be able to spin forever, nor
build a value so large that one Python call exhausts memory or stalls the
thread. :mod:`vcpd.services.executor.sandbox` rewrites every program so that
loops, function calls and comprehension iterations call :meth:`Budget.tick`,
and so that the operators and methods which can make a huge value from a tiny
expression (``[0] * 10**12``, ``10**10**10``, ``1 << 10**9``, ``'x'.ljust(10**10)``,
``f'{x:>9999999999}'``) go through a :class:`Guard` first, which refuses
results above :data:`MAX_SEQUENCE_LENGTH` elements or :data:`MAX_INT_BITS`
bits and charges the budget one step per element created.

A step is therefore: one loop iteration, one function call, one comprehension
element, one element of a sequence built by ``+``/``*``/``range``/a guarded
method, plus whatever the library objects charge through :meth:`Budget.charge`.
Every check raises :class:`~vcpd.errors.ProgramError`, and a budget that has
run out stays run out, so library code that swallowed one error still stops at
the next tick.

This module must not import any vcpd module other than :mod:`vcpd.errors`
(it is layer L4 and stdlib-only on purpose: it runs inside the worker thread).
"""

from __future__ import annotations

import builtins
import math
import operator
import re
import time
from collections.abc import Callable, ItemsView, Iterable, KeysView, Mapping
from types import MappingProxyType
from typing import Any, Final

from vcpd.errors import ProgramError, VcpInternalError

__all__ = [
    "GUARDED_METHODS",
    "MAX_INT_BITS",
    "MAX_SEQUENCE_LENGTH",
    "SAFE_BUILTINS",
    "Budget",
    "Guard",
    "run_builtins",
]

MAX_SEQUENCE_LENGTH: Final = 10_000_000
"""Largest str/bytes/list/tuple (and ``range``) one guarded operation may make."""

MAX_INT_BITS: Final = 100_000
"""Largest int, in bits, that ``*``, ``**``, ``<<`` and ``pow`` may produce."""

GUARDED_METHODS: Final = frozenset(
    {"center", "expandtabs", "extend", "join", "ljust", "replace", "rjust", "to_bytes", "translate", "zfill"}
)
"""str/bytes/int methods whose output size is set by an argument; programs may
only call them directly (the sandbox routes the call through :meth:`Guard.method`)."""

_SIZED: Final = (str, bytes, list, tuple)
_VIEWS: Final = (KeysView, ItemsView)
_PERCENT_SPEC: Final = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS: Final = re.compile(r"\d+")


def _no_view_sets(a: Any, b: Any) -> None:
    if isinstance(a, _VIEWS) or isinstance(b, _VIEWS):
        raise ProgramError(
            "set operations on dict views make sets, whose order differs between VCPs; use sorted(...) or a list",
            rule="no-set",
        )


def _too_large(what: str) -> ProgramError:
    return ProgramError(f"{what} is too large", rule="too-large-value")


class Budget:
    """Counts steps against a cap and checks a wall-clock deadline.

    One budget per program run; it is only touched by the worker thread that
    runs the program, except :meth:`cancel`, which another thread may call
    (a single attribute store, atomic under the GIL).

    Args:
        max_steps: Steps allowed before the run fails with rule ``budget``.
        deadline: Absolute time on ``clock`` after which the run fails with rule
            ``timeout``; ``None`` for no deadline.
        clock: Monotonic clock in seconds (injectable for tests).
    """

    __slots__ = ("_cancel_reason", "_clock", "_deadline", "_max_steps", "_started", "_steps")

    def __init__(
        self,
        max_steps: int,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_steps < 0:
            raise VcpInternalError(f"a step budget cannot be negative: {max_steps}")
        self._max_steps = max_steps
        self._steps = 0
        self._clock = clock
        self._started = clock()
        self._deadline = math.inf if deadline is None else deadline
        self._cancel_reason: str | None = None

    @classmethod
    def with_timeout(
        cls, max_steps: int, timeout: float | None, clock: Callable[[], float] = time.monotonic
    ) -> Budget:
        """A budget whose deadline is ``timeout`` seconds from now."""
        budget = cls(max_steps, None, clock)
        if timeout is not None:
            budget._deadline = budget._started + timeout
        return budget

    @property
    def steps(self) -> int:
        """Steps used so far (may exceed ``max_steps`` by the last charge)."""
        return self._steps

    @property
    def max_steps(self) -> int:
        return self._max_steps

    @property
    def remaining(self) -> int:
        return max(0, self._max_steps - self._steps)

    def tick(self) -> bool:
        """Charge one step and check the deadline; returns True so the sandbox can
        place it in ``and``/``if`` positions inside expressions."""
        self._steps += 1
        if self._steps > self._max_steps:
            self._exhausted()
        if self._clock() > self._deadline:
            self._over_time()
        return True

    def charge(self, n: int) -> None:
        """Charge ``n`` steps at once (library element-operations, big values)."""
        n = operator.index(n)
        if n < 0:
            raise VcpInternalError(f"cannot charge a negative number of steps: {n}")
        self._steps += n
        if self._steps > self._max_steps:
            self._exhausted()
        if self._clock() > self._deadline:
            self._over_time()

    def check(self) -> None:
        """Check the deadline and cancellation without charging anything."""
        if self._steps > self._max_steps:
            self._exhausted()
        if self._clock() > self._deadline:
            self._over_time()

    def cancel(self, reason: str = "execution cancelled") -> None:
        """Make the next tick or charge fail with rule ``cancelled`` (any thread)."""
        self._cancel_reason = reason
        self._deadline = -math.inf

    def _exhausted(self) -> None:
        raise ProgramError(f"operation budget of {self._max_steps} steps exhausted", rule="budget")

    def _over_time(self) -> None:
        if self._cancel_reason is not None:
            raise ProgramError(self._cancel_reason, rule="cancelled")
        limit = self._deadline - self._started
        raise ProgramError(f"wall-clock timeout of {limit:.3g} s exceeded", rule="timeout")


def _size(value: object) -> int | None:
    return len(value) if isinstance(value, (*_SIZED, range)) else None


class Guard:
    """Size checks the sandbox routes risky operators, builtins and methods through.

    Each check looks only at the operands (never computes first), refuses a
    result beyond the caps with rule ``too-large-value`` and charges the budget
    for the elements a sequence result will hold. Values of other types (the
    library's ``sint`` and friends) pass straight through to the real operator.
    """

    __slots__ = ("_budget",)

    def __init__(self, budget: Budget) -> None:
        self._budget = budget

    def _elements(self, n: int, what: str) -> None:
        if n > MAX_SEQUENCE_LENGTH:
            raise _too_large(f"{what} of {n} elements")
        if n > 0:
            self._budget.charge(n)

    # ``- | & ^`` on dict views make sets, whose order follows the process's
    # hash seed: every VCP must run the same steps, so they are refused like
    # set displays (rule ``no-set``); everything else behaves as Python does.

    def sub(self, a: Any, b: Any) -> Any:
        _no_view_sets(a, b)
        return a - b

    def isub(self, a: Any, b: Any) -> Any:
        _no_view_sets(a, b)
        return operator.isub(a, b)

    def bor(self, a: Any, b: Any) -> Any:
        _no_view_sets(a, b)
        return a | b

    def ibor(self, a: Any, b: Any) -> Any:
        _no_view_sets(a, b)
        return operator.ior(a, b)

    def band(self, a: Any, b: Any) -> Any:
        _no_view_sets(a, b)
        return a & b

    def iband(self, a: Any, b: Any) -> Any:
        _no_view_sets(a, b)
        return operator.iand(a, b)

    def bxor(self, a: Any, b: Any) -> Any:
        _no_view_sets(a, b)
        return a ^ b

    def ibxor(self, a: Any, b: Any) -> Any:
        _no_view_sets(a, b)
        return operator.ixor(a, b)

    def add(self, a: Any, b: Any) -> Any:
        if isinstance(a, _SIZED) and isinstance(b, _SIZED):
            self._elements(len(a) + len(b), "concatenation")
        return a + b

    def iadd(self, a: Any, b: Any) -> Any:
        if isinstance(a, _SIZED):
            extra = _size(b)
            if extra is not None:
                if len(a) + extra > MAX_SEQUENCE_LENGTH:
                    raise _too_large(f"concatenation of {len(a) + extra} elements")
                self._elements(extra if isinstance(a, list) else len(a) + extra, "concatenation")
        return operator.iadd(a, b)

    def _check_mul(self, a: Any, b: Any) -> None:
        if isinstance(a, int) and isinstance(b, int):
            if a.bit_length() + b.bit_length() > MAX_INT_BITS:
                raise _too_large("integer product")
        elif isinstance(a, _SIZED) and isinstance(b, int):
            self._elements(len(a) * b, "repetition")
        elif isinstance(b, _SIZED) and isinstance(a, int):
            self._elements(len(b) * a, "repetition")

    def mul(self, a: Any, b: Any) -> Any:
        self._check_mul(a, b)
        return a * b

    def imul(self, a: Any, b: Any) -> Any:
        self._check_mul(a, b)
        return operator.imul(a, b)

    @staticmethod
    def _check_pow(a: Any, b: Any) -> None:
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            if b > MAX_INT_BITS or b * math.log2(abs(a)) > MAX_INT_BITS:
                raise _too_large("integer power")

    def pow(self, a: Any, b: Any) -> Any:
        self._check_pow(a, b)
        return a**b

    def ipow(self, a: Any, b: Any) -> Any:
        self._check_pow(a, b)
        return operator.ipow(a, b)

    @staticmethod
    def _check_lshift(a: Any, b: Any) -> None:
        if isinstance(a, int) and isinstance(b, int) and a and b > 0:
            if b > MAX_INT_BITS or a.bit_length() + b > MAX_INT_BITS:
                raise _too_large("integer shift")

    def lshift(self, a: Any, b: Any) -> Any:
        self._check_lshift(a, b)
        return a << b

    def ilshift(self, a: Any, b: Any) -> Any:
        self._check_lshift(a, b)
        return operator.ilshift(a, b)

    @staticmethod
    def _check_percent(a: Any, b: Any) -> None:
        if not isinstance(a, (str, bytes)):
            return
        text = a.decode("latin-1") if isinstance(a, bytes) else a
        star = False
        for spec in _PERCENT_SPEC.finditer(text):
            for part in spec.groups():
                if part == "*":
                    star = True
                elif part and (len(part) > 8 or int(part) > MAX_SEQUENCE_LENGTH):
                    raise _too_large("%-format width")
        if star:
            for arg in b if isinstance(b, tuple) else (b,):
                if isinstance(arg, int) and abs(arg) > MAX_SEQUENCE_LENGTH:
                    raise _too_large("%-format width")

    def mod(self, a: Any, b: Any) -> Any:
        self._check_percent(a, b)
        return a % b

    def imod(self, a: Any, b: Any) -> Any:
        self._check_percent(a, b)
        return operator.imod(a, b)

    def format_value(self, value: Any, conversion: int, spec: str) -> str:
        """An f-string field with a format spec (``f'{x!r:>{w}}'``): check the
        widths and precisions in the spec, then format as Python would."""
        for digits in _DIGITS.findall(spec):
            if len(digits) > 8 or int(digits) > MAX_SEQUENCE_LENGTH:
                raise _too_large("format width")
        if conversion == ord("s"):
            value = str(value)
        elif conversion == ord("r"):
            value = repr(value)
        elif conversion == ord("a"):
            value = ascii(value)
        return format(value, spec)

    def method(self, obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``obj.<name>(*args, **kwargs)`` for a name in
        :data:`GUARDED_METHODS`, after bounding the size of the result."""
        if name == "extend":
            if isinstance(obj, list) and args:
                extra = _size(args[0])
                if extra is not None:
                    if len(obj) + extra > MAX_SEQUENCE_LENGTH:
                        raise _too_large(f"list of {len(obj) + extra} elements")
                    self._elements(extra, "extension")
        elif isinstance(obj, (str, bytes)) or (name == "to_bytes" and isinstance(obj, int)):
            if name == "join" and args and not isinstance(args[0], (list, tuple)):
                args = (list(args[0]), *args[1:])  # consume an iterator only once
            estimate = _method_result_size(obj, name, args, kwargs)
            if estimate is not None:
                self._elements(estimate, f"result of {name}()")
        return getattr(obj, name)(*args, **kwargs)

    def range(self, *args: int) -> range:
        """``range`` capped at :data:`MAX_SEQUENCE_LENGTH` and charged up front,
        since ``list(range(n))`` builds n elements in one C call."""
        r = builtins.range(*args)
        self._elements(len(r), "range")
        return r

    def pow_builtin(self, base: Any, exp: Any, mod: Any = None) -> Any:
        if mod is None:
            return self.pow(base, exp)
        return builtins.pow(base, exp, mod)

    def sum(self, iterable: Iterable[Any], /, start: Any = 0) -> Any:
        """``sum``; sequences are added one guarded ``+`` at a time, because the
        C loop of ``sum(lists, [])`` is quadratic and cannot be interrupted."""
        if not isinstance(start, _SIZED):
            return builtins.sum(iterable, start)
        total = start
        for item in iterable:
            total = self.add(total, item)
        return total


def _method_result_size(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    def arg(index: int, key: str, default: Any = None) -> Any:
        return args[index] if len(args) > index else kwargs.get(key, default)

    if name == "to_bytes":
        length = arg(0, "length", 1)
        return length if isinstance(length, int) else None
    if name in ("ljust", "rjust", "center", "zfill"):
        width = arg(0, "width")
        return max(len(obj), width) if isinstance(width, int) else None
    if name == "expandtabs":
        tabsize = arg(0, "tabsize", 8)
        tab = "\t" if isinstance(obj, str) else b"\t"
        return len(obj) + obj.count(tab) * max(tabsize, 0) if isinstance(tabsize, int) else None
    if name == "replace":
        old, new, count = arg(0, "old"), arg(1, "new"), arg(2, "count", -1)
        if not (isinstance(old, type(obj)) and isinstance(new, type(obj)) and isinstance(count, int)):
            return None
        hits = len(obj) + 1 if not old else obj.count(old)
        if count >= 0:
            hits = min(hits, count)
        return len(obj) + hits * max(0, len(new) - len(old))
    if name == "translate":
        table = arg(0, "table")
        if not isinstance(obj, str):
            return len(obj)  # bytes tables map one byte to one byte
        if isinstance(table, dict):
            values: Iterable[Any] = table.values()
        elif isinstance(table, (list, tuple)):
            values = table
        else:
            return len(obj)
        longest = max((len(v) for v in values if isinstance(v, str)), default=1)
        return len(obj) * max(longest, 1)
    if name == "join":
        items = arg(0, "iterable")
        if not isinstance(items, (list, tuple)):
            return None
        try:
            return builtins.sum(map(len, items)) + len(obj) * max(0, len(items) - 1)
        except TypeError:
            return None  # join itself will raise the proper error
    return None


_STATIC_BUILTINS: Final[dict[str, object]] = {
    name: getattr(builtins, name)
    for name in (
        "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float",
        "int", "isinstance", "len", "list", "map", "max", "min", "reversed", "round",
        "sorted", "str", "tuple", "zip", "True", "False", "None",
    )
}  # fmt: skip

SAFE_BUILTINS: Final[Mapping[str, object]] = MappingProxyType(_STATIC_BUILTINS)
"""The builtins every run gets regardless of budget; :func:`run_builtins` adds
the budget-bound ``range``, ``pow`` and ``sum`` and the redirected ``print``."""


def run_builtins(guard: Guard, print_fn: Callable[[str], None] | None) -> dict[str, object]:
    """The ``__builtins__`` dict of one run: :data:`SAFE_BUILTINS` plus the
    entries bound to this run's guard and print hook.

    ``print`` takes only ``sep`` and ``end`` (no ``file``) and hands the line to
    ``print_fn``; without one, output is dropped.
    """

    def safe_print(*values: object, sep: str | None = " ", end: str | None = "\n") -> None:
        if print_fn is not None:
            text = guard.method(" " if sep is None else sep, "join", [str(v) for v in values])
            print_fn(guard.add(text, "\n" if end is None else end))

    return {
        **_STATIC_BUILTINS,
        "range": guard.range,
        "pow": guard.pow_builtin,
        "sum": guard.sum,
        "print": safe_print,
    }
