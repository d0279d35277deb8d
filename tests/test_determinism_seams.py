"""Time and randomness enter `node/` and `cluster/` through one door: `node/clock.py` (issue 16).

A simulation installs a seeded `clock.Runtime` and replays a run from its seed only if no code reads the wall
clock or the OS's randomness behind its back. This scans the source (ast) for the direct reads: `time.time()`,
`time.time_ns()`, `time.monotonic()`, `time.perf_counter()` (and their `_ns`), `time.localtime()` and friends
without a time, `datetime.now()`/`utcnow()`/`today()`, anything of `secrets`, `uuid.uuid1()`/`uuid4()`,
the module-level `random` functions, `random.Random()` without a seed, `random.SystemRandom`, `os.urandom`
and `os.getrandom`. A running loop's `loop.time()` is fine: the simulated loop virtualises it.

A read that must stay real (the wall time a simulation costs, for a benchmark) says so on its line with a
`# not simulated: <why>` comment; there is none today.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("node", "cluster")
ALLOWED = {"node/clock.py"}  # the door itself; nothing else
REAL_ON_PURPOSE = "# not simulated:"

TIME_READS = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "process_time",
              "process_time_ns"}
TIME_READS_WITHOUT_ARGUMENT = {"localtime", "gmtime", "ctime", "asctime"}
DATETIME_READS = {"now", "utcnow", "today"}
UUID_READS = {"uuid1", "uuid4"}
OS_READS = {"urandom", "getrandom"}
MODULES_FORBIDDEN = {"secrets"}


def annotation_nodes(tree: ast.AST) -> set[int]:
    """The ids of every node inside an annotation (`random.Random` may name a type)."""
    inside: set[int] = set()
    for item in ast.walk(tree):
        annotations = []
        if isinstance(item, ast.AnnAssign):
            annotations.append(item.annotation)
        elif isinstance(item, ast.arg) and item.annotation is not None:
            annotations.append(item.annotation)
        elif isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.returns is not None:
            annotations.append(item.returns)
        for annotation in annotations:
            inside |= {id(inner) for inner in ast.walk(annotation)}
    return inside


def direct_reads(source: str, filename: str = "<source>") -> list[str]:
    """`line: text` of every direct read of the clock or the OS's randomness in `source`."""
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    in_annotation = annotation_nodes(tree)
    calls = {id(item.func): item for item in ast.walk(tree) if isinstance(item, ast.Call)}
    found: list[tuple[int, str]] = []
    for item in ast.walk(tree):
        if isinstance(item, ast.Import):
            found += [(item.lineno, f"import {a.name}") for a in item.names if a.name in MODULES_FORBIDDEN]
        elif isinstance(item, ast.ImportFrom) and item.module is not None:
            names = {a.name for a in item.names}
            bad = (item.module in MODULES_FORBIDDEN or (item.module == "time" and names & TIME_READS)
                   or (item.module == "uuid" and names & UUID_READS) or (item.module == "os" and names & OS_READS)
                   or (item.module == "random" and names - {"Random"}))
            if bad:
                found.append((item.lineno, f"from {item.module} import {', '.join(sorted(names))}"))
        elif isinstance(item, ast.Attribute) and id(item) not in in_annotation:
            if reads(item, calls.get(id(item))):
                found.append((item.lineno, ast.unparse(calls.get(id(item), item))))
    return [f"{line}: {text}" for line, text in sorted(found) if REAL_ON_PURPOSE not in lines[line - 1]]


def reads(attribute: ast.Attribute, call: ast.Call | None) -> bool:
    """Whether `owner.name` (called as `call`, or only referenced when None) reads the clock or randomness."""
    owner, name = ast.unparse(attribute.value), attribute.attr
    arguments = len(call.args) + len(call.keywords) if call is not None else 0
    if owner == "time":
        if name in TIME_READS:
            return True
        if name in TIME_READS_WITHOUT_ARGUMENT or name == "strftime":
            return call is None or arguments == (1 if name == "strftime" else 0)
        return False
    if owner.split(".")[-1] in ("datetime", "date") and name in DATETIME_READS:
        return True
    if owner == "random":
        return name != "Random" or call is None or arguments == 0
    return (owner in MODULES_FORBIDDEN) or (owner == "uuid" and name in UUID_READS) or (
        owner == "os" and name in OS_READS)


def test_no_code_reads_the_clock_or_the_os_randomness_but_node_clock() -> None:
    offenders = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ALLOWED:
                continue
            found = direct_reads(path.read_text(), relative)
            if found:
                offenders[relative] = found
    assert offenders == {}, "use node.clock (now, now_ns, utcnow, monotonic, rng, token_hex, randbelow, uuid4)"


def test_the_scan_finds_each_kind_of_direct_read() -> None:
    source = "\n".join([
        "import secrets",                                   # 1
        "import time, datetime as dt, random, uuid, os",    # 2 (fine)
        "a = time.time()",                                  # 3
        "b = time.perf_counter_ns()",                       # 4
        "c = dt.datetime.now(dt.UTC)",                      # 5
        "d = uuid.uuid4().hex",                             # 6
        "e = random.random()",                              # 7
        "f = random.Random()",                              # 8
        "g = os.urandom(4)",                                # 9
        "h = field(default_factory=random.Random)",         # 10
        "from time import monotonic",                       # 11
        "i = time.strftime('%H')",                          # 12
        "j = time.localtime()",                             # 13
        "k: Callable[[], float] = time.time",               # 14
    ])
    found = direct_reads(source)
    assert [int(line.split(":")[0]) for line in found] == [1, *range(3, 15)]  # importing time or uuid is fine


def test_the_scan_leaves_seeded_and_clock_free_code_alone() -> None:
    source = "\n".join([
        "import random, time, uuid",
        "from node import clock",
        "rng: random.Random = random.Random(7)",
        "def f(r: random.Random) -> random.Random: return random.Random(r.getrandbits(64))",
        "t = clock.now(); m = clock.monotonic(); u = clock.uuid4()",
        "s = time.strftime('%H:%M:%S', time.localtime(t))",
        "n = uuid.UUID('12345678123456781234567812345678')",
        "loop_time = asyncio.get_running_loop().time()",
        "time.sleep(0)",
        "cost_s = time.perf_counter()  # not simulated: the real time a run costs",
    ])
    assert direct_reads(source) == []
