"""The engine's inline gas counter (`ethereum.useGas` lowered in place), as a mixin of
the function-body lowerer (function.py).

With the engine's gas counter, internal functions take the counter as an argument and
return it beside their status (see calls.ret_type). Inside a function the counter lives
in `%gas`: an alloca that SROA promotes to a register on the optimising tier; on the
baseline tier the same for small functions, the context struct's field for big ones (see
_FuncLowerer.gas_in_register)."""

from __future__ import annotations

from ..errors import TrapKind
from . import abi
from .calls import TRAP_HELPER, _is_literal

# A deferred charge is at most this (the sum of a run then stays far below 2^63).
DEFER_MAX = 1 << 32
# At most this many charges wait: a run's failure path has a block per charge, and the
# run is carried into both ways of every `if`, so without a cap n nested ifs, each after
# a charge, would give n^2 blocks.
DEFER_RUN = 16


class GasLowering:
    """Gas handling for _FuncLowerer; uses its pop/emit/tmp/trap_if and gas flags."""

    # Charges waiting to be made as one (optimising tier): (amount, byte offset) in order.
    pending_gas: list[tuple[int, int]] = []
    pending_at: tuple[int, str] = (0, "")  # where the first one was: output line, block

    def use_gas(self, off: int) -> None:
        """The engine's gas counter, inline: no host call per metered block. On running
        out the counter keeps its value from before the failing charge.

        On the optimising tier a literal charge waits in pending_gas while only
        instructions that cannot trap, have no effect and do not read the counter follow
        (_FuncLowerer flushes before any other, and carries the charges into both arms of
        an `if`): consecutive charges become one sub, whose failure path finds the charge
        that ran out and reports the counter as it was before it."""
        _, amount = self.pop()
        if self.ml.optimizing and _is_literal(amount) and 0 <= int(amount) <= DEFER_MAX:
            if len(self.pending_gas) >= DEFER_RUN:
                self.flush_gas()
            if not self.pending_gas:
                self.pending_at = (len(self.out), self.cur)
            self.pending_gas = [*self.pending_gas, (int(amount), off)]
            return
        self.flush_gas()
        self.charge(amount, off)

    def flush_gas(self) -> None:
        """Make the pending charges (as one check)."""
        pending, self.pending_gas = self.pending_gas, []
        if self.dead or not pending:
            return
        if len(pending) == 1:
            at, block = self.pending_at
            if block != self.cur:  # carried into an arm of an `if`: charged here
                self.charge(str(pending[0][0]), pending[0][1])
                return
            # Nothing to merge it with: the charge goes where it was, among the lines
            # lowered since (moved later it only lengthened sha256's loop, measured).
            later, self.out = self.out[at:], self.out[:at]
            self.charge(str(pending[0][0]), pending[0][1])
            self.out += later
            return
        total = sum(a for a, _ in pending)
        g, r, oog, ng = self.tmp(), self.tmp(), self.tmp(), self.tmp()
        self.emit(f"{g} = load i64, ptr %gas")
        self.emit(f"{r} = call {{i64, i1}} @llvm.usub.with.overflow.i64(i64 {g}, i64 {total})")
        self.emit(f"{oog} = extractvalue {{i64, i1}} {r}, 1")
        self.gas_result(r, ng)
        self.emit(f"store i64 {ng}, ptr %gas")  # repaired on the failure path
        # The failure path: the counter from before the run (the sub wrapped), then the
        # first charge it does not cover.
        site = self.label("oog")
        now, before = self.tmp(), self.tmp()
        lines = [f"{site}:", f"  {now} = load i64, ptr %gas",
                 f"  {before} = add i64 {now}, {total}"]
        spent = 0
        for k, (amount, off) in enumerate(pending):
            fail = self.label("oogat")
            if k < len(pending) - 1:
                short, nxt = self.tmp(), self.label("oogn")
                lines += [f"  {short} = icmp ult i64 {before}, {spent + amount}",
                          f"  br i1 {short}, label %{fail}, label %{nxt}"]
            else:
                lines.append(f"  br label %{fail}")
            left = self.tmp()
            info = (int(TrapKind.OUT_OF_GAS) << abi.TRAP_CODE_SHIFT) | off
            self.deferred += [f"{fail}:", f"  {left} = sub i64 {before}, {spent}",
                              f"  store i64 {left}, ptr %gas",
                              f"  call void {TRAP_HELPER}(ptr %ctx, i32 {self.idx}, i64 {info})",
                              "  br label %trapped"]
            if k < len(pending) - 1:
                lines.append(f"{nxt}:")
            spent += amount
        self.deferred += lines
        self.has_trap = True
        ok = self.label("ok")
        self.emit(f"br i1 {oog}, label %{site}, label %{ok}{self.cold}")
        self.start_block(ok)

    def charge(self, amount: str, off: int) -> None:
        g, r, oog, ng = self.tmp(), self.tmp(), self.tmp(), self.tmp()
        self.emit(f"{g} = load i64, ptr %gas")
        # One sub and a carry branch; on a borrow the stored counter is left untouched.
        self.emit(f"{r} = call {{i64, i1}} @llvm.usub.with.overflow.i64(i64 {g}, i64 {amount})")
        self.emit(f"{oog} = extractvalue {{i64, i1}} {r}, 1")
        # A negative amount always borrows (the counter is < 2^63); Ewasm reports it as
        # an argument error, not out of gas. LLVM sinks the select into the trap path.
        if _is_literal(amount):
            code: int | str = int(TrapKind.NEGATIVE_GAS if int(amount) < 0 else TrapKind.OUT_OF_GAS)
        else:
            neg, code = self.tmp(), self.tmp()
            self.emit(f"{neg} = icmp slt i64 {amount}, 0")
            self.emit(f"{code} = select i1 {neg}, i32 {int(TrapKind.NEGATIVE_GAS)}, "
                      f"i32 {int(TrapKind.OUT_OF_GAS)}")
        self.gas_result(r, ng)
        prelude: tuple[str, ...] = ()
        if self.ml.optimizing and _is_literal(amount):
            # The difference is stored before the branch, and the trap path adds the
            # amount back (the sub wrapped): the value from before the charge is not kept
            # alive on the hot path, and with the counter in the context x86 does the
            # load, sub and store as one instruction. Nothing reads the counter between
            # the store and the trap site's repair.
            now, back = self.tmp(), self.tmp()
            prelude = (f"  {now} = load i64, ptr %gas", f"  {back} = add i64 {now}, {amount}",
                       f"  store i64 {back}, ptr %gas")
            self.emit(f"store i64 {ng}, ptr %gas")
        self.trap_if(oog, code, off, prelude)
        if not prelude:
            self.emit(f"store i64 {ng}, ptr %gas")

    def gas_result(self, r: str, ng: str) -> None:
        """ng = the counter after the charge r (see _FuncLowerer.gas_barrier)."""
        if not self.gas_barrier:
            self.emit(f"{ng} = extractvalue {{i64, i1}} {r}, 0")
            return
        self.emit(f"{ng}.s = extractvalue {{i64, i1}} {r}, 0")
        self.emit(f'{ng} = call i64 asm "", "=r,0"(i64 {ng}.s)')

    def gas_arg(self) -> list[str]:
        if not self.gas:
            return []
        g = self.tmp()
        self.emit(f"{g} = load i64, ptr %gas")
        return [f"i64 {g}"]

    def gas_from_call(self, r: str, rt: str) -> None:
        if self.gas:
            g = self.tmp()
            self.emit(f"{g} = extractvalue {rt} {r}, 1")
            self.emit(f"store i64 {g}, ptr %gas")

    def gas_to_ctx(self) -> None:
        """Before a call that leaves compiled code: the host reads and charges the counter
        in the context struct."""
        if self.gas and self.gas_in_register:
            g, p = self.tmp(), self.tmp()
            self.emit(f"{g} = load i64, ptr %gas")
            self.emit(f"{p} = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_GAS}")
            self.emit(f"store i64 {g}, ptr {p}")

    def gas_from_ctx(self) -> None:
        if self.gas and self.gas_in_register:
            g, p = self.tmp(), self.tmp()
            self.emit(f"{p} = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_GAS}")
            self.emit(f"{g} = load i64, ptr {p}")
            self.emit(f"store i64 {g}, ptr %gas")
