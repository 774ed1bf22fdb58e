"""Prints the figures the lab tests measured, even without -s; a failing
lab test's report carries the last lines each chat host's pchatd logged
during it (the lab is torn down with its logs when the module ends)."""
import glob
import os
import time

import pytest

import labutil

LOG_LINES = 60


def pytest_terminal_summary(terminalreporter):
    if not labutil.FIGURES:
        return
    terminalreporter.section("lab figures")
    for test, what, secs in labutil.FIGURES:
        terminalreporter.write_line("%-48s %-58s %7.2f s" % (test, what, secs))


def _pchatd_logs(since):
    """{host: last lines logged since `since` (a time.time())} of the
    current lab's pchatd logs."""
    if not labutil.CURRENT:
        return {}
    out = {}
    pattern = os.path.join(labutil.CURRENT[-1].dir, "hosts", "*", "root", "var", "log",
                           "pchat", "pchatd.log")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since))
    for path in sorted(glob.glob(pattern)):
        host = path.split(os.sep)[-6]
        try:
            if os.path.getmtime(path) < since:
                continue
            with open(path, errors="replace") as f:
                lines = f.readlines()
        except OSError:
            continue
        recent = [l for l in lines if l[:19] >= stamp]
        out[host] = "".join(recent[-LOG_LINES:])
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for host, text in _pchatd_logs(call.start).items():
        report.sections.append(("pchatd.log of %s (last %d lines of the test)" % (host, LOG_LINES),
                                text))
