"""A JSON Schema (draft 2020-12) validator for the subset docs/vm.schema.json uses, standard
library only.  A keyword outside the subset is an error, so the schema cannot lean on one
this validator would silently skip.

    errors = validate(schema, instance)     # [] when valid, else "path: why" strings

Differences from the full draft, all on the strict side and matching lockstepd (jansson): an
integer is a JSON number without a fraction or exponent (2.0 is not one), and booleans are
never numbers.
"""
import re

ANNOTATIONS = {"$schema", "$id", "title", "description", "$defs", "default", "examples",
               "$comment"}
TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _pattern(p):
    # ECMA-262's $ (without the m flag) matches only at the very end; Python's also before a
    # final newline.
    if p.endswith("$") and not p.endswith("\\$"):
        p = p[:-1] + r"\Z"
    return re.compile(p)


def _equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


class Validator:
    def __init__(self, root):
        self.root = root

    def resolve(self, ref):
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported: {ref}")
        node = self.root
        for part in ref[2:].split("/"):
            node = node[part]
        return node

    def errors(self, schema, v, path="$"):
        out = []
        if schema is True:
            return out
        if schema is False:
            return [f"{path}: not allowed"]
        for kw in schema:
            if kw in ANNOTATIONS:
                continue
            handler = getattr(self, "kw_" + kw.replace("$", ""), None)
            if handler is None:
                raise ValueError(f"keyword {kw!r} is outside the supported subset")
            out += handler(schema[kw], schema, v, path)
        return out

    # ---- keywords ----

    def kw_ref(self, ref, schema, v, path):
        return self.errors(self.resolve(ref), v, path)

    def kw_type(self, t, schema, v, path):
        types = t if isinstance(t, list) else [t]
        if any(TYPES[x](v) for x in types):
            return []
        return [f"{path}: must be {' or '.join(types)}"]

    def kw_enum(self, values, schema, v, path):
        if any(_equal(v, x) for x in values):
            return []
        return [f"{path}: must be one of {values}"]

    def kw_const(self, value, schema, v, path):
        return [] if _equal(v, value) else [f"{path}: must be {value!r}"]

    def kw_pattern(self, p, schema, v, path):
        if isinstance(v, str) and not _pattern(p).search(v):
            return [f"{path}: {v!r} does not match {p}"]
        return []

    def kw_minimum(self, m, schema, v, path):
        if TYPES["number"](v) and v < m:
            return [f"{path}: below {m}"]
        return []

    def kw_maximum(self, m, schema, v, path):
        if TYPES["number"](v) and v > m:
            return [f"{path}: above {m}"]
        return []

    def kw_minLength(self, n, schema, v, path):
        return [f"{path}: shorter than {n}"] if isinstance(v, str) and len(v) < n else []

    def kw_maxLength(self, n, schema, v, path):
        return [f"{path}: longer than {n}"] if isinstance(v, str) and len(v) > n else []

    def kw_minItems(self, n, schema, v, path):
        return [f"{path}: fewer than {n} items"] if isinstance(v, list) and len(v) < n else []

    def kw_maxItems(self, n, schema, v, path):
        return [f"{path}: more than {n} items"] if isinstance(v, list) and len(v) > n else []

    def kw_items(self, sub, schema, v, path):
        if not isinstance(v, list):
            return []
        out = []
        for i, item in enumerate(v):
            out += self.errors(sub, item, f"{path}[{i}]")
        return out

    def kw_required(self, names, schema, v, path):
        if not isinstance(v, dict):
            return []
        return [f"{path}: needs {n!r}" for n in names if n not in v]

    def kw_properties(self, props, schema, v, path):
        if not isinstance(v, dict):
            return []
        out = []
        for k, sub in props.items():
            if k in v:
                out += self.errors(sub, v[k], f"{path}.{k}")
        return out

    def kw_additionalProperties(self, sub, schema, v, path):
        if not isinstance(v, dict):
            return []
        known = schema.get("properties", {})
        out = []
        for k in v:
            if k in known:
                continue
            if sub is False:
                out.append(f"{path}: unknown key {k!r}")
            else:
                out += self.errors(sub, v[k], f"{path}.{k}")
        return out

    def kw_propertyNames(self, sub, schema, v, path):
        if not isinstance(v, dict):
            return []
        out = []
        for k in v:
            out += self.errors(sub, k, f"{path} (key {k!r})")
        return out

    def kw_oneOf(self, subs, schema, v, path):
        passing = [s for s in subs if not self.errors(s, v, path)]
        if len(passing) == 1:
            return []
        if not passing:
            return [f"{path}: matches none of its alternatives"]
        return [f"{path}: matches more than one of its alternatives"]

    def kw_anyOf(self, subs, schema, v, path):
        if any(not self.errors(s, v, path) for s in subs):
            return []
        return [f"{path}: matches none of its alternatives"]


def validate(schema, instance):
    """Every way `instance` breaks `schema` ([] when it is valid)."""
    return Validator(schema).errors(schema, instance)
