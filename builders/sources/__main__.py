"""The source task's entry point inside the sandbox: `<command> <params JSON>`."""

from __future__ import annotations

import json
import sys

from . import sandbox_commands
from .common import ERROR_EXIT, ERROR_MARK, PARAMS, UserError, write_copr_macros


def main(argv: list[str]) -> int:
    command, params_text = argv[0], argv[1]
    PARAMS.update(json.loads(params_text))
    try:
        write_copr_macros()
        sandbox_commands()[command]()
    except UserError as error:
        print(ERROR_MARK + " ".join(str(error).split()), flush=True)
        return ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
