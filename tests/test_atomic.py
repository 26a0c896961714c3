"""``write_json``: the file holds the whole JSON, and a reader racing writers never sees a partial file (the lab's
shards, started at once, all write ``sweep.json``: a plain ``write_text`` let one read it empty, device call 193)."""
import json
import multiprocessing as mp
import os

import pytest

from glrtheory import atomic
from glrtheory.atomic import write_json


def test_writes_indented_json_and_lines(tmp_path):
    write_json(tmp_path / "deep" / "a.json", {"x": [1, 2.5], "y": None})
    text = (tmp_path / "deep" / "a.json").read_text()
    assert json.loads(text) == {"x": [1, 2.5], "y": None} and text.endswith("}\n")
    write_json(tmp_path / "b.txt", ["one", "two"], lines=True)
    assert (tmp_path / "b.txt").read_text() == "one\ntwo\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "b.txt", "deep"]   # no temporary left


def test_the_file_gets_the_mode_a_plain_open_gives(tmp_path):
    (tmp_path / "plain.json").write_text("{}")
    write_json(tmp_path / "a.json", {})
    assert os.stat(tmp_path / "a.json").st_mode & 0o777 == os.stat(tmp_path / "plain.json").st_mode & 0o777


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    write_json(tmp_path / "a.json", {"old": 1})

    def fail(*args):
        raise OSError("disk full")
    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_json(tmp_path / "a.json", {"new": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def _writer(path, tag, rounds):
    for i in range(rounds):
        write_json(path, {"tag": tag, "i": i, "pad": "x" * 400_000})


def test_readers_never_see_a_partial_file(tmp_path):
    path = tmp_path / "sweep.json"
    write_json(path, {"tag": -1, "i": 0, "pad": ""})
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_writer, args=(path, tag, 40)) for tag in range(3)]
    for w in writers:
        w.start()
    seen = set()
    while any(w.is_alive() for w in writers):
        obj = json.loads(path.read_text())   # a torn or empty file raises here
        seen.add(obj["tag"])
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert json.loads(path.read_text())["i"] == 39 and len(list(tmp_path.iterdir())) == 1
    assert seen - {-1}, "the reader saw no writer's file: the race was not exercised"
