"""Cortex-M4 cycles from an exact instruction trace and the processor's published timings.

QEMU executes the firmware instruction by instruction but models no pipeline, so
:mod:`edgekit.devices.qemu` counts instructions exactly. This module turns the same trace into
cycles with the instruction timings of the Cortex-M4 Technical Reference Manual (the
processor's instruction set summary and the FPU's instruction timings): most data processing
and every multiply and multiply-accumulate (the DSP extension's SMLAD included) take 1 cycle,
a load 2 (1 more in a run of neighbouring loads and stores, which pipeline), a store with an
immediate offset 1, LDRD/STRD 3, LDM/STM/PUSH/POP 1 + registers, a taken branch 1 + P, a
floating-point multiply-accumulate 3, a divide or square root 14, an integer divide 2 to 12.

Assumptions, stated with every figure (:data:`SOURCE`): zero wait states (code and data in
single-cycle memory, as on the mps2-an386 board's SRAM; flash at 64 MHz usually adds some),
a pipeline refill of :data:`REFILL` cycles (the manual gives 1 to 3), integer divides at
:data:`DIVIDE` cycles, IT instructions not folded, and no stall for a load whose address
depends on the instruction before it. Figures are estimates from exact traces, marked as such.

Nothing here imports numpy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError

REFILL = 2  # P: pipeline refill after a taken branch (the manual: 1 to 3)
DIVIDE = 7  # SDIV/UDIV: 2 to 12 cycles by the operands (the manual); the middle
SOURCE = (
    f"emulated: Cortex-M4 TRM instruction timings over the exact trace (zero wait states, "
    f"pipeline refill {REFILL} cycles, divides {DIVIDE})"
)


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ONE = _names(
    "add adc sub sbc rsb mov mvn and orr orn eor bic tst teq cmp cmn lsl lsr asr ror rrx "
    "movw movt adr sxtb sxth uxtb uxth sxtb16 uxtb16 sxtab sxtah uxtab uxtah sxtab16 uxtab16 "
    "ubfx sbfx bfi bfc clz rbit rev rev16 revsh ssat usat ssat16 usat16 sel pkhbt pkhtb nop "
    "it itt ite ittt itte itet itee itttt ittte ittet ittee itett itete iteet iteee "
    "qadd qsub qdadd qdsub qadd8 qadd16 qsub8 qsub16 qasx qsax sadd8 sadd16 ssub8 ssub16 "
    "sasx ssax uadd8 uadd16 usub8 usub16 uasx usax shadd8 shadd16 shsub8 shsub16 uhadd8 "
    "uhadd16 uhsub8 uhsub16 uqadd8 uqadd16 uqsub8 uqsub16 usad8 usada8 "
    "mul mla mls smull umull smlal umlal umaal smmul smmulr smmla smmlar smmls smmlsr "
    "smlabb smlabt smlatb smlatt smulbb smulbt smultb smultt smlawb smlawt smulwb smulwt "
    "smlad smladx smlsd smlsdx smuad smuadx smusd smusdx smlald smlaldx smlsld smlsldx "
    "smlalbb smlalbt smlaltb smlaltt dmb dsb isb cpsie cpsid mrs msr neg bkpt svc wfi sev "
    "vadd vsub vmul vnmul vabs vneg vcmp vcmpe vcvt vcvtr vcvtb vcvtt vmrs vmsr"
)
_FP_MAC = _names("vmla vmls vnmla vnmls vfma vfms vfnma vfnms")
_FP_LONG = frozenset(["vdiv", "vsqrt"])
_LOADS = _names("ldr ldrb ldrh ldrsb ldrsh ldrex ldrexb ldrexh ldrt ldrbt ldrht")
_STORES = _names("str strb strh strex strexb strexh strt strbt strht")
_MULTI = _names("ldm ldmia ldmdb ldmfd stm stmia stmdb stmea push pop vldm vldmia "
                   "vldmdb vstm vstmia vstmdb vpush vpop")  # fmt: skip
_BRANCH = frozenset(["b", "bl", "bx", "blx", "cbz", "cbnz", "tbb", "tbh"])
_CONDITIONS = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge",
               "lt", "gt", "le", "al")  # fmt: skip
_KNOWN = (_ONE | _FP_MAC | _FP_LONG | _LOADS | _STORES | _MULTI | _BRANCH
          | {"ldrd", "strd", "vldr", "vstr", "vmov", "sdiv", "udiv"})  # fmt: skip
_LINE = re.compile(r"^\s*([0-9a-f]+):\s+((?:[0-9a-f]{4} ?){1,2})\s+([a-z][a-z0-9.]*)\s*(.*)$")


@dataclass(frozen=True)
class Instruction:
    """One instruction of the firmware, as its timing needs it."""

    size: int  # bytes: 2 or 4
    cycles: int  # when it does not branch and is not pipelined with the one before
    kind: str  # "mem" (a single load or store: pipelines), "branch", or ""
    refill_if_taken: bool = False  # a branch: 1 + P when taken, 1 when not


def base_mnemonic(mnemonic: str) -> str:
    """``ldr.w`` -> ``ldr``, ``vadd.f32`` -> ``vadd``, ``movgt`` -> ``mov``, ``adds`` -> ``add``,
    ``bne`` -> ``b`` (a condition or a flag-setting ``s`` dropped where what is left is known)."""
    m = mnemonic.lower().split(".")[0]
    if m in _KNOWN:
        return m
    for cond in _CONDITIONS:
        if m.endswith(cond) and m[: -len(cond)] in _KNOWN:
            return m[: -len(cond)]
        if m.endswith(cond) and m[: -len(cond)].endswith("s") and m[: -len(cond) - 1] in _KNOWN:
            return m[: -len(cond) - 1]
    if m.endswith("s") and m[:-1] in _KNOWN:
        return m[:-1]
    return m


def _register_count(operands: str) -> int:
    """Registers in a ``{r4, r5-r7, lr}`` list."""
    inside = operands[operands.find("{") + 1 : operands.find("}")] if "{" in operands else ""
    count = 0
    for part in (p.strip() for p in inside.split(",") if p.strip()):
        if "-" in part:
            lo, hi = (int(re.sub(r"\D", "", r) or 0) for r in part.split("-", 1))
            count += max(1, hi - lo + 1)
        else:
            count += 1
    return max(count, 1)


def instruction_timing(mnemonic: str, operands: str, size: int) -> Instruction:
    """The timing of one disassembled instruction (see the module docstring)."""
    m = base_mnemonic(mnemonic)
    writes_pc = bool(re.match(r"\s*pc\b", operands)) or ("{" in operands and "pc" in operands)
    refill = REFILL if writes_pc else 0
    if m in _BRANCH:
        if m in ("tbb", "tbh"):
            return Instruction(size, 2 + REFILL, "branch")
        return Instruction(size, 1, "branch", refill_if_taken=True)
    if m in _LOADS:
        return Instruction(size, 2 + refill, "mem" if not refill else "")
    if m in _STORES:  # STR Rx, [Ry, #imm] (or [Ry], post-indexed): 1; register offset: 2
        register_offset = re.search(r"\[\s*\w+\s*,\s*(?:r\d+|ip|lr|fp|sl|sb)\b", operands)
        return Instruction(size, 2 if register_offset else 1, "mem")
    if m in ("ldrd", "strd"):
        return Instruction(size, 3, "")
    if m in ("vldr", "vstr"):
        return Instruction(size, 2, "")
    if m in _MULTI:
        return Instruction(size, 1 + _register_count(operands) + refill, "")
    if m in _FP_MAC:
        return Instruction(size, 3, "")
    if m in _FP_LONG:
        return Instruction(size, 14, "")
    if m in ("sdiv", "udiv"):
        return Instruction(size, DIVIDE, "")
    if m == "vmov":  # core <-> two single registers or a double: 2
        regs = [r.strip() for r in operands.split(",")]
        return Instruction(
            size, 2 if len(regs) >= 3 or operands.lstrip().startswith("d") else 1, ""
        )
    return Instruction(size, 1 + refill, "")


def disassemble(elf: Path) -> dict[int, Instruction]:
    """Every instruction of ``elf`` by address (``arm-none-eabi-objdump -d``)."""
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump is None:
        raise EdgekitError("arm-none-eabi-objdump not found (it comes with arm-none-eabi-gcc)")
    done = subprocess.run([objdump, "-d", str(elf)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise EdgekitError(f"arm-none-eabi-objdump failed on {elf.name}: {done.stderr[:200]}")
    table: dict[int, Instruction] = {}
    for line in done.stdout.splitlines():
        m = _LINE.match(line)
        if m is None or m.group(3).startswith("."):  # .word: a literal pool, not code
            continue
        size = 2 * len(m.group(2).split())
        table[int(m.group(1), 16)] = instruction_timing(m.group(3), m.group(4), size)
    return table


class CycleCounter:
    """Cycles of a stream of executed addresses, one :meth:`step` per instruction: the cost
    of each is settled when the next address shows whether it branched."""

    def __init__(self, table: dict[int, Instruction]):
        self.table = table
        self.total = 0
        self.unknown = 0
        self._pending: Instruction | None = None
        self._pending_pc = -1
        self._previous_mem = False

    def step(self, pc: int) -> None:
        prev = self._pending
        if prev is not None:
            taken = pc != self._pending_pc + prev.size
            cost = prev.cycles + (REFILL if prev.refill_if_taken and taken else 0)
            if prev.kind == "mem" and self._previous_mem:
                cost -= 1  # neighbouring loads and stores pipeline: N + 1 for N
            self._previous_mem = prev.kind == "mem"
            self.total += max(cost, 1)
        ins = self.table.get(pc)
        if ins is None:
            self.unknown += 1
            ins = Instruction(2, 1, "")
        self._pending, self._pending_pc = ins, pc
