"""Reading Caffe prototxt (text format) into caffe_pb2 messages, with errors that
name the file, line and column."""
from __future__ import annotations

import os
import re

from google.protobuf import text_format

from .errors import PrototxtError
from .proto import caffe_pb2


def _looks_like_path(source: str) -> bool:
    return "\n" not in source and "{" not in source and ":" not in source.replace("\\", "/").split("/")[-1]


def read_source(source) -> tuple[str, str | None]:
    """(text, path) for a path or a prototxt text; path is None for text."""
    source = os.fspath(source)
    if _looks_like_path(source):
        try:
            with open(source, encoding="utf-8") as handle:
                return handle.read(), os.path.abspath(source)
        except OSError as exc:
            raise PrototxtError(f"cannot read prototxt '{source}': {exc.strerror}") from None
    return source, None


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
            raise PrototxtError(f"{where}:{line}:{column}: {reason.strip()}") from None
        raise PrototxtError(f"{where}: {detail}") from None
    return message, path


def parse_net(source) -> tuple[caffe_pb2.NetParameter, str | None]:
    return parse(source, caffe_pb2.NetParameter, "net")


def parse_solver(source) -> tuple[caffe_pb2.SolverParameter, str | None]:
    return parse(source, caffe_pb2.SolverParameter, "solver")


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
