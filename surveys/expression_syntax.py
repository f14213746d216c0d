"""The syntax of the XLSForm expression language: tokens, the parser and the compiled tree.

An expression is compiled once, at form import, into nested JSON lists (the node kinds are
listed in `surveys.expressions`, which evaluates them); `expressions.js` walks the same tree
in the browser. ``FUNCTIONS`` names every function the language has, with its arity.
"""

from __future__ import annotations

import re

# name -> (fewest arguments, most arguments or None for any number)
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "not": (1, 1),
    "true": (0, 0),
    "false": (0, 0),
    "boolean": (1, 1),
    "if": (3, 3),
    "coalesce": (2, 2),
    "selected": (2, 2),
    "selected-at": (2, 2),
    "count-selected": (1, 1),
    "string": (1, 1),
    "string-length": (1, 1),
    "concat": (1, None),
    "contains": (2, 2),
    "starts-with": (2, 2),
    "ends-with": (2, 2),
    "substr": (2, 3),
    "regex": (2, 2),
    "number": (1, 1),
    "int": (1, 1),
    "round": (1, 2),
    "floor": (1, 1),
    "ceiling": (1, 1),
    "abs": (1, 1),
    "min": (1, None),
    "max": (1, None),
    "today": (0, 0),
    "date": (1, 1),
    "format-date": (2, 2),
    # ODK's math functions (used by field forms, e.g. plot-radius calculations)
    "pow": (2, 2),
    "sqrt": (1, 1),
    "exp": (1, 1),
    "log": (1, 1),
    "log10": (1, 1),
    "sin": (1, 1),
    "cos": (1, 1),
    "tan": (1, 1),
    "asin": (1, 1),
    "acos": (1, 1),
    "atan": (1, 1),
    "atan2": (2, 2),
    "pi": (0, 0),
    # Random assignment, as ODK has it: random() draws from [0, 1); once(x) keeps the value
    # the question already holds and evaluates x only while it is blank.
    "random": (0, 0),
    "once": (1, 1),
}

# ODK functions we recognise but do not evaluate, so authors get a clearer message.
_UNSUPPORTED = {
    "position", "jr:choice-name", "indexed-repeat", "sum", "count", "uuid",
    "now", "pulldata", "instance", "current", "last", "decimal-date-time",
    "decimal-time", "format-date-time", "date-time", "join", "translate",
    "normalize-space", "substring-before", "substring-after", "digest", "area",
    "distance", "jr:itext", "checklist", "weighted-checklist", "boolean-from-string",
}  # fmt: skip

_KEYWORD_OPERATORS = {"and", "or", "div", "mod"}
_PRECEDENCE = {
    "or": 1, "and": 2, "=": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4,
    "+": 5, "-": 5, "*": 6, "div": 6, "mod": 6,
}  # fmt: skip

_NAME = re.compile(r"[^\W\d][\w.\-]*(?::[^\W\d][\w.\-]*)?")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


class ExpressionError(ValueError):
    """An expression that cannot be compiled; the message is fit for an import report."""

    def __init__(self, problem: str, expression: str, position: int | None = None) -> None:
        self.problem = problem
        self.expression = expression
        self.position = position  # 1-based character position, when there is one
        super().__init__(f"{problem} in expression: {expression}")


# --------------------------------------------------------------------------- compiling


class _Token:
    __slots__ = ("kind", "value", "start", "end")

    def __init__(self, kind: str, value: str, start: int, end: int) -> None:
        self.kind = kind  # num str ref cur name op ( ) , end
        self.value = value
        self.start = start
        self.end = end


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)

    def fail(problem: str) -> ExpressionError:
        return ExpressionError(problem, text, i + 1)

    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c == "$":
            if not text.startswith("${", i):
                raise fail(f"unexpected '$' at position {i + 1}; write ${{name}}")
            close = text.find("}", i + 2)
            if close < 0:
                raise fail(f"unclosed '${{' starting at position {i + 1}")
            name = text[i + 2 : close].strip()
            if not _NAME.fullmatch(name):
                raise fail(f"'{text[i : close + 1]}' at position {i + 1} is not a question name")
            tokens.append(_Token("ref", name, i, close + 1))
            i = close + 1
            continue
        if c in "'\"":
            close = text.find(c, i + 1)
            if close < 0:
                raise fail(f"unclosed string starting at position {i + 1}")
            tokens.append(_Token("str", text[i + 1 : close], i, close + 1))
            i = close + 1
            continue
        m = _NUMBER.match(text, i)
        if m:
            tokens.append(_Token("num", m.group(), i, m.end()))
            i = m.end()
            continue
        if c == ".":
            if text.startswith("..", i):
                raise fail(f"'..' at position {i + 1} is not supported; use ${{name}}")
            tokens.append(_Token("cur", ".", i, i + 1))
            i += 1
            continue
        m = _NAME.match(text, i)
        if m:
            tokens.append(_Token("name", m.group(), i, m.end()))
            i = m.end()
            continue
        two = text[i : i + 2]
        if two in ("!=", "<=", ">="):
            tokens.append(_Token("op", two, i, i + 2))
            i += 2
            continue
        if two == "==":
            raise fail(f"'==' at position {i + 1}: use '=' to compare")
        if two in ("&&", "||"):
            word = "and" if two == "&&" else "or"
            raise fail(f"'{two}' at position {i + 1}: use '{word}'")
        if c in "=<>+-*":
            tokens.append(_Token("op", c, i, i + 1))
        elif c in "(),":
            tokens.append(_Token(c, c, i, i + 1))
        elif c == "/":
            raise fail(
                f"'/' at position {i + 1} is not supported; use 'div' to divide "
                "and ${name} to refer to a question"
            )
        else:
            raise fail(f"unexpected '{c}' at position {i + 1}")
        i += 1
    tokens.append(_Token("end", "", n, n))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def error(self, problem: str, token: _Token | None = None) -> ExpressionError:
        position = token.start + 1 if token is not None else None
        return ExpressionError(problem, self.text, position)

    def source(self, token: _Token) -> str:
        return self.text[token.start : token.end]

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def binary_operator(self) -> str | None:
        token = self.peek()
        if token.kind == "op" and token.value in _PRECEDENCE:
            return token.value
        if token.kind == "name" and token.value in _KEYWORD_OPERATORS:
            return token.value
        return None

    def parse(self) -> list:
        node = self.expression(0)
        token = self.peek()
        if token.kind != "end":
            raise self.error(
                f"unexpected '{self.source(token)}' at position {token.start + 1}", token
            )
        return node

    def expression(self, min_precedence: int) -> list:
        left = self.unary()
        while True:
            op = self.binary_operator()
            if op is None or _PRECEDENCE[op] < min_precedence:
                return left
            self.advance()
            right = self.expression(_PRECEDENCE[op] + 1)
            left = ["op", op, left, right]

    def unary(self) -> list:
        token = self.peek()
        if token.kind == "op" and token.value == "-":
            self.advance()
            return ["neg", self.unary()]
        return self.primary()

    def missing_operand(self, token: _Token) -> ExpressionError:
        if self.i == 0:
            return self.error(
                f"unexpected '{self.source(token)}' at position {token.start + 1}", token
            )
        before = self.source(self.tokens[self.i - 1])
        if token.kind == "end":
            return self.error(f"expected an expression after '{before}'", token)
        return self.error(
            f"expected an expression after '{before}', found '{self.source(token)}' "
            f"at position {token.start + 1}",
            token,
        )

    def primary(self) -> list:
        token = self.peek()
        kind = token.kind
        if kind == "num":
            self.advance()
            return ["num", float(token.value)]
        if kind == "str":
            self.advance()
            return ["str", token.value]
        if kind == "ref":
            self.advance()
            return ["ref", token.value]
        if kind == "cur":
            self.advance()
            return ["cur"]
        if kind == "(":
            self.advance()
            node = self.expression(0)
            close = self.peek()
            if close.kind != ")":
                if close.kind == "end":
                    raise self.error(
                        f"missing ')' for the '(' at position {token.start + 1}", token
                    )
                raise self.error(
                    f"unexpected '{self.source(close)}' at position {close.start + 1}; "
                    f"expected ')' for the '(' at position {token.start + 1}",
                    close,
                )
            self.advance()
            return node
        if kind == "name":
            if self.tokens[self.i + 1].kind == "(":
                return self.call()
            if token.value in _KEYWORD_OPERATORS:
                raise self.missing_operand(token)
            self.advance()
            return ["col", token.value]
        raise self.missing_operand(token)

    def call(self) -> list:
        name_token = self.advance()
        name = name_token.value
        if name not in FUNCTIONS:
            if name in _UNSUPPORTED:
                raise self.error(f"function '{name}()' is not supported", name_token)
            raise self.error(f"unknown function '{name}()'", name_token)
        self.advance()  # the "("
        args: list[list] = []
        if self.peek().kind != ")":
            while True:
                args.append(self.expression(0))
                token = self.peek()
                if token.kind == ",":
                    self.advance()
                    continue
                if token.kind == ")":
                    break
                if token.kind == "end":
                    raise self.error(
                        f"missing ')' to close '{name}(' at position {name_token.start + 1}",
                        name_token,
                    )
                raise self.error(
                    f"unexpected '{self.source(token)}' at position {token.start + 1}; "
                    f"expected ',' or ')' in '{name}()'",
                    token,
                )
        self.advance()  # the ")"
        fewest, most = FUNCTIONS[name]
        if len(args) < fewest or (most is not None and len(args) > most):
            if most is None:
                wanted = f"at least {fewest}"
            elif fewest == most:
                wanted = str(fewest)
            else:
                wanted = f"{fewest} to {most}"
            noun = "argument" if wanted == "1" else "arguments"
            raise self.error(f"'{name}()' takes {wanted} {noun}, got {len(args)}", name_token)
        if name == "regex" and args[1][0] == "str":
            try:
                re.compile(args[1][1], re.ASCII)
            except re.error as exc:
                raise self.error(
                    f"invalid regular expression '{args[1][1]}' in 'regex()': {exc.msg}", name_token
                ) from None
        return ["fn", name, args]


# Deeper nesting than this is refused: no form needs it, and both evaluators recurse.
MAX_NESTING = 100


def compile_expression(text: str) -> list | None:
    """Compile XLSForm expression text to its AST; ``None`` for blank text."""
    if text is None or not str(text).strip():
        return None
    try:
        ast = _Parser(str(text)).parse()
    except RecursionError:
        ast = None
    if ast is None or _nesting(ast) > MAX_NESTING:
        raise ExpressionError(f"the expression is nested more than {MAX_NESTING} levels", str(text))
    return ast


def _nesting(ast: list) -> int:
    """Depth of the AST, walked without recursion."""
    deepest, stack = 0, [(ast, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if node[0] == "op":
            stack += [(node[2], depth + 1), (node[3], depth + 1)]
        elif node[0] == "neg":
            stack.append((node[1], depth + 1))
        elif node[0] == "fn":
            stack += [(arg, depth + 1) for arg in node[2]]
    return deepest


def references(ast: list | None) -> set[str]:
    """Question names the expression refers to through ``${name}``."""
    found: set[str] = set()
    _collect(ast, "ref", found)
    return found


def columns(ast: list | None) -> set[str]:
    """Choice-sheet columns the expression refers to through bare names (choice_filter)."""
    found: set[str] = set()
    _collect(ast, "col", found)
    return found


def functions(ast: list | None) -> set[str]:
    """Names of the functions the expression calls."""
    found: set[str] = set()
    _collect(ast, "fn", found)
    return found


def keeps_its_value(ast: list | None) -> bool:
    """True for a calculation through ``once()``: its value is recorded with the interview
    when first computed and kept from then on (random assignment)."""
    return "once" in functions(ast)


def _collect(node: list | None, kind: str, found: set[str]) -> None:
    if not node:
        return
    head = node[0]
    if head == kind:
        found.add(node[1])
    if head == "op":
        _collect(node[2], kind, found)
        _collect(node[3], kind, found)
    elif head == "neg":
        _collect(node[1], kind, found)
    elif head == "fn":
        for arg in node[2]:
            _collect(arg, kind, found)


# --------------------------------------------------------------------------- conversions


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def expression_text(ast: list | None, min_precedence: int = 0) -> str:
    """A compiled expression written back as XLSForm text, with only the brackets its
    operators' precedence needs: ``${E1} = 1 or ${E2} = 2``. Empty for ``None``."""
    if ast is None:
        return ""
    kind = ast[0]
    if kind == "num":
        return _number_text(ast[1])
    if kind == "str":
        return "'" + str(ast[1]) + "'" if "'" not in str(ast[1]) else '"' + str(ast[1]) + '"'
    if kind == "ref":
        return "${" + str(ast[1]) + "}"
    if kind == "cur":
        return "."
    if kind == "col":
        return str(ast[1])
    if kind == "neg":
        return "-" + expression_text(ast[1], max(_PRECEDENCE.values()) + 1)
    if kind == "fn":
        return f"{ast[1]}({', '.join(expression_text(arg) for arg in ast[2])})"
    if kind == "op":
        precedence = _PRECEDENCE[ast[1]]
        text = (
            f"{expression_text(ast[2], precedence)} {ast[1]} "
            f"{expression_text(ast[3], precedence + 1)}"
        )
        return f"({text})" if precedence < min_precedence else text
    return str(ast)
