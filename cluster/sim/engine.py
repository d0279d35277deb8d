"""The simulated event loop: the one module that touches simloop, and the only one that uses its private names.

simloop (PyPI, pinned to 0.2.2) gives an asyncio event loop with virtual time, seeded choices and an
in-memory network of named hosts. `SimEngine` subclasses its `SimLoop` and adds what a shardsim run needs,
through private names of simloop 0.2.2 (`SimLoop._step`, `_ready`, `_timers`, `_advance_clock`, `_recorder`,
`_next_seq`; the network's `_require_host`, `_listeners`, `_datagrams`, `_streams`, `_pending`, `_tasks`,
`_deliver`, a stream transport's `_send`, `_closed`, `_closing`, `_protocol`; `_current_host`, `WIRE`,
`DRIVER`, `_wire_context`; asyncio's `Handle._context`, `Handle._args`): importing this module on another
simloop version raises `SimloopVersionError` rather than running on internals that may have changed.

- **Scheduling**: each host's own callbacks run in the order they were scheduled (asyncio's FIFO guarantee,
  which aiohttp relies on), a packet's arrival queued behind them as a real loop queues an I/O callback,
  and which host runs next is a seeded draw among the hosts with work ready (`_pick`). Network latencies
  are seeded draws too. docs/simulation.md says why.
- **Process faults**: `pause`/`resume` hold and release a host's callbacks, timers and incoming packets, as
  SIGSTOP/SIGCONT do; `kill` is SIGKILL: nothing of that incarnation ever runs again (no `finally`, no
  `connection_lost`, no timer), its listeners vanish (connects are refused), its connections are reset
  towards their peers, and its files stay as they are. `host_start` boots a (new) incarnation.
- **Clock and randomness**: `runtime()` is the `node.clock.Runtime` of the run: virtual time from
  `SIM_EPOCH`, one random source seeded from the seed.
- **Errors**: an exception no task retrieved is logged on the host it happened on, as asyncio's default
  handler logs it; it does not end the run (it would not end a real process either).
- **fsync** is skipped while a run lasts: it only matters for a power loss, which the simulation does not
  model (a killed process's writes stay in the page cache, as they do on a live machine), and it costs wall
  time only.
- **Garbage**: automatic collection is off during a run and done every `GC_EVERY_STEPS` steps instead, so
  finalizers run at the same step in every replay; whatever a killed incarnation held is kept forever in
  `GRAVEYARD` (a collected coroutine would run its `finally`, a collected file would flush its buffer).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import random
from collections.abc import Callable, Coroutine
from typing import Any

import simloop
from simloop import SimLoop, SimulationDeadlockError
from simloop._net import DRIVER, WIRE, _current_host, _wire_context  # noqa: I001 - private, pinned below

from node import clock

SIMLOOP_VERSION = "0.2.2"
SIM_EPOCH_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z is virtual time 0
GC_EVERY_STEPS = 20_000
GC_FULL_EVERY = 25  # every 25th collection is a full one
DEFAULT_LATENCY_S = (0.0002, 0.002)  # one way, between any two hosts (a LAN)



class SimloopVersionError(ImportError):
    """The installed simloop is not the one this module was written against."""


if getattr(simloop, "__version__", None) != SIMLOOP_VERSION:
    raise SimloopVersionError(
        f"shardsim's simulation is built on simloop=={SIMLOOP_VERSION}'s internals, found simloop "
        f"{getattr(simloop, '__version__', '?')}: pip install 'simloop=={SIMLOOP_VERSION}'")

# Which incarnation of which host a callback belongs to: set when a host is booted, copied into every task
# and handle that incarnation creates, so a callback an old incarnation registered is known as old.
_incarnation: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "shardsim_incarnation", default=None)

GRAVEYARD: list[Any] = []  # what killed incarnations left: never collected while this process lives

ReadyEntry = tuple[int, str, asyncio.Handle, Callable[..., object]]


def _context_of(item: asyncio.Handle | asyncio.Task[Any]) -> contextvars.Context:
    """The context a handle runs in (asyncio copies it in at scheduling) or a task's (Python 3.12+)."""
    if isinstance(item, asyncio.Task):
        return item.get_context()  # type: ignore[attr-defined, no-any-return]  # 3.12+; simulation needs 3.12+
    return item._context  # type: ignore[attr-defined, no-any-return]  # private to asyncio


def _host_of(item: asyncio.Handle | asyncio.Task[Any]) -> str:
    return str(_context_of(item).get(_current_host, DRIVER))


def current_host() -> str:
    """The simulated host whose code is running ("driver" outside any host, "" for the network itself)."""
    return _current_host.get()


def simulated_loop() -> SimEngine | None:
    """The running `SimEngine`, or None when the running loop is a real one (or none runs)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop if isinstance(loop, SimEngine) else None


class _NoTrace:
    """simloop records every scheduling decision for its trace hash; a run here is judged on its own history
    (a trace can be equal while the results differ), so nothing is recorded: a long run stays small."""

    def record(self, *args: Any) -> None:
        return None

    def hash(self) -> str:
        return ""

    def __len__(self) -> int:
        return 0

    @property
    def events(self) -> tuple[()]:
        return ()


class SimEngine(SimLoop):  # type: ignore[misc]  # simloop is absent from Python 3.11's type check
    """A seeded simulated loop with per-host FIFO scheduling and process faults; see the module docstring."""

    def __init__(self, seed: int, latency_s: tuple[float, float] = DEFAULT_LATENCY_S,
                 flow_control: bool = True) -> None:
        super().__init__(seed)
        self._recorder = _NoTrace()
        self._deliver = self.net._deliver
        self._host_rng = random.Random(f"{seed}:hosts")
        self.clock_rng = random.Random(f"{seed}:shardsim")
        self.steps = 0
        self._paused: set[str] = set()
        self._parked: dict[str, list[ReadyEntry]] = {}
        self._kill_seq: dict[str, int] = {}
        self._incarnations: dict[str, int] = {}
        self._dead_tasks: set[asyncio.Task[Any]] = set()
        self.errors: list[str] = []
        self.net.set_defaults(latency=latency_s)
        if flow_control:
            self.net.set_flow_control(enabled=True)
        self.set_exception_handler(_exception_log)

    # -- clock and randomness ------------------------------------------------------------------------------
    def runtime(self) -> clock.Runtime:
        """Virtual time (epoch `SIM_EPOCH_S` at 0) and one seeded random source, for `node.clock.install`."""
        return clock.Runtime(wall_s=lambda: SIM_EPOCH_S + self.time(), monotonic_s=self.time,
                             random_source=self.clock_rng, simulated=True)

    # -- hosts -----------------------------------------------------------------------------------------------
    def host_start(self, name: str, coro: Coroutine[Any, Any, Any], task_name: str) -> asyncio.Task[Any]:
        """Run `coro` as a new incarnation of host `name` (created on first use); returns its task."""
        self.net.host(name)
        number = self._incarnations.get(name, 0) + 1
        self._incarnations[name] = number
        token = _incarnation.set((name, number))
        try:
            return self.net.host(name).create_task(coro, name=task_name)
        finally:
            _incarnation.reset(token)

    def call_on(self, host: str, delay_s: float, callback: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
        """Call `callback` after `delay_s` as an arrival on `host` (queued behind what `host` already has to do,
        held while it is paused, dropped if it is killed meanwhile), whoever schedules it."""
        context = _wire_context()  # a copy of the current context, with the host set just below
        context.run(_current_host.set, host)
        context.run(_incarnation.set, None)
        return self.call_later(delay_s, callback, *args, context=context)

    def paused(self, name: str) -> bool:
        return name in self._paused

    def pause(self, name: str) -> None:
        """SIGSTOP: nothing of `name` runs (callbacks, timers, arriving data) until `resume`."""
        self.net._require_host(name)
        self._paused.add(name)
        self._parked.setdefault(name, [])

    def resume(self, name: str) -> None:
        """SIGCONT: what was held runs, in the order it was held (timers late, as after a real stop)."""
        self._paused.discard(name)
        self._ready.extend(self._parked.pop(name, []))  # in place: simloop's ready view aliases this list

    def kill(self, name: str) -> None:
        """SIGKILL of the process on host `name`; the host stays up (connects are refused, not lost)."""
        net = self.net
        net._require_host(name)
        if name in self._paused:
            self._paused.discard(name)
            GRAVEYARD.extend(self._parked.pop(name, []))
        for key in [key for key in net._listeners if key[0] == name]:
            del net._listeners[key]  # not server.close(): that would wake the dead process's waiters
        for key in [key for key in net._datagrams if key[0] == name]:
            del net._datagrams[key]
        for key in [key for key in net._streams if key[1] == name]:
            transport = net._streams.pop(key)  # no connection_lost: the process is gone, not told
            if not transport._closed:
                transport._send("rst")  # the kernel resets a dead process's connections
            transport._closed = transport._closing = True
            GRAVEYARD.append(transport._protocol)
            transport._protocol = None
        for conn in [conn for conn, pending in net._pending.items() if pending.local[0] == name]:
            GRAVEYARD.append(net._pending.pop(conn))
        for task in asyncio.all_tasks(self):  # eager tasks included, which simloop's own registry misses
            if _host_of(task) == name:
                self._dead_tasks.add(task)
                GRAVEYARD.append(task)
        net._tasks[name] = []  # so simloop's teardown never cancels (and so resumes) them
        self._kill_seq[name] = self._next_seq

    # -- scheduling ------------------------------------------------------------------------------------------
    def _verdict(self, entry: ReadyEntry) -> str | None:
        """None: may run; "drop": belongs to a killed incarnation; "park": its host (or receiver) is paused."""
        seq, _label, handle, callback = entry
        context = _context_of(handle)
        host = context.get(_current_host, DRIVER)
        if host == WIRE:
            if self._paused and callback == self.net._deliver:
                packet = handle._args[0]
                if packet.dst in self._paused and packet.kind != "syn":  # a stopped process's kernel accepts
                    self._parked[packet.dst].append(entry)
                    return "park"
            return None
        if host in self._kill_seq:
            owner = getattr(callback, "__self__", None)  # a task's step is a bound method of the task
            incarnation = context.get(_incarnation, None)
            if seq < self._kill_seq[host] or (isinstance(owner, asyncio.Task) and owner in self._dead_tasks) or (
                    incarnation is not None and incarnation[0] == host
                    and incarnation[1] < self._incarnations[host]):
                GRAVEYARD.append(entry)
                return "drop"
        if host in self._paused:
            self._parked[host].append(entry)
            return "park"
        return None

    def _filter(self) -> None:
        kept = [entry for entry in self._ready if self._verdict(entry) is None]
        if len(kept) != len(self._ready):
            self._ready[:] = kept  # in place: simloop's ready view aliases this list

    def _pick(self) -> int:
        """The oldest ready callback of one host, the host drawn with the seed among those with work."""
        ready = self._ready
        if len(ready) == 1:
            return 0
        first: dict[str, int] = {}
        deliver = self._deliver
        for index, entry in enumerate(ready):
            host = _host_of(entry[2])
            if host == WIRE and entry[3] == deliver:
                host = entry[2]._args[0].dst  # a packet's arrival is its receiver's work, in its queue
            if host not in first:
                first[host] = index
        if len(first) == 1:
            return 0
        oldest = list(first.values())
        return oldest[self._host_rng.randrange(len(oldest))]

    def _step(self) -> None:
        while True:
            if not self._ready:
                self._advance_clock()  # raises SimulationDeadlockError when no timer is left
            if self._paused or self._kill_seq:
                self._filter()
            if self._ready:
                break
            if not self._timers:
                raise SimulationDeadlockError("only paused or killed hosts have work left")
        _seq, _label, handle, _callback = self._ready.pop(self._pick())
        if handle.cancelled():
            return
        self.steps += 1
        if self.steps % GC_EVERY_STEPS == 0:
            gc.collect(2 if self.steps % (GC_EVERY_STEPS * GC_FULL_EVERY) == 0 else 1)
        handle._run()

    # -- running ---------------------------------------------------------------------------------------------
    def run(self, main: Coroutine[Any, Any, Any], host: str = "runner") -> Any:
        """Run `main` on host `host` to its end with this loop, then close the loop; returns its result."""
        gc_was_enabled = gc.isenabled()
        gc.disable()
        fsync = os.fsync
        os.fsync = _fsync_skipped
        try:
            task = self.host_start(host, main, task_name=f"{host} main")
            task.add_done_callback(lambda _task: self.stop())
            try:
                self.run_forever()
            finally:
                # what is left would only run cleanup after the run: the run is over, as if SIGKILLed
                GRAVEYARD.extend(left for left in asyncio.all_tasks(self) if not left.done())
                self.close()
            if not task.done():
                raise SimulationDeadlockError(f"the simulation ran out of work at {self.time():.3f} s before "
                                              "the run ended: every task waits for something nothing will do")
            return task.result()
        finally:
            os.fsync = fsync
            if gc_was_enabled:
                gc.enable()


def _fsync_skipped(fd: Any) -> None:
    """`os.fsync` during a run: no power loss is simulated, so durability costs nothing (see the docstring)."""
    return None


def _host_of_context(context: dict[str, Any]) -> str:
    for key in ("task", "future", "handle"):
        item = context.get(key)
        if isinstance(item, asyncio.Task | asyncio.Handle):
            return _host_of(item)
    return DRIVER


def _exception_log(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Log what asyncio's default handler would log, on the host it happened on; never end the run."""
    exception = context.get("exception")
    if isinstance(exception, asyncio.CancelledError):
        return  # CPython 3.12.1's start_server reports a cancelled handler this way (fixed in 3.13)
    host = _host_of_context(context)
    token = _current_host.set(host)
    try:
        logging.getLogger("asyncio").error(context.get("message", "unhandled error in a callback"),
                                           exc_info=exception if isinstance(exception, BaseException) else None)
    finally:
        _current_host.reset(token)
    if isinstance(loop, SimEngine):
        loop.errors.append(f"{host}: {context.get('message')}: {exception!r}")
