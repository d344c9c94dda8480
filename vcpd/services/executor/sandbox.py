"""Compile untrusted MPC programs into instrumented code that is safe to run.

Programs are source text in a restricted Python dialect (DESIGN §2, §6). They
are parsed with :mod:`ast`, checked against the rules below *before anything
runs* (the first violation raises :class:`~vcpd.errors.ProgramError` with the
line and the rule id), then rewritten so that the run-time half in
:mod:`vcpd.services.executor.budget` can count steps, enforce the deadline and
bound the size of values. The code runs against a namespace of library
objects the executor provides; the only builtins are the whitelist in
:data:`~vcpd.services.executor.budget.SAFE_BUILTINS` plus budget-bound
``range``, ``pow``, ``sum`` and a redirected ``print``.

The model: a program can only reach what its namespace and builtins hand it,
and it cannot walk from those objects to anything else, because every
attribute starting with ``_`` is refused at compile time and every
string-to-attribute door (``getattr``, ``vars``, ``str.format``) is closed.
Library objects must therefore keep everything a program must not touch
behind ``_``-prefixed names.

=====================  =============================================  ===========================================
rule                   refuses                                        why
=====================  =============================================  ===========================================
syntax                 source that does not parse                     --
too-large              > 1 MiB, too many nodes, nesting too deep      compile time; the compiler recurses in C
too-large-value        int constants beyond MAX_INT_BITS              memory (run time: see ``budget``)
no-import              ``import``, ``from ... import``                names come from the namespace only
no-private-attribute   attributes starting ``_``, e.g. ``x._shares``  reach ``__globals__``, library internals
no-internal-attribute  ``gi_ cr_ ag_ tb_ f_ co_`` attributes          ``g.gi_frame.f_back.f_globals``
no-format              ``.format``, ``.format_map``                   fields read attributes: ``'{0.__class__}'``
no-unbounded-method    ``.join``, ``.ljust``... unless called         the size guard only sees direct calls
no-dunder-name         identifiers starting ``__``                    Python internals and the sandbox hooks
no-forbidden-name      ``exec``, ``open``, ``getattr``, ``type``...   dynamic code, introspection, I/O
no-async               ``async def/for/with``, ``await``              no event loop in a program
no-global              ``global``, ``nonlocal``                       nothing needs them
no-class               ``class``                                      dunder methods (``__del__``) run implicitly
no-with                ``with``                                       context managers can swallow exceptions
no-try                 ``try``, ``try*``                              could swallow budget/timeout errors
no-raise               ``raise``                                      fail with ``assert`` instead
no-generator           ``yield``, ``yield from``                      suspended frames; nothing needs them
no-match               ``match``                                      class patterns read attributes by name
no-set                 ``{a, b}``, ``{x for x in ...}``;              iteration order follows per-process hash
                       ``- | & ^`` on dict views (at run time)        seeds, so VCPs would run different steps
=====================  =============================================  ===========================================

Lambdas, comprehensions, generator expressions, f-strings (their fields are
checked like any code), decorators, ``assert``, ``del`` and ``_`` / ``_x`` as
local names are allowed.

This module must not import any vcpd module other than :mod:`vcpd.errors` and
its sibling :mod:`.budget` (layer L4; never net, api, node, daemon or another
service).
"""

from __future__ import annotations

import ast
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import CodeType, TracebackType
from typing import Final

from vcpd.errors import ProgramError, VcpError, VcpInternalError

from .budget import GUARDED_METHODS, MAX_INT_BITS, Budget, Guard, run_builtins

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "FORBIDDEN_NAMES",
    "FORMAT_ATTRIBUTES",
    "INTERNAL_ATTRIBUTE_PREFIXES",
    "MAX_AST_NODES",
    "MAX_NESTING_DEPTH",
    "MAX_SOURCE_BYTES",
    "CompiledProgram",
    "ProgramCache",
    "compile_program",
    "source_digest",
]

MAX_SOURCE_BYTES: Final = 1 << 20
MAX_AST_NODES: Final = 200_000
MAX_NESTING_DEPTH: Final = 100
"""AST depth cap; CPython's compiler recurses in C, and no program needs more."""
DEFAULT_CACHE_SIZE: Final = 64

FORBIDDEN_NAMES: Final = frozenset(
    {
        "__import__", "breakpoint", "bytearray", "classmethod", "compile", "delattr", "dir",
        "eval", "exec", "exit", "getattr", "globals", "hasattr", "help", "input", "locals",
        "memoryview", "object", "open", "property", "quit", "setattr", "staticmethod", "super",
        "type", "vars",
    }
)  # fmt: skip
INTERNAL_ATTRIBUTE_PREFIXES: Final = ("gi_", "cr_", "ag_", "tb_", "f_", "co_")
FORMAT_ATTRIBUTES: Final = frozenset({"format", "format_map"})

_TICK: Final = "__vcpd_tick__"
_FORMAT: Final = "__vcpd_format__"
_METHOD: Final = "__vcpd_method__"
_TEMP: Final = "__vcpd_t{}__"
# operator -> Guard methods for ``a op b`` and ``a op= b`` (hook names: see _hook_name)
_OPERATOR_HOOKS: Final[dict[type[ast.operator], tuple[str, str]]] = {
    ast.Add: ("add", "iadd"),
    ast.Mult: ("mul", "imul"),
    ast.Pow: ("pow", "ipow"),
    ast.LShift: ("lshift", "ilshift"),
    ast.Mod: ("mod", "imod"),
    ast.Sub: ("sub", "isub"),
    ast.BitOr: ("bor", "ibor"),
    ast.BitAnd: ("band", "iband"),
    ast.BitXor: ("bxor", "ibxor"),
}

_REFUSED: Final[dict[type[ast.AST], tuple[str, str]]] = {
    ast.Import: ("imports are not allowed", "no-import"),
    ast.ImportFrom: ("imports are not allowed", "no-import"),
    ast.AsyncFunctionDef: ("async code is not allowed", "no-async"),
    ast.AsyncFor: ("async code is not allowed", "no-async"),
    ast.AsyncWith: ("async code is not allowed", "no-async"),
    ast.Await: ("async code is not allowed", "no-async"),
    ast.Global: ("global and nonlocal statements are not allowed", "no-global"),
    ast.Nonlocal: ("global and nonlocal statements are not allowed", "no-global"),
    ast.ClassDef: ("class definitions are not allowed", "no-class"),
    ast.With: ("with statements are not allowed", "no-with"),
    ast.Try: ("try statements are not allowed", "no-try"),
    ast.TryStar: ("try statements are not allowed", "no-try"),
    ast.Raise: ("raise statements are not allowed", "no-raise"),
    ast.Yield: ("generators (yield) are not allowed", "no-generator"),
    ast.YieldFrom: ("generators (yield) are not allowed", "no-generator"),
    ast.Match: ("match statements are not allowed", "no-match"),
    # Every VCP must run the same steps in the same order; a set of strings
    # iterates in an order set by the process's hash seed.
    ast.Set: ("sets are not allowed: their order differs between VCPs; use a list or a dict", "no-set"),
    ast.SetComp: ("sets are not allowed: their order differs between VCPs; use a list or a dict", "no-set"),
}


def source_digest(source: str) -> str:
    """Hex SHA-256 of the UTF-8 source: the program's identity for allow-lists
    and the cache, computable without compiling."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


def _refuse(node: ast.AST | None, message: str, rule: str) -> ProgramError:
    line = getattr(node, "lineno", None) if node is not None else None
    return ProgramError(f"{message} (rule: {rule})", line=line, rule=rule)


def _check_size(tree: ast.AST) -> None:
    """Count nodes and measure depth without recursion (the rule checker and
    the compiler recurse, so this must run first)."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_AST_NODES:
            raise _refuse(None, f"program has more than {MAX_AST_NODES} syntax nodes", "too-large")
        if depth > MAX_NESTING_DEPTH:
            raise _refuse(node, f"program nests deeper than {MAX_NESTING_DEPTH} levels", "too-large")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _RuleChecker(ast.NodeVisitor):
    """Raises for the first node (in source order) that breaks a rule."""

    def __init__(self) -> None:
        self._direct_calls: set[int] = set()

    def generic_visit(self, node: ast.AST) -> None:
        refused = _REFUSED.get(type(node))
        if refused is not None:
            raise _refuse(node, *refused)
        super().generic_visit(node)

    def _identifier(self, node: ast.AST, name: str | None) -> None:
        if name is None:
            return
        if name in FORBIDDEN_NAMES:
            raise _refuse(node, f"'{name}' is not available in programs", "no-forbidden-name")
        if name.startswith("__"):
            raise _refuse(node, f"name '{name}' starts with '__'; such names are reserved", "no-dunder-name")

    def visit_Name(self, node: ast.Name) -> None:
        self._identifier(node, node.id)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._identifier(node, node.name)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self._identifier(node, node.arg)
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        self._identifier(node, node.arg)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute) and node.func.attr in GUARDED_METHODS:
            self._direct_calls.add(id(node.func))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("_"):
            message = f"attribute '{attr}' starts with '_'; private attributes are not accessible"
            raise _refuse(node, message, "no-private-attribute")
        if attr.startswith(INTERNAL_ATTRIBUTE_PREFIXES):
            raise _refuse(node, f"attribute '{attr}' reaches interpreter internals", "no-internal-attribute")
        if attr in FORMAT_ATTRIBUTES:
            raise _refuse(node, f"'.{attr}' is not allowed; use f-strings or '%'", "no-format")
        if attr in GUARDED_METHODS and id(node) not in self._direct_calls:
            raise _refuse(node, f"'.{attr}' may only be called directly", "no-unbounded-method")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, int) and node.value.bit_length() > MAX_INT_BITS:
            raise _refuse(node, f"integer literal of more than {MAX_INT_BITS} bits", "too-large-value")


def _name(identifier: str) -> ast.Name:
    return ast.Name(id=identifier, ctx=ast.Load())


def _call(hook: str, *args: ast.expr, keywords: list[ast.keyword] | None = None) -> ast.Call:
    return ast.Call(func=_name(hook), args=list(args), keywords=keywords or [])


class _Instrumenter(ast.NodeTransformer):
    """Adds budget ticks and routes risky operations through the guard hooks.

    Only runs on trees the rule checker accepted, so the dunder names it
    introduces cannot collide with, or be reached by, program code.
    """

    def __init__(self) -> None:
        self._temps = 0

    def _tick_stmt(self, at: ast.AST) -> ast.stmt:
        return ast.copy_location(ast.Expr(value=_call(_TICK)), at)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.generic_visit(node)
        node.body.insert(0, self._tick_stmt(node))
        return node

    def visit_For(self, node: ast.For) -> ast.AST:
        self.generic_visit(node)
        node.body.insert(0, self._tick_stmt(node))
        return node

    visit_While = visit_For  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        self.generic_visit(node)
        node.body = ast.BoolOp(op=ast.And(), values=[_call(_TICK), node.body])  # tick() is True
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        self.generic_visit(node)
        node.ifs.insert(0, _call(_TICK))
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        hooks = _OPERATOR_HOOKS.get(type(node.op))
        if hooks is None:
            return node
        folded = _fold(node, hooks[0])
        if folded is not None:
            return folded
        return ast.copy_location(_call(_hook_name(hooks[0]), node.left, node.right), node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        self.generic_visit(node)
        if node.format_spec is None:
            return node  # no width, nothing to bound
        value = _call(_FORMAT, node.value, ast.Constant(node.conversion), node.format_spec)
        return ast.copy_location(ast.FormattedValue(value=value, conversion=-1, format_spec=None), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in GUARDED_METHODS:
            args = [func.value, ast.Constant(func.attr), *node.args]
            return ast.copy_location(_call(_METHOD, *args, keywords=node.keywords), node)
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST | list[ast.stmt]:
        """``t op= v`` becomes ``t = hook(t, v)``; the parts of an attribute or
        subscript target are evaluated once, into temporaries, as Python would."""
        self.generic_visit(node)
        hooks = _OPERATOR_HOOKS.get(type(node.op))
        if hooks is None:
            return node
        setup: list[ast.stmt] = []
        target = node.target
        make: Callable[[ast.expr_context], ast.expr]
        if isinstance(target, ast.Name):
            name = target.id
            make = lambda ctx: ast.Name(id=name, ctx=ctx)  # noqa: E731
        elif isinstance(target, ast.Attribute):
            base, attr = self._hoist(target.value, setup, node), target.attr
            make = lambda ctx: ast.Attribute(value=base(), attr=attr, ctx=ctx)  # noqa: E731
        elif isinstance(target, ast.Subscript):
            base = self._hoist(target.value, setup, node)
            index = self._hoist_index(target.slice, setup, node)
            make = lambda ctx: ast.Subscript(value=base(), slice=index(), ctx=ctx)  # noqa: E731
        else:  # pragma: no cover - the grammar allows no other augmented target
            raise VcpInternalError(f"unexpected augmented assignment target {type(target).__name__}")
        value = _call(_hook_name(hooks[1]), make(ast.Load()), node.value)
        assign = ast.Assign(targets=[make(ast.Store())], value=value)
        return [*setup, ast.copy_location(assign, node)]

    def _hoist(self, expr: ast.expr, setup: list[ast.stmt], at: ast.AST) -> Callable[[], ast.expr]:
        if isinstance(expr, ast.Constant):
            return lambda: ast.Constant(expr.value)
        name = _TEMP.format(self._temps)
        self._temps += 1
        assign = ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())], value=expr)
        setup.append(ast.copy_location(assign, at))
        return lambda: _name(name)

    def _hoist_index(self, expr: ast.expr, setup: list[ast.stmt], at: ast.AST) -> Callable[[], ast.expr]:
        if isinstance(expr, ast.Slice):
            bounds = (expr.lower, expr.upper, expr.step)
            parts = [None if p is None else self._hoist(p, setup, at) for p in bounds]
            return lambda: ast.Slice(*(None if p is None else p() for p in parts))
        if isinstance(expr, ast.Tuple):
            elts = [self._hoist_index(e, setup, at) for e in expr.elts]
            return lambda: ast.Tuple(elts=[e() for e in elts], ctx=ast.Load())
        if isinstance(expr, ast.Starred):
            inner = self._hoist(expr.value, setup, at)
            return lambda: ast.Starred(value=inner(), ctx=ast.Load())
        return self._hoist(expr, setup, at)


def _hook_name(method: str) -> str:
    return f"__vcpd_{method}__"


_FOLDER: Final = Guard(Budget(0))  # only ever given ints, which are never charged


def _fold(node: ast.BinOp, method: str) -> ast.Constant | None:
    """Evaluate ``10**6``-style int arithmetic once, at compile time, under the
    same size checks: loops need not pay a hook call for constants, and
    ``10**10**10`` is refused before the program runs."""
    left, right = node.left, node.right
    if not (isinstance(left, ast.Constant) and isinstance(right, ast.Constant)):
        return None
    if type(left.value) is not int or type(right.value) is not int:
        return None
    try:
        value = getattr(_FOLDER, method)(left.value, right.value)
    except ProgramError as exc:
        raise _refuse(node, str(exc), "too-large-value") from None
    except (ArithmeticError, ValueError):
        return None  # 1 % 0, 1 << -1: fail at run time, where the line is reported anyway
    return ast.copy_location(ast.Constant(value), node)


def _syntax_error(exc: SyntaxError) -> ProgramError:
    return ProgramError(f"syntax error: {exc.msg} (rule: syntax)", line=exc.lineno, rule="syntax")


def _parse(source: str, filename: str) -> ast.Module:
    if len(source) > MAX_SOURCE_BYTES or len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise _refuse(None, f"program source is larger than {MAX_SOURCE_BYTES} bytes", "too-large")
    try:
        return ast.parse(source, filename, mode="exec")
    except SyntaxError as exc:
        raise _syntax_error(exc) from None
    except ValueError as exc:  # e.g. NUL bytes in the source
        raise ProgramError(f"syntax error: {exc} (rule: syntax)", rule="syntax") from None
    except (RecursionError, MemoryError):
        raise _refuse(None, "program nests too deeply to parse", "too-large") from None


@dataclass(frozen=True, eq=False)
class CompiledProgram:
    """A checked and instrumented program, ready to run any number of times.

    Attributes:
        digest: Hex SHA-256 of the source (see :func:`source_digest`).
        source: The source text as submitted.
        filename: Name used in line numbers of errors.
        code: The instrumented code object; only meaningful run via :meth:`run`.
    """

    digest: str
    source: str = field(repr=False)
    filename: str
    code: CodeType = field(repr=False)

    def run(
        self,
        namespace: Mapping[str, object],
        *,
        budget: Budget,
        print_fn: Callable[[str], None] | None = None,
    ) -> dict[str, object]:
        """Run the program in fresh globals and return them (without builtins,
        hooks or any other ``__`` entry).

        Blocking: call it from a worker thread. Raises :class:`ProgramError`
        for everything the program does wrong (rule ``budget``, ``timeout``,
        ``cancelled``, ``too-large-value``, ``recursion`` or ``runtime``, with
        the innermost program line); other :class:`VcpError` raised by library
        objects (an aborted session, missing tuples) propagate unchanged.

        Args:
            namespace: Library objects the program may use (``sint``, ``Array``,
                ``for_range``, ...). Keys must not start with ``__``.
            budget: The step budget and deadline of this run.
            print_fn: Receives each line ``print`` writes; ``None`` drops them.
        """
        reserved = [key for key in namespace if not isinstance(key, str) or key.startswith("__")]
        if reserved:
            raise VcpInternalError(f"program namespace uses reserved names: {reserved!r}")
        guard = Guard(budget)
        env: dict[str, object] = dict(namespace)
        env["__builtins__"] = run_builtins(guard, print_fn)
        env[_TICK] = budget.tick
        env[_FORMAT] = guard.format_value
        env[_METHOD] = guard.method
        for method in (name for pair in _OPERATOR_HOOKS.values() for name in pair):
            env[_hook_name(method)] = getattr(guard, method)
        try:
            exec(self.code, env)  # noqa: S102 - this is the sandbox
        except ProgramError as exc:
            if exc.line is not None:
                raise
            raise ProgramError(str(exc), line=self._line(exc.__traceback__), rule=exc.rule) from None
        except RecursionError as exc:
            raise ProgramError(
                "maximum recursion depth exceeded", line=self._line(exc.__traceback__), rule="recursion"
            ) from None
        except MemoryError as exc:
            line = self._line(exc.__traceback__)
            raise ProgramError("out of memory", line=line, rule="too-large-value") from None
        except VcpError:
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise ProgramError(message, line=self._line(exc.__traceback__), rule="runtime") from exc
        return {key: value for key, value in env.items() if not key.startswith("__")}

    def _line(self, tb: TracebackType | None) -> int | None:
        """The innermost line of this program in a traceback."""
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self.filename:
                line = tb.tb_lineno
            tb = tb.tb_next
        return line


def compile_program(source: str, *, filename: str = "<program>") -> CompiledProgram:
    """Check ``source`` against every rule and compile it with instrumentation.

    Nothing of the program runs here. Raises :class:`ProgramError` naming the
    first violation's line and rule.
    """
    tree = _parse(source, filename)
    _check_size(tree)
    _RuleChecker().visit(tree)
    tree = ast.fix_missing_locations(_Instrumenter().visit(tree))
    try:
        code = compile(tree, filename, "exec", dont_inherit=True, optimize=0)
    except (RecursionError, MemoryError):
        raise _refuse(None, "program nests too deeply to compile", "too-large") from None
    except SyntaxError as exc:  # compile-time checks ast.parse does not do ('return' outside function)
        raise _syntax_error(exc) from None
    return CompiledProgram(digest=source_digest(source), source=source, filename=filename, code=code)


class ProgramCache:
    """A bounded LRU of compiled programs keyed by source digest.

    Compiling is pure, so a digest seen before need not be checked again.
    Safe to share between threads.
    """

    def __init__(self, capacity: int = DEFAULT_CACHE_SIZE) -> None:
        if capacity < 1:
            raise VcpInternalError(f"a program cache needs room for at least one program, not {capacity}")
        self._capacity = capacity
        self._programs: OrderedDict[str, CompiledProgram] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._programs)

    def __contains__(self, digest: object) -> bool:
        return digest in self._programs

    def get(self, digest: str) -> CompiledProgram | None:
        with self._lock:
            program = self._programs.get(digest)
            if program is not None:
                self._programs.move_to_end(digest)
            return program

    def put(self, program: CompiledProgram) -> None:
        with self._lock:
            self._programs[program.digest] = program
            self._programs.move_to_end(program.digest)
            while len(self._programs) > self._capacity:
                self._programs.popitem(last=False)

    def compile(self, source: str, *, filename: str = "<program>") -> CompiledProgram:
        """The cached program for ``source``, compiling (and caching) it if new."""
        program = self.get(source_digest(source))
        if program is None:
            program = compile_program(source, filename=filename)
            self.put(program)
        return program
