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


# ------------------------------------------------------------------ the README
def command_modules():
    """Each command's name, as a root script and as an installed console command, -> the command
    module that holds its parser (read from the root scripts and pyproject.toml, not restated)."""
    import tomllib

    names = {}
    for script in os.listdir(ROOT):
        if script.endswith(".py"):
            found = re.search(r"^from (tinybert\.commands\.\w+) import", read(script), flags=re.M)
            if found:
                names[script] = found.group(1)
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        consoles = tomllib.load(handle)["project"]["scripts"]
    names.update({command: target.split(":")[0] for command, target in consoles.items()})
    return names


COMMAND_SCRIPTS = command_modules()
FIGURE = re.compile(r"(?<![\w.-])(?:\d+(?:\.\d+)?x|\d+(?:\.\d+)?%|0\.\d{3,4}|\d+(?:\.\d+)? (?:minutes|ms))(?![\w.])")


def readme_commands():
    """(script, arguments) of every command line in the README's code blocks, continuations joined."""
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", read("README.md"), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0] if not line.lstrip().startswith("printf") else line.split("| ", 1)[-1]
            words = line.split()
            for index, word in enumerate(words):
                name = os.path.basename(word)
                if name in COMMAND_SCRIPTS:
                    commands.append((COMMAND_SCRIPTS[name], words[index + 1:]))
                    break
    return commands


def test_every_command_in_the_readme_parses_with_its_scripts_own_parser():
    """Flags that exist, values of the right type: each command line goes through the script's
    parser (environment variables filled in; a line with '...' is checked flag by flag)."""
    import importlib

    commands = readme_commands()
    assert {module for module, _ in commands} >= {f"tinybert.commands.{name}" for name in
                                                   ("finetune", "distill", "augment", "export", "predict")}
    problems = []
    for module, arguments in commands:
        parser_module = importlib.import_module(module)
        arguments = [re.sub(r"\$\{?(\w+)\}?", lambda m: {"TASK_NAME": "SST-2"}.get(m.group(1), "x"), a)
                     for a in arguments]
        if "..." in arguments:
            known = set(re.findall(r"--\w+", help_of(parser_module)))
            problems += [f"{module}: {a}" for a in arguments if a.startswith("--") and a not in known]
            continue
        try:
            parser_module.parse_args(arguments)
        except SystemExit:
            problems.append(f"{module} {' '.join(arguments)}")
    assert not problems, problems


def help_of(module):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module.parse_args(["--help"])
    return out.getvalue()


def test_every_figure_the_readme_quotes_is_in_the_dated_benchmarks_page():
    """A figure appears once, with its date, command and load, in docs/benchmarks.md; the README
    only quotes it. Code blocks (commands and their sample output) are not figures."""
    prose = re.sub(r"```.*?```", "", read("README.md"), flags=re.S)
    benchmarks = read("docs/benchmarks.md")
    missing = sorted({figure for figure in FIGURE.findall(prose) if figure not in benchmarks})
    assert FIGURE.findall(prose), "the README quotes no figure at all: the check would be empty"
    assert not missing, missing


def test_the_readme_reads_in_five_minutes():
    assert len(read("README.md").splitlines()) <= 300
