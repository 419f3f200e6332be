"""Run one export in this process and stop it at a named point: a test's stand-in for ``kill -9``.

TEST INFRASTRUCTURE ONLY. ``python -m tests.support.export_subprocess RAW OUT POINT [--no-exchange] [--pause MARKER]``

``POINT`` is a step name of :func:`affectnetplus_hf.exporter.writer._step` (``staging_created``, ``shards_written``,
``staged``, ``before_swap``, ``after_swap``), of :func:`affectnetplus_hf.exporter.swap._step`
(``between_renames``), or ``mid_shards`` (inside the second shard job). At that point the
process sends itself SIGKILL: no ``finally`` runs, exactly as a ``kill -9`` from outside.
With ``--pause MARKER`` it instead writes ``MARKER`` and sleeps (holding the export lock), for
the test to act while the export is stopped there. ``--no-exchange`` makes the swap use two
renames, as on a system without ``renameat2``.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("raw")
    parser.add_argument("out")
    parser.add_argument("point")
    parser.add_argument("--no-exchange", action="store_true")
    parser.add_argument("--pause")
    args = parser.parse_args()

    import affectnetplus_hf.exporter.swap as swap_module
    import affectnetplus_hf.exporter.writer as export_module

    def stop(name: str) -> None:
        if name != args.point:
            return
        if args.pause:
            Path(args.pause).write_text(name)
            time.sleep(120)
        os.kill(os.getpid(), signal.SIGKILL)

    export_module._step = stop
    swap_module._step = stop
    if args.no_exchange:
        swap_module._exchange = lambda a, b: False
    if args.point == "mid_shards":
        real = export_module._export_shard
        calls = []

        def shard(job):
            calls.append(job)
            if len(calls) == 2:
                stop("mid_shards")
            return real(job)

        export_module._export_shard = shard
    export_module.export(args.raw, args.out, num_shards=2, progress=False, card_plots=False)


if __name__ == "__main__":
    main()
