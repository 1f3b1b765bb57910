"""What `new resource NAME FIELD:TYPE[:MODIFIER]...` asks for, checked before anything is written.

A field is `name:type` with modifiers after it: `title:str:unique`, `note:text:optional`,
`code:str:20:unique` (a length for `str`), `shop:ref:shops` (a reference to another resource,
stored as `shop_id`). Names are lowercase identifiers that no keyword, builtin, SQL reserved
word or generated name takes.
"""

import builtins
import keyword
import re
from dataclasses import dataclass

from pydantic import BaseModel

# Each type: the column type, the Python type, and what it needs imported.
TYPES = {
    "str": "a string of at most a length (200 unless given: `code:str:20`)",
    "text": "a string of any length",
    "int": "a 32-bit integer",
    "bigint": "a 64-bit integer, within what JSON carries exactly (2^53 - 1)",
    "decimal": "an exact number of 12 digits, 2 after the point",
    "bool": "true or false",
    "date": "a calendar date",
    "datetime": "a moment, with its time zone",
    "uuid": "a UUID",
    "ref": "another resource's id: `shop:ref:shops`; deleting a row still referred to is a 409",
}
MODIFIERS = {
    "unique": "no two rows share the value (a second one is a 409)",
    "optional": "may be null, and left out",
    "index": "indexed, for lookups and ordering by it (a unique field is already)",
}
DEFAULT_LENGTH = 200
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_NAME_LENGTH = 30  # test names join two of them, and must fit a line
MAX_CONSTRAINT_LENGTH = 63  # PostgreSQL's longest identifier
# PostgreSQL's reserved key words (those that cannot name a table or column unquoted).
SQL_RESERVED = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization binary both case cast
    check collate collation column concurrently constraint create cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user default
    deferrable desc distinct do else end except false fetch for foreign freeze from full grant
    group having ilike in initially inner intersect into is isnull join lateral leading left like
    limit localtime localtimestamp natural not notnull null offset on only or order outer
    overlaps placing primary references returning right select session_user similar some
    symmetric system_user table tablesample then to trailing true union unique user using
    variadic verbose when where window with""".split()  # noqa: SIM905 - a list as the manual gives it
)
# Names that read as digits (pycodestyle's E741), which the project's ruff refuses.
AMBIGUOUS = frozenset({"l"})
# Names the generated code gives things of its own: a field may not take them.
TAKEN = frozenset(
    {"id", "created_at", "updated_at", "metadata", "registry", "date", "datetime", "decimal"}
    | {"uuid", "text", "field", "annotated", "limit", "offset", "database", "request"}
    | {"response", "status", "body", "session", "router"}
)


class SpecError(ValueError):
    """The command line asks for something the generator refuses; the message says what."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a resource as the command line gives it."""

    name: str
    type: str
    length: int | None = None
    unique: bool = False
    optional: bool = False
    index: bool = False
    target: str | None = None  # the resource a `ref` refers to, by its plural name

    @property
    def column(self) -> str:
        """The column's name: a reference is stored as `<name>_id`."""
        return f"{self.name}_id" if self.type == "ref" else self.name


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """A resource: its plural name (table, routes, modules) and its fields."""

    plural: str
    fields: tuple[FieldSpec, ...]

    @property
    def singular(self) -> str:
        """`products` gives `product`, `categories` `category`, `boxes` `box`."""
        return singular_of(self.plural)

    @property
    def model(self) -> str:
        """The model class: `order_lines` gives `OrderLine`."""
        return "".join(part.capitalize() for part in self.singular.split("_"))


def singular_of(plural: str) -> str:
    """The singular of an English plural, by the common rules; a name without one is itself."""
    if plural.endswith("ies") and len(plural) > 3:
        return plural[:-3] + "y"
    if re.search(r"(ss|sh|ch|x|z)es$", plural):
        return plural[:-2]
    if plural.endswith("s") and not plural.endswith("ss"):
        return plural[:-1]
    return plural


def check_name(name: str, what: str) -> None:
    """Refuse a name no table, column or Python identifier of the generated code can take."""
    if not NAME.match(name) or "__" in name or name.endswith("_"):
        raise SpecError(
            f"{what} {name!r} must be lowercase letters, digits and single underscores, "
            "starting with a letter"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise SpecError(f"{what} {name!r} is longer than {MAX_NAME_LENGTH} characters")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise SpecError(f"{what} {name!r} is a Python keyword")
    if name in SQL_RESERVED:
        raise SpecError(f"{what} {name!r} is a reserved word of SQL")
    if name in AMBIGUOUS:
        raise SpecError(f"{what} {name!r} reads as a digit: choose another name")
    if hasattr(builtins, name):
        raise SpecError(f"{what} {name!r} is a Python builtin")


def parse_field(text: str) -> FieldSpec:
    """Read one `name:type[:modifier]...` argument."""
    name, _, rest = text.partition(":")
    if not rest:
        raise SpecError(f"field {text!r} has no type: write it as name:type, e.g. {name}:str")
    check_name(name, "field")
    if name in TAKEN or name.startswith("model_") or hasattr(BaseModel, name):
        raise SpecError(f"field {name!r} is a name the generated code uses: choose another")
    type_, *modifiers = rest.split(":")
    if type_ not in TYPES:
        raise SpecError(f"field {name!r}: unknown type {type_!r} (one of {', '.join(TYPES)})")
    target = None
    if type_ == "ref":
        if not modifiers:
            raise SpecError(f"field {name!r}: name the resource it refers to: {name}:ref:shops")
        target = modifiers.pop(0)
        check_name(target, "referred resource")
    length = None
    if type_ == "str":
        length = DEFAULT_LENGTH
        if modifiers and modifiers[0].isdigit():
            length = int(modifiers.pop(0))
            if not 1 <= length <= 10_000:
                raise SpecError(f"field {name!r}: a str length is from 1 to 10000 (use text)")
    unknown = [modifier for modifier in modifiers if modifier not in MODIFIERS]
    if unknown:
        raise SpecError(
            f"field {name!r}: unknown modifier {unknown[0]!r} (one of {', '.join(MODIFIERS)})"
        )
    if len(set(modifiers)) != len(modifiers):
        raise SpecError(f"field {name!r}: a modifier is given twice")
    if type_ == "bool" and "unique" in modifiers:
        raise SpecError(f"field {name!r}: a unique bool holds two rows at most")
    if type_ == "ref" and "index" in modifiers:
        raise SpecError(f"field {name!r}: a reference is always indexed; drop `index`")
    return FieldSpec(
        name=name,
        type=type_,
        length=length,
        unique="unique" in modifiers,
        optional="optional" in modifiers,
        index="index" in modifiers or type_ == "ref",
        target=target,
    )


def parse_resource(plural: str, fields: list[str]) -> ResourceSpec:
    """Read the resource's name and fields, refusing anything the generator cannot write."""
    check_name(plural, "resource")
    singular = singular_of(plural)
    if plural in TAKEN or singular in TAKEN:
        raise SpecError(f"resource {plural!r} is a name the generated code uses: choose another")
    python_name = NAME.match(singular) and singular not in AMBIGUOUS
    if not python_name or keyword.iskeyword(singular) or hasattr(builtins, singular):
        raise SpecError(  # the model's module and the routes' variables take the singular
            f"resource {plural!r}: its singular {singular!r} cannot name a Python module and "
            "variable; choose another name"
        )
    if not fields:
        raise SpecError("give the resource at least one field, e.g. name:str")
    specs = tuple(parse_field(text) for text in fields)
    for spec in specs:
        if spec.target == plural:
            raise SpecError(f"field {spec.name!r}: a resource referring to itself is yours")
    columns = [spec.column for spec in specs]
    for column in columns:
        if columns.count(column) > 1:
            raise SpecError(f"field {column!r} is given twice")
    resource = ResourceSpec(plural, specs)
    for spec in specs:
        named = [f"uq_{plural}_{spec.column}"] if spec.unique else []
        named += [f"ix_{plural}_{spec.column}"] if spec.index and not spec.unique else []
        named += [f"fk_{plural}_{spec.column}_{spec.target}"] if spec.type == "ref" else []
        for name in named:
            if len(name) > MAX_CONSTRAINT_LENGTH:  # the name a 409 reports: never truncated
                raise SpecError(
                    f"field {spec.name!r}: its constraint {name!r} is longer than PostgreSQL's "
                    f"{MAX_CONSTRAINT_LENGTH} characters; shorten the field's or the resource's "
                    "name"
                )
    for name in (resource.singular, f"{resource.singular}_id"):
        if name in columns:
            raise SpecError(f"field {name!r} has the name of the resource itself: choose another")
    return resource
