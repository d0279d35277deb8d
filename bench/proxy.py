"""Benchmark of the fault proxy: throughput and added latency with no toxic, against direct loopback.

A script, not a test: `python bench/proxy.py [--megabytes 500] [--round-trips 2000]`. It starts the fault
proxy as its own process (`python -m cluster.proxy`), a sink and an echo server on blocking sockets in
threads, and measures in the same run (1) bytes per second sent through the proxy as a ratio of direct
loopback (target >= 0.5), (2) the median added time of a small request/response round trip
(target < 0.5 ms). It prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHUNK_BYTES = 256 * 1024
REQUEST_BYTES = 64
TIMEOUT_S = 60.0
REPOSITORY = Path(__file__).resolve().parent.parent


def port_free() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server_thread(handler: object) -> Iterator[int]:
    """A listening socket whose connections are served by `handler(conn)` in threads; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(TIMEOUT_S)
            threading.Thread(target=handler, args=(conn,), daemon=True).start()  # type: ignore[arg-type]

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def sink(conn: socket.socket) -> None:
    """Read until the end of stream, then answer with the byte count."""
    buffer = bytearray(CHUNK_BYTES)
    total = 0
    with conn:
        while n := conn.recv_into(buffer):
            total += n
        conn.sendall(str(total).encode())


def echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def throughput_bytes_s(port: int, total_bytes: int) -> float:
    payload = os.urandom(CHUNK_BYTES)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        started = time.perf_counter()
        for _ in range(total_bytes // CHUNK_BYTES):
            sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        received = int(sock.recv(64).decode())
        elapsed_s = time.perf_counter() - started
    assert received == total_bytes // CHUNK_BYTES * CHUNK_BYTES, (received, total_bytes)
    return received / elapsed_s


def round_trips_s(port: int, count: int) -> list[float]:
    request = b"r" * REQUEST_BYTES
    times: list[float] = []
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(request)
            received = 0
            while received < REQUEST_BYTES:
                received += len(sock.recv(REQUEST_BYTES - received))
            times.append(time.perf_counter() - started)
    return times


def api(url: str, method: str, path: str, body: object | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read() or b"{}"))


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def proxy_process() -> Iterator[tuple[str, int]]:
    port = port_free()
    process = subprocess.Popen(
        [sys.executable, "-m", "cluster.proxy", "--port", str(port)], cwd=REPOSITORY, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def proxied_port(url: str, name: str, upstream_port: int) -> int:
    proxy = api(url, "POST", "/proxies", {"name": name, "listen": "127.0.0.1:0",
                                          "upstream": f"127.0.0.1:{upstream_port}"})
    return int(proxy["listen"].rsplit(":", 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--round-trips", type=int, default=2000)
    arguments = parser.parse_args()
    total_bytes = arguments.megabytes * 1_000_000
    with proxy_process() as (url, pid), server_thread(sink) as sink_port, server_thread(echo) as echo_port:
        sink_proxied = proxied_port(url, "bench-sink", sink_port)
        echo_proxied = proxied_port(url, "bench-echo", echo_port)
        throughput_bytes_s(sink_port, CHUNK_BYTES * 64)  # warm up
        direct = throughput_bytes_s(sink_port, total_bytes)
        cpu_before_s = cpu_s(pid)
        proxied = throughput_bytes_s(sink_proxied, total_bytes)
        proxy_cpu_s = cpu_s(pid) - cpu_before_s
        round_trips_s(echo_port, 100)
        round_trips_s(echo_proxied, 100)
        direct_s = statistics.median(round_trips_s(echo_port, arguments.round_trips))
        proxied_s = statistics.median(round_trips_s(echo_proxied, arguments.round_trips))
    print(f"payload: {total_bytes / 1e6:.0f} MB in {CHUNK_BYTES // 1024} KiB writes")
    print(f"throughput direct loopback: {direct / 1e6:8.1f} MB/s")
    print(f"throughput through proxy:   {proxied / 1e6:8.1f} MB/s")
    print(f"throughput ratio proxy/direct: {proxied / direct:.2f} (target >= 0.5)")
    print(f"proxy CPU per GB relayed: {proxy_cpu_s / (total_bytes / 1e9):.2f} s ({os.cpu_count()} CPUs here)")
    print(f"round trip ({REQUEST_BYTES} B) median direct: {direct_s * 1e3:.3f} ms, through proxy: "
          f"{proxied_s * 1e3:.3f} ms")
    print(f"latency added per round trip (median): {(proxied_s - direct_s) * 1e3:.3f} ms (target < 0.5 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
