"""The repository documents itself: code cites pages of docs/ (never files outside the
repository), and every cited page and section exists."""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = (".py", ".sh", ".md", ".txt", ".json")
CITATION = re.compile(r"docs/([A-Za-z0-9_.-]+\.md)(?:#([A-Za-z0-9_-]+))?")
OUTSIDE = re.compile(r"\bSPEC\.md|\bASSETS\.md|\bSTYLE\.md|\.\./shared|\bSPEC §")


def repository_files():
    """Tracked and new files of the working tree (git's view; generated data excluded)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    names = [n for n in listed.stdout.splitlines() if n.endswith(SOURCES) and os.path.isfile(os.path.join(ROOT, n))]
    return [n for n in names if n != "tests/test_docs.py"]


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8", errors="replace") as handle:
        return handle.read()


def anchors(page):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", read(os.path.join("docs", page)), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_no_file_cites_a_file_outside_the_repository():
    found = [f"{name}:{number}" for name in repository_files()
             for number, line in enumerate(read(name).splitlines(), start=1) if OUTSIDE.search(line)]
    assert not found, "cite docs/, the paper or the README instead: " + ", ".join(found)


def test_every_cited_docs_page_and_section_exists():
    broken = []
    for name in repository_files():
        for number, line in enumerate(read(name).splitlines(), start=1):
            for page, anchor in CITATION.findall(line):
                if not os.path.isfile(os.path.join(ROOT, "docs", page)):
                    broken.append(f"{name}:{number}: docs/{page}")
                elif anchor and anchor not in anchors(page):
                    broken.append(f"{name}:{number}: docs/{page}#{anchor}")
    assert not broken, ", ".join(broken)


def test_the_docs_link_to_each_other_correctly():
    broken = []
    for page in sorted(os.listdir(os.path.join(ROOT, "docs"))):
        for target, anchor in re.findall(r"\]\(([A-Za-z0-9_.-]*\.md)?(?:#([A-Za-z0-9_-]+))?\)", read(f"docs/{page}")):
            target = target or page
            if not os.path.isfile(os.path.join(ROOT, "docs", target)) or (anchor and anchor not in anchors(target)):
                broken.append(f"docs/{page} -> {target}#{anchor}")
    assert not broken, ", ".join(broken)
