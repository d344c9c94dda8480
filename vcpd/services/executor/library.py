"""The namespace a vcpd program runs in: MP-SPDZ's high-level API.

:func:`build_namespace` returns, for one execution, the names an MP-SPDZ
program expects -- ``sint``, ``sintbit``, ``cint``, ``regint``, ``sfix``,
``cfix``, ``Array``, ``Matrix``, ``MultiArray``, ``MemValue``, ``program``
(``set_bit_length``, ``set_security``), ``print_ln``, ``for_range`` and
friends, ``if_else``, ``tree_reduce``, ``sum``, ``min``/``max`` (secret
comparisons for secrets, the builtins otherwise) and the socket shims (``listen``,
``acceptclientconnection``, ``listen_for_clients``,
``accept_client_connection``), with which the Ephemeral README program and the
millionaires program run unchanged. Loops are real Python loops that call the
body with the index (as ``regint``); the lazy engine merges their independent
products (and comparisons...) into shared rounds, so nothing needs unrolling.
Names from MP-SPDZ that vcpd does not run yet (``sfloat``, ``sgf2n``...) exist and raise a clear
``ProgramError`` when used.

The free functions are bound methods of a per-execution :class:`Library`,
which programs cannot modify (see :mod:`.context` for why that matters).

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math` and its siblings.
"""

from __future__ import annotations

import builtins
import operator
from collections.abc import Callable, Iterable
from typing import Any, Final

from vcpd.errors import ProgramError

from .budget import Guard
from .containers import Array
from .context import ProgramContext, Sealed, to_index, unsupported
from .matrix import Matrix, MemValue, MultiArray
from .fixed import cfix, sfix
from .nonlinear_ops import check_lengths
from .types import SECRET_PLACEHOLDER, cint, regint, sint, sintbit

__all__ = ["MIN_SECURITY", "UNSUPPORTED_NAMES", "Library", "build_namespace", "format_line"]

MIN_SECURITY: Final = 40
"""The smallest statistical security parameter a program may choose."""

UNSUPPORTED_NAMES: Final = ("sfloat", "cfloat", "sgf2n", "cgf2n", "sbit", "sbitint", "sbitvec")
"""MP-SPDZ types a program may name but not use yet."""


class _Unsupported(metaclass=Sealed):
    """Stands for an MP-SPDZ name vcpd does not implement: any use raises."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: object, **kwargs: object) -> Any:
        raise unsupported(self._name)

    def __getattr__(self, attribute: str) -> Any:
        raise unsupported(f"{self._name}.{attribute}")

    def __repr__(self) -> str:
        return f"<unsupported {self._name}>"


class _ProgramOptions(metaclass=Sealed):
    """MP-SPDZ's ``program`` object: the bit length and security of secret
    integers; the other compiler options are accepted and ignored."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: ProgramContext) -> None:
        self._ctx = ctx

    def set_bit_length(self, bits: int) -> None:
        """k: secret integers are signed k-bit values (comparisons use k+1 bits)."""
        k = operator.index(bits)
        if k < 1:
            raise ProgramError(f"a bit length must be positive, not {k}", rule="runtime")
        check_lengths(self._ctx.engine, k, self._ctx.security)
        self._ctx.bit_length = k

    def set_security(self, kappa: int) -> None:
        """κ: statistical security of the masking protocols (at least 40)."""
        value = operator.index(kappa)
        if value < MIN_SECURITY:
            raise ProgramError(f"statistical security below {MIN_SECURITY} bits is refused", rule="runtime")
        check_lengths(self._ctx.engine, self._ctx.bit_length, value)
        self._ctx.security = value

    @property
    def bit_length(self) -> int:
        return self._ctx.bit_length

    @property
    def security(self) -> int:
        return self._ctx.security

    def use_edabit(self, on: object = True) -> None:
        pass

    def use_split(self, n: object = None) -> None:
        pass

    def use_square(self, on: object = True) -> None:
        pass

    def use_trunc_pr(self, on: object = True) -> None:
        pass

    def __repr__(self) -> str:
        return "<program options>"


def _show(value: object) -> str:
    """How print_ln renders one argument; secrets show a placeholder, never a share."""
    if isinstance(value, sint | sfix):
        return SECRET_PLACEHOLDER
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, MemValue):
        return _show(value.read())
    return str(value)


def format_line(fmt: object, args: tuple[object, ...]) -> str:
    """MP-SPDZ's ``%s`` formatting: one ``%s`` per argument, nothing else interpreted."""
    text = fmt if isinstance(fmt, str) else str(fmt)
    pieces = text.split("%s")
    if len(pieces) - 1 != len(args):
        raise ProgramError(
            f"print_ln: the format has {len(pieces) - 1} '%s' but {len(args)} values were given", rule="runtime"
        )
    out = [pieces[0]]
    for arg, piece in zip(args, pieces[1:], strict=True):
        out.append(_show(arg))
        out.append(piece)
    return "".join(out)


def _public_bound(x: object, what: str) -> int:
    if isinstance(x, sint):
        raise ProgramError(f"{what} must be public; a secret cannot bound a loop", rule="secret-branch")
    return to_index(x)


def _public_condition(x: object, what: str) -> bool:
    if isinstance(x, sint):
        raise ProgramError(f"{what} needs a public condition; use if_else for secrets", rule="secret-branch")
    return bool(x)


class Library(metaclass=Sealed):
    """The free functions of one execution's namespace."""

    __slots__ = ("_ctx", "_guard")

    def __init__(self, ctx: ProgramContext) -> None:
        self._ctx = ctx
        self._guard = Guard(ctx.budget)

    # -- output ---------------------------------------------------------------
    def print_ln(self, fmt: object = "", *args: object) -> None:
        """Print a line to the execution log (``%s`` per argument)."""
        self._ctx.write(format_line(fmt, args) + "\n")

    def print_str(self, fmt: object = "", *args: object) -> None:
        """Print without a newline."""
        self._ctx.write(format_line(fmt, args))

    def print_ln_if(self, condition: object, fmt: object = "", *args: object) -> None:
        """Print a line if the public condition holds."""
        if _public_condition(condition, "print_ln_if"):
            self.print_ln(fmt, *args)

    def print_ln_to(self, player: object, fmt: object = "", *args: object) -> None:
        raise unsupported("print_ln_to (a VCP-private output)")

    def crash(self, condition: object = True) -> None:
        """Stop the program with an error (if the public condition holds)."""
        if _public_condition(condition, "crash"):
            raise ProgramError("the program called crash()", rule="crash")

    def runtime_error_if(self, condition: object, message: object, *args: object) -> None:
        """Stop the program with ``message`` if the public condition holds."""
        if _public_condition(condition, "runtime_error_if"):
            raise ProgramError(format_line(message, args), rule="crash")

    # -- sockets: bound to the execution's inputs and outputs --------------------
    def listen(self, port: object) -> None:
        """No-op: inputs come from the execution's secrets (kept for MP-SPDZ programs)."""
        to_index(port)

    listen_for_clients = listen

    def acceptclientconnection(self, socket_id: object, port: object) -> regint:
        """No-op: returns the one client socket (0)."""
        to_index(port)
        return regint(0)

    def accept_client_connection(self, port: object) -> regint:
        to_index(port)
        return regint(0)

    def closeclientconnection(self, socket_id: object) -> None:
        pass

    # -- control flow -----------------------------------------------------------
    def for_range(self, start: object, stop: object = None, step: object = None) -> Callable[[Any], Any]:
        """``@for_range(n)`` calls the body with each index (as regint)."""
        bounds = [_public_bound(b, "for_range") for b in (start, stop, step) if b is not None]
        indices = self._guard.range(*bounds)

        def decorator(body: Callable[[regint], Any]) -> Callable[[regint], Any]:
            for i in indices:
                body(regint(i))
            return body

        return decorator

    def for_range_opt(self, n_loops: object, budget: object = None) -> Callable[[Any], Any]:
        """``@for_range_opt(n)`` or ``([n, m])`` (nested: the body gets one index per loop)."""
        if isinstance(n_loops, list | tuple):
            return self._nested([_public_bound(n, "for_range_opt") for n in n_loops])
        return self.for_range(n_loops)

    def for_range_parallel(self, n_parallel: object, n_loops: object) -> Callable[[Any], Any]:
        return self.for_range_opt(n_loops)

    def for_range_multithread(
        self, n_threads: object, n_parallel: object, n_loops: object, thread_mem_req: object = None
    ) -> Callable[[Any], Any]:
        return self.for_range_opt(n_loops)

    def for_range_opt_multithread(self, n_threads: object, n_loops: object) -> Callable[[Any], Any]:
        return self.for_range_opt(n_loops)

    def _nested(self, sizes: list[int]) -> Callable[[Any], Any]:
        total = 1
        for n in sizes:
            total *= max(n, 0)
        self._guard.range(total)  # size check and charge

        def decorator(body: Callable[..., Any]) -> Callable[..., Any]:
            def loop(prefix: tuple[regint, ...], depth: int) -> None:
                for i in range(sizes[depth]):
                    index = (*prefix, regint(i))
                    if depth + 1 == len(sizes):
                        body(*index)
                    else:
                        loop(index, depth + 1)

            loop((), 0)
            return body

        return decorator

    def do_while(self, body: Callable[[], Any]) -> Callable[[], Any]:
        """``@do_while``: run the body until it returns a false (public) value."""
        while _public_condition(body(), "do_while"):
            self._ctx.budget.tick()
        return body

    def while_do(self, condition: Callable[..., Any], *args: object) -> Callable[[Any], Any]:
        """``@while_do(cond, *args)``: while cond(*args), args = body(*args)."""

        def decorator(body: Callable[..., Any]) -> Callable[..., Any]:
            state = args
            while _public_condition(condition(*state), "while_do"):
                result = body(*state)
                state = result if isinstance(result, tuple) else (result,) if result is not None else state
                self._ctx.budget.tick()
            return body

        return decorator

    def if_e(self, condition: object) -> Callable[[Any], Any]:
        """``@if_e(c)`` runs the body if the public c holds; pair it with ``@else_``."""
        taken = _public_condition(condition, "if_e")

        def decorator(body: Callable[[], Any]) -> Callable[[], Any]:
            self._ctx.last_condition = taken
            if taken:
                body()
            return body

        return decorator

    def else_(self, body: Callable[[], Any]) -> Callable[[], Any]:
        if self._ctx.last_condition is None:
            raise ProgramError("else_ without a preceding if_e", rule="runtime")
        taken, self._ctx.last_condition = self._ctx.last_condition, None
        if not taken:
            body()
        return body

    # -- values -------------------------------------------------------------------
    def if_else(self, condition: object, a: object, b: object) -> Any:
        """``a`` where the condition is 1, else ``b`` (oblivious for a secret bit)."""
        if isinstance(condition, sint):
            return condition.if_else(a, b)
        return a if _public_condition(condition, "if_else") else b

    def tree_reduce(self, function: Callable[[Any, Any], Any], values: Iterable[Any]) -> Any:
        """Reduce pairwise in a balanced tree (log depth, as MP-SPDZ's util.tree_reduce)."""
        items = list(values)
        if not items:
            raise ProgramError("tree_reduce of nothing", rule="runtime")
        while len(items) > 1:
            self._ctx.budget.charge(len(items))
            paired = [function(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
            items = paired + ([items[-1]] if len(items) % 2 else [])
        return items[0]

    def min(self, *args: Any, **kwargs: Any) -> Any:
        """``min``; of secrets (sint, sfix, their vectors and Arrays) a tree of secret comparisons."""
        return self._extreme(args, kwargs, largest=False)

    def max(self, *args: Any, **kwargs: Any) -> Any:
        """``max``; of secrets a tree of secret comparisons (log depth, vectorised)."""
        return self._extreme(args, kwargs, largest=True)

    def _extreme(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, largest: bool) -> Any:
        items: Any = args[0] if len(args) == 1 else args
        if len(args) == 1 and isinstance(items, Array) and items._secret:
            items = items.get_vector()
        if isinstance(items, sint | sfix) and not kwargs:
            vector = items  # halve the vector: one vector comparison per level
            while len(vector) > 1:
                half = len(vector) // 2
                self._ctx.budget.charge(half)
                low, high = vector[:half], vector[half : 2 * half]
                best = low.max(high) if largest else low.min(high)
                vector = best if len(vector) % 2 == 0 else _join(best, vector[2 * half :])
            return vector
        values = list(items) if not isinstance(items, list | tuple) else items
        if any(isinstance(v, sint | sfix) for v in values):
            if kwargs:
                raise unsupported("min/max of secrets with key or default")
            return self.tree_reduce(lambda a, b: _pick(a, b, largest), values)
        return (builtins.max if largest else builtins.min)(*args, **kwargs)

    def Tensor(self, shape: list[int] | tuple[int, ...], value_type: type) -> Any:  # noqa: N802 - MP-SPDZ's name
        """An Array (one dimension) or a MultiArray."""
        dims = list(shape)
        return Array(dims[0], value_type) if len(dims) == 1 else MultiArray(dims, value_type)

    def sum(self, values: Iterable[Any], start: object = 0) -> Any:
        """``sum``, with one vector node for Arrays, vectors and lists of secrets."""
        ctx = self._ctx
        if isinstance(values, Array | sint):
            total = values.sum() if isinstance(values, Array) else sint._make(ctx, ctx.engine.total(values._node))
            return total if _is_zero(start) else total + start
        items = values if isinstance(values, list | tuple) else None
        if items is not None and len(items) > 1 and _scalars(items) and any(isinstance(v, sint) for v in items):
            ctx.budget.charge(len(items))
            node = ctx.engine.total(ctx.engine.concat([v._node for v in items if isinstance(v, sint)]))
            constant = 0
            for v in items:
                if not isinstance(v, sint):
                    constant += to_index(v)
            result = sint._make(ctx, ctx.engine.add_public(node, constant) if constant else node)
            return result if _is_zero(start) else result + start
        return self._guard.sum(values, start)


def _pick(a: Any, b: Any, largest: bool) -> Any:
    if not isinstance(a, sint | sfix):
        a, b = b, a  # the secret one decides (public values convert)
    return a.max(b) if largest else a.min(b)


def _join(a: Any, b: Any) -> Any:
    """Two secret vectors end to end (same type)."""
    engine = a._ctx.engine
    if isinstance(a, sfix):
        return sfix._make(a._ctx, engine.concat([a._v, b._v]), a._f, a._k)
    return sint._make(a._ctx, engine.concat([a._node, b._node]))


def _is_zero(x: object) -> bool:
    return type(x) is int and x == 0


def _scalars(items: list[Any] | tuple[Any, ...]) -> bool:
    """True if every item is a scalar secret or a public int/cint scalar."""
    for v in items:
        if isinstance(v, sint):
            if v.size != 1:
                return False
        elif isinstance(v, cint):
            if len(v) != 1:
                return False
        elif not isinstance(v, int):
            return False
    return True


def build_namespace(ctx: ProgramContext) -> dict[str, object]:
    """The globals of one program run (fresh objects for every execution)."""
    library = Library(ctx)
    namespace: dict[str, object] = {
        "sint": sint,
        "cint": cint,
        "regint": regint,
        "Array": Array,
        "Matrix": Matrix,
        "MultiArray": MultiArray,
        "MemValue": MemValue,
        "sintbit": sintbit,
        "sfix": sfix,
        "cfix": cfix,
        "program": _ProgramOptions(ctx),
    }
    for name in (
        "print_ln", "print_str", "print_ln_if", "print_ln_to", "crash", "runtime_error_if",
        "listen", "listen_for_clients", "acceptclientconnection", "accept_client_connection",
        "closeclientconnection", "for_range", "for_range_opt", "for_range_parallel",
        "for_range_multithread", "for_range_opt_multithread", "do_while", "while_do", "if_e",
        "else_", "if_else", "tree_reduce", "sum", "Tensor", "min", "max",
    ):  # fmt: skip
        namespace[name] = getattr(library, name)
    for name in UNSUPPORTED_NAMES:
        namespace[name] = _Unsupported(name)
    return namespace
