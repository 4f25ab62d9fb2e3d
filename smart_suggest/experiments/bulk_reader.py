"""The reader process of the bulk CSV path (see ``smart_suggest.experiments.bulk``).

``python -m smart_suggest.experiments.bulk_reader DB CSV EXPERIMENT_ID NOW CHUNK SKIP``:
reads and checks the CSV after its first SKIP rows, resolving users and items in one read
snapshot of DB, and pickles each chunk to the file descriptor named by
``SMART_SUGGEST_READER_FD``, a pipe to the writer process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from smart_suggest.experiments.bulk import read_in_process


def main(argv: list[str]) -> None:
    db, path, exp_id, now, size, skip = argv
    with open(int(os.environ["SMART_SUGGEST_READER_FD"]), "wb") as out:
        read_in_process(Path(db), Path(path), int(exp_id), float(now), int(size), int(skip), out)


if __name__ == "__main__":
    main(sys.argv[1:])
