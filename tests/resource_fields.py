"""`new resource` command lines drawn by hypothesis: batches it accepts, and lines it refuses.

The generator's own grammar (`devtools/resource_spec.py`, plain Python in the template) says
what it accepts, so a drawn batch is anything a user may type that the grammar takes.
"""

import runpy
from collections.abc import Collection
from typing import Any

from hypothesis import strategies as st

from tests.conftest import ROOT

SPEC: dict[str, Any] = runpy.run_path(
    str(ROOT / "template" / "src" / "{{package_name}}" / "devtools" / "resource_spec.py")
)
NAMES = st.from_regex(r"[a-z]{1,12}(_[a-z0-9]{1,8})?", fullmatch=True)
PLAIN_TYPES = ("str", "text", "int", "bigint", "decimal", "bool", "date", "datetime", "uuid")
# What a modifier may not follow: the grammar refuses these pairs (its refusals test them).
REFUSED_MODIFIERS = {"bool": {"unique"}, "ref": {"index"}}


def refused(plural: str, fields: list[str]) -> str | None:
    """The grammar's refusal of this command line, or None if it accepts it."""
    try:
        SPEC["parse_resource"](plural, fields)
    except SPEC["SpecError"] as error:
        return str(error)
    return None


FIELD_NAMES = NAMES.filter(lambda name: refused("things", [f"{name}:int"]) is None)


@st.composite
def fields(draw: st.DrawFn, targets: Collection[str]) -> str:
    """One `name:type[:length][:modifier]...` argument, referring only to `targets`."""
    kind = draw(st.sampled_from([*PLAIN_TYPES, *(["ref"] if targets else [])]))
    parts = [draw(FIELD_NAMES), kind]
    if kind == "ref":
        parts.append(draw(st.sampled_from(sorted(targets))))
    if kind == "str" and draw(st.booleans()):
        parts.append(str(draw(st.integers(min_value=1, max_value=10_000))))
    modifiers = draw(st.lists(st.sampled_from(sorted(SPEC["MODIFIERS"])), unique=True))
    allowed = [m for m in modifiers if m not in REFUSED_MODIFIERS.get(kind, set())]
    return ":".join(parts + allowed)


@st.composite
def resource_batches(draw: st.DrawFn, taken: Collection[str]) -> list[list[str]]:
    """Two or three resources, `[plural, *fields]` each; later ones may refer to earlier ones.

    `taken` holds the names of the project's tables and modules, which no new resource may
    take, nor its singular.
    """
    batch: list[list[str]] = []
    for _ in range(draw(st.integers(min_value=2, max_value=3))):
        used = {*taken, *(name for resource in batch for name in names_of(resource[0]))}
        plural = draw(free_names(used))
        targets = [resource[0] for resource in batch]
        line = [plural, *draw(st.lists(fields(targets), min_size=1, max_size=5))]
        if refused(line[0], line[1:]) is not None:  # a field twice, or named as the resource
            draw(st.nothing())
        batch.append(line)
    return batch


def free_names(used: set[str]) -> st.SearchStrategy[str]:
    """Names of a resource that takes none of `used`."""
    return NAMES.filter(lambda name: not used.intersection(names_of(name)))


def names_of(plural: str) -> set[str]:
    """The names a resource takes: its plural (table, modules) and its singular (model)."""
    return {plural, SPEC["singular_of"](plural)}


# Words the grammar must refuse as a name: SQL's, the generated code's, Python's.
REFUSED_WORDS = sorted(
    SPEC["SQL_RESERVED"] | SPEC["TAKEN"] | {"class", "def", "lambda", "print", "sum"}
)
# Ways to break a field, each as a format of a valid field's name.
BROKEN_FIELDS = (
    "{name}",  # no type
    "{name}:string",  # an unknown type
    "{name}:str:0",  # a length out of range
    "{name}:str:10001",
    "{name}:str:often",  # an unknown modifier
    "{name}:int:unique:unique",  # a modifier twice
    "{name}:bool:unique",  # a pair the grammar refuses
    "{name}:ref:nowhere",  # a reference to no table
)


@st.composite
def refused_lines(draw: st.DrawFn) -> list[str]:
    """A command line the generator must refuse: one broken name or field among valid ones."""
    plural = draw(NAMES.filter(lambda name: refused(name, ["title:str"]) is None))
    line = [plural, *draw(st.lists(fields([]), min_size=0, max_size=3))]
    position = draw(st.integers(min_value=1, max_value=len(line)))
    if draw(st.booleans()):
        word = draw(st.sampled_from(REFUSED_WORDS))
        broken = draw(st.sampled_from([word, f"{word}:str"]))
        if broken == word:
            return [word, *line[1:]]
    else:
        broken = draw(st.sampled_from(BROKEN_FIELDS)).format(name=draw(FIELD_NAMES))
    return [*line[:position], broken, *line[position:]]
