"""CEL rule programs translated into Python functions over the plain fact dicts.

Only the CEL the built-in rules use is translated (`SUBSET`); a rule using anything
else is refused translation when it loads and runs on cel-cpp alone (policy.ruleeval
counts those evaluations). The subset is small on purpose: every construct in it is
checked against cel-cpp by tests/test_celcompile.py, edge values included.

Handing facts to cel-cpp costs about 160 ns a value, more than evaluating the rules,
so each rule program is translated once, when rules load, into one Python expression
that reads the fact dicts directly. cel-cpp stays the reference: it type-checks every
rule, and it evaluates a rule whenever the translated function raises. The contract:

    when the function returns, its value and Python types are exactly what cel-cpp's
    `plain_value()` gives for the same inputs; whenever cel-cpp would give an error, or
    the translation cannot promise identical semantics, the function raises
    (`Fallback` for deliberate refusals, anything else for plain errors).

Inputs are what `policy.facts` builds: dicts with str keys, lists, str, bool, None,
float and int within uint64 (cel-cpp holds an int of 2**63 and up as a uint, which no
int arithmetic accepts: the translated arithmetic raises on one; cel-cpp rejects a
variable holding a larger int at conversion, and the translated code does not look at
values it does not read, so facts stay within the plan schema's bounds).

Speed comes from knowing types: a comparison, `!`, `in` or `has` is a bool, a literal
has its type, so most nodes become bare Python operators. Where a value's type is
unknown (every fact), the generated code checks its class inline and calls a helper
only off the common path. Values needed twice live in `:=` temporaries; macros become
comprehensions whose iterable is always a plain name (Python forbids `:=` inside a
comprehension's iterable), and `cel.bind` becomes an assignment expression.
"""

from __future__ import annotations

import functools
import keyword
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence, Union


class Unsupported(Exception):
    """Translation time: the construct is not translated (or the source does not parse)."""


class Fallback(Exception):
    """Run time: identical semantics are not guaranteed here; ask cel-cpp."""


# -- syntax tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: bool | int | float | str | None


@dataclass(frozen=True)
class Ident:
    name: str


@dataclass(frozen=True)
class Select:
    operand: Node
    field: str


@dataclass(frozen=True)
class Has:
    operand: Node
    field: str


@dataclass(frozen=True)
class Index:
    operand: Node
    index: Node


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]
    target: Node | None = None


@dataclass(frozen=True)
class ListLit:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class MapLit:
    entries: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class Unary:
    op: str  # "!" or "-"
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Logic:
    op: str  # "&&" or "||"
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Ternary:
    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class Macro:
    """`range.kind(var, args...)`: all, exists, exists_one, map, filter."""

    kind: str
    range: Node
    var: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Bind:
    var: str
    init: Node
    body: Node


Node = Union[Literal, Ident, Select, Has, Index, Call, ListLit, MapLit, Unary, Binary, Logic, Ternary, Macro, Bind]
_NODE_TYPES = (Literal, Ident, Select, Has, Index, Call, ListLit, MapLit, Unary, Binary, Logic, Ternary, Macro, Bind)

# -- lexer ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\n\r\f]+|//[^\n]*)
  | (?P<bytes>(?:[bB][rR]?|[rR][bB])(?:"|'))
  | (?P<raw>[rR](?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"[^"\n\r]*"|'[^'\n\r]*'))
  | (?P<string>\"\"\"(?:\\[\s\S]|[^\\])*?\"\"\"|'''(?:\\[\s\S]|[^\\])*?'''|"(?:\\.|[^"\\\n\r])*"|'(?:\\.|[^'\\\n\r])*')
  | (?P<double>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<uint>(?:0x[0-9a-fA-F]+|\d+)[uU])
  | (?P<int>0x[0-9a-fA-F]+|\d+)
  | (?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!?:+\-*/%.,()\[\]{}])
    """,
    re.VERBOSE,
)
_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\?\"'`])|[xX]([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-3][0-7]{2})|([\s\S]))"
)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_RESERVED = frozenset(
    "as break const continue else for function if import let loop package namespace return var void while".split()
)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class _Token:
    kind: str  # space is dropped; "op", "ident", "int", "double", "string", "end"
    text: str
    pos: int
    value: Any = None


def _newlines(body: str, quote: int) -> str:
    """Line breaks inside a triple-quoted literal read as `\\n`, as cel-cpp reads them."""
    return body.replace("\r\n", "\n").replace("\r", "\n") if quote == 3 else body


def _unescape(body: str, pos: int) -> str:
    def one(match: re.Match[str]) -> str:
        simple, hex2, hex4, hex8, octal, bad = match.groups()
        if bad is not None:
            raise Unsupported(f"syntax error at {pos}: invalid escape \\{bad}")
        if simple is not None:
            return _SIMPLE_ESCAPES.get(simple, simple)
        code = int(hex2 or hex4 or hex8, 16) if octal is None else int(octal, 8)
        if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            raise Unsupported(f"syntax error at {pos}: invalid code point {code:#x}")
        return chr(code)

    return _ESCAPE.sub(one, body)


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise Unsupported(f"syntax error at {pos}: unexpected {source[pos]!r}")
        kind, text = match.lastgroup or "", match.group()
        if kind == "bytes" or kind == "uint":
            raise Unsupported(f"{kind} literals are not translated")
        if kind == "raw":
            quote = 3 if text[1:4] in ('"""', "'''") else 1
            tokens.append(_Token("string", text, pos, _newlines(text[1 + quote : -quote], quote)))
        elif kind == "string":
            quote = 3 if text[:3] in ('"""', "'''") else 1
            tokens.append(_Token("string", text, pos, _unescape(_newlines(text[quote:-quote], quote), pos)))
        elif kind == "double":
            tokens.append(_Token("double", text, pos, float(text)))
        elif kind == "int":
            tokens.append(_Token("int", text, pos, int(text, 16) if text.startswith("0x") else int(text, 10)))
        elif kind != "space":
            tokens.append(_Token(kind, text, pos))
        pos = match.end()
    tokens.append(_Token("end", "", pos))
    return tokens


# -- parser -----------------------------------------------------------------------------

_RELATIONS = frozenset(["<", "<=", ">", ">=", "==", "!=", "in"])
_MACROS = {"all": (2,), "exists": (2,), "exists_one": (2,), "map": (2, 3), "filter": (2,)}


class _Parser:
    """Recursive descent over CEL's grammar (cel-spec langdef.md), macros expanded as cel-cpp does."""

    def __init__(self, source: str) -> None:
        self.tokens = _tokenize(source)
        self.at = 0
        self.last_number: Node | None = None

    def parse(self) -> Node:
        node = self.expr()
        self.expect("end")
        return node

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token.kind in ("op", "ident") and token.text == text:
            self.at += 1
            return True
        return False

    def expect(self, text: str) -> _Token:
        token = self.take()
        if (token.kind == "end" and text == "end") or (token.kind in ("op", "ident") and token.text == text):
            return token
        raise Unsupported(f"syntax error at {token.pos}: expected {text!r}, found {token.text or 'end of input'!r}")

    def expr(self) -> Node:
        condition = self.logic("||", self.conjunction)
        if not self.accept("?"):
            return condition
        then = self.logic("||", self.conjunction)  # CEL: no ternary nested unparenthesized here
        self.expect(":")
        return Ternary(condition, then, self.expr())

    def conjunction(self) -> Node:
        return self.logic("&&", self.relation)

    def logic(self, op: str, operand: Callable[[], Node]) -> Node:
        operands = [operand()]
        while self.accept(op):
            operands.append(operand())
        return operands[0] if len(operands) == 1 else Logic(op, tuple(operands))

    def relation(self) -> Node:
        node = self.addition()
        while self.peek().text in _RELATIONS and self.peek().kind in ("op", "ident"):
            node = Binary(self.take().text, node, self.addition())
        return node

    def addition(self) -> Node:
        node = self.multiplication()
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            node = Binary(self.take().text, node, self.multiplication())
        return node

    def multiplication(self) -> Node:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().text in ("*", "/", "%"):
            node = Binary(self.take().text, node, self.unary())
        return node

    def unary(self) -> Node:
        token = self.peek()
        if token.kind != "op" or token.text not in ("!", "-"):
            return self.member()
        count = 0
        while self.accept(token.text):
            count += 1
        operand_token = self.peek()
        operand = self.member()
        number = operand_token.kind in ("int", "double") and operand is self.last_number
        if token.text == "-" and count % 2 and number and isinstance(operand, Literal):
            assert isinstance(operand.value, (int, float))
            return Literal(-operand.value)  # a signed literal: -9223372036854775808 is an int
        # cel-cpp drops pairs: `!!x` is x and `--x` is x, whatever their types.
        return Unary(token.text, operand) if count % 2 else operand

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.accept("."):
                name = self.identifier()
                if self.accept("("):
                    node = self.receiver_call(node, name, self.arguments(")"))
                elif self.peek().text == "{" and self.peek().kind == "op":
                    raise Unsupported("message construction is not translated")
                else:
                    node = Select(node, name)
            elif self.accept("["):
                index = self.expr()
                self.expect("]")
                node = Index(node, index)
            else:
                return node

    def identifier(self) -> str:
        token = self.take()
        if token.kind != "ident" or token.text in ("true", "false", "null", "in") or token.text in _RESERVED:
            raise Unsupported(f"syntax error at {token.pos}: expected an identifier, found {token.text or 'end of input'!r}")
        return token.text

    def arguments(self, close: str) -> tuple[Node, ...]:
        args: list[Node] = []
        while not self.accept(close):
            args.append(self.expr())
            if not self.accept(","):
                self.expect(close)
                break
        return tuple(args)

    def primary(self) -> Node:
        token = self.peek()
        if token.kind in ("int", "double"):
            self.take()
            if token.kind == "double" and token.value - token.value != 0.0:
                raise Unsupported(f"non-finite double literal at {token.pos}")
            self.last_number = Literal(token.value)  # its int range is checked once the sign is known
            return self.last_number
        if token.kind == "string":
            self.take()
            return Literal(token.value)
        if token.kind == "ident" and token.text in ("true", "false", "null"):
            self.take()
            return Literal({"true": True, "false": False, "null": None}[token.text])
        if self.accept("("):
            node = self.expr()
            self.expect(")")
            return node
        if self.accept("["):
            return ListLit(self.arguments("]"))
        if self.accept("{"):
            return self.map_literal()
        if token.kind == "op" and token.text == ".":
            raise Unsupported("leading-dot (root scope) identifiers are not translated")
        name = self.identifier()
        if self.accept("("):
            return self.global_call(name, self.arguments(")"))
        if self.peek().text == "{" and self.peek().kind == "op":
            raise Unsupported("message construction is not translated")
        return Ident(name)

    def map_literal(self) -> Node:
        entries: list[tuple[Node, Node]] = []
        while not self.accept("}"):
            key = self.expr()
            self.expect(":")
            entries.append((key, self.expr()))
            if not self.accept(","):
                self.expect("}")
                break
        return MapLit(tuple(entries))

    def global_call(self, name: str, args: tuple[Node, ...]) -> Node:
        if name == "has" and len(args) == 1:
            if not isinstance(args[0], Select):
                raise Unsupported("syntax error: has() argument must be a field selection")
            return Has(args[0].operand, args[0].field)
        return Call(name, args)

    def receiver_call(self, target: Node, name: str, args: tuple[Node, ...]) -> Node:
        if name in _MACROS and len(args) in _MACROS[name]:
            if not isinstance(args[0], Ident):
                raise Unsupported(f"syntax error: {name}() variable name must be a simple identifier")
            return Macro(name, target, args[0].name, args[1:])
        if isinstance(target, Ident) and target.name == "cel" and name == "bind" and len(args) == 3:
            if not isinstance(args[0], Ident):
                raise Unsupported("syntax error: cel.bind() variable name must be a simple identifier")
            return Bind(args[0].name, args[1], args[2])
        if isinstance(target, Ident) and target.name == "math" and name in ("greatest", "least"):
            if not args:
                raise Unsupported(f"syntax error: math.{name}() needs arguments")
            return Call(f"math.{name}", args)
        return Call(name, args, target)


@functools.lru_cache(maxsize=256)
def parse(source: str) -> Node:
    """The syntax tree of one CEL expression; `Unsupported` on syntax errors.

    Remembered: rules load parses each program twice, to translate it and to find the
    facts it reads (policy.rulecompile.fact_keys); a tree is immutable."""
    try:
        return _Parser(source).parse()
    except RecursionError:
        raise Unsupported("expression nests too deeply") from None


# -- code generation --------------------------------------------------------------------

#: cel-cpp aborts an evaluation past this many comprehension steps (measured: 9,999 pass).
ITERATION_BUDGET = 10_000

DYN, BOOL, INT, DOUBLE, STRING, NULL, LIST, MAP = "dyn", "bool", "int", "double", "string", "null", "list", "map"
_PY_CLASS = {BOOL: "_bool", INT: "_int", DOUBLE: "_float", STRING: "_str", LIST: "_list", MAP: "_dict"}
#: CEL types (static, as the translator infers them) that `==` and `<` take as they are;
#: their Python classes at run time are `_SCALAR_CLASSES` and `_ORDERED_CLASSES`.
_SCALAR_TYPES = frozenset([BOOL, INT, DOUBLE, STRING, NULL])
_ORDERED_TYPES = frozenset([BOOL, INT, DOUBLE, STRING])
_COMPARISON_HELPERS = {"<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}
_ARITHMETIC_HELPERS = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div"}

#: The CEL the translator handles: what the built-in rules use (a test keeps the two
#: equal). Named as `features` names them: node kinds, operators, macros, literals by
#: type, functions by name and arity (`.f/n` a method).
SUBSET = frozenset(
    {
        "ident",
        "select",
        "index",
        "list",
        "ternary",
        "bind",
        "literal:bool",
        "literal:int",
        "literal:double",
        "literal:string",
        "unary !",
        "&&",
        "||",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "macro:filter",
        "macro:map",
        "string/1",
        ".size/0",
        ".join/1",
    }
)


def features(node: Node) -> set[str]:
    """The constructs an expression uses, named as in `SUBSET`."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Literal):
            found.add("literal:" + {bool: "bool", int: "int", float: "double", str: "string"}.get(type(item.value), "null"))
        elif isinstance(item, Call):
            found.add(f"{'.' if item.target is not None else ''}{item.function}/{len(item.args)}")
        elif isinstance(item, Unary):
            found.add("unary " + item.op)
        elif isinstance(item, (Binary, Logic)):
            found.add(item.op)
        elif isinstance(item, Macro):
            found.add("macro:" + item.kind)
        else:
            found.add({ListLit: "list", MapLit: "map"}.get(type(item), type(item).__name__.lower()))
        stack.extend(_children(item))
    return found


@dataclass(frozen=True)
class Code:
    """Python expression text, the CEL type it is known to have, and whether it may be repeated
    (a name or literal: cheap and without effects)."""

    text: str
    type: str = DYN
    atomic: bool = False


def _children(node: Node) -> list[Node]:
    found: list[Node] = []
    for value in vars(node).values():
        for item in value if isinstance(value, tuple) else (value,):
            for part in item if isinstance(item, tuple) else (item,):  # map entries are pairs
                if isinstance(part, _NODE_TYPES):
                    found.append(part)
    return found


def _uses(node: Node, name: str) -> bool:
    """Whether `name` occurs free in `node` (macro and bind variables shadow it)."""
    if isinstance(node, Ident):
        return node.name == name
    if isinstance(node, Macro):
        return _uses(node.range, name) or (node.var != name and any(_uses(a, name) for a in node.args))
    if isinstance(node, Bind):
        return _uses(node.init, name) or (node.var != name and _uses(node.body, name))
    return any(_uses(child, name) for child in _children(node))


def fields_read(node: Node, name: str) -> frozenset[str] | None:
    """The fields of variable `name` that `node` reads where it occurs free (macro and bind
    variables shadow it): `name.field` and `has(name.field)`; None where `name` itself is
    used other than that (passed whole, indexed, compared)."""
    if isinstance(node, (Select, Has)) and isinstance(node.operand, Ident) and node.operand.name == name:
        return frozenset([node.field])
    if isinstance(node, Ident):
        return None if node.name == name else frozenset()
    if isinstance(node, Macro):
        parts = [node.range, *(node.args if node.var != name else ())]
    elif isinstance(node, Bind):
        parts = [node.init, *((node.body,) if node.var != name else ())]
    else:
        parts = _children(node)
    return _union(fields_read(part, name) for part in parts)


def element_fields_read(node: Node, collection: str) -> frozenset[str] | None:
    """The fields of the elements of list variable `collection` that `node` reads: through
    the variable of a macro over it (`models.filter(model, model.name != "")`, also over
    what such a `filter` keeps); None where the list or an element is used otherwise."""
    if isinstance(node, Ident):
        return None if node.name == collection else frozenset()
    if isinstance(node, Macro):
        over_list = isinstance(node.range, Ident) and node.range.name == collection
        found = [frozenset() if over_list else element_fields_read(node.range, collection)]
        if _elements_of(node.range, collection):
            found += [fields_read(arg, node.var) for arg in node.args]
        if node.var != collection:
            found += [element_fields_read(arg, collection) for arg in node.args]
        return _union(found)
    if isinstance(node, Bind):
        parts = [node.init, *((node.body,) if node.var != collection else ())]
        return _union(element_fields_read(part, collection) for part in parts)
    return _union(element_fields_read(part, collection) for part in _children(node))


def _elements_of(node: Node, collection: str) -> bool:
    """Whether `node`'s items are items of `collection` itself (the list, or a filter of it)."""
    if isinstance(node, Ident):
        return node.name == collection
    return isinstance(node, Macro) and node.kind == "filter" and _elements_of(node.range, collection)


def _union(parts: Iterable[frozenset[str] | None]) -> frozenset[str] | None:
    """All the fields read, or None when any part reads the whole."""
    found: set[str] = set()
    for part in parts:
        if part is None:
            return None
        found |= part
    return frozenset(found)


class _Translator:
    """Syntax tree to Python text. `depth` numbers the temporaries (`_t0`, `_t1`, ...) like
    registers: a node's own temporaries are `_t{depth}` and up, and what it evaluates while
    one of them is still needed gets a higher depth. Few distinct names matter: inside a
    comprehension every temporary is a closure cell, and each cell costs every call."""

    def __init__(self, variables: Sequence[str]) -> None:
        self.variables = frozenset(variables)
        self.counter = 0

    def once(self, code: Code, depth: int) -> tuple[str, str]:
        """(first use, later uses) of a value used more than once: `_t{depth}` unless atomic."""
        if code.atomic:
            return code.text, code.text
        return f"(_t{depth} := {code.text})", f"_t{depth}"

    def truth(self, code: Code, depth: int) -> str:
        """A Python bool, or raise: CEL conditions and logic operands must be bools."""
        if code.type == BOOL:
            return code.text
        if code.type != DYN:  # a literal or expression known not to be a bool
            return f"_not_bool({code.text})"
        first, again = self.once(code, depth)
        return f"({first} is True or ({again} is not False and _not_bool({again})))"

    def same_class(self, a: Code, b: Code, depth: int, allowed: frozenset[str], suffix: str) -> tuple[str, str, str]:
        """(condition, a, b): a then b evaluated once (b translated at depth + 1); the condition
        holds when both have the same Python class, one of `allowed`."""
        a_first, a_name = self.once(a, depth)
        b_first, b_name = self.once(b, depth + 1)
        if a.type in allowed and b.type == DYN and a.atomic:
            return f"{b_first}.__class__ is {_PY_CLASS[a.type]}", a_name, b_name
        if b.type in allowed and a.type == DYN and b.atomic:
            return f"{a_first}.__class__ is {_PY_CLASS[b.type]}", a_name, b_name
        if a.type in allowed or b.type in allowed:
            return f"{a_first}.__class__ is {b_first}.__class__", a_name, b_name
        return f"{a_first}.__class__ is {b_first}.__class__ {suffix}", a_name, b_name

    def translate(self, node: Node, scope: dict[str, Code], depth: int) -> Code:
        method: Callable[[Any, dict[str, Code], int], Code] = getattr(self, "on_" + type(node).__name__.lower())
        return method(node, scope, depth)

    def on_literal(self, node: Literal, scope: dict[str, Code], depth: int) -> Code:
        value = node.value
        if value is None or isinstance(value, bool):
            return Code(repr(value), NULL if value is None else BOOL, True)
        if isinstance(value, int):
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise Unsupported(f"invalid int literal {value}")
            return Code(repr(value) if value >= 0 else f"({value!r})", INT, True)
        if isinstance(value, float):
            return Code(repr(value) if value > 0 or repr(value) == "0.0" else f"({value!r})", DOUBLE, True)
        return Code(repr(value), STRING, True)

    def on_ident(self, node: Ident, scope: dict[str, Code], depth: int) -> Code:
        if node.name in scope:
            return scope[node.name]
        if node.name in self.variables:
            return Code(node.name, DYN, True)
        raise Unsupported(f"undeclared reference to {node.name!r}")

    def on_select(self, node: Select, scope: dict[str, Code], depth: int) -> Code:
        operand = self.translate(node.operand, scope, depth)
        if operand.type not in (DYN, MAP):
            return Code(f"_no_field({operand.text}, {node.field!r})")
        return Code(f"{operand.text}[{node.field!r}]")  # KeyError: no such key; TypeError: not a map

    def on_index(self, node: Index, scope: dict[str, Code], depth: int) -> Code:
        operand, index = self.translate(node.operand, scope, depth), self.translate(node.index, scope, depth)
        if index.type == STRING and index.atomic and operand.type in (DYN, MAP):
            return Code(f"{operand.text}[{index.text}]")  # str keys match only str keys
        return Code(f"_index({operand.text}, {index.text})")

    def on_listlit(self, node: ListLit, scope: dict[str, Code], depth: int) -> Code:
        return Code("[" + ", ".join(self.translate(item, scope, depth).text for item in node.items) + "]", LIST)

    def on_unary(self, node: Unary, scope: dict[str, Code], depth: int) -> Code:
        operand = self.translate(node.operand, scope, depth)
        if node.op == "!":
            if operand.type == BOOL:
                return Code(f"(not {operand.text})", BOOL)
            if operand.type != DYN:
                return Code(f"_not_bool({operand.text})", BOOL)
            first, again = self.once(operand, depth)
            return Code(f"({first} is False or ({again} is not True and _not_bool({again})))", BOOL)
        raise Unsupported(f"unary {node.op} is not translated")

    def on_logic(self, node: Logic, scope: dict[str, Code], depth: int) -> Code:
        # Left to right with short-circuit: where CEL would absorb an error (`error || true`)
        # Python raises, and cel-cpp gives the answer.
        neutral = Literal(node.op == "&&")  # `true &&`, `false ||`: the engine's programs have them
        # Identity, not ==: Literal(1) == Literal(True) in Python, and `1 && x` is an error in CEL.
        operands = [
            self.truth(self.translate(o, scope, depth), depth)
            for o in node.operands
            if not (isinstance(o, Literal) and o.value is neutral.value)
        ]
        if not operands:
            return Code(repr(neutral.value), BOOL, True)
        joiner = " and " if node.op == "&&" else " or "
        return Code("(" + joiner.join(operands) + ")", BOOL)

    def on_ternary(self, node: Ternary, scope: dict[str, Code], depth: int) -> Code:
        condition = self.truth(self.translate(node.condition, scope, depth), depth)
        then, otherwise = self.translate(node.then, scope, depth), self.translate(node.otherwise, scope, depth)
        kind = then.type if then.type == otherwise.type else DYN
        return Code(f"({then.text} if {condition} else {otherwise.text})", kind)

    def on_binary(self, node: Binary, scope: dict[str, Code], depth: int) -> Code:
        left, right = self.translate(node.left, scope, depth), self.translate(node.right, scope, depth + 1)
        if node.op in _COMPARISON_HELPERS:
            return self.comparison(node.op, left, right, depth)
        if node.op in ("==", "!="):
            return self.equality(node.op, left, right, depth)
        return self.arithmetic(node.op, left, right, depth)

    def comparison(self, op: str, a: Code, b: Code, depth: int) -> Code:
        helper = _COMPARISON_HELPERS[op]
        if a.type == b.type and a.type in _ORDERED_TYPES:
            return Code(f"({a.text} {op} {b.text})", BOOL)
        if _fits(a, _ORDERED_TYPES) and _fits(b, _ORDERED_TYPES) and DYN in (a.type, b.type):
            condition, x, y = self.same_class(a, b, depth, _ORDERED_TYPES, "in _ORDERED_CLASSES")
            return Code(f"({x} {op} {y} if {condition} else {helper}({x}, {y}))", BOOL)
        return Code(f"{helper}({a.text}, {b.text})", BOOL)

    def equality(self, op: str, a: Code, b: Code, depth: int) -> Code:
        for literal, other in ((b, a), (a, b)):
            if not literal.atomic or other.type not in (DYN, literal.type):
                continue
            if literal.type == STRING:  # a str equals only an equal str: Python agrees
                return Code(f"({other.text} {op} {literal.text})", BOOL)
            if literal.type in (NULL, BOOL):  # identity: True == 1 must stay false
                return Code(f"({other.text} is {'not ' if op == '!=' else ''}{literal.text})", BOOL)
        helper = "_eq" if op == "==" else "_ne"
        if a.type == b.type and a.type in _SCALAR_TYPES:
            return Code(f"({a.text} {op} {b.text})", BOOL)
        if _fits(a, _SCALAR_TYPES) and _fits(b, _SCALAR_TYPES) and DYN in (a.type, b.type):
            condition, x, y = self.same_class(a, b, depth, _SCALAR_TYPES - {NULL}, "in _SCALAR_CLASSES")
            return Code(f"({x} {op} {y} if {condition} else {helper}({x}, {y}))", BOOL)
        return Code(f"{helper}({a.text}, {b.text})", BOOL)

    def arithmetic(self, op: str, a: Code, b: Code, depth: int) -> Code:
        helper = _ARITHMETIC_HELPERS[op]
        fast = frozenset([DOUBLE, STRING, LIST] if op == "+" else [DOUBLE])
        if a.type == b.type and a.type in fast and op != "/":
            return Code(f"({a.text} {op} {b.text})", a.type)
        if fast and _fits(a, fast) and _fits(b, fast) and (a.type == b.type or DYN in (a.type, b.type)):
            condition, x, y = self.same_class(a, b, depth, fast, "is _float")
            if op == "/":  # by zero (inf or nan in cel-cpp): the helper refuses
                condition += f" and {y}"
            known = a.type if a.type != DYN else b.type
            return Code(f"({x} {op} {y} if {condition} else {helper}({x}, {y}))", known)
        return Code(f"{helper}({a.text}, {b.text})", a.type if a.type == b.type and a.type in (INT, DOUBLE) else DYN)

    def on_call(self, node: Call, scope: dict[str, Code], depth: int) -> Code:
        args = [self.translate(a, scope, depth) for a in node.args]
        if node.target is None:
            if node.function == "string" and len(args) == 1:
                return args[0] if args[0].type == STRING else Code(f"_string({args[0].text})", STRING)
            raise Unsupported(f"function {node.function}() is not translated")
        target = self.translate(node.target, scope, depth)
        if node.function == "size" and not args:
            return Code(f"_len({target.text})", INT)  # str: code points; list, dict; else TypeError
        if node.function == "join" and len(args) == 1:
            return Code(f"_join({target.text}, {args[0].text})", STRING)
        raise Unsupported(f"function .{node.function}() is not translated")

    def on_bind(self, node: Bind, scope: dict[str, Code], depth: int) -> Code:
        if not _uses(node.body, node.var):  # cel-cpp binds lazily: an unused init is never evaluated
            return self.translate(node.body, scope, depth)
        init = self.translate(node.init, scope, depth)
        name = f"_t{depth}"
        body = self.translate(node.body, {**scope, node.var: Code(name, init.type, True)}, depth + 1)
        # `x is x` is always true: the condition only binds the name before the body reads it.
        return Code(f"({body.text} if ({name} := {init.text}) is {name} else None)", body.type)

    def on_macro(self, node: Macro, scope: dict[str, Code], depth: int) -> Code:
        self.counter += 1
        var = f"_v{self.counter}_{node.var}"  # comprehension-local: unique, never a `:=` target
        inner = {**scope, node.var: Code(var, DYN, True)}
        source = node.range
        conditions: list[str] = []
        steps = "_len({})"
        if node.kind == "map" and isinstance(source, Macro) and source.kind == "filter":
            # `xs.filter(x, p).map(y, f)` in one pass; cel-cpp counts both loops' steps.
            filter_scope = {**scope, source.var: Code(var, DYN, True)}
            conditions.append(self.truth(self.translate(source.args[0], filter_scope, depth), depth))
            source, steps = source.range, "2 * _len({})"
        # The range is needed only until the loop starts, so the body may reuse its temporary.
        first, again = self.once(self.translate(source, scope, depth), depth)
        # Lists only: the order of a map's keys is cel-cpp's own.
        guard = f"{first}.__class__ is _list and (_steps := _steps + {steps.format(again)}) < {ITERATION_BUDGET}"
        loop = f"for {var} in {again}"
        if node.kind == "map":
            if len(node.args) == 2:
                conditions.append(self.truth(self.translate(node.args[0], inner, depth), depth))
            filters = "".join(f" if {c}" for c in conditions)
            body = f"[{self.translate(node.args[-1], inner, depth).text} {loop}{filters}]"
            kind = LIST
        elif node.kind == "filter":
            body, kind = f"[{var} {loop} if {self.truth(self.translate(node.args[0], inner, depth), depth)}]", LIST
        else:
            raise Unsupported(f"the {node.kind}() macro is not translated")
        return Code(f"({body} if {guard} else _bad_range({again}))", kind)


def _fits(code: Code, types: frozenset[str]) -> bool:
    return code.type == DYN or code.type in types


_IDENTIFIER = re.compile(r"[a-zA-Z][_a-zA-Z0-9]*\Z")


def _check_variables(variables: Sequence[str]) -> None:
    if len(set(variables)) != len(variables):
        raise Unsupported(f"variables named twice: {list(variables)}")
    for name in variables:
        if not _IDENTIFIER.match(name) or keyword.iskeyword(name) or name in _RESERVED:
            raise Unsupported(f"variable name {name!r} is not translated (must be a Python identifier without a leading _)")


def translate(source: str, variables: Sequence[str]) -> str:
    """Python source text of one expression over the named variables (cacheable as text)."""
    return _translated(source, variables)[0]


def program(source: str, variables: Sequence[str]) -> Callable[..., Any]:
    """`load(translate(source, variables), variables)`, with the function compiled once, not twice."""
    return _function(_translated(source, variables)[1])


def _translated(source: str, variables: Sequence[str]) -> tuple[str, Any]:
    """The Python source text of the expression, and its function compiled."""
    _check_variables(variables)
    tree = parse(source)
    outside = features(tree) - SUBSET
    if outside:
        raise Unsupported(f"outside the translated subset: {', '.join(sorted(outside))}")
    try:
        text = _Translator(variables).translate(tree, {}, 0).text
        compiled = compile(_function_source(text, variables), "<cel>", "exec")  # Python's own nesting limits
    except (RecursionError, SyntaxError, MemoryError) as exc:
        raise Unsupported(f"expression too deeply nested for Python: {exc}") from None
    return text, compiled


def _function_source(text: str, variables: Sequence[str]) -> str:
    return f"def _cel_program({', '.join(variables)}):\n    _steps = 0\n    return (\n{text}\n    )\n"


def load(python_source: str, variables: Sequence[str]) -> Callable[..., Any]:
    """A function taking the variables as keyword arguments (and positionally, in order)."""
    _check_variables(variables)
    return _function(compile(_function_source(python_source, variables), "<cel>", "exec"))


def _function(compiled: Any) -> Callable[..., Any]:
    """The program function defined by compiled function source, with the run-time helpers and no builtins."""
    namespace: dict[str, Any] = {**_RUNTIME, "__builtins__": {}}
    exec(compiled, namespace)
    function: Callable[..., Any] = namespace["_cel_program"]
    return function


# -- run-time helpers: the slow paths, each exactly cel-cpp's semantics or a raise -------

_NoneType = type(None)
_NUMBERS = (int, float)
_ORDERED_CLASSES = frozenset([int, float, str, bool])
_SCALAR_CLASSES = frozenset([int, float, str, bool, _NoneType])
_VALUES = frozenset([int, float, str, bool, _NoneType, list, dict])
_KEY_TYPES = frozenset([str, int, bool])
_MISSING = object()


def _name(value: Any) -> str:
    return type(value).__name__


def _not_bool(value: Any) -> bool:
    raise Fallback(f"a condition is {_name(value)}, not bool")


def _bad_range(value: Any) -> Any:
    raise Fallback(f"cannot iterate over {_name(value)} here (or over cel-cpp's {ITERATION_BUDGET}-step budget)")


def _no_field(value: Any, field: str) -> Any:
    raise Fallback(f"select .{field} on {_name(value)}")


def _check_int(value: int) -> int:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise Fallback("integer overflow")
    return value


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    """Operands Python orders as cel-cpp does: same class, or int against double as doubles."""
    kind_a, kind_b = a.__class__, b.__class__
    if kind_a is kind_b and kind_a in _ORDERED_CLASSES:
        return a, b
    if kind_a in _NUMBERS and kind_b in _NUMBERS:
        return float(a), float(b)  # cel-cpp converts the int (9007199254740993 == 9007199254740992.0)
    raise Fallback(f"no ordering of {_name(a)} and {_name(b)}")


def _lt(a: Any, b: Any) -> bool:
    x, y = _comparable(a, b)
    return bool(x < y)


def _le(a: Any, b: Any) -> bool:
    x, y = _comparable(a, b)
    return bool(x <= y)


def _gt(a: Any, b: Any) -> bool:
    x, y = _comparable(a, b)
    return bool(x > y)


def _ge(a: Any, b: Any) -> bool:
    x, y = _comparable(a, b)
    return bool(x >= y)


def _get(mapping: dict[Any, Any], key: Any) -> Any:
    """cel-cpp's map lookup: str, int and bool keys never match each other; an integral
    double finds an int key. `_MISSING` when absent."""
    kind = key.__class__
    if kind is str:
        return mapping.get(key, _MISSING)
    if kind is float:
        if not key.is_integer() or not -(2.0**63) <= key < 2.0**63:
            return _MISSING
        key, kind = int(key), int
    if kind is int or kind is bool:
        for candidate, value in mapping.items():  # Python merges 1, True and 1.0 as keys
            if candidate.__class__ is kind and candidate == key:
                return value
        return _MISSING
    raise Fallback(f"map key of type {_name(key)}")


def _eq(a: Any, b: Any) -> bool:
    """CEL's heterogeneous equality: numbers across int/double, bool never equals a number."""
    kind_a, kind_b = a.__class__, b.__class__
    if kind_a is kind_b:
        if kind_a in _SCALAR_CLASSES:
            return bool(a == b)
        if kind_a is list:  # element by element: Python's `==` would call NaN equal to itself
            return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b))
        if kind_a is dict:
            if len(a) != len(b):
                return False
            for key, value in a.items():
                if key.__class__ not in _KEY_TYPES:
                    raise Fallback(f"map key of type {_name(key)}")
                other = _get(b, key)
                if other is _MISSING or not _eq(value, other):
                    return False
            return True
    elif kind_a in _NUMBERS and kind_b in _NUMBERS:
        return float(a) == float(b)
    elif kind_a in _VALUES and kind_b in _VALUES:
        return False
    raise Fallback(f"equality of {_name(a)} and {_name(b)}")


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _index(container: Any, index: Any) -> Any:
    kind = container.__class__
    if kind is list:
        if index.__class__ is float and index.is_integer():
            index = int(index)  # cel-cpp accepts an integral double index
        if index.__class__ is int and 0 <= index < len(container):
            return container[index]
        raise Fallback(f"list index {index!r}")
    if kind is dict:
        value = _get(container, index)
        if value is _MISSING:
            raise KeyError(index)
        return value
    raise Fallback(f"indexing {_name(container)}")


def _add(a: Any, b: Any) -> Any:
    kind = a.__class__
    if kind is b.__class__:
        if kind is int:  # a uint operand (2**63 and up) has no int overload in cel-cpp
            return _check_int(_check_int(a) + _check_int(b))
        if kind is float or kind is str or kind is list:
            return a + b
    raise Fallback(f"{_name(a)} + {_name(b)}")


def _sub(a: Any, b: Any) -> Any:
    kind = a.__class__
    if kind is b.__class__:
        if kind is int:  # a uint operand (2**63 and up) has no int overload in cel-cpp
            return _check_int(_check_int(a) - _check_int(b))
        if kind is float:
            return a - b
    raise Fallback(f"{_name(a)} - {_name(b)}")


def _mul(a: Any, b: Any) -> Any:
    kind = a.__class__
    if kind is b.__class__:
        if kind is int:  # a uint operand (2**63 and up) has no int overload in cel-cpp
            return _check_int(_check_int(a) * _check_int(b))
        if kind is float:
            return a * b
    raise Fallback(f"{_name(a)} * {_name(b)}")


def _div(a: Any, b: Any) -> Any:
    kind = a.__class__
    if kind is b.__class__ and (kind is int or kind is float) and b != 0:
        if kind is float:
            return a / b
        _check_int(a), _check_int(b)
        quotient = abs(a) // abs(b)  # CEL truncates toward zero
        return _check_int(quotient if (a < 0) == (b < 0) else -quotient)
    raise Fallback(f"{_name(a)} / {_name(b)}")  # also division by zero, int or double (inf, nan)


def _format_double(value: float) -> str:
    """cel-cpp's string(double): the shortest digits that round-trip, laid out like Go's
    %g with precision 6 for the exponent decision (1e+06, 123456, 1e-05, 0.0001)."""
    if value != value:  # cel-cpp keeps a NaN's sign bit: "-nan"
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    if value == 0:
        return sign + "0"
    if value.is_integer() and -1e6 < value < 1e6:
        return str(int(value))  # the common case: 40.0 is "40"
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)  # value = 0.<digits> * 10**point
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    digits = significant.rstrip("0")
    power = point - 1
    if power < -4 or power >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _string(value: Any) -> str:
    kind = value.__class__
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    if kind is float:
        return _format_double(value)
    if kind is bool:
        return "true" if value else "false"
    raise Fallback(f"string({_name(value)})")


def _join(items: Any, separator: Any = "") -> str:
    if items.__class__ is not list or separator.__class__ is not str or any(i.__class__ is not str for i in items):
        raise Fallback("join() needs a list of strings")
    return separator.join(items)


_RUNTIME: dict[str, Any] = {
    "_len": len,
    "_bool": bool,
    "_int": int,
    "_float": float,
    "_str": str,
    "_list": list,
    "_dict": dict,
    "_ORDERED_CLASSES": _ORDERED_CLASSES,
    "_SCALAR_CLASSES": _SCALAR_CLASSES,
    **{
        f.__name__: f
        for f in (
            _not_bool,
            _bad_range,
            _no_field,
            _lt,
            _le,
            _gt,
            _ge,
            _eq,
            _ne,
            _index,
            _add,
            _sub,
            _mul,
            _div,
            _string,
            _join,
        )
    },
}

__all__ = ["Unsupported", "Fallback", "translate", "load", "parse", "features", "SUBSET", "ITERATION_BUDGET"]
