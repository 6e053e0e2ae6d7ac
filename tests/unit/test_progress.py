"""The console progress: plain lines in a pipe; on a terminal a live status line that is cleared
before every logged line, so the two never mix."""

import io
import logging
import time

from brickyard.progress import ConsoleProgress


def _logger(handler: ConsoleProgress) -> logging.Logger:
    log = logging.getLogger(f"brickyard-test-{id(handler)}")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def test_a_pipe_gets_exactly_the_logged_lines():
    out = io.StringIO()
    log = _logger(ConsoleProgress(out, live=False))
    log.info("curate: started")
    log.info("curate: 12 documents: 10 kept, 2 rejected")
    log.info("curate: succeeded in 3.1s: in 12, out 10, rejected 2")
    assert out.getvalue() == ("curate: started\ncurate: 12 documents: 10 kept, 2 rejected\n"
                              "curate: succeeded in 3.1s: in 12, out 10, rejected 2\n")


def test_a_terminal_gets_a_status_line_that_never_splits_a_logged_line():
    out = io.StringIO()
    log = _logger(ConsoleProgress(out, live=True))
    log.info("dedup: started")
    time.sleep(0.35)
    log.info("dedup: 40 documents")
    time.sleep(0.35)
    log.info("dedup: succeeded in 0.7s: in 40, out 38, rejected 2")
    time.sleep(0.25)  # nothing is drawn once the stage has ended
    text = out.getvalue()
    assert "⠋ dedup" in text or "⠙ dedup" in text  # the status line was drawn while the stage ran
    # every logged line starts on a clean line: after a newline or after the status line was cleared
    for line in ("dedup: 40 documents\n", "dedup: succeeded in 0.7s: in 40, out 38, rejected 2\n"):
        i = text.index(line)
        assert text[i - 1] == "\n" or text[i - 4:i] == "\r\033[K", repr(text[i - 20:i])
    assert text.endswith("rejected 2\n")


def test_without_a_stream_of_its_own_it_writes_to_the_stdout_of_the_moment(monkeypatch):
    # a test runner or a notebook swaps sys.stdout and closes the old one: the next line must go
    # to the new stdout, not fail on the closed file
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", first)
    log = _logger(ConsoleProgress(live=False))
    log.info("ingest: started")
    first.close()
    monkeypatch.setattr("sys.stdout", second)
    log.info("ingest: succeeded in 1.0s")
    assert second.getvalue() == "ingest: succeeded in 1.0s\n"
