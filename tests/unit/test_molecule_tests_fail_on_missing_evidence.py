"""A molecule test whose evidence is missing fails; it never skips and never returns early.

Reads every Python file under molecule/ (the scenarios' testinfra tests and their shared conftest) and
refuses the patterns that turn missing evidence into a pass: pytest/unittest skips and xfails, an
`if not os.path.exists(...)` (or isfile, isdir, Path.exists ...) whose body only returns, continues or
passes, and an `except FileNotFoundError/OSError/...` that only returns, continues or passes.
"""
import ast
import glob
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIPS = {"skip", "skipif", "importorskip", "xfail", "skipTest", "skipIf", "skipUnless"}
PRESENCE = {"exists", "isfile", "isdir", "lexists", "is_file", "is_dir", "access"}
MISSING_ERRORS = {"FileNotFoundError", "OSError", "IOError", "EnvironmentError", "Exception", "BaseException",
                  "KeyError", "json.JSONDecodeError", "JSONDecodeError"}


def _name(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _does_nothing(body):
    return all(isinstance(stmt, (ast.Return, ast.Continue, ast.Pass)) and getattr(stmt, "value", None) is None
               for stmt in body)


def findings(source, filename="<source>"):
    """(line, what) for each pattern that would let missing evidence pass."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and node.attr in SKIPS:
            found.append((node.lineno, "%s (a test with missing evidence must fail)" % node.attr))
        elif isinstance(node, ast.ImportFrom) and any(alias.name in SKIPS for alias in node.names):
            found.append((node.lineno, "imports %s" % ", ".join(a.name for a in node.names if a.name in SKIPS)))
        elif isinstance(node, ast.If) and _does_nothing(node.body) and any(
                isinstance(call, ast.Call) and _name(call.func) in PRESENCE for call in ast.walk(node.test)):
            found.append((node.lineno, "returns/continues when a file is missing"))
        elif isinstance(node, ast.ExceptHandler) and _does_nothing(node.body):
            caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            names = [ast.unparse(c) if c is not None else "everything" for c in caught]
            if any(n in MISSING_ERRORS or n == "everything" or n.split(".")[-1] in MISSING_ERRORS for n in names):
                found.append((node.lineno, "swallows %s" % ", ".join(names)))
    return found


def molecule_python_files():
    return sorted(glob.glob(os.path.join(REPO, "molecule", "**", "*.py"), recursive=True))


def test_there_are_molecule_tests_to_read():
    names = [os.path.basename(p) for p in molecule_python_files()]
    assert "conftest.py" in names and len([n for n in names if n.startswith("test_")]) >= 8, names


@pytest.mark.parametrize("path", molecule_python_files(), ids=lambda p: os.path.relpath(p, REPO))
def test_no_molecule_test_skips_or_returns_on_missing_evidence(path):
    with open(path) as handle:
        found = findings(handle.read(), path)
    assert not found, "%s: %s" % (os.path.relpath(path, REPO), "; ".join("line %d: %s" % f for f in found))


@pytest.mark.parametrize("source", [
    "import pytest\ndef result(p):\n    if not os.path.exists(p):\n        pytest.skip('no file')\n",
    "import pytest\n@pytest.mark.skipif(not os.path.exists('x'), reason='')\ndef test_a():\n    pass\n",
    "pytest = __import__('pytest')\npytest.importorskip('psycopg2')\n",
    "from pytest import skip\n",
    "def test_a():\n    if not os.path.isfile(p):\n        return\n    assert 1\n",
    "def test_a():\n    for p in ps:\n        if not pathlib.Path(p).exists():\n            continue\n",
    "def test_a():\n    try:\n        open(p)\n    except FileNotFoundError:\n        return\n",
    "def test_a():\n    try:\n        open(p)\n    except (ValueError, OSError):\n        pass\n",
    "def test_a():\n    try:\n        open(p)\n    except:\n        pass\n",
])
def test_the_check_finds_each_pattern(source):
    assert findings(source)


@pytest.mark.parametrize("source", [
    "def result(p):\n    assert os.path.exists(p), '%s is missing' % p\n",
    "def wait():\n    for _ in range(50):\n        if ready():\n            return\n",
    "def get():\n    try:\n        x()\n    except OSError:\n        close()\n        raise\n",
    "def test_a():\n    if os.path.exists(p):\n        os.remove(p)\n",
])
def test_the_check_leaves_honest_code_alone(source):
    assert not findings(source)
