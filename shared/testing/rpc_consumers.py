"""Every RPC a consumer makes, read off its code, and checked against the producer's contract
(services/<svc>/contracts/rpc/<method>.v<N>.json; see shared.testing.rpc_contracts).

What a call site declares, without anything written twice:
  * the method and the keyword arguments it sends — from the call itself:
    `self.billing.reserve_credit(reservation_id=..., ...)`, `client.customer.create_staff(...)`, or
    a method handed to a helper with the arguments (`Leg(self.billing.release_credit, order_id=...)`);
  * what it reads of the answer — the marshmallow schema it loads the answer with
    (`load(schemas.customer_answer, answer)`), the keys it subscripts in the same function
    (`invoice["id"]`, `staff.get("role")`), and the schemas declared on the dependency for reads
    that happen further away (`ServiceRpc("customer", reads={"get_customer": CustomerAnswer})`).

A breaking change on the producer's side — a method gone, a required argument renamed or added, a
field a consumer reads removed, retyped or made nullable — becomes a message naming the consumer
(file and line) and the method or field.
"""
import ast
import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from shared.testing import contracts as event_contracts
from shared.testing import rpc_contracts

ROOT = rpc_contracts.ROOT
SERVICES = rpc_contracts.SERVICES
DICT_METHODS = {"get", "pop", "items", "keys", "values", "update", "setdefault", "copy", "append", "extend",
                "sort", "upsert", "move_snapshot", "clear", "index", "count"}


@dataclass
class Call:
    consumer: str          # "order", "gateway"
    where: str             # "services/order/order/saga.py:415"
    service: str           # the callee
    method: str
    kwargs: tuple          # the keyword arguments sent
    splat: bool = False    # `**something` sent too: the names cannot all be known
    maybe: tuple = ()      # keyword arguments sent only sometimes (optional fields of a spread body)
    reads: list = field(default_factory=list)     # ["id", "lines[].sku"] read off the answer
    expects: list = field(default_factory=list)   # marshmallow schemas the answer is loaded with

    @property
    def who(self):
        return f"{self.consumer} ({self.where})"


def consumer_folders():
    """{consumer: package folder} of the gateway and every service."""
    found = {name: ROOT / "services" / name / name for name in SERVICES}
    found["gateway"] = ROOT / "gateway" / "gateway"
    return found


def module_name(consumer, path):
    package = consumer_folders()[consumer]
    rel = path.relative_to(package.parent).with_suffix("")
    return ".".join(rel.parts)


# -- reading the calls off the code --------------------------------------------------------------
def calls(consumer, folder=None):
    """Every RPC `consumer` makes to another service, read from the source files."""
    folder = folder or consumer_folders()[consumer]
    found = []
    for path in sorted(folder.rglob("*.py")):
        if "__pycache__" in path.parts or "tests" in path.parts:
            continue
        found += _calls_in(consumer, path, ast.parse(path.read_text(), filename=str(path)))
    return found


def _calls_in(consumer, path, tree):
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    targets = set(SERVICES) - {consumer}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or node.attr.startswith("_") or node.attr in DICT_METHODS:
            continue
        holder = node.value
        if isinstance(holder, ast.Attribute) and holder.attr in targets:
            service = holder.attr
        elif isinstance(holder, ast.Name) and holder.id in targets and _is_parameter(holder.id, node, parents):
            service = holder.id
        else:
            continue
        parent = parents.get(node)
        if isinstance(parent, ast.Attribute) and parent.attr == "call_async":  # x.m.call_async(...)
            node, parent = parent, parents.get(parent)
        if not isinstance(parent, ast.Call):
            continue  # a reference that is not called here
        function = _enclosing_function(node, parents)
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        method = node.attr if node.attr != "call_async" else node.value.attr
        sent, maybe, splat = [k.arg for k in parent.keywords if k.arg is not None], [], False
        for spread in (k.value for k in parent.keywords if k.arg is None):
            keys = _dict_keys(spread, tree)
            if keys is None:
                keys = _body_keys(spread, _enclosing_function(node, parents), module_name(consumer, path))
                if keys is not None:
                    always, sometimes = keys
                    sent += always
                    maybe += sometimes
                    continue
            sent += keys or []
            splat = splat or keys is None
        call = Call(consumer, where, service, method, tuple(sent), splat, tuple(maybe))
        _answer_reads(call, parent, function, parents, module_name(consumer, path))
        found.append(call)
    return found


def _dict_keys(expr, tree):
    """The keys of `**expr` when they are known: a dict literal, or a call of a function of the
    same module that returns one (`**_page(call)`); None otherwise."""
    if isinstance(expr, ast.Dict):
        keys = [k.value for k in expr.keys if isinstance(k, ast.Constant)]
        return keys if len(keys) == len(expr.keys) else None
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == expr.func.id:
                returns = [n.value for n in ast.walk(node) if isinstance(n, ast.Return)]
                found = [_dict_keys(value, tree) for value in returns if value is not None]
                if found and all(keys is not None for keys in found) and len({tuple(k) for k in found}) == 1:
                    return found[0]
    return None


def _body_keys(expr, function, module):
    """For the gateway's `**plain(call.body)` / `**call.body`: (the fields always in the body, the
    optional ones) of the endpoint's `body=` schema (its `@api(..., body=Schema)`)."""
    text = ast.unparse(expr)
    if function is None or text not in ("call.body", "plain(call.body)"):
        return None
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "api":
            body = next((k.value for k in decorator.keywords if k.arg == "body"), None)
            if body is None:
                return None
            try:
                schema = rpc_contracts.resolve(f"{module}:{ast.unparse(body)}")
            except (AttributeError, ImportError, ValueError):
                return None
            import marshmallow

            schema = schema() if isinstance(schema, type) else schema
            always, sometimes = [], []
            for name, field in schema.fields.items():
                if field.dump_only:
                    continue
                key = field.data_key or name
                (always if field.required or field.load_default is not marshmallow.missing
                 else sometimes).append(key)
            return always, sometimes
    return None


def _is_parameter(name, node, parents):
    function = _enclosing_function(node, parents)
    if function is None:
        return False
    args = function.args
    return name in {a.arg for a in args.args + args.kwonlyargs + args.posonlyargs}


def _enclosing_function(node, parents):
    while node is not None and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        node = parents.get(node)
    return node


def _answer_reads(call, expr, function, parents, module):
    """What the code does with the answer (`expr`: the call, or the helper call it was handed to)."""
    parent = parents.get(expr)
    if isinstance(parent, ast.Attribute) and parent.attr == "result":  # x.call_async(...).result()
        expr, parent = parents.get(parent), parents.get(parents.get(parent))
    call.reads += _subscripts(expr, parents)
    schema = _loaded_with(expr, parents, module)
    if schema is not None:
        call.expects.append(schema)
    if isinstance(parent, (ast.Assign, ast.AnnAssign)) and function is not None:
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        if len(targets) == 1 and isinstance(targets[0], ast.Name):
            name = targets[0].id
            for node in ast.walk(function):
                if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load):
                    call.reads += _subscripts(node, parents)
                    schema = _loaded_with(node, parents, module)
                    if schema is not None:
                        call.expects.append(schema)


def _subscripts(node, parents):
    """["id"] for `node["id"]` / `node.get("id")`, ["lines[].sku"] is left to schemas; one level."""
    parent = parents.get(node)
    if isinstance(parent, ast.Subscript) and parent.value is node:
        key = parent.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return [key.value]
    if isinstance(parent, ast.Attribute) and parent.value is node and parent.attr == "get":
        call = parents.get(parent)
        if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant) \
                and isinstance(call.args[0].value, str):
            return [call.args[0].value]
    return []


def _loaded_with(node, parents, module):
    """The marshmallow schema `node` is loaded with: `load(S, node)` or `S.load(node)`."""
    parent = parents.get(node)
    if not isinstance(parent, ast.Call) or node not in parent.args:
        return None
    func = parent.func
    if isinstance(func, ast.Name) and func.id == "load" and len(parent.args) >= 2 and parent.args[1] is node:
        expr = parent.args[0]
    elif isinstance(func, ast.Attribute) and func.attr == "load" and parent.args[0] is node:
        expr = func.value
    else:
        return None
    try:
        value = rpc_contracts.resolve(f"{module}:{ast.unparse(expr)}")
    except (AttributeError, ImportError, ValueError):
        return None
    from marshmallow import Schema

    if isinstance(value, type) and issubclass(value, Schema):
        return value()
    return value if isinstance(value, Schema) else None


def declared_reads(consumer):
    """Calls for the `reads=` a consumer declares on its ServiceRpc dependencies."""
    from shared.rpc import ServiceRpc

    module = importlib.import_module(f"{consumer}.service")
    found = []
    for cls in [v for v in vars(module).values() if isinstance(v, type) and getattr(v, "name", None) == consumer]:
        for attr, dependency in vars(cls).items():
            if isinstance(dependency, ServiceRpc) and getattr(dependency, "reads", None):
                source = Path(sys.modules[cls.__module__].__file__).relative_to(ROOT)
                for method, schema in dependency.reads.items():
                    schema = schema() if isinstance(schema, type) else schema
                    found.append(Call(consumer, f"{source} ({cls.__name__}.{attr} reads=)", dependency.target_service,
                                      method, (), splat=True, expects=[schema]))
    return found


# -- checking them against the producers ----------------------------------------------------------
def check(all_calls, producers=None):
    """Every way the calls break the producers' contracts, as messages naming the consumer."""
    producers = producers if producers is not None else {s: rpc_contracts.committed(s) for s in SERVICES}
    problems = []
    for call in all_calls:
        offered = producers.get(call.service, {})
        contract = offered.get(call.method)
        if contract is None:
            base, version = rpc_contracts.split_version(call.method)
            newer = sorted(m for m in offered if rpc_contracts.split_version(m)[0] == base and m != call.method)
            hint = f"; it offers {', '.join(newer)}: move to it before the old one goes" if newer else ""
            problems.append(f"{call.who} calls {call.service}.{call.method}, which {call.service} does not offer "
                            f"(no services/{call.service}/contracts/rpc/{base}.v{version}.json){hint}")
            continue
        request = contract.get("request", {})
        accepted = request.get("properties", {})
        for name in call.kwargs + call.maybe:
            if name not in accepted:
                problems.append(f"{call.who} sends {call.service}.{call.method}({name}=…), an argument "
                                f"{call.service} does not take")
        if not call.splat:
            for name in request.get("required", []):
                if name not in call.kwargs:
                    problems.append(f"{call.who} does not send {call.service}.{call.method}'s required "
                                    f"argument {name}")
        response = contract.get("response", {})
        label = f"{call.service}.{call.method}()"
        for key in dict.fromkeys(call.reads):
            if not _provides(response, key):
                problems.append(f"{call.who} reads {label}.{key}, which {call.service}'s answer does not provide")
        for schema in call.expects:
            problems += [p.replace("the producer", call.service)
                         for p in event_contracts.compare(call.who, schema, response, path=label)]
    return problems


def _provides(node, key):
    """Whether an answer described by `node` has the top-level field `key` (any node without
    declared properties is taken as open: a hand-written answer described loosely)."""
    props = node.get("properties")
    if props is None:
        return not node.get("type") or "object" in (node["type"] if isinstance(node["type"], list)
                                                   else [node["type"]])
    return key in props
