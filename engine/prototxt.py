"""Reading Caffe prototxt (text format) into caffe_pb2 messages, with errors that
name the file, line and column."""
from __future__ import annotations

import os
import re

from google.protobuf import text_format

from .errors import PrototxtError
from .proto import caffe_pb2
from .validate import check_input_file, format_bytes, require_memory


def _looks_like_path(source: str) -> bool:
    if "\n" in source or "{" in source or '"' in source:
        return False
    return ":" not in source.replace("\\", "/").split("/")[-1]


def read_source(source) -> tuple[str, str | None]:
    """(text, path) for a path or a prototxt text; path is None for text."""
    source = os.fspath(source)
    if _looks_like_path(source):
        size = check_input_file(source, "prototxt", PrototxtError)  # not /dev/zero, a FIFO or 3 GB
        require_memory(4 * size, f"reading prototxt '{source}' ({format_bytes(size)}: the text and its messages)")
        try:
            with open(source, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise PrototxtError(f"cannot read prototxt '{source}': {exc.strerror}") from None
        return _decode(raw, source), os.path.abspath(source)
    return source, None


def _decode(raw: bytes, path: str) -> str:
    """UTF-8 text, or PrototxtError naming the line and column of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PrototxtError(f"{path}:{line}:{column}: byte 0x{raw[exc.start]:02x} is not UTF-8 text "
                            f"(a prototxt is a UTF-8 text file; is this a binary file?)") from None


_BLOCK = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|#[^\n]*|[{}]|\blayers?\b')
_FIELD = re.compile(r'\b(name|type)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|(\w+))'
                    r'|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|#[^\n]*|[{}]')


def _enclosing_layer(text: str, line: int, column: int = 1) -> str:
    """`` (in layer 'NAME' of type 'TYPE')`` for a place (1-based line and column)
    inside a top-level layer block of a net prototxt, else ""; so that a parse
    error names the layer."""
    offset = sum(len(row) + 1 for row in text.split("\n")[:line - 1]) + max(0, column - 1)
    depth, start, pending = 0, None, False
    for token in _BLOCK.finditer(text, 0, offset):
        value = token.group()
        if value in ("layer", "layers"):
            pending = depth == 0
        elif value == "{":
            start = token.end() if pending else start
            depth, pending = depth + 1, False
        elif value == "}":
            depth -= 1
            start = None if depth == 0 else start
    if start is None:
        return ""
    found: dict[str, str] = {}
    depth = 0
    for token in _FIELD.finditer(text, start):
        value = token.group()
        if value == "{":
            depth += 1
        elif value == "}":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and token.group(1):
            found.setdefault(token.group(1), next(g for g in token.groups()[1:] if g is not None))
    if "name" not in found and "type" not in found:
        return ""
    named = f"in layer '{found['name']}'" if "name" in found else "in a layer"
    return f" ({named} of type '{found['type']}')" if "type" in found else f" ({named})"


def parse(source, message_type, what: str):
    """Parse ``source`` (path or text) as ``message_type``; PrototxtError on failure."""
    text, path = read_source(source)
    message = message_type()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        where = path or f"<{what} text>"
        detail = str(exc)
        match = re.match(r"^(\d+):(\d+) : (.*)$", detail, re.S)
        if match:
            line, column, reason = match.groups()
            raise PrototxtError(f"{where}:{line}:{column}: {reason.strip()}"
                                f"{_enclosing_layer(text, int(line), int(column))}") from None
        raise PrototxtError(f"{where}: {detail}") from None
    return message, path


def parse_net(source) -> tuple[caffe_pb2.NetParameter, str | None]:
    """A net prototxt, upgraded from Caffe's older formats as Caffe reads it (engine.upgrade)."""
    from .upgrade import upgrade_net
    param, path = parse(source, caffe_pb2.NetParameter, "net")
    upgrade_net(param, path or "<net text>")
    return param, path


def parse_solver(source) -> tuple[caffe_pb2.SolverParameter, str | None]:
    """A solver prototxt, upgraded as Caffe reads it (``solver_type`` -> ``type``)."""
    from .upgrade import upgrade_solver
    param, path = parse(source, caffe_pb2.SolverParameter, "solver")
    upgrade_solver(param, path or "<solver text>")
    return param, path


def resolve_path(name: str, relative_to: str | None) -> str:
    """A path named in a prototxt: relative to the naming file's folder, falling
    back to the working directory as Caffe does."""
    if os.path.isabs(name) or relative_to is None:
        return name
    beside = os.path.join(os.path.dirname(relative_to), name)
    if os.path.exists(beside) or not os.path.exists(name):
        return beside
    return name


def to_text(message) -> str:
    """The prototxt text of a message (what Caffe's tools print)."""
    return text_format.MessageToString(message)
