"""The source rewrite: Python control flow -> calls into `runtime`.

Passes, in order, over a function's AST (nested functions get their own):

1. ``return`` inside a branch or loop becomes ``__ag_do_return``/``__ag_retval``
   assignments. The statements after an ``if`` that returns continue each of
   its branches that can fall through (so both sides of a staged ``if``
   define the return value); after a loop they run under ``if not
   __ag_do_return``.
2. ``break``/``continue`` become flags the same way; a flag joins the loop's test.
3. ``and``/``or``/``not``, chained comparisons and ``a if c else b`` become
   runtime calls (Python's ``and`` would call ``bool()`` on a staged value).
4. Calls become ``__ag.call(f, ...)``, so user functions called from converted
   code (helpers, methods) are converted too.
5. ``if``/``while``/``for`` become nested functions over the variables they
   assign, handed to ``runtime.if_stmt``/``while_stmt``/``for_stmt``.

The converted code is compiled with the original file name and line numbers,
so tracebacks and error messages point at the user's source.
"""

from __future__ import annotations

import ast
import copy
import inspect
import linecache
import itertools
import textwrap
import types
from collections.abc import Callable, Iterator

from ..errors import ConversionError

RUNTIME = "__ag"
_FLAG_RETURN, _RETVAL = "__ag_do_return", "__ag_retval"
_HELPER = "__agf_"
_OPTIONS = "set_loop_options"  # generated function names: never part of a construct's state
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp,
           ast.SetComp, ast.DictComp, ast.GeneratorExp)
_LOOPS = (ast.While, ast.For, ast.AsyncFor)
# Builtins called directly: converting them is pointless, and super/locals must stay.
_DIRECT = frozenset({"super", "locals", "globals", "vars", "len", "isinstance", "print", "getattr",
                     "setattr", "hasattr", "type", "int", "float", "bool", "str", "tuple", "list",
                     "dict", "set", "zip", "enumerate", "iter", "next", "id", "repr", "sorted",
                     "reversed", "map", "filter", "any", "all", "range", "slice", "issubclass",
                     "callable", "hash", "divmod", "frozenset"})


def _called_name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _name(id_: str, store: bool = False) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Store() if store else ast.Load())


def _rt(attr: str) -> ast.Attribute:
    return ast.Attribute(value=_name(RUNTIME), attr=attr, ctx=ast.Load())


def _assign(target: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[_name(target, store=True)], value=value)


def _not(expr: ast.expr) -> ast.UnaryOp:
    return ast.UnaryOp(op=ast.Not(), operand=expr)


def _lambda(body: ast.expr) -> ast.Lambda:
    return ast.Lambda(args=_arguments([]), body=body)


def _def(name: str, params: list[str], body: list[ast.stmt]) -> ast.FunctionDef:
    node = ast.FunctionDef(name=name, args=_arguments(params), body=body, decorator_list=[],
                           returns=None)
    if "type_params" in ast.FunctionDef._fields:  # Python >= 3.12
        node.type_params = []
    return node


def _arguments(names: list[str]) -> ast.arguments:
    return ast.arguments(posonlyargs=[], args=[ast.arg(arg=n) for n in names], vararg=None,
                         kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])


# ---- scope analysis ------------------------------------------------------------------------


def _walk_scope(nodes: list[ast.AST]) -> Iterator[ast.AST]:
    """Every node of these statements, without entering nested scopes (whose own
    name, for a def or class, still counts)."""
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPES):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def assigned_names(stmts: list[ast.stmt]) -> list[str]:
    """Names these statements bind in the enclosing function scope, in order."""
    found: dict[str, None] = {}
    for node in _walk_scope(stmts):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found[node.id] = None
        elif isinstance(node, (ast.Subscript, ast.Attribute)) \
                and isinstance(node.ctx, ast.Store):
            base = node.value  # a[i] = v rebinds the handle a
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                found[base.id] = None
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = None
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                found[(alias.asname or alias.name).split(".")[0]] = None
        elif isinstance(node, ast.ExceptHandler) and node.name:
            found[node.name] = None
    return [n for n in found if not n.startswith(_HELPER)]


def _declared(fn: ast.FunctionDef) -> tuple[set[str], set[str]]:
    """(global, nonlocal) names of a function."""
    glob, nonloc = set(), set()
    for node in _walk_scope(fn.body):
        if isinstance(node, ast.Global):
            glob.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            nonloc.update(node.names)
    return glob, nonloc


def _contains(stmts: list[ast.stmt], kind: type, into_loops: bool) -> bool:
    stack: list[ast.AST] = list(stmts)
    while stack:
        node = stack.pop()
        if isinstance(node, kind):
            return True
        if isinstance(node, _SCOPES) or (not into_loops and isinstance(node, _LOOPS)):
            continue
        stack.extend(n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)
                     or isinstance(n, ast.excepthandler))
    return False


def _always_exits(stmts: list[ast.stmt], kind: type) -> bool:
    """Whether every path through ``stmts`` ends in a ``kind`` statement."""
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, kind):
        return True
    return isinstance(last, ast.If) and _always_exits(last.body, kind) \
        and _always_exits(last.orelse, kind)


# ---- passes 1 and 2: jumps become flags -----------------------------------------------------


class _Jump:
    """Lower one kind of jump statement in a block to a flag assignment."""

    def __init__(self, kind: type, flag: str, replace: Callable[[ast.stmt], list[ast.stmt]],
                 into_loops: bool) -> None:
        self.kind, self.flag, self.replace, self.into_loops = kind, flag, replace, into_loops

    def guard(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        return [ast.If(test=_not(_name(self.flag)), body=stmts, orelse=[])] if stmts else []

    def block(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for k, s in enumerate(stmts):
            rest = stmts[k + 1:]
            if isinstance(s, self.kind):
                return out + self.replace(s)  # what follows is unreachable
            if not _contains([s], self.kind, self.into_loops):
                out.append(s)
                continue
            if isinstance(s, ast.If):
                # What follows continues each branch that can fall through, so every
                # path of a staged if assigns the same variables (no guards needed).
                s.body, s.orelse = (
                    self.block(branch if _always_exits(branch, self.kind)
                               else branch + copy.deepcopy(rest))
                    for branch in (s.body, s.orelse))
                s.body = s.body or [ast.Pass()]
                return out + [s]
            for field in ("body", "orelse", "finalbody"):
                if getattr(s, field, None):
                    setattr(s, field, self.block(getattr(s, field)))
            for handler in getattr(s, "handlers", []):
                handler.body = self.block(handler.body)
            if isinstance(s, _LOOPS):
                _add_loop_test(s, _not(_name(self.flag)))
            return out + [s] + self.guard(self.block(rest))
        return out


def _leading_options(loop: ast.While | ast.For) -> list[ast.Expr]:
    """Remove and return a leading ``set_loop_options(...)`` statement of the loop body."""
    first = loop.body[0] if loop.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Call) \
            and _called_name(first.value.func) == _OPTIONS:
        loop.body = loop.body[1:]
        return [first]
    return []


def _add_loop_test(loop: ast.stmt, test: ast.expr) -> None:
    """``while`` gets ``test and ...``; a ``for`` keeps extra tests for `for_stmt`."""
    if isinstance(loop, ast.While):
        loop.test = ast.BoolOp(op=ast.And(), values=[test, loop.test])
    else:
        loop.ag_extra_tests = [*getattr(loop, "ag_extra_tests", []), test]


def lower_returns(fn: ast.FunctionDef) -> None:
    nested = any(_contains([s], ast.Return, True) for s in fn.body
                 if not isinstance(s, ast.Return))
    if not nested:
        return

    def replace(r: ast.Return) -> list[ast.stmt]:
        value = r.value if r.value is not None else ast.Constant(value=None)
        return [_assign(_FLAG_RETURN, ast.Constant(value=True)), _assign(_RETVAL, value)]

    body = _Jump(ast.Return, _FLAG_RETURN, replace, into_loops=True).block(fn.body)
    fn.body = [_assign(_FLAG_RETURN, ast.Constant(value=False)),
               _assign(_RETVAL, ast.Constant(value=None)), *body,
               ast.Return(value=_name(_RETVAL))]


class _LowerLoopJumps(ast.NodeTransformer):
    """``break``/``continue`` of each loop (innermost first) become flags."""

    def __init__(self) -> None:
        self.count = itertools.count()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        return node  # nested functions are converted on their own

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef

    def _loop(self, node: ast.While | ast.For) -> list[ast.stmt]:
        self.generic_visit(node)
        options = _leading_options(node)
        before: list[ast.stmt] = []
        after: list[ast.stmt] = []
        n = next(self.count)
        if _contains(node.body, ast.Continue, into_loops=False):
            flag = f"__ag_continue_{n}"
            jump = _Jump(ast.Continue, flag, lambda s: [_assign(flag, ast.Constant(True))],
                         into_loops=False)
            node.body = [_assign(flag, ast.Constant(False)), *jump.block(node.body)]
        if _contains(node.body, ast.Break, into_loops=False):
            flag = f"__ag_break_{n}"
            jump = _Jump(ast.Break, flag, lambda s: [_assign(flag, ast.Constant(True))],
                         into_loops=False)
            node.body = jump.block(node.body)
            before.append(_assign(flag, ast.Constant(False)))
            _add_loop_test(node, _not(_name(flag)))
            after = jump.guard(node.orelse)
        else:
            after = node.orelse
        node.orelse = []
        node.body = [*options, *node.body]
        return [*before, node, *after]

    visit_While = visit_For = _loop


# ---- pass 3: boolean operators and conditional expressions ----------------------------------


class _Expressions(ast.NodeTransformer):
    def __init__(self, where: Callable[[ast.AST], str]) -> None:
        self.where = where

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.Call:
        self.generic_visit(node)
        fn = "and_" if isinstance(node.op, ast.And) else "or_"
        return ast.Call(func=_rt(fn), args=[_lambda(v) for v in node.values], keywords=[])

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return ast.Call(func=_rt("not_"), args=[node.operand], keywords=[])
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        if len(node.ops) == 1:
            return node
        operands = [node.left, *node.comparators]
        pairs = [ast.Compare(left=copy.deepcopy(a), ops=[op], comparators=[copy.deepcopy(b)])
                 for a, op, b in zip(operands, node.ops, operands[1:])]
        return ast.Call(func=_rt("and_"), args=[_lambda(p) for p in pairs], keywords=[])

    def visit_IfExp(self, node: ast.IfExp) -> ast.Call:
        self.generic_visit(node)
        return ast.Call(func=_rt("if_exp"), args=[node.test, _lambda(node.body),
                                                  _lambda(node.orelse),
                                                  ast.Constant(self.where(node))], keywords=[])


# ---- pass 4: calls ----------------------------------------------------------------------------


class _Calls(ast.NodeTransformer):
    def __init__(self, self_name: str | None) -> None:
        self.self_name = self_name  # first parameter of a method using zero-argument super()

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Name) and func.id == "super" and not node.args \
                and self.self_name is not None:
            node.args = [_name("__class__"), _name(self.self_name)]
            return node
        if isinstance(func, ast.Name) and func.id in _DIRECT or _called_name(func) == _OPTIONS:
            return node
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and func.value.id == RUNTIME:
            return node
        return ast.Call(func=_rt("call"), args=[func, *node.args], keywords=node.keywords)


# ---- pass 5: statements -------------------------------------------------------------------


class _Statements(ast.NodeTransformer):
    def __init__(self, where: Callable[[ast.AST], str], excluded: set[str],
                 declarations: list[ast.stmt]) -> None:
        self.where = where
        self.excluded = excluded  # global and nonlocal names: not part of any state
        self.declarations = declarations  # repeated in each generated function
        self.count = itertools.count()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        return node

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef

    def _state(self, stmts: list[ast.stmt]) -> list[str]:
        return [n for n in assigned_names(stmts) if n not in self.excluded]

    def _def(self, kind: str, params: list[str], body: list[ast.stmt],
             returns: ast.expr) -> ast.FunctionDef:
        return _def(f"{_HELPER}{kind}_{next(self.count)}", params,
                    [*copy.deepcopy(self.declarations), *body, ast.Return(value=returns)])

    @staticmethod
    def _tuple(names: list[str], store: bool = False) -> ast.Tuple:
        return ast.Tuple(elts=[_name(n, store) for n in names],
                         ctx=ast.Store() if store else ast.Load())

    def _call(self, fn: str, args: list[ast.expr], state: list[str]) -> ast.stmt:
        loads = [ast.Call(func=_rt("ld"), args=[_lambda(_name(n)), ast.Constant(n)],
                          keywords=[]) for n in state]
        call = ast.Call(func=_rt(fn), args=[*args, ast.Tuple(elts=loads, ctx=ast.Load()),
                                            ast.Constant(tuple(state))], keywords=[])
        if not state:
            return ast.Expr(value=call)
        return ast.Assign(targets=[self._tuple(state, store=True)], value=call)

    def visit_If(self, node: ast.If) -> list[ast.stmt]:
        state = self._state(node.body + node.orelse)
        self.generic_visit(node)
        true = self._def("if_true", state, node.body, self._tuple(state))
        false = self._def("if_false", state, node.orelse or [ast.Pass()], self._tuple(state))
        call = self._call("if_stmt", [node.test, _name(true.name), _name(false.name)], state)
        call.value.args.append(ast.Constant(self.where(node)))
        return [true, false, call]

    @staticmethod
    def _options(node: ast.While | ast.For) -> ast.expr:
        """The loop's ``set_loop_options(...)`` call (or None), evaluated before the loop."""
        found = _leading_options(node)
        node.body = node.body or [ast.Pass()]
        return found[0].value if found else ast.Constant(None)

    def visit_While(self, node: ast.While) -> list[ast.stmt]:
        state = self._state(node.body)
        options = self._options(node)
        self.generic_visit(node)
        test = self._def("test", state, [], node.test)
        body = self._def("body", state, node.body, self._tuple(state))
        call = self._call("while_stmt", [_name(test.name), _name(body.name)], state)
        call.value.args += [ast.Constant(self.where(node)), options]
        return [test, body, call, *node.orelse]

    def visit_For(self, node: ast.For) -> list[ast.stmt]:
        state = self._state([ast.Assign(targets=[node.target], value=ast.Constant(None)),
                             *node.body])
        options = self._options(node)
        extra = getattr(node, "ag_extra_tests", [])
        self.generic_visit(node)
        it = node.iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range":
            it = ast.Call(func=_rt("range_"), args=it.args, keywords=it.keywords)
        item = "__ag_item"
        body = self._def("body", [item, *state],
                         [ast.Assign(targets=[node.target], value=_name(item)), *node.body],
                         self._tuple(state))
        defs = [body]
        test: ast.expr = ast.Constant(None)
        if extra:
            cond = extra[0] if len(extra) == 1 else ast.BoolOp(op=ast.And(), values=extra)
            test_def = self._def("test", state, [], _Expressions(self.where).visit(cond))
            defs.insert(0, test_def)
            test = _name(test_def.name)
        call = self._call("for_stmt", [it, test, _name(body.name)], state)
        call.value.args += [ast.Constant(self.where(node)), options]
        return [*defs, call, *node.orelse]


# ---- the pipeline ---------------------------------------------------------------------------


def transform_function(fn: ast.FunctionDef, filename: str, method_self: str | None) -> None:
    """Rewrite ``fn`` (and, recursively, the functions defined in it) in place."""
    def where(node: ast.AST) -> str:
        return f"{filename}:{getattr(node, 'lineno', '?')}"

    if isinstance(fn, ast.AsyncFunctionDef):
        raise ConversionError(f"{where(fn)}: cannot convert async function {fn.name!r}")
    for node in _walk_scope(fn.body):
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            raise ConversionError(f"{where(node)}: cannot convert {fn.name!r}: it is a "
                                  "generator (yield cannot be staged); compile a function "
                                  "that returns arrays instead")
    for node in _walk_scope(fn.body):
        if isinstance(node, ast.FunctionDef) and node is not fn:
            transform_function(node, filename, None)
    lower_returns(fn)
    fn.body = _flatten(_LowerLoopJumps().visit(s) for s in fn.body)
    fn.body = [_Calls(method_self).visit(_Expressions(where).visit(s)) for s in fn.body]
    glob, nonloc = _declared(fn)
    declarations: list[ast.stmt] = []
    if glob:
        declarations.append(ast.Global(names=sorted(glob)))
    if nonloc:
        declarations.append(ast.Nonlocal(names=sorted(nonloc)))
    statements = _Statements(where, glob | nonloc, declarations)
    fn.body = _flatten(statements.visit(s) for s in fn.body)


def _flatten(items) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for item in items:
        out.extend(item if isinstance(item, list) else [item])
    return out


def _source_of(code: types.CodeType) -> str:
    """The source block of ``code``, read by file and line.

    `inspect.getsource` finds the same block but first resolves the module by
    scanning every loaded module's path, which dominated staging time.
    """
    linecache.checkcache(code.co_filename)
    lines = linecache.getlines(code.co_filename)
    if not lines or code.co_firstlineno > len(lines):
        raise OSError(f"no source lines for {code.co_filename}")
    return "".join(inspect.getblock(lines[code.co_firstlineno - 1:]))


def parse_function(fn: types.FunctionType) -> tuple[ast.FunctionDef, str]:
    """The ``def`` of ``fn`` from its source file, or a `ConversionError` saying why not."""
    code = fn.__code__
    where = f"{code.co_filename}:{code.co_firstlineno}"
    if inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn) \
            or inspect.isasyncgenfunction(fn):
        kind = "a generator" if inspect.isgeneratorfunction(fn) else "asynchronous"
        raise ConversionError(f"{where}: cannot convert {fn.__qualname__!r}: it is {kind} "
                              "(yield/await cannot be staged); compile a function that "
                              "returns arrays instead")
    try:
        source = textwrap.dedent(_source_of(code))  # not __wrapped__'s
    except (OSError, TypeError) as exc:
        raise ConversionError(
            f"{where}: cannot convert {fn.__qualname__!r}: its source code is unavailable "
            f"({exc}); define it in a file, or pass autograph=False and use "
            "wengert.ad.cond / while_loop / fori_loop") from None
    try:
        tree = ast.parse(source)
        ast.increment_lineno(tree, code.co_firstlineno - 1)
    except SyntaxError:  # a lambda inside a larger expression spanning lines
        raise ConversionError(f"{where}: cannot convert {fn.__qualname__!r}: its source "
                              "lines do not parse on their own") from None
    if fn.__name__ == "<lambda>":
        fn_def = _lambda_def(tree, code, where)
    else:
        defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                and n.name == fn.__name__]
        if not defs:
            raise ConversionError(f"{where}: cannot convert {fn.__qualname__!r}: no 'def "
                                  f"{fn.__name__}' at the start of its source")
        fn_def = defs[0]
    fn_def.decorator_list = []
    return fn_def, code.co_filename


def _lambda_def(tree: ast.Module, code: types.CodeType, where: str) -> ast.FunctionDef:
    """The lambda of ``code`` (the only one on its line with its parameters) as a def,
    so that the calls it makes are converted too."""
    params = list(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno
             and [a.arg for a in (*n.args.posonlyargs, *n.args.args, *n.args.kwonlyargs)]
             == params]
    if len(found) != 1:
        raise ConversionError(f"{where}: cannot tell which lambda of this line to convert")
    lam = found[0]
    fn_def = _def(f"{_HELPER}lambda", [], [ast.Return(value=lam.body)])
    fn_def.args = lam.args
    return ast.copy_location(fn_def, lam)


def compile_converted(fn_def: ast.FunctionDef, filename: str,
                      freevars: tuple[str, ...]) -> types.CodeType:
    """Compile a converted ``def`` so that its free variables are ``freevars`` plus the
    runtime, then return the function's code object.

    Inside the factory the ``def`` has a reserved name: under its own name it
    would become a local of the factory, and a recursive call in its body a
    free variable that the original function does not have."""
    name = fn_def.name
    fn_def = copy.copy(fn_def)
    fn_def.name = f"{_HELPER}converted"
    factory = _def(f"{_HELPER}factory", [RUNTIME, *freevars],
                   [fn_def, ast.Return(value=_name(fn_def.name))])
    module = ast.fix_missing_locations(ast.Module(body=[factory], type_ignores=[]))
    code = compile(module, filename, "exec")
    factory_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    converted = next(c for c in factory_code.co_consts
                     if isinstance(c, types.CodeType) and c.co_name == fn_def.name)
    return converted.replace(co_name=name)
