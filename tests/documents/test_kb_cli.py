"""``python -m workbench kb add|list|rm|search`` and ``ask --kb NAME``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli, run_main
from tests.documents import files


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    (tmp_path / "manual.pdf").write_bytes(files.pdf(["Intro.", "The Zephyr turbine spins at 3000 rpm."]))
    (tmp_path / "scan.pdf").write_bytes(files.scanned_pdf())
    (tmp_path / "notes.md").write_text("# 笔记\n颐和园在北京。", encoding="utf-8")
    return tmp_path


def test_add_list_search_rm(data_dir: Path) -> None:
    status, out, err = run_main(
        "kb", "add", "plant", str(data_dir / "manual.pdf"), str(data_dir / "notes.md")
    )
    assert (status, err) == (0, "")
    assert out.splitlines()[0].startswith("Added manual.pdf to plant: ")
    status, out, _ = run_main("kb", "add", "plant", str(data_dir / "manual.pdf"))
    assert out.strip() == "manual.pdf is in plant already (same content); not added again."
    status, out, _ = run_main("kb", "list", "--json")
    [base] = json.loads(out)
    assert (base["name"], base["documents"], base["embedder"]) == ("plant", 2, "e5")
    status, out, _ = run_main("kb", "list", "plant")
    assert out.splitlines()[0].startswith("manual.pdf  (pdf, ")
    status, out, _ = run_main("kb", "search", "plant", "How fast is the turbine?", "-k", "1", "--json")
    [hit] = json.loads(out)
    assert hit["source"] == "manual.pdf, page 2" and "3000 rpm" in hit["text"]
    status, out, _ = run_main("kb", "search", "plant", "颐和园在哪里", "-k", "1")
    assert out.startswith("[1] notes.md  (score ")
    status, out, _ = run_main("kb", "rm", "plant", "notes.md")
    assert (status, out.strip()) == (0, "Removed notes.md.")
    status, out, _ = run_main("kb", "rm", "plant")
    assert out.strip() == "Removed knowledge base plant (1 documents)."
    assert run_main("kb", "list")[1].startswith("No knowledge bases")


def test_errors_are_one_line_naming_the_file(data_dir: Path) -> None:
    status, out, err = run_main(
        "kb", "add", "plant", str(data_dir / "manual.pdf"), str(data_dir / "scan.pdf")
    )
    assert status == 1
    assert err.startswith("Error: scan.pdf has no text layer; OCR is not supported.")
    assert out.startswith("Added manual.pdf")  # the file before it stays
    status, _, err = run_main("kb", "search", "nope", "x")
    assert status == 1 and "no knowledge base called 'nope'" in err
    status, _, err = run_main("kb", "add", "plant", str(data_dir / "missing.pdf"))
    assert status == 1 and err.startswith("Error: missing.pdf could not be read")


@pytest.mark.model
def test_ask_answers_from_a_knowledge_base_and_lists_its_sources(data_dir: Path) -> None:
    env = {"WORKBENCH_DATA_DIR": str(data_dir / "data")}
    added = run_cli("kb", "add", "plant", str(data_dir / "manual.pdf"), env=env)
    assert added.returncode == 0, added.stderr
    done = run_cli(
        "ask",
        "--kb",
        "plant",
        "--max-new-tokens",
        "8",
        "--temperature",
        "0",
        "How fast does the Zephyr turbine spin?",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    cited = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert "manual.pdf, page 2" in {line.split("] ", 1)[1] for line in cited}  # the sources it was given
    done = run_cli(
        "ask",
        "--kb",
        "plant",
        "--json",
        "--max-new-tokens",
        "8",
        "How fast does the Zephyr turbine spin?",
        env=env,
    )
    messages = json.loads(done.stdout)["messages"]
    assert (
        messages[0]["content"] == "How fast does the Zephyr turbine spin?"
    )  # the question as asked; the sources went to the model
    sources = messages[-1]["metadata"]["sources"]
    assert ("manual.pdf", "page 2") in {(source["document"], source["location"]) for source in sources}
    wrong = run_cli("ask", "--kb", "plant", "--mode", "code", "x", env=env)
    assert wrong.returncode == 1 and "--kb answers in chat mode only" in wrong.stderr
