"""Prints the figures the lab tests measured, even without -s."""
import labutil


def pytest_terminal_summary(terminalreporter):
    if not labutil.FIGURES:
        return
    terminalreporter.section("lab figures")
    for test, what, secs in labutil.FIGURES:
        terminalreporter.write_line("%-48s %-58s %7.2f s" % (test, what, secs))
