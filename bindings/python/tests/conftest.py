"""Fixtures: a `nami-sim` process per test (TCP terminal + HTTP control API), terminals on it,
and fresh ECR references.

The simulator binary is `$NAMI_SIM`, else `target/debug/nami-sim` of the repository.
"""

import itertools
import json
import os
import pathlib
import socket
import subprocess
import threading
import time
import urllib.request
from datetime import timedelta

import pytest

import nami

REPO = pathlib.Path(__file__).resolve().parents[3]
SIM_BIN = os.environ.get("NAMI_SIM", str(REPO / "target" / "debug" / "nami-sim"))
CASH_REGISTER = "12345678"
TERMINAL_ID = "8184000200000077"


class Sim:
    """A running `nami-sim`: its TCP address and its control API."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [SIM_BIN, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.control = None
        deadline = time.monotonic() + 20
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("control on "):
                self.control = line[len("control on ") :]
            if line.startswith("listening on "):
                host, port = line[len("listening on ") :].rsplit(":", 1)
                self.host, self.port = host, int(port)
                break
            if time.monotonic() > deadline:
                break
        else:
            raise RuntimeError(f"{SIM_BIN} did not start")
        assert self.control, "the simulator printed no control address"

    def post(self, path, body=None):
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(self.control + path, data=data, method="POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def get(self, path):
        with urllib.request.urlopen(self.control + path, timeout=10) as reply:
            return json.loads(reply.read())

    def state(self):
        return self.get("/state")

    def card_tap(self, enabled):
        return self.post("/card-tap", {"enabled": enabled})

    def tap(self):
        return self.post("/tap")

    def fault(self, name, **arguments):
        return self.post("/fault", {"fault": name, **arguments})

    def wait_for_card(self, timeout=10.0):
        """Waits until a transaction waits for a card tap."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state()["waitingForCard"]:
                return
            time.sleep(0.02)
        raise AssertionError("no transaction waited for a card")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def sim():
    simulator = Sim()
    yield simulator
    simulator.stop()


_sequence = itertools.count(1)


@pytest.fixture
def refs():
    """A function giving a new 14-digit ECR reference (cash register 12345678) at each call."""
    return lambda: f"{CASH_REGISTER}{next(_sequence):06d}"


def quick_config(**overrides):
    """Short deadlines, so that a test that goes wrong fails fast."""
    settings = dict(
        card_present_timeout=timedelta(seconds=15),
        settlement_timeout=timedelta(seconds=15),
        admin_timeout=timedelta(seconds=10),
    )
    settings.update(overrides)
    return nami.TerminalConfig(**settings)


@pytest.fixture
def terminal(sim):
    """A terminal on the simulator, not registered yet."""
    t = nami.Terminal.tcp(sim.host, sim.port, quick_config())
    yield t
    t.disconnect()


@pytest.fixture
def registered(terminal):
    """A terminal on the simulator after REGISTER."""
    terminal.register(CASH_REGISTER)
    return terminal


def closed_port():
    """A local TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InThread:
    """Runs `call` on another thread, keeping its result or what it raised."""

    def __init__(self, call):
        self.result = None
        self.error = None
        self.ended_at = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call):
        try:
            self.result = call()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e
        self.ended_at = time.monotonic()

    def join(self, timeout=20.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the call did not end"
        return self
