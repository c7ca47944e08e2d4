"""RPC contracts as data: every RPC method a service offers has a JSON Schema in
services/<svc>/contracts/rpc/<method>.v<N>.json with a `request` part (the keyword arguments) and a
`response` part (the answer).

    python -m shared.testing.rpc_contracts            # write/refresh every service's files
    python -m shared.testing.rpc_contracts --check    # exit 1 naming each file that drifted
    python -m shared.testing.rpc_contracts billing    # one service

What a file is generated from, per method (its `x-sources`, reviewed and committed with it):
  * the request's property names and which are required: always the method's signature;
  * a request argument named in `x-sources.request` ("module:expr" or "module:expr#field"): that
    marshmallow schema (or one field of it) as JSON Schema, through apispec's marshmallow plugin;
    an argument not named there is written by hand in the file and kept as written;
  * the response: `x-sources.response` = "module:expr" (one object), {"page": ref} (`items` +
    `next_cursor`) or {"list": ref}; without one the response is written by hand and kept.
"module:expr" is evaluated from the module's globals (e.g. "billing.schemas:reserve_credit_out",
"order.schemas:order_out#lines"). A hand-written part may borrow a schema with
{"x-from": "module:expr"}; `x-sources.optional` names answer fields that may be left out.
A service's contracts are recorded (sha256) for its version in its pyproject.toml: a contract
change is a release (`version_problem`, `record`).

A response generated from an output schema promises every field of that schema (a dump writes
each one), null only where the field allows None; the producer's own integration tests check
real answers against the file (`check_answer`, applied by the kit's pytest plugin to every RPC
a test makes through nameko's standalone client). Versions: `<method>_v2` is described by
`<method>.v2.json` and published beside `<method>.v1.json` (docs/CONTRACTS.md).
"""
import ast
import functools
import importlib
import inspect
import json
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("customer", "order", "inventory", "billing", "aftersales")
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
_VERSIONED = re.compile(r"^(?P<base>[a-z_][a-z0-9_]*?)_v(?P<version>[2-9]|[1-9][0-9]+)$")
_FILE = re.compile(r"^(?P<base>[a-z_][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.json$")


# -- names and files -------------------------------------------------------------------------------
def split_version(method):
    """`reserve_credit` → ("reserve_credit", 1); `reserve_credit_v2` → ("reserve_credit", 2)."""
    match = _VERSIONED.match(method)
    return (match["base"], int(match["version"])) if match else (method, 1)


def method_name(base, version):
    return base if version == 1 else f"{base}_v{version}"


def contracts_dir(service):
    return ROOT / "services" / service / "contracts" / "rpc"


def contract_path(service, method):
    base, version = split_version(method)
    return contracts_dir(service) / f"{base}.v{version}.json"


def committed(service):
    """{method: contract} of every file in services/<svc>/contracts/rpc/."""
    found = {}
    folder = contracts_dir(service)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        match = _FILE.match(path.name)
        if match:
            found[method_name(match["base"], int(match["version"]))] = json.loads(path.read_text())
    return found


@functools.lru_cache(maxsize=None)
def _cached_committed(service):
    return committed(service)


def response_schema(service, method):
    """The committed response part of `service.method`, or None when there is no contract."""
    contract = _cached_committed(service).get(method)
    return None if contract is None else contract.get("response")


# -- what a service declares -------------------------------------------------------------------------
def service_class(service):
    module = importlib.import_module(f"{service}.service")
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "name", None) == service and value.__module__ == module.__name__:
            return value
    raise LookupError(f"{service}.service defines no class named {service!r}")


def rpc_methods(cls):
    """{name: function} of the class's RPC entrypoints (the kit's `rpc` or nameko's)."""
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
    from nameko.rpc import Rpc

    found = {}
    for name, value in inspect.getmembers(cls, inspect.isfunction):
        if any(isinstance(ext, Rpc) for ext in getattr(value, ENTRYPOINT_EXTENSIONS_ATTR, ())):
            found[name] = value
    return dict(sorted(found.items()))


def parameters(fn):
    """[(name, required, default)] of the keyword arguments a method takes (self excluded)."""
    found = []
    for param in list(inspect.signature(fn).parameters.values())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        required = param.default is inspect.Parameter.empty
        found.append((param.name, required, None if required else param.default))
    return found


# -- marshmallow → JSON Schema (apispec) --------------------------------------------------------------
def resolve(ref):
    """"module:a.b" → the object; "module:a.b#field" → that field of the schema a.b."""
    target, _, field_name = ref.partition("#")
    module_name, _, expr = target.partition(":")
    value = importlib.import_module(module_name)
    for part in expr.split("."):
        value = getattr(value, part)
    if field_name:
        schema = value() if isinstance(value, type) else value
        fields_ = schema.fields
        value = fields_.get(field_name) or next(
            (f for f in fields_.values() if f.data_key == field_name), None)
        if value is None:
            raise LookupError(f"{ref}: the schema has no field {field_name!r}")
    return value


@functools.lru_cache(maxsize=None)
def _converter(direction):
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
    from marshmallow import fields

    class ContractConverter(OpenAPIConverter):
        def field2property(self, field):
            ret = super().field2property(field)
            if isinstance(field, fields.Decimal):
                # sent as a decimal string (kombu's JSON writes a Decimal as one too); an input
                # also takes a JSON number
                kinds = ["string"] if direction == "response" or field.as_string else ["string", "number"]
                nullable = "null" in (ret.get("type") if isinstance(ret.get("type"), list) else [ret.get("type")])
                ret["type"] = kinds + (["null"] if nullable else []) if nullable or len(kinds) > 1 else kinds[0]
                ret.pop("format", None)
                for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                    ret.pop(bound, None)
            return ret

    class Plugin(MarshmallowPlugin):
        Converter = ContractConverter

    plugin = Plugin(schema_name_resolver=lambda schema: None)
    APISpec("sales-platform rpc contracts", "1", "3.1.0", plugins=[plugin])
    return plugin.converter


def to_json_schema(obj, direction):
    """A marshmallow schema (class or instance) or field as JSON Schema, shaped for `direction`
    ("request": what it accepts; "response": what it answers)."""
    from marshmallow import Schema
    from marshmallow.fields import Field

    converter = _converter(direction)
    if isinstance(obj, type) and issubclass(obj, Schema) or isinstance(obj, Schema):
        node = converter.schema2jsonschema(obj() if isinstance(obj, type) else obj)
        node = {"type": "object", **node}
    elif isinstance(obj, Field):
        node = converter.field2property(obj)
    else:
        raise TypeError(f"not a marshmallow schema or field: {obj!r}")
    return _shape(json.loads(json.dumps(node, default=str)), direction)


def _shape(node, direction):
    """Requests keep what the schema enforces; responses promise every field they declare."""
    if isinstance(node, list):
        return [_shape(item, direction) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _shape(value, direction) if key not in ("default", "example", "examples", "const", "enum")
            else value for key, value in node.items()}
    props = node.get("properties")
    if isinstance(props, dict):
        hidden = "readOnly" if direction == "request" else "writeOnly"
        props = {k: {a: b for a, b in v.items() if a not in ("readOnly", "writeOnly")}
                 for k, v in props.items() if not (isinstance(v, dict) and v.get(hidden))}
        node["properties"] = props
        if direction == "response":
            node["required"] = list(props)
            if node.get("additionalProperties") is False:
                del node["additionalProperties"]
        elif "required" in node:
            node["required"] = [name for name in node["required"] if name in props]
    for key in ("readOnly", "writeOnly"):
        node.pop(key, None)
    return node


def _nullable(node):
    """`node` also accepting null (an argument whose default is None)."""
    kind = node.get("type")
    if kind is None:
        return node
    kinds = kind if isinstance(kind, list) else [kind]
    return node if "null" in kinds else dict(node, type=kinds + ["null"])


def _response(source, optional=()):
    """The response part from its source; `optional` names the fields of the answered object that
    may be left out ("price_history", "allocations[].receipt_number"): the exceptions to "every
    field of the output schema is answered", declared in the file where a reviewer sees them."""
    if isinstance(source, str):
        return _optional(to_json_schema(resolve(source), "response"), optional)
    if isinstance(source, dict) and "page" in source:
        return {"type": "object", "required": ["items", "next_cursor"], "properties": {
            "items": {"type": "array", "items": _optional(to_json_schema(resolve(source["page"]), "response"),
                                                          optional)},
            "next_cursor": {"type": ["string", "null"]}}}
    if isinstance(source, dict) and "list" in source:
        return {"type": "array", "items": _optional(to_json_schema(resolve(source["list"]), "response"), optional)}
    raise ValueError(f"unknown response source {source!r}")


def _expand(node, direction):
    """A hand-written part may borrow a schema: `{"x-from": "module:expr"}` (and `"x-nullable": true`)
    anywhere in it is (re)generated from that marshmallow schema or field on every run."""
    if isinstance(node, list):
        return [_expand(item, direction) for item in node]
    if not isinstance(node, dict):
        return node
    if "x-from" in node:
        generated = to_json_schema(resolve(node["x-from"]), direction)
        if node.get("x-nullable"):
            generated = _nullable(generated)
        keep = {k: node[k] for k in ("x-from", "x-nullable") if k in node}
        return {**keep, **generated}
    return {key: _expand(value, direction) if key in ("properties", "items", "anyOf", "oneOf", "allOf",
                                                      "additionalProperties", "prefixItems")
            or isinstance(value, (dict, list)) and key not in ("enum", "const", "default", "examples")
            else value for key, value in node.items()}


def _optional(node, paths):
    for path in paths:
        *parents, name = path.split(".")
        target = node
        for part in parents:
            target = target.get("properties", {}).get(part.removesuffix("[]"))
            if target is None:
                raise ValueError(f"optional {path!r}: no such field in the response")
            if part.endswith("[]"):
                target = target.get("items", {})
        if name not in target.get("properties", {}):
            raise ValueError(f"optional {path!r}: no such field in the response")
        target["required"] = [field for field in target.get("required", []) if field != name]
    return node


class ContractError(ValueError):
    """A contract that cannot be generated as it stands (its x-sources need a hand)."""


# -- building a contract -----------------------------------------------------------------------------
def build(service, method, fn, previous=None):
    """The contract of `service.method` from its signature and sources; the hand-written parts of
    `previous` (the committed contract) are kept; a new method's sources are inferred."""
    base, version = split_version(method)
    sources = (previous or {}).get("x-sources")
    if sources is None:
        sources = infer_sources(service, fn)
    request_sources = sources.get("request", {})
    old_request = (previous or {}).get("request", {}).get("properties", {})
    properties, required = {}, []
    for name, needed, default in parameters(fn):
        if name in request_sources:
            node = to_json_schema(resolve(request_sources[name]), "request")
        else:
            node = old_request.get(name) or guess(name)
        node = _expand(node, "request")
        if not needed and default is None:
            node = _nullable(node)
        properties[name] = node
        if needed:
            required.append(name)
    unknown = sorted(set(request_sources) - set(properties))
    if unknown:
        raise ContractError(f"{contract_path(service, method).relative_to(ROOT)}: x-sources names arguments "
                            f"{service}.{method} does not take: {unknown} (renamed? edit x-sources by hand)")
    if "response" in sources:
        response = _response(sources["response"], sources.get("optional", ()))
    else:
        response = _expand((previous or {}).get("response", {}), "response")
    return {
        "$schema": JSON_SCHEMA,
        "$id": f"urn:sales-platform:rpc:{service}.{base}.v{version}",
        "title": f"{service}.{method}",
        "x-service": service,
        "x-method": method,
        "x-version": version,
        "x-sources": sources,
        "request": {"type": "object", "additionalProperties": False, "required": required,
                    "properties": properties},
        "response": response,
    }


_GUESSES = (
    (re.compile(r"^request_id$"), {"type": "string", "minLength": 1}),
    (re.compile(r"^(.+_)?ids$"), {"type": "array", "items": {"type": "string", "format": "uuid"}}),
    (re.compile(r"^(.+_)?id$"), {"type": "string", "format": "uuid"}),
    (re.compile(r"^(limit)$"), {"type": "integer"}),
    (re.compile(r"^(cursor|as_of|reason|comment|note|content_hash|month|quarter|week|team|sku|relation)$"),
     {"type": "string"}),
    (re.compile(r"^(filters|changes)$"), {"type": "object"}),
    (re.compile(r"^(lines|allocations)$"), {"type": "array", "items": {"type": "object"}}),
)


def guess(name):
    """A starting point for a hand-written argument, by the platform's naming conventions."""
    for pattern, node in _GUESSES:
        if pattern.match(name):
            return dict(node)
    return {}


def infer_sources(service, fn, cls=None):
    """Sources read off the method's code, for a method that has no contract yet (review them):
    `load(S, arg)` / `load(S, arg or {})` / `load(S, {"k": arg})` and `load_actor(actor)` for the
    arguments; for the response, what its returns dump (`S.dump(...)`, a page of them), following
    the helpers they go through (module functions, the service's own methods) a few calls deep."""
    cls = cls or service_class(service)
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    args = {name for name, _, _ in parameters(fn)}
    request = {"actor": "shared.validation:ActorSchema"} if "actor" in args else {}  # the kit's convention
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name == "load_actor" and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in args:
            request[node.args[0].id] = "shared.validation:ActorSchema"
        if name == "load" and len(node.args) >= 2:
            schema, value = _ref(fn.__module__, node.args[0]), node.args[1]
            if schema is None:
                continue
            if isinstance(value, ast.BoolOp) and isinstance(value.values[0], ast.Name):
                value = value.values[0]
            if isinstance(value, ast.Name) and value.id in args:
                request.setdefault(value.id, schema)
            elif isinstance(value, ast.Dict):
                for key, item in zip(value.keys, value.values):
                    if isinstance(key, ast.Constant) and isinstance(item, ast.Name) and item.id in args:
                        request.setdefault(item.id, f"{schema}#{key.value}")
    sources = {"request": dict(sorted(request.items()))}
    response = _infer_function(fn, cls, 0)
    if response is not None:
        sources["response"] = response
    return sources


def _ref(module_name, expr):
    """"module:expr" when `expr` names a marshmallow schema from that module's globals."""
    from marshmallow import Schema

    text = ast.unparse(expr)
    if not re.fullmatch(r"[A-Za-z_][\w.]*", text):
        return None
    try:
        value = resolve(f"{module_name}:{text}")
    except (AttributeError, ImportError, ValueError):
        return None
    if isinstance(value, Schema) or isinstance(value, type) and issubclass(value, Schema):
        return _canonical(value) or f"{module_name}:{text}"
    return None


def _canonical(value):
    """"<pkg>.schemas:name" when the package's schemas module holds `value` under that name."""
    for module_name in list(sys.modules):
        if module_name.endswith(".schemas") and module_name.count(".") == 1:
            for name, candidate in vars(sys.modules[module_name]).items():
                if candidate is value and not name.startswith("_"):
                    return f"{module_name}:{name}"
    return None


def _infer_function(fn, cls, depth):
    if depth > 3:
        return None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.Return, ast.Lambda)) and getattr(node, "body" if isinstance(node, ast.Lambda)
                                                                   else "value", None) is not None:
            found = _infer_value(node.body if isinstance(node, ast.Lambda) else node.value, fn, cls, depth)
            if found is not None:
                return found
    return None


def _infer_value(value, fn, cls, depth):
    module = fn.__module__
    if isinstance(value, ast.Subscript):  # helper(...)[0]
        inner = _infer_value(value.value, fn, cls, depth)
        return inner.get("list") if isinstance(inner, dict) else None
    if not isinstance(value, (ast.Call, ast.Dict)):
        return None
    if isinstance(value, ast.Dict):
        keys = [k.value if isinstance(k, ast.Constant) else None for k in value.keys]
        if sorted(k for k in keys if k) == ["items", "next_cursor"]:
            items = value.values[keys.index("items")]
            inner = _infer_value(items.elt, fn, cls, depth) if isinstance(items, ast.ListComp) \
                else _infer_value(items, fn, cls, depth)
            if isinstance(inner, str):
                return {"page": inner}
            if isinstance(inner, dict) and "list" in inner:
                return {"page": inner["list"]}
        return None
    func = value.func
    if isinstance(func, ast.Attribute) and func.attr == "dump":
        schema = _ref(module, func.value)
        if schema:
            many = any(k.arg == "many" and isinstance(k.value, ast.Constant) and k.value.value for k in value.keywords)
            return {"list": schema} if many else schema
    if isinstance(func, ast.Attribute) and func.attr == "finish_command" and value.args:
        return _infer_value(value.args[0], fn, cls, depth)
    # a helper handed a dumper (`S.dump`, `S`, `lambda row: S.dump(...)`): one object, or a page
    for arg in list(value.args) + [k.value for k in value.keywords]:
        candidate = arg.body if isinstance(arg, ast.Lambda) else arg
        if isinstance(candidate, ast.Call) and isinstance(candidate.func, ast.Attribute) \
                and candidate.func.attr == "dump":
            candidate = candidate.func
        schema = None
        if isinstance(candidate, ast.Attribute) and candidate.attr == "dump":
            schema = _ref(module, candidate.value)
        elif isinstance(candidate, (ast.Name, ast.Attribute)) and ast.unparse(candidate).endswith("_out"):
            schema = _ref(module, candidate)
        if schema is None and isinstance(candidate, ast.Name):  # a dumper function (`_staff_out`)
            try:
                dumper = resolve(f"{module}:{candidate.id}")
            except (AttributeError, ImportError, ValueError):
                dumper = None
            if inspect.isfunction(dumper) and dumper.__module__ == module:
                found = _infer_function(dumper, cls, depth + 1)
                schema = found if isinstance(found, str) else None
        if schema:
            helper = ast.unparse(func).rsplit(".", 1)[-1]
            return {"page": schema} if ("page" in helper or "list" in helper) else schema
    # follow the helper itself
    target = None
    text = ast.unparse(func)
    if text.startswith("self.") and cls is not None and text.count(".") == 1:
        target = getattr(cls, text[5:], None)
    elif re.fullmatch(r"[A-Za-z_][\w.]*", text):
        try:
            target = resolve(f"{module}:{text}")
        except (AttributeError, ImportError, ValueError):
            target = None
    target = getattr(target, "__func__", target)
    if inspect.isfunction(target) and target.__module__.split(".")[0] == module.split(".")[0]:
        return _infer_function(target, cls, depth + 1)
    return None


# -- generating and checking ----------------------------------------------------------------------------
def render(contract):
    return json.dumps(contract, indent=2, ensure_ascii=False) + "\n"


def generate(service):
    """({path: text}, [errors]) of the contracts `service` declares now (a file per RPC method)."""
    previous = committed(service)
    files, errors = {}, []
    for method, fn in rpc_methods(service_class(service)).items():
        path = contract_path(service, method)
        try:
            files[path] = render(build(service, method, fn, previous.get(method)))
        except (ContractError, LookupError, AttributeError, ImportError) as exc:
            errors.append(str(exc) if isinstance(exc, ContractError) else f"{path.relative_to(ROOT)}: {exc!r}")
            if path.exists():
                files[path] = path.read_text()
    return files, errors


def drift(service):
    """What differs between the committed files and what the service declares, as messages."""
    wanted, problems = generate(service)
    present = {p for p in contracts_dir(service).glob("*.json")} if contracts_dir(service).is_dir() else set()
    for path, text in sorted(wanted.items()):
        rel = path.relative_to(ROOT)
        if path not in present:
            problems.append(f"{rel}: missing — {service} offers {path.name.split('.v')[0]}() and it has no contract")
        elif path.read_text() != text:
            problems.append(f"{rel}: differs from what {service} declares (its signature or marshmallow schemas)")
    for path in sorted(present - set(wanted)):
        problems.append(f"{path.relative_to(ROOT)}: {service} no longer offers this method")
    return problems


def write(service):
    folder = contracts_dir(service)
    folder.mkdir(parents=True, exist_ok=True)
    wanted, errors = generate(service)
    for path in set(folder.glob("*.json")) - set(wanted):
        path.unlink()
    for path, text in wanted.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return sorted(wanted), errors


# -- versions: a contract change is a release ----------------------------------------------------
_RECORD_HEADER = "[tool.sales-platform.contracts]"


def pyproject(service):
    return ROOT / "services" / service / "pyproject.toml"


def fingerprint(service):
    """sha256 over every contract file of the service (contracts/events and contracts/rpc)."""
    import hashlib

    digest = hashlib.sha256()
    folder = ROOT / "services" / service / "contracts"
    for path in sorted(folder.rglob("*.json")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def versions(service):
    """(the service's version, the version its contracts were recorded with, their recorded sha256)."""
    import tomllib

    data = tomllib.loads(pyproject(service).read_text())
    recorded = data.get("tool", {}).get("sales-platform", {}).get("contracts", {})
    return data["project"]["version"], recorded.get("version"), recorded.get("sha256")


def version_problem(service):
    """A message when the contracts changed since they were recorded for a version, else None."""
    version, recorded_version, recorded_sha = versions(service)
    if recorded_sha == fingerprint(service):
        return None
    rel = f"services/{service}/pyproject.toml"
    if version == recorded_version:
        return (f"services/{service}/contracts/ changed since {service} {recorded_version} published them: a "
                f"contract change is a release — bump [project].version in {rel} (minor: additive; major: a "
                f"version retired) and run `make rpc-contracts` to record it")
    return (f"services/{service}/contracts/ are not recorded for {service} {version}: run `make rpc-contracts` "
            f"(it records their sha256 in {rel})")


def record(service):
    """Record the contracts' fingerprint for the service's current version (only for a new one)."""
    version, recorded_version, recorded_sha = versions(service)
    sha = fingerprint(service)
    if sha == recorded_sha:
        return None
    if recorded_sha is not None and version == recorded_version:
        return version_problem(service)
    text = pyproject(service).read_text()
    block = (f"{_RECORD_HEADER}\n# The contracts (contracts/events, contracts/rpc) as published with this version:\n"
             f"# changing them is a release (docs/CONTRACTS.md); `make rpc-contracts` records them.\n"
             f'version = "{version}"\nsha256 = "{sha}"\n')
    if _RECORD_HEADER in text:
        text = text[:text.index(_RECORD_HEADER)].rstrip("\n") + "\n\n" + block
    else:
        text = text.rstrip("\n") + "\n\n" + block
    pyproject(service).write_text(text)
    return None


# -- checking real answers (the producer's tests) ----------------------------------------------------
@functools.lru_cache(maxsize=None)
def _validator(service, method):
    from jsonschema import Draft202012Validator, FormatChecker

    schema = response_schema(service, method)
    if schema is None:
        return None
    return Draft202012Validator(schema, format_checker=FormatChecker())


def answer_problems(service, method, answer):
    """How `answer` breaks the committed response schema of `service.method` ([] when it fits
    or when there is no contract for it)."""
    validator = _validator(service, method)
    if validator is None:
        return []
    return [f"{'/'.join(map(str, e.absolute_path)) or '<answer>'}: {e.message}"
            for e in sorted(validator.iter_errors(answer), key=lambda e: list(map(str, e.absolute_path)))][:10]


def check_answer(service, method, answer):
    problems = answer_problems(service, method, answer)
    assert not problems, (
        f"{service}.{method} answered what its contract ({contract_path(service, method).relative_to(ROOT)}) "
        f"does not allow:\n  " + "\n  ".join(problems))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in argv
    services = [a for a in argv if not a.startswith("-")] or list(SERVICES)
    failed = False
    for service in services:
        if check:
            problems = drift(service) + [p for p in [version_problem(service)] if p]
            failed = failed or bool(problems)
            for problem in problems:
                print(problem)
        else:
            written, errors = write(service)
            print(f"{service}: {len(written)} RPC contracts in {contracts_dir(service).relative_to(ROOT)}")
            failed = failed or bool(errors)
            for error in errors:
                print(f"  not regenerated: {error}")
            problem = None if errors else record(service)
            if problem:
                failed = True
                print(f"  {problem}")
    if check and failed:
        print("run `make rpc-contracts`, review the diff (docs/CONTRACTS.md: breaking changes go to a `_v2`)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
