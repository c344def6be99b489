"""Tricky model outputs and how each must be shown: the kind of every block (`output_blocks`),
or the layout of a whole structured output, and what a reader must (and must not) see. The unit
tests check the HTML; tests/browser/test_rendering_corpus.py checks what chromium shows."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    # Block kinds in order, or one whole-output layout ("json", "csv", "yaml", "code").
    blocks: tuple[str, ...]
    # Text a reader sees (innerText), each exactly as written.
    shows: tuple[str, ...] = ()
    # Text a reader must not see (what a wrong rendering would produce).
    hides: tuple[str, ...] = ()
    # How many spans are emphasised (<em>) and bold (<strong>).
    em: int = 0
    strong: int = 0
    # Elements the rendering has, and elements it must not have.
    tags: tuple[str, ...] = field(default=())
    no_tags: tuple[str, ...] = field(default=())


PYTHON_AFTER_PROSE = (
    "Here is a fixed version:\ndef absolute(x):\n    if x < 0:\n        return -x\n    return x"
)
FORTY_STEPS = "\n".join(
    f"Step {n}: Hold the button for {n + 2} seconds, then wait for the light." for n in range(1, 40)
)

CASES = [
    Case(
        "python after a sentence",
        PYTHON_AFTER_PROSE,
        ("prose", "code"),
        shows=("    if x < 0:\n        return -x",),
    ),
    Case(
        "indented block between paragraphs",
        "Use this helper.\n\n    def one():\n        return 1\n\n    print(one())\n\nIt prints 1.",
        ("prose", "code", "prose"),
        shows=("    def one():\n        return 1\n\n    print(one())",),
    ),
    Case(
        "javascript after a sentence",
        "Try this:\nfunction add(a, b) {\n  return a + b;\n}\nIt adds two numbers.",
        ("prose", "code", "prose"),
        shows=("function add(a, b) {\n  return a + b;\n}",),
    ),
    Case(
        "comment inside code",
        "Code:\ndef f():\n    # the answer\n    return 42",
        ("prose", "code"),
        shows=("    # the answer\n    return 42",),
        no_tags=("h1",),
    ),
    Case(
        "sql after a sentence",
        "The query:\nSELECT name, email FROM users WHERE id = 1;",
        ("prose", "code"),
        shows=("SELECT name, email FROM users WHERE id = 1;",),
    ),
    Case(
        "unified diff",
        "Apply this patch:\n--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n def f(x):\n-    return x\n"
        "+    return -x",
        ("prose", "diff"),
        shows=("-    return x\n+    return -x",),
        no_tags=("ul",),
    ),
    Case(
        "fenced diff",
        "```diff\n- old line\n+ new line\n```",
        ("fence",),
        shows=("```diff", "- old line\n+ new line"),
        no_tags=("ul",),
    ),
    Case(
        "markdown table",
        "| plan | price |\n|---|---:|\n| Plus | $3.99 |\n| Free | $0 |",
        ("prose",),
        shows=("Plus", "$3.99"),
        hides=("|---|",),
    ),
    Case(
        "ascii box diagram",
        "The flow:\n+-------+     +-----+\n| Start | --> | End |\n+-------+     +-----+\nThat is it.",
        ("prose", "art", "prose"),
        shows=("+-------+     +-----+\n| Start | --> | End |\n+-------+     +-----+",),
    ),
    Case(
        "box drawing characters",
        "┌─────┐   ┌─────┐\n│  A  │──▶│  B  │\n└─────┘   └─────┘",
        ("art",),
        shows=("│  A  │──▶│  B  │",),
    ),
    Case(
        "directory tree",
        "The layout:\n├── app.py\n└── tests\n    └── test_app.py",
        ("prose", "art"),
        shows=("└── tests\n    └── test_app.py",),
    ),
    Case(
        "arrows between aligned labels",
        "Pipeline:\n  input  -->  parse  -->  check\n    |                     |\n  error <-----------------+",
        ("prose", "code"),
        shows=("  input  -->  parse  -->  check\n    |                     |",),
    ),
    Case(
        "products with stars",
        "2*3*4 = 24, so a*b*c grows fast.",
        ("prose",),
        shows=("2*3*4 = 24, so a*b*c grows fast.",),
    ),
    Case("powers", "2**10 = 1024 and 3**2 = 9.", ("prose",), shows=("2**10 = 1024 and 3**2 = 9.",)),
    Case(
        "emphasis that is meant",
        "This is *important* and **very** so, _really_.",
        ("prose",),
        shows=("This is important and very so, really.",),
        em=2,
        strong=1,
    ),
    Case(
        "python names with underscores",
        "Define __init__ and call get_user_name or _private_helper.",
        ("prose",),
        shows=("Define __init__ and call get_user_name or _private_helper.",),
    ),
    Case(
        "globs",
        "Delete *.pyc and *.tmp files.",
        ("prose",),
        shows=("Delete *.pyc and *.tmp files.",),
    ),
    Case(
        "stars inside inline code",
        "Use `a*b*c` or `__init__` in code.",
        ("prose",),
        shows=("a*b*c", "__init__"),
        tags=("code",),
    ),
    Case(
        "fenced yaml",
        "```yaml\nname: Morning\ntime: '06:45'\n```",
        ("fence",),
        shows=("```yaml", "name: Morning\ntime: '06:45'"),
    ),
    Case(
        "yaml without a fence",
        "name: Morning\ntime: '06:45'\nbrightness: 80",
        ("yaml",),
        shows=("name: Morning\ntime: '06:45'\nbrightness: 80",),
        hides=("```",),
    ),
    Case(
        "mixed fences",
        "First:\n```python\nprint(1)\n```\nThen:\n~~~bash\necho hi\n~~~",
        ("prose", "fence", "prose", "fence"),
        shows=("```python", "~~~bash", "print(1)", "echo hi"),
    ),
    Case(
        "a fence inside a longer fence",
        "````markdown\n```python\nx = 1\n```\n````",
        ("fence",),
        shows=("````markdown", "```python\nx = 1\n```"),
    ),
    Case(
        "an unclosed fence",
        "```python\ndef f():\n    pass",
        ("fence",),
        shows=("```python", "def f():\n    pass"),
    ),
    Case(
        "right to left",
        "שלום, איך אפשר לעזור?\nمرحبا، كيف يمكنني المساعدة؟",
        ("prose",),
        shows=("שלום, איך אפשר לעזור?", "مرحبا، كيف يمكنني المساعدة؟"),
    ),
    Case(
        "right to left then code",
        "הנה הקוד:\n    x = 1\n    y = 2",
        ("prose", "code"),
        shows=("    x = 1\n    y = 2",),
    ),
    Case(
        "a very long line",
        "See https://example.org/" + "a" * 400,
        ("prose",),
        shows=("a" * 400,),
    ),
    Case(
        "a very long line of code",
        "Run:\n    curl https://example.org/?q=" + "x" * 300,
        ("prose", "code"),
        shows=("x" * 300,),
    ),
    Case(
        "emoji sequences",
        "Family: 👨‍👩‍👧‍👦, flag: 🏳️‍🌈, skin tone: 👍🏽.",
        ("prose",),
        shows=("👨‍👩‍👧‍👦", "🏳️‍🌈", "👍🏽"),
    ),
    Case(
        "json as a whole",
        '{\n  "name": "Morning",\n  "rooms": ["Kitchen", "Hallway"]\n}',
        ("json",),
        shows=('  "rooms": ["Kitchen", "Hallway"]',),
    ),
    Case(
        "csv as a whole",
        "name,quantity\nLumen bulb,3\nhub,1",
        ("csv",),
        shows=("name,quantity\nLumen bulb,3\nhub,1",),
    ),
    Case("thirty-nine lines of prose with colons", FORTY_STEPS, ("prose",), tags=("p",)),
    Case(
        "nested list",
        "- rooms\n  - kitchen\n  - hallway\n- scenes\n  1. morning\n  2. evening",
        ("prose",),
        shows=("kitchen", "evening"),
        tags=("ul", "ol"),
    ),
    Case(
        "a list item continued on an indented line",
        "1. Install the app:\n   it asks for a code.\n2. Open it.",
        ("prose",),
        shows=("it asks for a code.",),
        tags=("ol",),
    ),
    Case(
        "heading, rule and setext heading",
        "# Title\nSome text.\n\n---\n\nSection\n=======\nMore text.",
        ("prose",),
        shows=("Title", "Section"),
        tags=("h1", "hr"),
    ),
    Case(
        "raw html is text",
        "<b>bold?</b> <script>alert(1)</script>",
        ("prose",),
        shows=("<b>bold?</b>", "<script>alert(1)</script>"),
    ),
]
