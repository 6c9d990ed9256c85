"""What a session checks besides timing.

Each TOKEN's fields, the board's logits against the host's (run --check-quality), and the real chip's
predicted rate on emulated boards.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from profiler.emulator import QemuBoard
from profiler.errors import FirmwareError, LinkError, ProfilerError, ProtocolError
from profiler.link.protocol import Boot, Capability, Done, Logits, MsgType, Token, eval_payload
from profiler.link.transport import Wait
from profiler.records import SummaryRecord
from profiler.run.handshake import Handshake


class Checks(Handshake):
    """Checks beyond timing: each TOKEN's fields, the board's logits (run --check-quality), the predicted rate."""

    def _check_token(self, token: Token) -> None:
        """A TOKEN whose fields no run can produce is a firmware or protocol fault, named by its field."""
        vocab = self.model.vocab_size
        if vocab and token.token_id >= vocab:
            raise ProtocolError(f"the board's TOKEN field token_id is {token.token_id}, outside the vocabulary "
                                f"of {vocab} of {self.model.name}; check that the board runs this model")
        if token.index >= self.settings.tokens:
            raise ProtocolError(f"the board's TOKEN field index is {token.index}, but only "
                                f"{self.settings.tokens} tokens were asked for; flash the firmware that ships "
                                "with this profiler")

    def _check_quality(self) -> None:
        """The board's logits for a short text (EVAL), against the host reference and the fp32 model."""
        tokens = list(self.settings.quality_tokens)
        if not tokens or self.model.quality_check is None:
            return
        assert self._link is not None and self._hello is not None
        if not self._hello.capabilities & Capability.EVAL:
            raise FirmwareError("the board's firmware cannot send its logits (no EVAL capability); "
                                "flash the firmware of this profiler or drop --check-quality")
        with self._phase("quality"):
            rep = 0xFFFF  # never a repetition number
            self._link.send(MsgType.EVAL, eval_payload(rep, tokens))
            slices: dict[tuple[int, int], tuple[float, ...]] = {}
            wait = Wait("the board's logits", self.deadlines.frame_s)
            for event in self._events(wait):
                if isinstance(event, Boot):
                    raise LinkError("the board restarted (HELLO with sequence 0) during the quality check; "
                                    "check its power supply and re-run")
                if isinstance(event, Logits) and event.rep == rep:
                    wait.progress()
                    slices[(event.pos, event.offset)] = event.values
                elif isinstance(event, Done) and event.rep == rep:
                    break
            rows = [[v for (pos, _), values in sorted(slices.items()) if pos == p for v in values]
                    for p in range(len(tokens))]
            if len({len(row) for row in rows}) != 1 or not rows[0]:
                raise ProtocolError(f"the board sent incomplete logits for {len(tokens)} positions; "
                                    "rebuild the firmware and check the link")
            self._quality = self.model.quality_check(tokens, rows, self._fixed_point())

    def _with_quality(self, summary: SummaryRecord) -> SummaryRecord:
        """The summary with the quality check's figures; logits unlike the host's make it invalid."""
        check = self._quality
        if check is None:
            return summary
        changes: dict[str, Any] = {"quality": check.to_dict(),
                                   "quantization_error_rate": check.report.quantization_error_rate}
        if not check.logits_match_reference:
            changes.update(valid=False, status="invalid" if summary.status == "ok" else summary.status,
                           reasons=[*summary.reasons, f"quality check: the board's logits differ from the host "
                                    f"reference at position {check.first_mismatch}"])
        return dataclasses.replace(summary, **changes)

    def _trace_if_predicting(self, emulator: QemuBoard, elf: Path) -> None:
        """With `predict`, load the trace plugin: it records the first repetition's forward passes."""
        from profiler import cycles

        board, s = self.target.board, self.settings
        if not s.predict or not cycles.supported(board):
            return
        self._trace_dir = tempfile.TemporaryDirectory(prefix="tiny-profiler-trace-")
        args = cycles.qemu_trace_args(board, elf, Path(self._trace_dir.name) / "exec.trace",
                                      len(s.prompt_tokens), s.tokens)
        emulator.spec = dataclasses.replace(emulator.spec, extra_args=(*emulator.spec.extra_args, *args))

    def _with_prediction(self, summary: SummaryRecord) -> SummaryRecord:
        """Emulated runs: the one-instruction-per-cycle bound and, when traced, the predicted rate."""
        ipt, hello = summary.decode_instructions_per_token, self._hello
        if not self.emulated or ipt is None or hello is None:
            return summary
        changes: dict[str, Any] = {"ipc1_decode_tokens_per_s": hello.clock_hz / ipt}
        if self.settings.predict:
            changes.update(self._prediction(ipt, hello.clock_hz))
        return dataclasses.replace(summary, **changes)

    def _prediction(self, ipt: float, clock_hz: int) -> dict[str, Any]:
        from profiler import cycles

        board, s, fw = self.target.board, self.settings, self.target.firmware
        if not cycles.supported(board):
            return {"prediction_note": f"no cycle model for the {board.core} core"}
        if self._trace_dir is None or fw is None:
            return {"prediction_note": "only boards the profiler emulates itself are traced"}
        try:
            found = cycles.predict_decode(board, fw.elf, Path(self._trace_dir.name) / "exec.trace",
                                          len(s.prompt_tokens), s.tokens)
        except (ProfilerError, OSError, KeyError) as exc:
            return {"prediction_note": f"the trace could not be read: {exc}"}
        finally:
            self._trace_dir.cleanup()
        if found is None:
            return {"prediction_note": "a prediction needs at least 3 tokens (2 bounded decode steps)"}
        # the traced cycles per instruction, applied to the tick-exact instructions per token
        scale = ipt / found.instructions_per_step
        cycles_per_token = found.cycles_per_step * scale
        return {
            "predicted_cycles_per_token": cycles_per_token,
            "predicted_decode_tokens_per_s": clock_hz / cycles_per_token,
            "cycle_model": found.model,
            "predicted_cycles_per_token_by_part": {k: round(v * scale, 1)
                                                   for k, v in found.cycles_per_step_by_part.items()},
        }
