"""What one running program's library objects share: its context, and sealing.

:class:`ProgramContext` holds one execution's engine, budget, ordered input
vector, declared outputs and log. The worker thread that runs the program
activates it (:func:`activate`); library constructors and class methods
(``sint(5)``, ``sint.read_from_socket``) find it with :func:`current`, and
every library object keeps a reference in a ``_``-prefixed slot.

**Isolation between executions.** Several programs run at once, in different
threads, against the same library classes. A program must not be able to
leave anything behind for another to find, or it could hand a second client's
secret to its own execution. So nothing shared is writable from a program:
library classes use the :class:`Sealed` metaclass, which refuses class
attribute assignment and wraps every public function and property in a
slotted descriptor (a plain function object reached through a class would
accept new attributes); instances use ``__slots__``; and the namespace's free
functions are bound methods of a per-execution object (bound methods refuse
attribute assignment).

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math` and its sibling :mod:`.engine`.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FunctionType, MethodType
from typing import Any, Final, SupportsIndex, cast

from vcpd.errors import ProgramError, VcpInternalError
from vcpd.math import FieldArray, PrimeField

from .budget import MAX_SEQUENCE_LENGTH, Budget
from .engine import Engine
from .graph import Node

__all__ = [
    "DEFAULT_BIT_LENGTH",
    "DEFAULT_FIXED",
    "DEFAULT_SECURITY",
    "MAX_LOG_BYTES",
    "MAX_LOG_LINES",
    "MAX_OUTPUTS",
    "MAX_OUTPUT_LENGTH",
    "Output",
    "ProgramContext",
    "Sealed",
    "activate",
    "current",
    "to_index",
    "unsupported",
    "vector_size",
]

MAX_LOG_LINES: Final = 10_000
"""Lines of program output (print_ln, print) kept per execution."""
MAX_LOG_BYTES: Final = 1 << 20
"""Bytes of program output kept per execution (UTF-8)."""
MAX_OUTPUTS: Final = 64
"""write_to_socket calls per execution (each becomes one secret)."""
MAX_OUTPUT_LENGTH: Final = 1_000_000
"""Elements in one output (the secret store's largest secret)."""
LOG_TRUNCATED: Final = "[vcpd: program output truncated]"
DEFAULT_BIT_LENGTH: Final = 64
"""Bit length of secret integers (MP-SPDZ's default ``program.bit_length``)."""
DEFAULT_SECURITY: Final = 40
"""Statistical security κ of the masking protocols (MP-SPDZ's default)."""
DEFAULT_FIXED: Final = (16, 31)
"""(f, k) of sfix: MP-SPDZ's default ``sfix.set_precision(16, 31)``."""


def to_index(x: object) -> int:
    """``x`` as a Python int (int, regint, a scalar cint); TypeError for anything else."""
    return operator.index(cast(SupportsIndex, x))


def vector_size(n: object, what: str = "a vector's size") -> int:
    """A size a program asked for, checked against :data:`~.budget.MAX_SEQUENCE_LENGTH`."""
    size = to_index(n)
    if not 1 <= size <= MAX_SEQUENCE_LENGTH:
        raise ProgramError(f"{what} must be between 1 and {MAX_SEQUENCE_LENGTH}, not {size}", rule="too-large-value")
    return size


def unsupported(what: str) -> ProgramError:
    """The error for a part of MP-SPDZ's API that vcpd does not run (yet)."""
    return ProgramError(f"{what} is not supported yet", rule="unsupported")


# ---------------------------------------------------------------- sealing


class _SealedFunction:
    """A library method as a read-only descriptor: binds like a function."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return self if obj is None else MethodType(self._fn, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<library function {self._fn.__name__}>"


class _SealedProperty:
    """A library property as a read-only data descriptor."""

    __slots__ = ("_fget",)

    def __init__(self, fget: Callable[[Any], Any]) -> None:
        self._fget = fget

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return self if obj is None else self._fget(obj)

    def __set__(self, obj: object, value: Any) -> None:
        raise AttributeError("library attributes are read-only")

    def __delete__(self, obj: object) -> None:
        raise AttributeError("library attributes are read-only")


class Sealed(type):
    """Metaclass of every library class a program can reach (see the module doc)."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> Sealed:
        for key, value in list(namespace.items()):
            if key.startswith("_"):
                continue  # unreachable from programs; dunders must stay real functions
            if isinstance(value, FunctionType):
                namespace[key] = _SealedFunction(value)
            elif isinstance(value, staticmethod):
                namespace[key] = _SealedFunction(value.__func__)
            elif isinstance(value, property):
                if value.fget is None or value.fset is not None:
                    raise VcpInternalError(f"{name}.{key}: library properties must be read-only")
                namespace[key] = _SealedProperty(value.fget)
        return super().__new__(mcls, name, bases, namespace)

    def __setattr__(cls, name: str, value: Any) -> None:
        raise ProgramError(f"the library class {cls.__name__} cannot be changed", rule="read-only")

    def __delattr__(cls, name: str) -> None:
        raise ProgramError(f"the library class {cls.__name__} cannot be changed", rule="read-only")


# ---------------------------------------------------------------- context


@dataclass(frozen=True, slots=True)
class Output:
    """One ``write_to_socket`` call: a secret vector, or public values.

    ``fraction_bits`` is set by ``sfix.write_to_socket``: the output is stored
    with the ``fixed`` encoding and f fractional bits. Otherwise None, and
    the output keeps the inputs' encoding (see ``runner``).
    """

    node: Node | None
    public: FieldArray | None
    fraction_bits: int | None = None

    @property
    def length(self) -> int:
        if self.node is not None:
            return self.node.length
        assert self.public is not None
        return len(self.public)


class ProgramContext:
    """One execution's state as its library objects see it (worker thread only).

    Args:
        engine: the lazy engine of this execution.
        budget: the step budget; library code charges one step per element.
        inputs: every input secret's shares, concatenated in input order (or None).
        encodings: per input secret, (number of elements, encoding kind,
            fraction bits) -- how ``sfix.read_from_socket`` reads them.

    Attributes:
        bit_length: k, the bit length of secret integers (``program.set_bit_length``).
        security: κ, the statistical security parameter (``program.set_security``).
        fixed: (f, k) of sfix (``sfix.set_precision``).
        fixed_inputs: whether the program read inputs as sfix.
    """

    def __init__(
        self,
        engine: Engine,
        budget: Budget,
        inputs: Node | None,
        encodings: list[tuple[int, str, int]] | None = None,
    ) -> None:
        self.engine = engine
        self.encodings = list(encodings or [])
        self.bit_length = DEFAULT_BIT_LENGTH
        self.security = DEFAULT_SECURITY
        self.fixed = DEFAULT_FIXED
        self.fixed_inputs = False
        self.budget = budget
        self.field: PrimeField = engine.field
        self._inputs = inputs
        self._cursor = 0
        self.outputs: list[Output] = []
        self._lines: list[str] = []
        self._partial = ""
        self._log_bytes = 0
        self._truncated = False
        self.last_condition: bool | None = None  # for if_e / else_
        self._zeros: dict[int, Node] = {}

    def __repr__(self) -> str:
        return f"<ProgramContext inputs={self.input_count} outputs={len(self.outputs)}>"

    # -- inputs ---------------------------------------------------------------
    @property
    def input_count(self) -> int:
        return 0 if self._inputs is None else self._inputs.length

    @property
    def inputs_read(self) -> int:
        return self._cursor

    def input_encodings(self, start: int, n: int) -> list[tuple[int, int, str, int]]:
        """The input secrets covering elements [start, start+n): (first, count, kind, f) each."""
        out, offset = [], 0
        for length, kind, bits in self.encodings:
            lo, hi = max(start, offset), min(start + n, offset + length)
            if lo < hi:
                out.append((lo - start, hi - lo, kind, bits))
            offset += length
        return out

    def read_inputs(self, n: int) -> tuple[Node, int]:
        """The next ``n`` input elements: (the input vector, first position)."""
        if n < 1:
            raise ProgramError(f"read_from_socket needs a positive number of values, not {n}", rule="runtime")
        if self._inputs is None or self._cursor + n > self._inputs.length:
            raise ProgramError(
                f"the program reads {self._cursor + n} input values but the execution's input "
                f"secrets hold {self.input_count}; pass more inputs or read fewer",
                rule="inputs",
            )
        start = self._cursor
        self._cursor += n
        self.budget.charge(n)
        return self._inputs, start

    # -- outputs --------------------------------------------------------------
    def add_output(self, output: Output) -> None:
        if len(self.outputs) >= MAX_OUTPUTS:
            raise ProgramError(f"a program may declare at most {MAX_OUTPUTS} outputs", rule="outputs")
        if not 1 <= output.length <= MAX_OUTPUT_LENGTH:
            raise ProgramError(f"an output holds 1..{MAX_OUTPUT_LENGTH} values, not {output.length}", rule="outputs")
        self.outputs.append(output)

    def zeros(self, n: int) -> Node:
        """A shared zero vector (cached per length: building one costs memory)."""
        node = self._zeros.get(n)
        if node is None:
            self.budget.charge(n)
            node = self._zeros[n] = self.engine.constant(self.field.zeros(n))
        return node

    # -- log ------------------------------------------------------------------
    def write(self, text: str) -> None:
        """Append program output; complete lines go to the log."""
        if self._truncated:
            return
        self.budget.charge(len(text))
        pieces = (self._partial + text).split("\n")
        self._partial = pieces.pop()
        for line in pieces:
            self._add_line(line)
        if len(self._partial) > MAX_LOG_BYTES:
            self._add_line(self._partial)
            self._partial = ""

    def _add_line(self, line: str) -> None:
        if self._truncated:
            return
        size = len(line.encode("utf-8", "replace")) + 1
        if len(self._lines) >= MAX_LOG_LINES or self._log_bytes + size > MAX_LOG_BYTES:
            self._lines.append(LOG_TRUNCATED)
            self._truncated = True
            return
        self._lines.append(line)
        self._log_bytes += size

    def log_lines(self) -> list[str]:
        """The log so far, with any unfinished line."""
        return self._lines + ([self._partial] if self._partial and not self._truncated else [])


_local = threading.local()


@contextmanager
def activate(ctx: ProgramContext) -> Iterator[ProgramContext]:
    """Make ``ctx`` the current context of this thread while the program runs."""
    previous = getattr(_local, "ctx", None)
    _local.ctx = ctx
    try:
        yield ctx
    finally:
        _local.ctx = previous


def current() -> ProgramContext:
    """The context of the program running in this thread."""
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        raise ProgramError("library objects can only be used while a program runs", rule="runtime")
    return ctx  # type: ignore[no-any-return]
