"""Host ingest of a PPK2-rate power stream (`make bench`): figures, never pass/fail.

A fake PPK2 (tests/fakes/ppk2.py) runs in its own process on a pty and
streams sample words at the full 100 kS/s, paced by wall time; this process
reads it through the real driver (pyserial, the reader thread, numpy
decoding, the bounded buffer) and a consumer loop calling `read()` every
50 ms, as a session would. Printed:

- sustained rate: samples that arrived after the first batch over the host
  time from the first batch's arrival to the last one's, and the meter-clock
  span the samples cover;
- drops: counter gaps (samples the fake had to discard because the host did
  not keep up, seen as gaps in the sample counter) and host-buffer overflows;
- host CPU of the ingest: this process's user + system CPU time over the
  capture, as a share of one core (the fake's CPU is in its own process);
- energy error: the trapezoid over the received samples against the exact
  integral of the waveform the fake fed, over the same samples.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from profiler.power import PowerBatch, open_meter  # noqa: E402
from profiler.power.energy import energy_mj, sync_windows  # noqa: E402

VOLTAGE_MV = 3300


def _cpu_s() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="capture length (default 10)")
    args = parser.parse_args()

    fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.ppk2"], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert fake.stdout is not None and fake.stdin is not None
    try:
        path = fake.stdout.readline().strip()
        meter = open_meter(f"ppk2:{path}?voltage_mv={VOLTAGE_MV}")
        with meter:
            meter.configure()
            batches: list[PowerBatch] = []
            user0, sys0 = _cpu_s()
            wall0 = time.monotonic()
            meter.start()
            while time.monotonic() - wall0 < args.seconds:
                batches.append(meter.read(timeout_s=0.05))
            meter.stop()
            batches.append(meter.read())
            wall = time.monotonic() - wall0
            user1, sys1 = _cpu_s()
            stats = meter.stats
        batch = PowerBatch.concat(batches)
        last_index = round(float(batch.t_s[-1]) * 100_000)
        fake.stdin.write(f"{last_index}\n")  # the fake answers with the charge it fed up to there
        fake.stdin.close()
        fed = json.loads(fake.stdout.readline())
    finally:
        if fake.poll() is None:
            fake.terminate()
        fake.wait(5)

    n = len(batch)
    fed_mj = fed["charge_c"] * VOLTAGE_MV
    measured_mj = energy_mj(batch)
    cpu = (user1 - user0) + (sys1 - sys0)
    arrived = [b for b in batches if len(b)]
    span_s = (arrived[-1].host_ns - arrived[0].host_ns) / 1e9
    sustained = (n - len(arrived[0])) / span_s
    windows = sync_windows(batch, fed["sync_bit"])

    table = Table(title=f"PPK2 ingest, fake PPK2 on a pty at 100 kS/s, {wall:.1f} s")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("samples delivered", f"{n:,}")
    table.add_row("sustained rate (first to last arrival, host clock)", f"{sustained:,.0f} samples/s")
    table.add_row("delivered / wall time (with start, stop drain)", f"{n / wall:,.0f} samples/s")
    table.add_row("meter-clock span of the samples", f"{float(batch.t_s[-1]):.3f} s")
    table.add_row("dropped: counter gaps (fake could not send)", f"{stats.lost_in_transfer:,}")
    table.add_row("dropped: host buffer overflow", f"{stats.lost_in_host:,}")
    table.add_row("fake: sent / discarded in its FIFO", f"{fed['sent']:,} / {fed['overflowed']:,}")
    table.add_row("drop fraction", f"{stats.drop_fraction:.4%}")
    table.add_row("host CPU of the ingest (user + sys, one core)",
                  f"{100 * cpu / wall:.1f} % ({user1 - user0:.2f} s + {sys1 - sys0:.2f} s)")
    table.add_row("energy, trapezoid over the samples", f"{measured_mj:.3f} mJ")
    table.add_row("energy fed (exact integral of the waveform)", f"{fed_mj:.3f} mJ")
    table.add_row("energy error", f"{100 * (measured_mj - fed_mj) / fed_mj:+.4f} %")
    table.add_row("sync pulses found (one fed)", f"{len(windows)}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
