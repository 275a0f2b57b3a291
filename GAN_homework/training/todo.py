"""The starter's unfilled TODO, recognized in one place for every GAN script.

In the starter, each TODO block holds one line, `raise NotImplementedError("TODO #N in <file>")`.
A script that runs into one ends with a sentence that names the block instead of a traceback;
any other NotImplementedError (an operation torch lacks on some device) is left alone.
"""

import re

# The stub's message: group 1 the TODO's number, group 2 the file (tools/markers.py writes it).
TODO_MESSAGE_RE = re.compile(r"\bTODO #([0-9]+)(?: in ([\w./-]+\.py))?")


def unfilled_todo(error: BaseException) -> str | None:
    """The message of `error` ("TODO #N in <file>") if it is the NotImplementedError of an
    unfilled TODO block, else None."""
    if isinstance(error, NotImplementedError) and TODO_MESSAGE_RE.search(str(error)):
        return str(error)
    return None
