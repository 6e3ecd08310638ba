"""Cortex-M4 cycles from an instruction trace: the manual's timings per instruction, the
pipelining of neighbouring loads and stores, the refill after a taken branch."""

from __future__ import annotations

import pytest

from edgekit.devices.m4_timing import (
    REFILL,
    CycleCounter,
    Instruction,
    base_mnemonic,
    instruction_timing,
)


@pytest.mark.parametrize(
    ("mnemonic", "base"),
    [("ldr.w", "ldr"), ("vadd.f32", "vadd"), ("movgt", "mov"), ("adds", "add"), ("lsls", "lsl"),
     ("bne", "b"), ("bls", "b"), ("blt", "b"), ("bl", "bl"), ("bx", "bx"), ("smlad", "smlad"),
     ("sxtb16", "sxtb16"), ("vcvtr.s32.f32", "vcvtr"), ("ldrsb.w", "ldrsb"), ("itt", "itt")],
)  # fmt: skip
def test_mnemonics_lose_width_type_condition_and_flags(mnemonic, base):
    assert base_mnemonic(mnemonic) == base


@pytest.mark.parametrize(
    ("mnemonic", "operands", "cycles", "kind"),
    [
        ("ldr.w", "r5, [r1, #784]", 2, "mem"),
        ("ldr", "pc, [sp], #4", 2 + REFILL, ""),
        ("str", "r3, [sp, #4]", 1, "mem"),  # immediate offset: 1 (the store buffer)
        ("strb.w", "r3, [r2], #1", 1, "mem"),
        ("str.w", "r3, [r1, r2]", 2, "mem"),  # register offset: 2
        ("ldrd", "r3, r2, [ip]", 3, ""),
        ("push", "{r4, r5, r6, lr}", 5, ""),
        ("pop", "{r4, r5, r6, r7, r8, pc}", 1 + 6 + REFILL, ""),
        ("vpush", "{d8-d11}", 5, ""),
        ("smlad", "r0, r2, r9, r0", 1, ""),
        ("sxtb16", "r6, r6, ror #8", 1, ""),
        ("mul.w", "r9, r6, r9", 1, ""),
        ("vmla.f32", "s0, s1, s2", 3, ""),
        ("vdiv.f32", "s0, s1, s2", 14, ""),
        ("vmov", "r3, s13", 1, ""),
        ("vmov", "r0, r1, d0", 2, ""),
        ("bne.n", "94 <f+0x94>", 1, "branch"),
    ],
)
def test_instruction_timings_are_the_manuals(mnemonic, operands, cycles, kind):
    t = instruction_timing(mnemonic, operands, 4)
    assert (t.cycles, t.kind) == (cycles, kind)
    assert t.refill_if_taken == (kind == "branch")


def test_loads_pipeline_and_a_taken_branch_refills():
    # 0: ldr  2: ldr  4: add  6: bne 0 (taken once, then falls through to 8: nop)
    table = {
        0: Instruction(2, 2, "mem"),
        2: Instruction(2, 2, "mem"),
        4: Instruction(2, 1, ""),
        6: Instruction(2, 1, "branch", refill_if_taken=True),
        8: Instruction(2, 1, ""),
    }
    counter = CycleCounter(table)
    for pc in (0, 2, 4, 6, 0, 2, 4, 6, 8, 8):  # the last address only settles the one before
        counter.step(pc)
    # each pass: ldr 2 + ldr 1 (pipelined) + add 1; bne taken 1 + P, then not taken 1; nop 1
    assert counter.total == (2 + 1 + 1) * 2 + (1 + REFILL) + 1 + 1
    assert counter.unknown == 0
