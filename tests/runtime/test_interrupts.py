"""Ctrl-C inside ``stop_requests()``: a flag first, an interrupt on the second press, the old handler after.

A press is the SIGINT handler called as Python calls it, on the main thread; a real signal to a
separate ``predict.py`` is in test_prediction (a real signal here would reach the test runner too).
"""

import signal
import threading

import pytest

from behavior.runtime.interrupts import StopRequest, stop_requests


def press_ctrl_c() -> None:
    """What Python does on SIGINT: call the installed handler on the main thread."""
    signal.getsignal(signal.SIGINT)(signal.SIGINT, None)


@pytest.fixture
def default_handler():
    """Python's own SIGINT handler during the test, whatever the test runner installed."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_the_first_ctrl_c_is_a_request_and_the_second_interrupts(default_handler):
    with stop_requests() as stop:
        assert not stop.requested
        press_ctrl_c()  # no exception: the loop decides where to stop
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.check()
        with pytest.raises(KeyboardInterrupt):
            press_ctrl_c()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_second_press_goes_to_the_handler_before(default_handler):
    calls = []
    signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    with stop_requests() as stop:
        press_ctrl_c()
        press_ctrl_c()
    assert stop.requested and calls == [signal.SIGINT]


def test_an_ignored_ctrl_c_stays_ignored(default_handler):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with stop_requests() as stop:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert not stop.requested and signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_off_the_main_thread_nothing_is_installed(default_handler):
    seen: list = []

    def worker():
        with stop_requests() as stop:
            seen.extend([stop, signal.getsignal(signal.SIGINT)])

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert not seen[0].requested and seen[1] is signal.default_int_handler
    StopRequest().check()  # not requested: nothing raised
